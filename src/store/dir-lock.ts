/**
 * One process per data dir: a LOCK file holding the owner's pid, created
 * exclusively. A lock left by a process that no longer exists (killed with
 * SIGKILL) is taken over; a live owner makes start-up fail with its pid.
 */
import { open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { VrepError } from '../errors.ts';

export interface DirLock {
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function acquireDirLock(dir: string): Promise<DirLock> {
  const file = path.join(dir, 'LOCK');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      let released = false;
      return {
        release: async () => {
          if (released) return;
          released = true;
          await rm(file, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new VrepError('ERR_DATA_DIR_LOCKED', `${dir} is in use by process ${pid}`);
      }
      if (pid === process.pid)
        throw new VrepError('ERR_DATA_DIR_LOCKED', `${dir} is already open in this process`);
      await rm(file, { force: true }); // stale: its owner is gone
    }
  }
  throw new VrepError('ERR_DATA_DIR_LOCKED', `${dir}: could not take the lock`);
}
