/**
 * The worker side of FeederPool (src/workers/feeder-pool.ts), loaded by
 * Piscina in each pool thread: from source through tsx in tests, as plain
 * .js from dist/ in production.
 *
 * Each thread attaches one RingReader to the ring whose handle came in
 * `workerData` (the SharedArrayBuffer is shared, never copied), reads the
 * records itself and encodes them with the RECORDS codec on this thread, so
 * the event loop only receives the finished payload, in shared memory.
 *
 * Every outcome is a typed reply: structured clone keeps an Error's message
 * but drops its `code`, so errors travel as data and the pool rebuilds them.
 */
import { Piscina } from 'piscina';
import { RingReader, type RingHandle } from '../native/ring-log.ts';
import {
  encodeRecords,
  RECORDS_FRAME_HEADROOM,
  type RecordsCompression,
} from '../replication/records-payload.ts';
import { ErrorCodes, isVrepError, VrepError, type ErrorCode } from '../errors.ts';

/** What each pool thread receives once, at start-up. */
export interface FeederWorkerData {
  handle: RingHandle;
}

export interface EncodeFromRingTask {
  kind: 'fromRing';
  fromLsn: number;
  toLsn: number;
  maxBytes: number;
  compression: RecordsCompression;
}

export interface EncodeRecordsTask {
  kind: 'records';
  /** The records back to back (transferred, not copied). */
  data: ArrayBuffer;
  /** Byte length of each record in `data`. */
  lengths: Uint32Array;
  compression: RecordsCompression;
}

export type FeederTask = EncodeFromRingTask | EncodeRecordsTask;

export type FeederReply =
  | {
      kind: 'encoded';
      /**
       * The RECORDS payload from byte RECORDS_FRAME_HEADROOM on (the bytes
       * before are free for the frame header), shared with the main thread;
       * this thread drops it.
       */
      payload: SharedArrayBuffer;
      /** Payload bytes after the headroom. */
      payloadBytes: number;
      flags: number;
      firstLsn: number;
      count: number;
      rawBytes: number;
      tried: boolean;
      crc: number;
    }
  /** `fromLsn` is no longer in the ring; `firstLsn` is the oldest it holds now. */
  | { kind: 'evicted'; firstLsn: number }
  | { kind: 'error'; name: string; code: ErrorCode | null; message: string };

/** Records read per native call; a read of more loops. */
const LENGTHS_PER_READ = 4096;

let reader: RingReader | null = null;
let scratch = new Uint8Array(0);
const lengths = new Uint32Array(LENGTHS_PER_READ);

/** The thread's reader, attached on first use (one ring per pool). */
function ringReader(): RingReader {
  if (reader === null) {
    const data = Piscina.workerData as Partial<FeederWorkerData> | undefined;
    reader = new RingReader(data?.handle as RingHandle);
  }
  return reader;
}

/** A scratch buffer of at least `bytes`; reused across tasks (the encoder copies out of it). */
function scratchOf(bytes: number): Uint8Array {
  if (scratch.length < bytes) scratch = new Uint8Array(bytes);
  return scratch;
}

/**
 * Records [fromLsn, min(toLsn, lastLsn)] totalling at most `maxBytes`, or the
 * first record alone when it is larger. Views into the scratch buffer.
 * Throws ERR_LSN_EVICTED only when not even the first record could be read.
 */
function readRange(ring: RingReader, fromLsn: number, toLsn: number, maxBytes: number): Uint8Array[] {
  const first = readFirst(ring, fromLsn, toLsn, maxBytes);
  const buffer = first.buffer;
  const records = views(buffer, lengths, first.count);
  let used = 0;
  for (const r of records) used += r.byteLength;
  let lsn = fromLsn + first.count;
  const end = Math.min(toLsn, ring.lastLsn());
  // More than LENGTHS_PER_READ small records, or the writer appended since.
  while (lsn <= end && used < maxBytes) {
    let n: number;
    try {
      n = ring.read(lsn, end, buffer.subarray(used, maxBytes), lengths);
    } catch (err) {
      // What was read is intact (each read is checked against the writer as
      // a whole); a next record that does not fit or was overwritten since
      // just ends this batch.
      if (isVrepError(err, ErrorCodes.BufferTooSmall) || isVrepError(err, ErrorCodes.LsnEvicted)) break;
      throw err;
    }
    for (const r of views(buffer.subarray(used), lengths, n)) {
      records.push(r);
      used += r.byteLength;
    }
    lsn += n;
  }
  return records;
}

