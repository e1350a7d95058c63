/**
 * The TLS front's socket directory: named by pid, and the directories of
 * dead pids (a node SIGKILLed cannot remove its own) are swept by the next
 * listener, never those of running processes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { makePeerSocketDir, sweepStaleSocketDirs } from '../../src/transport/socket-dir.ts';
import { tempDir } from '../helpers/tmp.ts';

/** A pid that ran and has exited. */
function deadPid(): number {
  const run = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  });
  return Number(run.stdout);
}

test("a socket dir names its pid (mode 0700); a dead pid's dir is swept, a running one's and other names are kept", (t) => {
  const root = tempDir(t);
  const dead = path.join(root, `vrep-peer-${deadPid()}-AbC123`);
  const running = path.join(root, `vrep-peer-${process.pid}-XyZ789`);
  const parent = path.join(root, `vrep-peer-${process.ppid}-Qwe456`);
  const other = path.join(root, 'vrep-peer-Zz9Yy8');
  for (const d of [dead, running, parent, other]) mkdirSync(d);

  const mine = makePeerSocketDir(root);
  assert.match(path.basename(mine), new RegExp(`^vrep-peer-${process.pid}-[A-Za-z0-9]{6}$`));
  assert.equal(statSync(mine).mode & 0o777, 0o700);
  assert.equal(existsSync(dead), false, "the dead pid's dir is swept");
  for (const d of [running, parent, other, mine]) assert.equal(existsSync(d), true, `${d} is kept`);
  assert.deepEqual(sweepStaleSocketDirs(root), [], 'nothing else to sweep');
});
