/**
 * The deterministic workload of the crash test: operation `seq` is a pure
 * function of (seed, seq), so the parent can replay exactly the operations
 * the child acknowledged, on a model.
 */
import { Collection } from '../../src/store/collection.ts';
import { rng } from '../helpers/rng.ts';

export const DIM = 16;
const ID_POOL = 400;

export type WorkOp =
  | { kind: 'upsert'; ids: string[]; vectors: Float32Array; payloads: Uint8Array[] }
  | { kind: 'delete'; ids: string[] };

export function workOp(seed: number, seq: number): WorkOp {
  const r = rng((seed * 1_000_003 + seq) >>> 0);
  const n = 1 + Math.floor(r() * 40);
  const ids = [...new Set(Array.from({ length: n }, () => `p${Math.floor(r() * ID_POOL)}`))];
  if (r() < 0.2) return { kind: 'delete', ids };
  const vectors = new Float32Array(ids.length * DIM);
  for (let i = 0; i < vectors.length; i++) vectors[i] = r() * 2 - 1;
  const enc = new TextEncoder();
  const payloads = ids.map((id, i) =>
    r() < 0.3
      ? new Uint8Array(0)
      : enc.encode(JSON.stringify({ seq, i, id, tag: 'x'.repeat(Math.floor(r() * 200)) })),
  );
  return { kind: 'upsert', ids, vectors, payloads };
}

/** The model: applies operations [0, count) to a fresh collection. */
export function modelDigest(seed: number, count: number): string {
  const c = new Collection('c', DIM, 'l2');
  for (let seq = 0; seq < count; seq++) {
    const op = workOp(seed, seq);
    if (op.kind === 'upsert') c.upsert(op.ids, op.vectors, op.payloads);
    else c.delete(op.ids);
  }
  return c.digest();
}