/**
 * The first read: as many records as fit in `maxBytes`; when the record at
 * `fromLsn` alone is larger, that one record, in a buffer grown to hold it
 * (bounded by the ring's own size, which bounds every record).
 */
function readFirst(
  ring: RingReader,
  fromLsn: number,
  toLsn: number,
  maxBytes: number,
): { buffer: Uint8Array; count: number } {
  let room = maxBytes;
  let slots = lengths;
  for (;;) {
    const buffer = scratchOf(room);
    try {
      return { buffer, count: ring.read(fromLsn, toLsn, buffer.subarray(0, room), slots) };
    } catch (err) {
      if (!isVrepError(err, ErrorCodes.BufferTooSmall)) throw err;
      const ringBytes = (Piscina.workerData as FeederWorkerData).handle.buffer.byteLength;
      if (room >= ringBytes) throw err;
      room = Math.min(room * 2, ringBytes);
      // Only this one record may go past maxBytes.
      slots = lengths.subarray(0, 1);
    }
  }
}

function views(buffer: Uint8Array, lens: Uint32Array, n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    const length = lens[i] as number;
    out.push(buffer.subarray(at, at + length));
    at += length;
  }
  return out;
}

/**
 * The payload goes back in a SharedArrayBuffer: posting it shares the
 * memory, nothing is copied or transferred. Measured with --trace-gc over 100
 * frames of 3.5 MB: a transferred ArrayBuffer lands on the main thread as
 * external memory and brought 5 full mark-compact GCs of the main heap (4 to
 * 70 ms each on the shared 2-core machine); a SharedArrayBuffer brought none
 * (one scavenge). The price is one copy here, off the event loop.
 */
/** Payloads are made in shared memory: they reach the main thread without a copy. */
function sharedPayload(bytes: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(RECORDS_FRAME_HEADROOM + bytes), RECORDS_FRAME_HEADROOM);
}

function encode(records: Uint8Array[], compression: RecordsCompression): FeederReply {
  const encoded = encodeRecords(records, compression, sharedPayload);
  return {
    kind: 'encoded',
    payload: encoded.payload.buffer as SharedArrayBuffer,
    payloadBytes: encoded.payload.byteLength,
    flags: encoded.flags,
    firstLsn: encoded.firstLsn,
    count: encoded.count,
    rawBytes: encoded.rawBytes,
    tried: encoded.tried,
    crc: encoded.crc,
  };
}

function errorReply(err: unknown): FeederReply {
  if (err instanceof Error) {
    return {
      kind: 'error',
      name: err.name,
      code: err instanceof VrepError ? err.code : null,
      message: err.message,
    };
  }
  return { kind: 'error', name: 'Error', code: null, message: `non-error thrown: ${String(err)}` };
}

/**
 * The task entry point. A default export on purpose: Piscina preloads a
 * worker's `default` handler at start-up, and under tsx in Node 20 it can
 * only load the file through require() (tsx's ESM hooks do not reach worker
 * threads), where a missing default fails the thread.
 */
export default function runFeederTask(task: FeederTask): FeederReply {
  switch (task.kind) {
    case 'fromRing':
      return encodeFromRing(task);
    case 'records':
      return encodeRecordsTask(task);
    default:
      return errorReply(
        new TypeError(`runFeederTask: unknown task kind ${String((task as { kind: unknown }).kind)}`),
      );
  }
}

/** Reads [fromLsn, toLsn] from the ring and encodes it. Arguments were checked by the pool. */
function encodeFromRing(task: EncodeFromRingTask): FeederReply {
  try {
    const ring = ringReader();
    let records: Uint8Array[];
    try {
      records = readRange(ring, task.fromLsn, task.toLsn, task.maxBytes);
    } catch (err) {
      if (isVrepError(err, ErrorCodes.LsnEvicted)) return { kind: 'evicted', firstLsn: ring.firstLsn() };
      throw err;
    }
    return encode(records, task.compression);
  } catch (err) {
    return errorReply(err);
  }
}

/** Encodes records the caller already has (read from the WAL). */
function encodeRecordsTask(task: EncodeRecordsTask): FeederReply {
  try {
    const bytes = new Uint8Array(task.data);
    let total = 0;
    for (let i = 0; i < task.lengths.length; i++) total += task.lengths[i] as number;
    if (total !== bytes.byteLength) {
      throw new VrepError(
        ErrorCodes.InvalidArg,
        `encodeRecordsTask: lengths sum to ${total} bytes, data holds ${bytes.byteLength}`,
      );
    }
    return encode(views(bytes, task.lengths, task.lengths.length), task.compression);
  } catch (err) {
    return errorReply(err);
  }
}
