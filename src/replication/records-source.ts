/**
 * RECORDS payloads for every feeder of a primary. Feeders at the same place
 * in the log (every caught-up replica, usually) ask for the same range at
 * the same moment: the range is read and compressed once and the payload
 * shared, so a second replica costs a send, not a second compression.
 *
 * Catch-up is read and compressed by the worker pool straight from the
 * circular log (the WAL is read here and only compressed there). Near the
 * head the records are read here (a copy) and compressed in the pool too
 * when they are big enough to be compressed at all; only small ones are
 * encoded on the event loop.
 */
import { isVrepError } from '../errors.ts';
import type { RecordLog } from '../log/record-log.ts';
import {
  encodeRecords,
  encodeRecordsAsync,
  MIN_COMPRESS_BYTES,
  type EncodedRecords,
  type RecordsCompression,
} from './records-payload.ts';

/**
 * Encoding off the event loop (the worker pool, src/workers/feeder-pool.ts,
 * implements it; the node wires it in, so this layer does not depend on
 * the pool). ERR_OVERLOADED when it is full.
 */
export interface RecordsEncoder {
  /** Reads [fromLsn, ≤toLsn] from the circular log and encodes them; null when the ring no longer holds fromLsn. */
  encodeFromRing(
    fromLsn: number,
    toLsn: number,
    maxBytes: number,
    compression: RecordsCompression,
  ): Promise<EncodedRecords | null>;
  encodeRecords(records: readonly Uint8Array[], compression: RecordsCompression): Promise<EncodedRecords>;
}

/** Raw record bytes per RECORDS frame at most (one bigger record still goes alone). */
export const MAX_RECORDS_FRAME_BYTES = 4 * 1024 * 1024;
/** Recent payloads kept for feeders that ask for the same range (at most 4 x 4 MiB). */
const SHARED_PAYLOADS = 4;

export class RecordsSource {
  private readonly recent = new Map<string, Promise<EncodedRecords | null>>();

  constructor(
    private readonly log: () => RecordLog,
    private readonly pool: RecordsEncoder | null,
    private readonly compression: RecordsCompression,
  ) {}

  /** The payload of records [from, ≤last] (at most MAX_RECORDS_FRAME_BYTES); null when nothing is readable yet. */
  next(from: number, last: number, behind: boolean): Promise<EncodedRecords | null> {
    const key = `${from}:${last}`;
    const shared = this.recent.get(key);
    if (shared) return shared;
    const encoded = this.encode(from, last, behind);
    this.recent.set(key, encoded);
    if (this.recent.size > SHARED_PAYLOADS) this.recent.delete(this.recent.keys().next().value as string);
    // A failure or a "not yet" is for this call only: the next asks again.
    encoded.then(
      (e) => e === null && this.recent.delete(key),
      () => this.recent.delete(key),
    );
    return encoded;
  }

  private async encode(from: number, last: number, behind: boolean): Promise<EncodedRecords | null> {
    const { pool, compression } = this;
    const log = this.log();
    try {
      if (behind && pool) {
        const fromRing = await pool.encodeFromRing(from, last, MAX_RECORDS_FRAME_BYTES, compression);
        if (fromRing !== null) return fromRing;
      }
      const records = await log.read(from, last, MAX_RECORDS_FRAME_BYTES);
      if (records.length === 0) return null;
      let bytes = 0;
      for (const r of records) bytes += r.length;
      if (!compression.enabled || bytes < MIN_COMPRESS_BYTES) return encodeRecords(records, compression);
      return pool
        ? await pool.encodeRecords(records, compression)
        : await encodeRecordsAsync(records, compression);
    } catch (err) {
      if (!isVrepError(err, 'ERR_OVERLOADED')) throw err;
      // The pool is full: compress on the libuv pool instead of waiting.
      const records = await log.read(from, last, MAX_RECORDS_FRAME_BYTES);
      return records.length === 0 ? null : encodeRecordsAsync(records, compression);
    }
  }
}
