/**
 * For vector-storage.test.ts, run with --expose-gc: fills a collection, drops
 * it, collects, and prints one JSON line: the storage's bytes, what dropping
 * reported to V8, what is still reported after the GC (the finalizer took it
 * back), and the resident memory the GC gave back.
 */
import { setImmediate as tick } from 'node:timers/promises';
import { adjustExternalMemory } from '../../src/native/external-memory.ts';
import { Collection, CHUNK_ROWS } from '../../src/store/collection.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const dim = 256;
const chunks = 4;
const externalNow = (): number => adjustExternalMemory(0);

let c: Collection | null = new Collection('v', dim, 'l2');
const rows = chunks * CHUNK_ROWS;
// One batch buffer, held to the end: its freeing must not count in V8's total below.
const vectors = new Float32Array(4096 * dim).fill(1);
for (let at = 0; at < rows; at += 4096) {
  c.upsert(
    Array.from({ length: 4096 }, (_, i) => `p${at + i}`),
    vectors,
    [],
  );
}
gc();
const rssFull = process.memoryUsage().rss;
const before = externalNow();
c.drop();
const reported = externalNow() - before;
c = null;
for (let i = 0; i < 4; i++) {
  gc();
  // FinalizationRegistry callbacks run as tasks after the GC.
  await tick();
}
const afterGc = externalNow() - before;
process.stdout.write(
  `${JSON.stringify({ storageBytes: rows * dim * 4, reported, afterGc, rssFreed: rssFull - process.memoryUsage().rss, held: vectors.length })}\n`,
);
