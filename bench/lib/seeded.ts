/**
 * Deterministic vector batches for the replication bench, made where they
 * are written (in the node child, in the Redis client) so no process ships
 * vectors to another over IPC. Same seed, same bytes, in every process.
 */

/** mulberry32: small, fast, good enough to fill vectors. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Distinct batches reused round-robin: enough variety, bounded memory. */
export const POOL_BATCHES = 8;

/** `POOL_BATCHES` batches of `batchSize` x `dim` floats in [-1, 1). */
export function vectorPool(seed: number, dim: number, batchSize: number): Float32Array[] {
  const next = mulberry32(seed);
  return Array.from({ length: POOL_BATCHES }, () => {
    const v = new Float32Array(batchSize * dim);
    for (let i = 0; i < v.length; i++) v[i] = next() * 2 - 1;
    return v;
  });
}

/** Ids of batch `b`: unique over the run, so every batch inserts new points. */
export function batchIds(prefix: string, b: number, batchSize: number): string[] {
  const ids = new Array<string>(batchSize);
  for (let i = 0; i < batchSize; i++) ids[i] = `${prefix}${b * batchSize + i}`;
  return ids;
}
