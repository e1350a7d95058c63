/**
 * The batches of bench/replication-ingest.bench.ts, made the same way in
 * every process from a seed (so IPC carries no vectors): ids, vectors and
 * small payloads for the TS API, and the same points as binary batch and
 * JSON bodies for the HTTP client. Ids are fixed-width, so a client can
 * turn one body into the next batch's by rewriting the id digits in place
 * (the client's own work stays small: it shares the 2 cores with the node).
 */
import { encodeBinaryBatch } from '../../src/server/binary-batch.ts';
import { POOL_BATCHES, vectorPool } from './seeded.ts';

/** Digits of a point number in an id: room for 10^10 points per prefix. */
const ID_DIGITS = 10;

export interface BatchShape {
  seed: number;
  dim: number;
  batchSize: number;
  /** Ids are `${idPrefix}${point number, ID_DIGITS digits}`. */
  idPrefix: string;
}

const encoder = new TextEncoder();

/** Point `n`'s id. */
export function pointId(idPrefix: string, n: number): string {
  return `${idPrefix}${String(n).padStart(ID_DIGITS, '0')}`;
}

/** Ids of batch `b` (unique over a run: every batch inserts new points). */
export function batchPointIds(shape: BatchShape, b: number): string[] {
  const ids = new Array<string>(shape.batchSize);
  for (let i = 0; i < shape.batchSize; i++) ids[i] = pointId(shape.idPrefix, b * shape.batchSize + i);
  return ids;
}

/** Point i's payload in every batch: small, as a typical one. */
export function payloadOf(i: number): { group: number; title: string } {
  return { group: i % 7, title: `point ${i}` };
}

export interface TsApiBatches {
  vectors: Float32Array[];
  payloads: Uint8Array[];
}

/** The pool of vectors and the payload bytes the TS API writes (batch b uses vectors[b % POOL_BATCHES]). */
export function tsApiBatches(shape: BatchShape): TsApiBatches {
  return {
    vectors: vectorPool(shape.seed, shape.dim, shape.batchSize),
    payloads: Array.from({ length: shape.batchSize }, (_, i) => encoder.encode(JSON.stringify(payloadOf(i)))),
  };
}

export type BodyKind = 'binary' | 'json';

/** One body per pool entry plus where each id's digits sit in it. */
export interface BodyTemplates {
  bodies: Uint8Array[];
  /** Per body, per point: byte offset of the id's first digit. */
  digitOffsets: Uint32Array[];
}

function findDigitOffsets(body: Uint8Array, shape: BatchShape, b: number): Uint32Array {
  const offsets = new Uint32Array(shape.batchSize);
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  let from = 0;
  const ids = batchPointIds(shape, b);
  for (let i = 0; i < shape.batchSize; i++) {
    const at = text.indexOf(ids[i] as string, from, 'latin1');
    if (at < 0) throw new Error(`ingest body: id ${ids[i]} not found`);
    offsets[i] = at + shape.idPrefix.length;
    from = at + 1;
  }
  return offsets;
}

/** Bodies of batches 0 .. POOL_BATCHES-1; `retarget` makes any later batch out of them. */
export function bodyTemplates(shape: BatchShape, kind: BodyKind): BodyTemplates {
  const pool = vectorPool(shape.seed, shape.dim, shape.batchSize);
  const payloads = Array.from({ length: shape.batchSize }, (_, i) => payloadOf(i));
  const bodies: Uint8Array[] = [];
  const digitOffsets: Uint32Array[] = [];
  for (let b = 0; b < POOL_BATCHES; b++) {
    const ids = batchPointIds(shape, b);
    const vectors = pool[b] as Float32Array;
    let body: Uint8Array;
    if (kind === 'binary') {
      body = encodeBinaryBatch({ ids, vectors, dimension: shape.dim, payloads });
    } else {
      const points = ids.map((id, i) => ({
        id,
        vector: Array.from(vectors.subarray(i * shape.dim, (i + 1) * shape.dim)),
        payload: payloads[i],
      }));
      body = encoder.encode(JSON.stringify({ points }));
    }
    bodies.push(body);
    digitOffsets.push(findDigitOffsets(body, shape, b));
  }
  return { bodies, digitOffsets };
}

/**
 * Rewrites pool body `slot` in place so it carries batch b's ids; returns
 * it. The caller picks a slot no request in flight is still sending.
 */
export function retarget(t: BodyTemplates, shape: BatchShape, slot: number, b: number): Uint8Array {
  const body = t.bodies[slot] as Uint8Array;
  const offsets = t.digitOffsets[slot] as Uint32Array;
  for (let i = 0; i < shape.batchSize; i++) {
    let n = b * shape.batchSize + i;
    const at = offsets[i] as number;
    for (let d = ID_DIGITS - 1; d >= 0; d--) {
      body[at + d] = 0x30 + (n % 10);
      n = Math.floor(n / 10);
    }
  }
  return body;
}
