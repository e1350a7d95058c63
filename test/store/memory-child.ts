/**
 * Measures the RSS a collection of N x DIM vectors adds to a process that
 * has the store open and empty. Prints one JSON line. Run with --expose-gc.
 *   node --expose-gc --import tsx memory-child.ts <dataDir> <n> <dim>
 */
import { Store } from '../../src/store/store.ts';
import { StoreWriter } from '../helpers/store-writer.ts';

const [dataDir, nArg, dimArg] = process.argv.slice(2) as [string, string, string];
const n = Number(nArg);
const dim = Number(dimArg);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

function settledRss(): number {
  for (let i = 0; i < 4; i++) gc?.();
  return process.memoryUsage().rss;
}

const store = await Store.open({ dataDir, fsync: 'no', snapshotEveryBytes: 0 });
const writer = new StoreWriter(store);
await writer.createCollection('m', { dimension: dim, metric: 'l2' });
const baseline = settledRss();
const batch = 1000;
const vectors = new Float32Array(batch * dim);
const payloads = Array.from({ length: batch }, () => new Uint8Array(0));
for (let start = 0; start < n; start += batch) {
  const count = Math.min(batch, n - start);
  const ids = Array.from({ length: count }, (_, i) => `p${start + i}`);
  for (let i = 0; i < count * dim; i++) vectors[i] = Math.random();
  await writer.upsert('m', ids, vectors.subarray(0, count * dim), payloads.slice(0, count));
}
const after = settledRss();
const rawBytes = n * dim * 4;
process.stdout.write(
  `${JSON.stringify({ n, dim, rawBytes, baselineRss: baseline, rss: after, addedBytes: after - baseline, ratio: (after - baseline) / rawBytes, ringCapacityBytes: store.records.ring.capacityBytes })}\n`,
);
await store.close();
