/**
 * RECORDS payloads for every feeder of a primary. Feeders at the same place
 * in the log (every caught-up replica, usually) ask for the same range at
 * the same moment: the range is read and compressed once and the payload
 * shared, so a second replica costs a send, not a second compression.
 * On a leader, the records of a write are made ready while the write goes
 * to its disk (prepare), so the feeders send them the moment it is durable
 * instead of starting then.
 *
 * Catch-up is read and encoded by the worker pool straight from the
 * circular log (the WAL is read here and only compressed there). Near the
 * head so is a range of MIN_OFFLOAD_BYTES or more; a smaller one is read
 * here (a copy) and encoded on the event loop, or compressed in the pool
 * when it is big enough to be compressed at all. Whether a range big enough
 * is compressed is the CompressionPolicy's call (compression-policy.ts).
 */
import { isVrepError } from '../errors.ts';
import { FrameFlags } from '../transport/frame.ts';
import type { RecordLog } from '../log/record-log.ts';
import { CompressionPolicy } from './compression-policy.ts';
import { recordLsn } from '../log/record.ts';
import {
  encodeInPlace,
  encodeRecords,
  encodeRecordsAsync,
  MIN_COMPRESS_BYTES,
  RECORDS_HEADER_BYTES,
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

/**
 * Near the head, a range of about this many bytes or more is read and
 * encoded by the worker pool too, compressed or not: on the event loop its
 * copies (out of the ring, into one payload) cost more than the trip.
 */
export const MIN_OFFLOAD_BYTES = 64 * 1024;
/** Raw record bytes per RECORDS frame at most (one bigger record still goes alone). */
export const MAX_RECORDS_FRAME_BYTES = 4 * 1024 * 1024;
/** Recent payloads kept for feeders that ask for the same range (at most 4 x 4 MiB). */
const SHARED_PAYLOADS = 4;

/** A payload made or being made: records [from, ≤last] of the log as it stood between two cuts. */
interface Shared {
  last: number;
  encoded: Promise<EncodedRecords | null>;
}

export class RecordsSource {
  /** By `${cuts}:${from}` (keyOf): an LSN names one record only until the log is cut. */
  private readonly recent = new Map<string, Shared>();
  private encoding = 0;
  readonly policy: CompressionPolicy;
  private readonly off: RecordsCompression;

  /** `linkLimited`: true while a bandwidth limit applies to the links (then compressing always pays). */
  constructor(
    private readonly log: () => RecordLog,
    private readonly pool: RecordsEncoder | null,
    private readonly compression: RecordsCompression,
    linkLimited: () => boolean = () => false,
  ) {
    this.policy = new CompressionPolicy(compression.enabled, linkLimited);
    this.off = { ...compression, enabled: false };
  }

  /**
   * The payload of records [from, ≤last] (at most MAX_RECORDS_FRAME_BYTES);
   * null when nothing is readable yet. A payload made for a range from
   * `from` that ends at or below `last` serves (a shorter frame: the feeder
   * asks again for the rest).
   */
  next(from: number, last: number, behind: boolean): Promise<EncodedRecords | null> {
    const key = this.keyOf(from);
    const shared = this.recent.get(key);
    if (shared && shared.last <= last) return shared.encoded;
    return this.start(key, from, last, behind);
  }

  /**
   * Starts making the payload of records the leader has just appended, while
   * its own write is still going to disk: the feeders may send them only
   * once that write is durable, and then find them encoded. Only when no
   * payload is being made: feeders still busy with one ask later for a
   * longer range, which this would cut short.
   */
  prepare(records: readonly Uint8Array[]): void {
    const first = records[0];
    const last = records.at(-1);
    if (first === undefined || last === undefined) return;
    const from = recordLsn(first);
    if (this.encoding > 0 || this.recent.has(this.keyOf(from))) return;
    // A failure is the feeders' to meet when they ask (next() then encodes again).
    this.start(this.keyOf(from), from, recordLsn(last), false, records).catch(() => undefined);
  }

  private keyOf(from: number): string {
    return `${this.log().cuts}:${from}`;
  }

  private start(
    key: string,
    from: number,
    last: number,
    behind: boolean,
    records?: readonly Uint8Array[],
  ): Promise<EncodedRecords | null> {
    this.encoding++;
    const encoded = this.encode(from, last, behind, records);
    const shared = { last, encoded };
    this.recent.delete(key);
    this.recent.set(key, shared);
    if (this.recent.size > SHARED_PAYLOADS) this.recent.delete(this.recent.keys().next().value as string);
    // A failure or a "not yet" is for this call only: the next asks again.
    const forget = (): void => {
      if (this.recent.get(key) === shared) this.recent.delete(key);
    };
    encoded.then(
      (e) => {
        this.encoding--;
        if (e === null) forget();
      },
      () => {
        this.encoding--;
        forget();
      },
    );
    return encoded;
  }

  /** `records`: the range's records, when the caller has them (a leader's own, just appended). */
  private async encode(
    from: number,
    last: number,
    behind: boolean,
    records?: readonly Uint8Array[],
  ): Promise<EncodedRecords | null> {
    const log = this.log();
    const bytes = this.estimatedBytes(log, from, last);
    // Only a range big enough to be compressed at all asks the policy (and counts as tried or skipped).
    const compress = (bytes ?? MIN_COMPRESS_BYTES) >= MIN_COMPRESS_BYTES && this.policy.next();
    const one = records?.length === 1 ? (records[0] as Uint8Array) : null;
    const inPlace = !compress && one !== null ? encodeInPlace(one) : null;
    if (inPlace !== null) return inPlace;
    const offload = behind || (bytes ?? 0) >= MIN_OFFLOAD_BYTES;
    const encoded = await this.encodeWith(log, from, last, offload, compress ? this.compression : this.off);
    if (encoded !== null) this.observe(encoded);
    return encoded;
  }

  private async encodeWith(
    log: RecordLog,
    from: number,
    last: number,
    offload: boolean,
    compression: RecordsCompression,
  ): Promise<EncodedRecords | null> {
    const { pool } = this;
    try {
      if (pool && offload) {
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

  /**
   * The range's bytes, up to a frame's worth, estimated from its first
   * record's (batches near the head are alike); null when the ring no
   * longer holds it.
   */
  private estimatedBytes(log: RecordLog, from: number, last: number): number | null {
    const first = log.bytesInRing(from);
    return first === null ? null : Math.min(first * (last - from + 1), MAX_RECORDS_FRAME_BYTES);
  }

  /** Tells the policy what an attempt saved (payloads too small to be tried, or not tried, say nothing). */
  private observe(e: EncodedRecords): void {
    if (!e.tried) return;
    const sent =
      (e.flags & FrameFlags.Compressed) !== 0 ? e.payload.length - RECORDS_HEADER_BYTES : e.rawBytes;
    this.policy.observe(1 - sent / e.rawBytes);
  }
}
