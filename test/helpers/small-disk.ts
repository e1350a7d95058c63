/**
 * A small tmpfs mounted for one test, to fill a disk for real (ENOSPC).
 * Needs root (mount); `smallDisk` returns null where mounting is not
 * permitted, and the caller skips with that reason.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';

export interface SmallDisk {
  dir: string;
  /** Fills the disk with a ballast file until writes fail. */
  fill(): void;
  /** Removes the ballast: space is back. */
  free(): void;
  /** Makes the disk this big (a tmpfs remount: what is on it stays). */
  resize(sizeBytes: number): void;
}

export function smallDisk(t: TestContext, sizeBytes: number): SmallDisk | null {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vrep-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return null;
  }
  t.after(() => {
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
    rmSync(dir, { recursive: true, force: true });
  });
  const ballast = path.join(dir, 'ballast');
  return {
    dir,
    fill() {
      // dd stops with ENOSPC once the disk is full; that is the point.
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${ballast}`, 'bs=4k'], { stdio: 'pipe' });
      } catch {
        /* disk full */
      }
    },
    free() {
      rmSync(ballast, { force: true });
    },
    resize(bytes: number) {
      execFileSync('mount', ['-o', `remount,size=${bytes}`, dir], { stdio: 'pipe' });
    },
  };
}
