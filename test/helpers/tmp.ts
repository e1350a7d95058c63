/** Temporary directories that are removed when the test ends. */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';

/** Every directory made here, removed once more as the test process exits. */
const made = new Set<string>();

function removeAgain(): void {
  for (const dir of made) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // Exiting: nothing left to report to.
    }
  }
}

export function tempDir(t: TestContext, prefix = 'vrep-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  if (made.size === 0) process.once('exit', removeAgain);
  made.add(dir);
  // Registered before the processes a test starts, so it may run while one still writes there:
  // retry, and never fail the hooks after it (they stop those processes). A process stopped
  // after it can have made the directory again (a fresh clone's run once left a node's
  // node-meta.json so): the exit hook removes it then.
  t.after(() => {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    } catch (err) {
      process.emitWarning(`could not remove ${dir}: ${(err as Error).message}`);
    }
  });
  return dir;
}

/** Test sizes: small by default, large with VREP_TEST_SCALE=long. */
export function scale<T>(short: T, long: T): T {
  return process.env['VREP_TEST_SCALE'] === 'long' ? long : short;
}
