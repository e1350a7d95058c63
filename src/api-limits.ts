/**
 * Limits on what a client may write, the same for every way points enter a
 * node: the HTTP JSON batch, the HTTP binary batch and the TS API
 * (`write`, `writePacked`). One owner: the native JSON parser's defaults,
 * the binary batch decoder and the store's checks (src/store/point-checks.ts)
 * all read them from here. Documented in docs/http-api.md and docs/storage.md.
 *
 * RecordLimits (src/log/limits.ts) stay the hard ceiling of the on-disk and
 * wire format, checked again when a record is decoded; these are at most
 * those, asserted below, so anything a client may write is a valid record.
 */
import assert from 'node:assert/strict';
import { RecordLimits } from './log/limits.ts';

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

assert.ok(ApiLimits.maxBatchPoints <= RecordLimits.maxBatchPoints, 'ApiLimits.maxBatchPoints');
assert.ok(ApiLimits.maxIdBytes <= RecordLimits.maxIdBytes, 'ApiLimits.maxIdBytes');
assert.ok(ApiLimits.maxPayloadBytes <= RecordLimits.maxPayloadBytes, 'ApiLimits.maxPayloadBytes');
assert.ok(ApiLimits.maxPayloadDepth >= 1, 'ApiLimits.maxPayloadDepth');
