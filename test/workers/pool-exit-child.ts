/**
 * Child of feeder-pool.test.ts: uses a FeederPool, closes it, and returns
 * without process.exit. It prints the process's OS thread count before the
 * pool and after close() (Linux: /proc/self/status), so the test sees the
 * worker threads are gone; and the process must then exit by itself, so no
 * timer or handle was left behind either.
 */
import { readFileSync } from 'node:fs';
import { FeederPool } from '../../src/workers/feeder-pool.ts';
import { EventLoopMonitor } from '../../src/workers/event-loop-monitor.ts';
import { ringWith, upsertRecord } from './records.ts';

function osThreads(): string {
  try {
    return /^Threads:\s+(\d+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 'n/a';
  } catch {
    return 'n/a';
  }
}

const ring = ringWith(Array.from({ length: 20 }, (_, i) => upsertRecord(i + 1, 8, 64)));
const monitor = new EventLoopMonitor({ resolutionMs: 1 }).start();
const before = osThreads();
const pool = new FeederPool(ring.handle, { threads: 2 });
const [fromRing, fromCaller] = await Promise.all([
  pool.encodeFromRing(1, 20, 1024 * 1024, { enabled: true, level: 1 }),
  pool.encodeRecords([upsertRecord(1, 8, 64)], { enabled: true, level: 1 }),
]);
const during = osThreads();
if (fromRing?.count !== 20 || fromCaller.count !== 1) throw new Error('unexpected counts');
await pool.close();
// The monitor is left running on purpose: its timer must not hold the process either.
void monitor;
console.log(`threads before ${before} during ${during} after ${osThreads()}`);
console.log(`encoded ${fromRing.count} records; closed`);
