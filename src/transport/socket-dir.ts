/**
 * The private directory of the Unix socket behind the TLS front
 * (peer-server.ts): `<tmpdir>/vrep-peer-<pid>-XXXXXX`, mode 0700 (mkdtemp),
 * removed when the listener closes. A node that is SIGKILLed cannot remove
 * it, so the pid is in the name and every TLS listener first removes the
 * directories of pids that no longer run.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const PREFIX = 'vrep-peer-';
const NAME = /^vrep-peer-(\d+)-[A-Za-z0-9]{6}$/;

/** Creates this process's socket directory (0700), after sweeping those of dead processes. */
export function makePeerSocketDir(root = os.tmpdir()): string {
  sweepStaleSocketDirs(root);
  return mkdtempSync(path.join(root, `${PREFIX}${process.pid}-`));
}

/**
 * Removes the socket directories whose process is gone. A pid that runs
 * (this one included: several listeners may share a process), or that
 * belongs to another user (EPERM), keeps its directory.
 */
export function sweepStaleSocketDirs(root = os.tmpdir()): string[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = Number(NAME.exec(name)?.[1] ?? NaN);
    if (!Number.isSafeInteger(pid) || pid <= 0 || running(pid)) continue;
    try {
      rmSync(path.join(root, name), { recursive: true, force: true });
      removed.push(name);
    } catch {
      // Another user's directory, or gone already: not ours to insist on.
    }
  }
  return removed;
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
