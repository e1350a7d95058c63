/**
 * The frame of a bench that runs node processes (replication, failover): a
 * temp dir removed on exit, a watchdog over the whole run, the problems that
 * fail it, and its ending (results out, exit code, every child killed by the
 * exit hook in processes.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { emit, type Section } from './harness.ts';

export interface ProcessBench {
  /** Data dirs of the bench's nodes go under it. */
  tmpRoot: string;
  /** What went wrong without stopping the bench; any fails it (exit code 1). */
  problems: string[];
  /** Runs `main`, emits its sections, and exits. */
  run(main: () => Promise<Section[]>): Promise<never>;
}

export function processBench(name: string, limitMs: number): ProcessBench {
  const tmpRoot = mkdtempSync(path.join(os.tmpdir(), `vrep-bench-${name}-`));
  // Also on the watchdog's exit.
  process.on('exit', () => rmSync(tmpRoot, { recursive: true, force: true }));
  const watchdog = setTimeout(() => {
    process.stderr.write(`${name} bench: over its ${limitMs} ms limit, killing everything\n`);
    process.exit(1); // the exit hook in processes.ts SIGKILLs every child
  }, limitMs);
  watchdog.unref();
  const problems: string[] = [];
  return {
    tmpRoot,
    problems,
    async run(main) {
      try {
        emit(name, await main());
        if (problems.length > 0) {
          process.stderr.write(`${name} bench: ${problems.join('; ')}\n`);
          process.exitCode = 1;
        }
      } catch (err) {
        process.stderr.write(`${name} bench failed: ${(err as Error).stack ?? String(err)}\n`);
        process.exitCode = 1;
      } finally {
        clearTimeout(watchdog);
      }
      process.exit(); // children are SIGKILLed by the exit hook if any is left
    },
  };
}
