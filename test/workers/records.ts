/** Log records for the worker-pool tests: real encoded records, put in a real ring. */
import { encodeRecord, Op } from '../../src/log/record.ts';
import { RingLog, type RingReader } from '../../src/native/ring-log.ts';

/**
 * An upsert of `points` points of dimension `dimension`. Vectors are smooth
 * (sines), so zstd on the shuffled bytes saves well over the codec's 5%
 * threshold.
 */
export function upsertRecord(lsn: number, points: number, dimension: number): Uint8Array {
  const vectors = new Float32Array(points * dimension);
  for (let i = 0; i < vectors.length; i++) vectors[i] = Math.sin(lsn * 0.37 + i * 0.01);
  return encodeRecord({
    lsn,
    term: 1,
    hlcMs: 1_700_000_000_000 + lsn,
    hlcLogical: 0,
    origin: 'node-a',
    collection: 'docs',
    op: Op.Upsert,
    dimension,
    ids: Array.from({ length: points }, (_, i) => `p-${lsn}-${i}`),
    vectors,
    payloads: Array.from({ length: points }, (_, i) => new TextEncoder().encode(`{"i":${i}}`)),
  });
}

/** The smallest kind of record (a one-id delete), for runs of many records. */
export function deleteRecord(lsn: number): Uint8Array {
  return encodeRecord({
    lsn,
    term: 1,
    hlcMs: 1_700_000_000_000,
    hlcLogical: 0,
    origin: 'node-a',
    collection: 'docs',
    op: Op.Delete,
    ids: [`p-${lsn}`],
  });
}

/** A ring holding `records` (LSNs from 1), with room for all of them unless told otherwise. */
export function ringWith(
  records: readonly Uint8Array[],
  capacity: { capacityBytes?: number; capacityRecords?: number } = {},
): RingLog {
  let bytes = 0;
  for (const r of records) bytes += r.length;
  const ring = new RingLog({
    capacityBytes: capacity.capacityBytes ?? Math.max(bytes, 1024),
    capacityRecords: capacity.capacityRecords ?? Math.max(records.length, 1),
  });
  for (const r of records) ring.append(r);
  return ring;
}

/** Records [from, to] read on this thread, each in its own buffer. */
export function readOnMainThread(ring: RingReader, from: number, to: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const buffer = new Uint8Array(64 * 1024 * 1024);
  const lengths = new Uint32Array(to - from + 1);
  let lsn = from;
  while (lsn <= to) {
    const n = ring.read(lsn, to, buffer, lengths);
    let at = 0;
    for (let i = 0; i < n; i++) {
      out.push(buffer.slice(at, at + lengths[i]!));
      at += lengths[i]!;
    }
    lsn += n;
  }
  return out;
}
