/**
 * Payload of a RECORDS frame: consecutive log records, exactly the bytes of
 * the sender's log (never re-encoded), optionally zstd-compressed as one
 * batch whose bytes are shuffled as float32 (records are 4-byte aligned, so
 * the vector blocks fall into byte planes and compress better).
 *
 * Layout (little-endian): u64 firstLsn | u32 count | u32 rawBytes | body.
 * Body: the records back to back, or (frame flag Compressed) a VRZB batch
 * frame holding them as one part. Format: docs/wire-protocol.md.
 */
import { compressBatch, compressBatchAsync, decompressBatch } from '../native/batch-codec.ts';
import { recordChecksumOk, recordCrc32c, recordLengthAt, recordLsn } from '../log/record.ts';
import { FrameFlags, FRAME_HEADER_BYTES } from '../transport/frame.ts';
import { crc32c } from '../native/crc32c.ts';
import { VrepError } from '../errors.ts';

export const RECORDS_HEADER_BYTES = 16;
/**
 * Per-link fields in front of a RECORDS payload (the payload itself is
 * shared by every feeder sending the same range): u64 sender's term |
 * u64 commit | u64 apply limit.
 */
export const RECORDS_PREFIX_BYTES = 24;
/**
 * Bytes left free before every payload made here, in the same buffer: each
 * link writes its frame header and prefix there and sends one view
 * (encodeFrameInPlace), so a payload of megabytes is never copied into a
 * frame per link.
 */
export const RECORDS_FRAME_HEADROOM = FRAME_HEADER_BYTES + RECORDS_PREFIX_BYTES;
/** Below this many raw bytes a batch goes uncompressed: zstd's cost is not worth it on a trickle. */
export const MIN_COMPRESS_BYTES = 16 * 1024;
/** Compression is kept only when it saves at least this share of the bytes. */
export const MIN_SAVING = 0.05;

export interface EncodedRecords {
  payload: Uint8Array;
  flags: number;
  firstLsn: number;
  count: number;
  rawBytes: number;
  /** Compression was tried (enabled, and the batch big enough), whether or not it was kept. */
  tried: boolean;
  /** crc32c(payload): taken once, where the payload is made, for every frame it is sent in. */
  crc: number;
  /** Bytes free before `payload` in its buffer (RECORDS_FRAME_HEADROOM, or 0), for encodeFrameInPlace. */
  headroom: number;
}

export interface RecordsCompression {
  enabled: boolean;
  level: number;
}

/**
 * Where a payload is made: `bytes` zeroed bytes with RECORDS_FRAME_HEADROOM
 * free bytes before them in the same buffer (a worker makes them in shared
 * memory, so the payload crosses to the main thread without a copy).
 */
export type PayloadAlloc = (bytes: number) => Uint8Array;

function concat(records: readonly Uint8Array[], alloc: PayloadAlloc): Uint8Array {
  let total = 0;
  for (const r of records) total += r.length;
  const out = alloc(RECORDS_HEADER_BYTES + total);
  let at = RECORDS_HEADER_BYTES;
  for (const r of records) {
    out.set(r, at);
    at += r.length;
  }
  return out;
}

/**
 * Bytes a writer leaves free before a record it encodes (encodeRecordUnsealed's
 * `frontBytes`), so that the RECORDS payload of that record alone, and its
 * frame, are made in place around it: no copy and no checksum pass.
 */
export const RECORD_FRONT_BYTES = RECORDS_FRAME_HEADROOM + RECORDS_HEADER_BYTES;

/** Records whose RECORD_FRONT_BYTES before them are this module's to write (reserveFront). */
const roomInFront = new WeakSet<Uint8Array>();

/**
 * Hands the RECORD_FRONT_BYTES before `record` in its buffer over to this
 * module: nothing else may write them. Returns `record`.
 */
export function reserveFront(record: Uint8Array): Uint8Array {
  if (record.byteOffset < RECORD_FRONT_BYTES) {
    throw new RangeError(
      `reserveFront: ${record.byteOffset} bytes before the record, ${RECORD_FRONT_BYTES} needed`,
    );
  }
  roomInFront.add(record);
  return record;
}

