/**
 * Lock-free circular log ("ring"): variable-length records addressed by a
 * monotonically increasing LSN, with Redis-backlog semantics. Fixed capacity
 * in bytes and in records; when full, the oldest records are overwritten and
 * a reader asking for them is told so (ERR_LSN_EVICTED), never given garbage.
 *
 * One writer (the RingLog, on the thread that made it) and any number of
 * readers on any thread: `ring.handle` is a plain object holding the ring's
 * SharedArrayBuffer; posting it to a worker shares the memory (no copy) and
 * `new RingReader(handle)` there reads the same records. Layout, protocol and
 * the memory-ordering argument: docs/native/ring-log.md.
 */
import { binding } from './addon.ts';
import { checkInt, checkUint8Array, checkUint32Array, describe } from './checks.ts';
import { ErrorCodes, VrepError } from '../errors.ts';

/** Largest data area, bytes (native/ring_log.h kMaxCapacityBytes). */
export const RING_MAX_CAPACITY_BYTES = 2 ** 31;
/** Largest number of records held at once (native/ring_log.h kMaxCapacityRecords). */
export const RING_MAX_CAPACITY_RECORDS = 2 ** 24;
/** LSNs are JS numbers: the largest is 2^53 - 1. */
export const RING_MAX_LSN = Number.MAX_SAFE_INTEGER;

/** The raw native part; only the wrappers below call it. */
export interface NativeRingWriter {
  append(data: Uint8Array): number;
  appendBatch(data: Uint8Array, lengths: Uint32Array): number;
  /** Records dropped. */
  truncateAfter(lsn: number): number;
  resetTo(nextLsn: number): void;
}
export interface NativeRingReader {
  /** Count >= 0, or -1 evicted, -2 not yet written, -3 buffer too small, -4 corrupt, -5 truncated meanwhile. */
  read(from: number, to: number, out: Uint8Array, outLengths: Uint32Array): number;
  /** Bytes copied from the record at `offset`, or a negative code as read(). */
  peek(lsn: number, offset: number, out: Uint8Array): number;
}
export interface RingBinding {
  ringByteLength(capacityBytes: number, capacityRecords: number): number;
  RingWriter: new (
    buffer: Uint8Array,
    capacityBytes: number,
    capacityRecords: number,
    startLsn: number,
  ) => NativeRingWriter;
  RingReader: new (buffer: Uint8Array) => NativeRingReader;
}

/** What a worker needs to read a ring: structured-clone it with postMessage (the buffer is shared, not copied). */
export interface RingHandle {
  readonly buffer: SharedArrayBuffer;
}

export interface RingLogOptions {
  /** Size of the data area, bytes, in [1, RING_MAX_CAPACITY_BYTES]; also the largest record. */
  capacityBytes: number;
  /** Most records held at once, in [1, RING_MAX_CAPACITY_RECORDS]. */
  capacityRecords: number;
  /** LSN of the first record (default 1), so a node can resume its numbering after a restart. */
  startLsn?: number;
}

// Header words read from JS (u64 indexes into the buffer; see native/ring_log.h).
const TAIL_LSN_INDEX = 64 / 8;
const HEAD_LSN_INDEX = 128 / 8;
const TRUNCATIONS_INDEX = 136 / 8;

const READ_EVICTED = -1;
const READ_NOT_YET_WRITTEN = -2;
const READ_BUFFER_TOO_SMALL = -3;
const READ_TRUNCATED = -5;

/** A native read result below zero as the error it stands for. */
function readError(fn: string, result: number, lsn: number, reader: RingReader): VrepError {
  switch (result) {
    case READ_EVICTED:
      return new VrepError(
        ErrorCodes.LsnEvicted,
        `${fn}: LSN ${lsn} was evicted (oldest held is ${reader.firstLsn()})`,
      );
    case READ_NOT_YET_WRITTEN:
      return new VrepError(
        ErrorCodes.LsnNotYetWritten,
        `${fn}: LSN ${lsn} is not written yet (last is ${reader.lastLsn()})`,
      );
    case READ_BUFFER_TOO_SMALL:
      return new VrepError(ErrorCodes.BufferTooSmall, `${fn}(out): record ${lsn} does not fit`);
    case READ_TRUNCATED:
      return new VrepError(
        ErrorCodes.LsnTruncated,
        `${fn}: the log was truncated while LSN ${lsn} was read (last is now ${reader.lastLsn()})`,
      );
    default:
      return new VrepError(ErrorCodes.CorruptFrame, `${fn}: ring index is inconsistent at LSN ${lsn}`);
  }
}

