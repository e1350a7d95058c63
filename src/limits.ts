/**
 * Every size limit on what is written, in one place (one owner per fact).
 *
 * - RecordLimits: the hard ceiling of the on-disk and wire format, checked
 *   when a record is encoded and again when one is decoded (a record from
 *   disk or a peer is untrusted).
 * - ApiLimits: what a client may write, the same for every way points enter
 *   a node: the HTTP JSON batch, the HTTP binary batch and the TS API
 *   (`write`, `writePacked`). The native JSON parser's defaults, the binary
 *   batch decoder and the store's checks (src/store/point-checks.ts) all
 *   read them from here. They are at most RecordLimits (asserted below), so
 *   anything a client may write is a valid record. Documented in
 *   docs/http-api.md and docs/storage.md.
 * - LostFileLimits: how much of a dropped tail is in memory at once while
 *   it is listed in a `lost/` file (src/store/lost-records.ts).
 */
import assert from 'node:assert/strict';

export const RecordLimits = {
  /** Whole encoded record, bytes. */
  maxRecordBytes: 256 * 1024 * 1024,
  /** Points in one upsert or delete batch. */
  maxBatchPoints: 100_000,
  /** Vector dimension. */
  maxDimension: 65_536,
  /** A point id, UTF-8 bytes. */
  maxIdBytes: 1024,
  /** One point's payload, UTF-8 JSON bytes. */
  maxPayloadBytes: 1024 * 1024,
  /** Collection name, UTF-8 bytes. */
  maxCollectionBytes: 255,
  /** Origin node id, UTF-8 bytes. */
  maxNodeIdBytes: 255,
} as const;

export const ApiLimits = {
  /** Points in one write batch. */
  maxBatchPoints: 100_000,
  /**
   * A point id, UTF-8 bytes. Room for any UUID, hash or composite key; ids
   * sit in every record and in the id-to-row map, so long natural keys are
   * better hashed.
   */
  maxIdBytes: 256,
  /**
   * One point's payload, UTF-8 JSON bytes. A payload is metadata returned
   * with every search hit, not a document store.
   */
  maxPayloadBytes: 64 * 1024,
  /**
   * How deep a payload may nest: every value in it is inside at most this
   * many objects and arrays, the payload object itself included
   * (`{"a":{"b":1}}` is 2). Deep enough for any real document shape, and
   * keeps every recursive walk of a payload (JSON.stringify of an answer,
   * filter matching) far from the stack limit.
   */
  maxPayloadDepth: 64,
} as const;

export const LostFileLimits = {
  /** Records read, decoded and written per batch. */
  batchRecords: 1024,
  /** Record bytes read per batch (a batch holds one record at least, so one record may exceed it). */
  batchBytes: 16 * 1024 * 1024,
} as const;

assert.ok(ApiLimits.maxBatchPoints <= RecordLimits.maxBatchPoints, 'ApiLimits.maxBatchPoints');
assert.ok(ApiLimits.maxIdBytes <= RecordLimits.maxIdBytes, 'ApiLimits.maxIdBytes');
assert.ok(ApiLimits.maxPayloadBytes <= RecordLimits.maxPayloadBytes, 'ApiLimits.maxPayloadBytes');
assert.ok(ApiLimits.maxPayloadDepth >= 1, 'ApiLimits.maxPayloadDepth');
assert.ok(LostFileLimits.batchRecords >= 1 && LostFileLimits.batchBytes >= 1, 'LostFileLimits');