/**
 * The payload of one sealed record, made in the bytes reserved before it
 * (reserveFront), uncompressed; null when none were reserved. Its checksum
 * comes from the record's own (recordCrc32c).
 */
export function encodeInPlace(record: Uint8Array): EncodedRecords | null {
  if (!roomInFront.has(record)) return null;
  const payload = new Uint8Array(
    record.buffer,
    record.byteOffset - RECORDS_HEADER_BYTES,
    RECORDS_HEADER_BYTES + record.length,
  );
  const firstLsn = recordLsn(record);
  writeHeader(payload, firstLsn, 1, record.length);
  const crc = recordCrc32c(record, crc32c(payload.subarray(0, RECORDS_HEADER_BYTES)));
  return { payload, flags: 0, firstLsn, count: 1, rawBytes: record.length, tried: false, crc, headroom };
}

/** The default PayloadAlloc: an ArrayBuffer of this thread. */
export function headroomed(bytes: number): Uint8Array {
  return new Uint8Array(RECORDS_FRAME_HEADROOM + bytes).subarray(RECORDS_FRAME_HEADROOM);
}

function writeHeader(out: Uint8Array, firstLsn: number, count: number, rawBytes: number): void {
  const view = new DataView(out.buffer, out.byteOffset, RECORDS_HEADER_BYTES);
  view.setBigUint64(0, BigInt(firstLsn), true);
  view.setUint32(8, count, true);
  view.setUint32(12, rawBytes, true);
}

function checkBatch(records: readonly Uint8Array[]): number {
  if (records.length === 0) throw new RangeError('encodeRecords: no records');
  return recordLsn(records[0] as Uint8Array);
}

const headroom = RECORDS_FRAME_HEADROOM;

/** `raw`: the records after header room (from concat); `compressed`: its body compressed, or null. */
function finish(
  raw: Uint8Array,
  compressed: Uint8Array | null,
  firstLsn: number,
  count: number,
  alloc: PayloadAlloc,
): EncodedRecords {
  const rawBytes = raw.length - RECORDS_HEADER_BYTES;
  const tried = compressed !== null;
  if (compressed !== null && compressed.length <= rawBytes * (1 - MIN_SAVING)) {
    const out = alloc(RECORDS_HEADER_BYTES + compressed.length);
    out.set(compressed, RECORDS_HEADER_BYTES);
    writeHeader(out, firstLsn, count, rawBytes);
    const crc = crc32c(out);
    return { payload: out, flags: FrameFlags.Compressed, firstLsn, count, rawBytes, tried, crc, headroom };
  }
  writeHeader(raw, firstLsn, count, rawBytes);
  return { payload: raw, flags: 0, firstLsn, count, rawBytes, tried, crc: crc32c(raw), headroom };
}

function wantsCompression(rawBytes: number, c: RecordsCompression): boolean {
  return c.enabled && rawBytes >= MIN_COMPRESS_BYTES;
}

/** Encodes on the calling thread (small live batches). */
export function encodeRecords(
  records: readonly Uint8Array[],
  c: RecordsCompression,
  alloc: PayloadAlloc = headroomed,
): EncodedRecords {
  const firstLsn = checkBatch(records);
  const raw = concat(records, alloc);
  const body = raw.subarray(RECORDS_HEADER_BYTES);
  const compressed = wantsCompression(body.length, c)
    ? compressBatch([body], { level: c.level, shuffle: true })
    : null;
  return finish(raw, compressed, firstLsn, records.length, alloc);
}

/** Same result as encodeRecords, compressing on the libuv pool (off the event loop). */
export async function encodeRecordsAsync(
  records: readonly Uint8Array[],
  c: RecordsCompression,
): Promise<EncodedRecords> {
  const firstLsn = checkBatch(records);
  const raw = concat(records, headroomed);
  const body = raw.subarray(RECORDS_HEADER_BYTES);
  const compressed = wantsCompression(body.length, c)
    ? await compressBatchAsync([body], { level: c.level, shuffle: true })
    : null;
  return finish(raw, compressed, firstLsn, records.length, headroomed);
}