/**
 * A reader of a ring, on any thread. Wraps native `RingReader`; attaching
 * validates the buffer's header (magic, version, sizes) and throws
 * ERR_CORRUPT_FRAME for anything that is not a ring.
 */
export class RingReader {
  readonly #native: NativeRingReader;
  readonly #words: BigUint64Array;

  constructor(handle: RingHandle) {
    const buffer: unknown = (handle as Partial<RingHandle> | null | undefined)?.buffer;
    if (!(buffer instanceof SharedArrayBuffer)) {
      throw new TypeError(
        `RingReader(handle): expected { buffer: SharedArrayBuffer }, got ${describe(handle)}`,
      );
    }
    if (buffer.byteLength < 192) {
      throw new VrepError(
        ErrorCodes.CorruptFrame,
        'RingReader(handle): buffer is shorter than a ring header',
      );
    }
    this.#native = new binding.RingReader(new Uint8Array(buffer));
    this.#words = new BigUint64Array(buffer, 0, TRUNCATIONS_INDEX + 1);
  }

  /**
   * How many truncations the ring has had. A reader that remembers it can
   * tell that LSNs it read before may hold other records now.
   */
  truncations(): number {
    return Number(Atomics.load(this.#words, TRUNCATIONS_INDEX));
  }

  /**
   * Oldest LSN still held. Equals lastLsn() + 1 when the ring is empty.
   *
   * Ordering: Atomics.load is sequentially consistent; it pairs with the
   * writer's stores of the word, but nothing here depends on more than
   * reading a recent value (the native read re-checks everything itself).
   */
  firstLsn(): number {
    return Number(Atomics.load(this.#words, TAIL_LSN_INDEX));
  }

  /**
   * Newest LSN written (firstLsn() - 1 when empty). The tail is loaded
   * before the head in `bounds`, and the writer never lets the tail pass the
   * head, so firstLsn <= lastLsn + 1 holds for a pair read there.
   */
  lastLsn(): number {
    return Number(Atomics.load(this.#words, HEAD_LSN_INDEX)) - 1;
  }

  /**
   * { firstLsn, lastLsn } read in the order that keeps firstLsn <= lastLsn + 1.
   * A truncation below the oldest record lowers both; a pair read across it
   * is clamped to the invariant.
   */
  bounds(): { firstLsn: number; lastLsn: number } {
    const firstLsn = this.firstLsn();
    const lastLsn = this.lastLsn();
    return { firstLsn: Math.min(firstLsn, lastLsn + 1), lastLsn };
  }

  /**
   * Copies records [from, min(to, lastLsn)] into `out` back to back, their
   * lengths into `outLengths`, as many whole records as both have room for,
   * in one native call (`RingReader.read`). Returns the number copied (>= 1).
   *
   * Throws VrepError ERR_LSN_EVICTED when `from` is older than the ring holds
   * or was overwritten while it was being copied (nothing copied is then to
   * be trusted), ERR_LSN_NOT_YET_WRITTEN when `from` > lastLsn(),
   * ERR_LSN_TRUNCATED when the writer truncated the log during the copy, and
   * ERR_BUFFER_TOO_SMALL when the record at `from` does not fit in `out`.
   */
  read(from: number, to: number, out: Uint8Array, outLengths: Uint32Array): number {
    checkInt('RingReader.read', 'from', from, 1, RING_MAX_LSN);
    checkInt('RingReader.read', 'to', to, from, RING_MAX_LSN);
    checkUint8Array('RingReader.read', 'out', out);
    checkUint32Array('RingReader.read', 'outLengths', outLengths);
    if (outLengths.length === 0) {
      throw new RangeError('RingReader.read(outLengths): must have room for at least one record');
    }
    const result = this.#native.read(from, to, out, outLengths);
    if (result >= 0) return result;
    throw readError('RingReader.read', result, from, this);
  }

  /**
   * Copies up to `out.length` bytes of the record at `lsn`, starting
   * `offset` bytes into it (native `RingReader.peek`): a header field without
   * the whole record. Returns the bytes copied (fewer when the record ends
   * first; 0 when `offset` is past its end). Errors as read().
   */
  peek(lsn: number, offset: number, out: Uint8Array): number {
    checkInt('RingReader.peek', 'lsn', lsn, 1, RING_MAX_LSN);
    checkInt('RingReader.peek', 'offset', offset, 0, RING_MAX_CAPACITY_BYTES);
    checkUint8Array('RingReader.peek', 'out', out);
    const result = this.#native.peek(lsn, offset, out);
    if (result >= 0) return result;
    throw readError('RingReader.peek', result, lsn, this);
  }
}

/**
 * The ring and its only writer. Allocates the SharedArrayBuffer and formats
 * it (native `RingWriter`); `handle` lets other threads attach readers.
 */
export class RingLog extends RingReader {
  readonly handle: RingHandle;
  readonly capacityBytes: number;
  readonly capacityRecords: number;
  readonly #writer: NativeRingWriter;

  constructor(options: RingLogOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`RingLog(options): expected an object, got ${describe(options)}`);
    }
    const { capacityBytes, capacityRecords, startLsn = 1 } = options;
    checkInt('RingLog', 'capacityBytes', capacityBytes, 1, RING_MAX_CAPACITY_BYTES);
    checkInt('RingLog', 'capacityRecords', capacityRecords, 1, RING_MAX_CAPACITY_RECORDS);
    checkInt('RingLog', 'startLsn', startLsn, 1, RING_MAX_LSN);
    const buffer = new SharedArrayBuffer(binding.ringByteLength(capacityBytes, capacityRecords));
    const writer = new binding.RingWriter(new Uint8Array(buffer), capacityBytes, capacityRecords, startLsn);
    const handle: RingHandle = Object.freeze({ buffer });
    super(handle);
    this.#writer = writer;
    this.handle = handle;
    this.capacityBytes = capacityBytes;
    this.capacityRecords = capacityRecords;
  }

  /**
   * Appends one record (native `RingWriter.append`), evicting the oldest as
   * needed, and returns its LSN. Throws ERR_RECORD_TOO_LARGE when
   * data.length > capacityBytes.
   */
  append(data: Uint8Array): number {
    checkUint8Array('RingLog.append', 'data', data);
    this.#checkSize('RingLog.append', data.byteLength);
    return this.#writer.append(data);
  }

  /**
   * Appends records laid back to back in `data`, `lengths[i]` bytes each, in
   * one native call (`RingWriter.appendBatch`). Returns the LSN of the first;
   * the batch holds LSNs [first, first + lengths.length - 1]. Nothing is
   * appended when an argument is wrong (lengths not summing to data.length,
   * a record larger than capacityBytes).
   */
  appendBatch(data: Uint8Array, lengths: Uint32Array): number {
    checkUint8Array('RingLog.appendBatch', 'data', data);
    checkUint32Array('RingLog.appendBatch', 'lengths', lengths);
    return this.#writer.appendBatch(data, lengths);
  }

  /**
   * Drops every record above `lsn` (native `RingWriter.truncateAfter`); the
   * next append gets `lsn + 1`. Readers copying meanwhile get
   * ERR_LSN_TRUNCATED, never the dropped bytes as if they were current.
   * `lsn` below the oldest record held empties the ring. Returns the number
   * of records dropped.
   */
  truncateAfter(lsn: number): number {
    checkInt('RingLog.truncateAfter', 'lsn', lsn, 0, RING_MAX_LSN);
    return this.#writer.truncateAfter(lsn);
  }

  /**
   * Empties the ring; the next append gets `nextLsn`, above the head or not
   * (native `RingWriter.resetTo`; a follower that installed a snapshot goes
   * on after it). Readers see a truncation.
   */
  resetTo(nextLsn: number): void {
    checkInt('RingLog.resetTo', 'nextLsn', nextLsn, 1, RING_MAX_LSN);
    this.#writer.resetTo(nextLsn);
  }

  #checkSize(fn: string, byteLength: number): void {
    if (byteLength > this.capacityBytes) {
      throw new VrepError(
        ErrorCodes.RecordTooLarge,
        `${fn}(data): record of ${byteLength} bytes exceeds capacityBytes ${this.capacityBytes}`,
      );
    }
  }
}