function protocolError(message: string): VrepError {
  return new VrepError('ERR_PROTOCOL', `RECORDS: ${message}`);
}

export function encodeRecordsPrefix(term: number, commit: number, applyLimit: number): Uint8Array {
  const out = new Uint8Array(RECORDS_PREFIX_BYTES);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(term), true);
  view.setBigUint64(8, BigInt(commit), true);
  view.setBigUint64(16, BigInt(applyLimit), true);
  return out;
}

/**
 * Decodes and checks a RECORDS frame: the prefix, sizes against
 * `maxRawBytes`, each record's length and checksum, the LSN run with no
 * gap inside the frame. Returns views into one buffer. Throws ERR_PROTOCOL
 * (nothing to append) on any failure. Where the run starts against the
 * follower's log is the core's to judge (a late or repeated frame is not
 * an error).
 */
export function decodeRecordsFrame(
  payload: Uint8Array,
  flags: number,
  maxRawBytes: number,
): { term: number; commit: number; applyLimit: number; firstLsn: number; records: Uint8Array[] } {
  if (payload.length < RECORDS_PREFIX_BYTES + RECORDS_HEADER_BYTES) {
    throw protocolError(`${payload.length}-byte payload`);
  }
  const prefix = new DataView(payload.buffer, payload.byteOffset, RECORDS_PREFIX_BYTES);
  const term = Number(prefix.getBigUint64(0, true));
  const commit = Number(prefix.getBigUint64(8, true));
  const applyLimit = Number(prefix.getBigUint64(16, true));
  const rest = payload.subarray(RECORDS_PREFIX_BYTES);
  const view = new DataView(rest.buffer, rest.byteOffset, RECORDS_HEADER_BYTES);
  const firstLsn = Number(view.getBigUint64(0, true));
  const count = view.getUint32(8, true);
  const rawBytes = view.getUint32(12, true);
  if (!Number.isSafeInteger(term) || !Number.isSafeInteger(commit) || !Number.isSafeInteger(applyLimit)) {
    throw protocolError('term, commit or apply limit out of range');
  }
  if (count === 0) throw protocolError('no records');
  if (rawBytes > maxRawBytes) throw protocolError(`${rawBytes} raw bytes, limit ${maxRawBytes}`);
  let body = rest.subarray(RECORDS_HEADER_BYTES);
  if ((flags & FrameFlags.Compressed) !== 0) {
    let parts: Uint8Array[];
    try {
      parts = decompressBatch(body, { maxBytes: rawBytes });
    } catch (err) {
      throw protocolError(`body does not decompress: ${(err as Error).message}`);
    }
    if (parts.length !== 1) throw protocolError(`${parts.length} compressed parts, expected 1`);
    body = parts[0] as Uint8Array;
  }
  if (body.length !== rawBytes) throw protocolError(`body is ${body.length} bytes, header says ${rawBytes}`);
  if (body.byteOffset % 4 !== 0) {
    // Records keep their float blocks 4-aligned; one copy here spares one per record later.
    const aligned = new Uint8Array(body.length);
    aligned.set(body);
    body = aligned;
  }
  const records: Uint8Array[] = [];
  let at = 0;
  while (at < body.length) {
    let length: number;
    try {
      length = recordLengthAt(body, at);
    } catch (err) {
      throw protocolError((err as Error).message);
    }
    const record = body.subarray(at, at + length);
    // The record goes to the WAL before it is decoded for applying: check it whole now.
    if (!recordChecksumOk(record)) throw protocolError(`record ${records.length}: checksum mismatch`);
    const lsn = recordLsn(record);
    if (lsn !== firstLsn + records.length) {
      throw protocolError(`record ${records.length} has LSN ${lsn}, expected ${firstLsn + records.length}`);
    }
    records.push(record);
    at += length;
  }
  if (records.length !== count) throw protocolError(`${records.length} records, header says ${count}`);
  return { term, commit, applyLimit, firstLsn, records };
}
