/**
 * The record: one binary format for every mutation. A record is encoded once
 * and the same bytes go to the WAL, the native circular log, every peer and
 * every change-stream consumer. The layout is documented in
 * docs/storage.md ("Record format"); keep the two in step.
 *
 * Batches stay column-shaped: all vectors of an upsert sit in one 4-byte
 * aligned float32 block, so applying a batch is one copy and compression sees
 * the vectors together.
 */
import { Buffer, isAscii } from 'node:buffer';
import { crc32c, crc32cCombine } from '../native/crc32c.ts';
import type { PackedIds } from '../native/id-index.ts';
import { VrepError } from '../errors.ts';
import { RecordLimits } from '../limits.ts';

export const RECORD_FORMAT_VERSION = 1;
/** Bytes before the op body: length, crc, version, op, flags, lsn, term, hlc, lengths. */
export const RECORD_HEADER_BYTES = 48;
/** Records are padded to a multiple of this. */
export const RECORD_ALIGN_BYTES = 4;
/** The CRC covers everything after the length and the CRC fields. */
const CRC_START = 8;
/** Byte offsets of header fields read without decoding the record (u64 little-endian). */
export const RECORD_LSN_OFFSET = 16;
export const RECORD_TERM_OFFSET = 24;

export const Op = {
  CreateCollection: 1,
  DropCollection: 2,
  Upsert: 3,
  Delete: 4,
  /** The cluster's membership (replication config); names no collection. */
  Config: 5,
  /**
   * A change-stream consumer group's committed position (src/streams/):
   * the group's name sits in the collection field; no collection is named.
   */
  GroupPosition: 6,
} as const;
export type Op = (typeof Op)[keyof typeof Op];

export const MetricCode = { l2: 0, cosine: 1, dot: 2 } as const;
export type MetricName = keyof typeof MetricCode;
const metricNames: MetricName[] = ['l2', 'cosine', 'dot'];

/** Fields every record carries. */
export interface RecordMeta {
  lsn: number;
  term: number;
  /** Hybrid logical clock: physical milliseconds (48 bits) and logical counter (16 bits). */
  hlcMs: number;
  hlcLogical: number;
  origin: string;
  collection: string;
}

export type RecordBody =
  | { op: typeof Op.CreateCollection; dimension: number; metric: MetricName }
  | { op: typeof Op.DropCollection }
  | {
      op: typeof Op.Upsert;
      dimension: number;
      ids: string[];
      /** ids.length x dimension floats, row-major. */
      vectors: Float32Array;
      /** Raw UTF-8 JSON bytes per point; an empty array means "no payload". */
      payloads: Uint8Array[];
      /**
       * Decoded records only: the same ids as the record stores them (views
       * of it), for an index that takes them so (no string per id).
       */
      packedIds?: PackedIds;
    }
  | { op: typeof Op.Delete; ids: string[] }
  | { op: typeof Op.Config; members: ConfigMember[] }
  | { op: typeof Op.GroupPosition; position: GroupPosition | null };

/**
 * A consumer group's committed position: every event up to it was handled.
 * `index` null: the whole record at `lsn`; otherwise its points 0..index.
 * A record with position null deletes the group.
 */
export interface GroupPosition {
  term: number;
  lsn: number;
  index: number | null;
}

/** Group position body: term u64, lsn u64, index u32 (NO_INDEX: whole record), flags u32 (1: deleted). */
const GROUP_BODY_BYTES = 24;
const GROUP_NO_INDEX = 0xffffffff;
const GROUP_DELETED = 1;

/** A member as a config record holds it (src/consensus/membership.ts gives the meaning). */
export interface ConfigMember {
  id: string | null;
  address: string | null;
  /** A non-voting member (elections): fed, never counted. Absent: a voter. */
  learner?: true;
}

export type LogRecord = RecordMeta & RecordBody;

/** Largest config record body (JSON of the members), bytes. */
const MAX_CONFIG_BYTES = 64 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

function corrupt(message: string): VrepError {
  return new VrepError('ERR_CORRUPT_RECORD', message);
}

function pad4(n: number): number {
  return (n + 3) & ~3;
}

function utf8(label: string, value: string, maxBytes: number, allowEmpty = false): Uint8Array {
  if (typeof value !== 'string') throw new TypeError(`${label}: expected a string, got ${typeof value}`);
  const bytes = encoder.encode(value);
  if (!allowEmpty && bytes.length === 0) throw new RangeError(`${label}: must not be empty`);
  if (bytes.length > maxBytes) throw new RangeError(`${label}: ${bytes.length} bytes, limit ${maxBytes}`);
  return bytes;
}

function checkU64(label: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${label}: expected a non-negative safe integer, got ${value}`);
  }
}

/** UTF-8 byte length of each id (checked against the limits); the bytes are written later, in place. */
function encodeIds(ids: string[]): { lengths: Uint32Array; total: number } {
  const lengths = new Uint32Array(ids.length);
  let total = 0;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i] as string;
    if (typeof id !== 'string') throw new TypeError(`ids[${i}]: expected a string, got ${typeof id}`);
    const n = Buffer.byteLength(id, 'utf8');
    if (n === 0) throw new RangeError(`ids[${i}]: must not be empty`);
    if (n > RecordLimits.maxIdBytes)
      throw new RangeError(`ids[${i}]: ${n} bytes, limit ${RecordLimits.maxIdBytes}`);
    lengths[i] = n;
    total += n;
  }
  return { lengths, total };
}

/** Writes the ids' UTF-8 bytes back to back at `at`; returns the offset after them. */
function writeIds(out: Uint8Array, at: number, ids: readonly string[]): number {
  const buf = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  for (const id of ids) at += buf.write(id, at, 'utf8');
  return at;
}

/** Encodes one record. Throws TypeError/RangeError naming the field on bad input. */
export function encodeRecord(record: LogRecord): Uint8Array {
  const out = encodeRecordUnsealed(record);
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(
    4,
    crc32c(out.subarray(CRC_START)),
    true,
  );
  return out;
}

/**
 * Writes a record's LSN and term (the log assigns them when it appends) and
 * its checksum. `record` came from encodeRecordUnsealed (or is a sealed
 * record being given another place); it is changed in place and returned.
 */
export function sealRecord(record: Uint8Array, lsn: number, term: number): Uint8Array {
  checkU64('lsn', lsn);
  checkU64('term', term);
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  view.setBigUint64(RECORD_LSN_OFFSET, BigInt(lsn), true);
  view.setBigUint64(RECORD_TERM_OFFSET, BigInt(term), true);
  view.setUint32(4, crc32c(record.subarray(CRC_START)), true);
  return record;
}

/**
 * Encodes one record without its checksum (its LSN and term may be
 * placeholders): the write path encodes a batch before the log assigns its
 * LSN, checks its size, and seals it once (sealRecord). `frontBytes` (a
 * multiple of 8) are left free before the record in its buffer, for a
 * header that a layer above writes there (a replication payload made in
 * place around the record, without copying it).
 */
export function encodeRecordUnsealed(record: LogRecord, frontBytes = 0): Uint8Array {
  if (!Number.isInteger(frontBytes) || frontBytes < 0 || frontBytes % 8 !== 0) {
    throw new RangeError(`frontBytes: expected a non-negative multiple of 8, got ${frontBytes}`);
  }
  checkU64('lsn', record.lsn);
  checkU64('term', record.term);
  checkU64('hlcMs', record.hlcMs);
  if (record.hlcMs >= 2 ** 48) throw new RangeError(`hlcMs: ${record.hlcMs} does not fit in 48 bits`);
  if (!Number.isInteger(record.hlcLogical) || record.hlcLogical < 0 || record.hlcLogical > 0xffff) {
    throw new RangeError(`hlcLogical: expected an integer in [0, 65535], got ${record.hlcLogical}`);
  }
  const origin = utf8('origin', record.origin, RecordLimits.maxNodeIdBytes);
  const collection = utf8(
    'collection',
    record.collection,
    RecordLimits.maxCollectionBytes,
    record.op === Op.Config,
  );
  let configBytes: Uint8Array | undefined;
  if (record.op === Op.GroupPosition && collection.length === 0)
    throw new RangeError('collection: a group position record names its group there');

  let count = 0;
  let bodyBytes = 0;
  let ids: ReturnType<typeof encodeIds> | undefined;
  let payloadTotal = 0;
  switch (record.op) {
    case Op.CreateCollection:
      checkDimension(record.dimension);
      if (!metricNames.includes(record.metric)) {
        throw new RangeError(
          `metric: expected one of ${metricNames.join(', ')}, got ${String(record.metric)}`,
        );
      }
      bodyBytes = 8;
      break;
    case Op.DropCollection:
      break;
    case Op.Upsert: {
      checkDimension(record.dimension);
      count = checkCount(record.ids);
      if (!(record.vectors instanceof Float32Array)) throw new TypeError('vectors: expected a Float32Array');
      if (record.vectors.length !== count * record.dimension) {
        throw new RangeError(
          `vectors: expected ${count} x ${record.dimension} = ${count * record.dimension} floats, got ${record.vectors.length}`,
        );
      }
      if (!Array.isArray(record.payloads) || record.payloads.length !== count) {
        throw new RangeError(`payloads: expected ${count} entries`);
      }
      for (let i = 0; i < count; i++) {
        const p = record.payloads[i];
        if (!(p instanceof Uint8Array)) throw new TypeError(`payloads[${i}]: expected a Uint8Array`);
        if (p.length > RecordLimits.maxPayloadBytes) {
          throw new RangeError(`payloads[${i}]: ${p.length} bytes, limit ${RecordLimits.maxPayloadBytes}`);
        }
        payloadTotal += p.length;
      }
      ids = encodeIds(record.ids);
      bodyBytes = 8 + record.vectors.byteLength + 8 * count + ids.total + payloadTotal;
      break;
    }
    case Op.Delete:
      count = checkCount(record.ids);
      ids = encodeIds(record.ids);
      bodyBytes = 4 * count + ids.total;
      break;
    case Op.Config:
      if (collection.length !== 0) throw new RangeError('collection: a config record names none');
      configBytes = encoder.encode(JSON.stringify(checkConfigMembers(record.members)));
      if (configBytes.length > MAX_CONFIG_BYTES) {
        throw new RangeError(`members: ${configBytes.length} bytes of JSON, limit ${MAX_CONFIG_BYTES}`);
      }
      count = configBytes.length;
      bodyBytes = configBytes.length;
      break;
    case Op.GroupPosition: {
      const p = record.position;
      if (p !== null) {
        checkU64('position.term', p.term);
        checkU64('position.lsn', p.lsn);
        if (p.index !== null && (!Number.isInteger(p.index) || p.index < 0 || p.index >= GROUP_NO_INDEX))
          throw new RangeError(`position.index: expected null or an integer in [0, ${GROUP_NO_INDEX - 1}]`);
      }
      bodyBytes = GROUP_BODY_BYTES;
      break;
    }
    default:
      throw new RangeError(`op: unknown op ${String((record as { op: unknown }).op)}`);
  }

  const stringsBytes = pad4(origin.length + collection.length);
  // Every record is a multiple of 4 bytes, so records laid back to back in a
  // WAL segment or ring buffer keep their vector blocks aligned.
  const total = pad4(RECORD_HEADER_BYTES + stringsBytes + bodyBytes);
  if (total > RecordLimits.maxRecordBytes) {
    throw new RangeError(`record: ${total} bytes, limit ${RecordLimits.maxRecordBytes}`);
  }
  const out = new Uint8Array(frontBytes + total).subarray(frontBytes);
  const view = new DataView(out.buffer, out.byteOffset, total);
  view.setUint32(0, total, true);
  out[8] = RECORD_FORMAT_VERSION;
  out[9] = record.op;
  view.setUint16(10, 0, true); // flags, none defined in v1
  view.setUint32(12, 0, true);
  view.setBigUint64(16, BigInt(record.lsn), true);
  view.setBigUint64(24, BigInt(record.term), true);
  view.setBigUint64(32, (BigInt(record.hlcMs) << 16n) | BigInt(record.hlcLogical), true);
  view.setUint16(40, origin.length, true);
  view.setUint16(42, collection.length, true);
  view.setUint32(44, count, true);
  let at = RECORD_HEADER_BYTES;
  out.set(origin, at);
  out.set(collection, at + origin.length);
  at += stringsBytes;

  switch (record.op) {
    case Op.CreateCollection:
      view.setUint32(at, record.dimension, true);
      view.setUint32(at + 4, MetricCode[record.metric], true);
      break;
    case Op.Upsert: {
      view.setUint32(at, record.dimension, true);
      at += 8;
      // Header and strings are padded to 4 bytes, so this block is aligned.
      out.set(
        new Uint8Array(record.vectors.buffer, record.vectors.byteOffset, record.vectors.byteLength),
        at,
      );
      at += record.vectors.byteLength;
      at = writeU32s(view, at, (ids as ReturnType<typeof encodeIds>).lengths);
      const payloadLengths = new Uint32Array(count);
      for (let i = 0; i < count; i++) payloadLengths[i] = (record.payloads[i] as Uint8Array).length;
      at = writeU32s(view, at, payloadLengths);
      at = writeIds(out, at, record.ids);
      for (const p of record.payloads) {
        out.set(p, at);
        at += p.length;
      }
      break;
    }
    case Op.Delete: {
      const e = ids as ReturnType<typeof encodeIds>;
      at = writeU32s(view, at, e.lengths);
      at = writeIds(out, at, record.ids);
      break;
    }
    case Op.Config:
      out.set(configBytes as Uint8Array, at);
      break;
    case Op.GroupPosition: {
      const p = record.position;
      view.setBigUint64(at, BigInt(p?.term ?? 0), true);
      view.setBigUint64(at + 8, BigInt(p?.lsn ?? 0), true);
      view.setUint32(at + 16, p?.index ?? GROUP_NO_INDEX, true);
      view.setUint32(at + 20, p === null ? GROUP_DELETED : 0, true);
      break;
    }
    default:
      break;
  }
  return out;
}

/** Writes little-endian u32s at `at`; returns the offset after them. */
function writeU32s(view: DataView, at: number, lengths: Uint32Array): number {
  for (let i = 0; i < lengths.length; i++) view.setUint32(at + 4 * i, lengths[i] as number, true);
  return at + 4 * lengths.length;
}

function checkConfigMembers(members: unknown): ConfigMember[] {
  if (!Array.isArray(members)) throw new TypeError('members: expected an array');
  return members.map((m: unknown, i) => {
    const { id, address, learner } = (m ?? {}) as { id?: unknown; address?: unknown; learner?: unknown };
    const field = (name: string, v: unknown): string | null => {
      if (v === null) return null;
      if (typeof v !== 'string' || v.length === 0 || v.length > 300) {
        throw new RangeError(
          `members[${i}].${name}: expected null or a non-empty string of at most 300 characters`,
        );
      }
      return v;
    };
    if (learner !== undefined && typeof learner !== 'boolean')
      throw new RangeError(`members[${i}].learner: expected true or false`);
    const out: ConfigMember = { id: field('id', id), address: field('address', address) };
    if (out.id === null && out.address === null)
      throw new RangeError(`members[${i}]: needs an id or an address`);
    // Only a learner says so: a voter's record is as it was before learners existed.
    if (learner === true) out.learner = true;
    return out;
  });
}

function checkDimension(dimension: number): void {
  if (!Number.isInteger(dimension) || dimension < 1 || dimension > RecordLimits.maxDimension) {
    throw new RangeError(
      `dimension: expected an integer in [1, ${RecordLimits.maxDimension}], got ${dimension}`,
    );
  }
}

function checkCount(ids: unknown): number {
  if (!Array.isArray(ids)) throw new TypeError('ids: expected an array');
  if (ids.length === 0) throw new RangeError('ids: a batch needs at least one point');
  if (ids.length > RecordLimits.maxBatchPoints) {
    throw new RangeError(`ids: ${ids.length} points, limit ${RecordLimits.maxBatchPoints} per batch`);
  }
  return ids.length;
}

/**
 * Reads the record length at `offset` without trusting it: returns the
 * length if it is within limits and inside `bytes`, else throws.
 */
export function recordLengthAt(bytes: Uint8Array, offset: number): number {
  if (offset + RECORD_HEADER_BYTES > bytes.length) {
    throw corrupt(`record at ${offset}: truncated header (${bytes.length - offset} bytes left)`);
  }
  const length = new DataView(bytes.buffer, bytes.byteOffset + offset, 4).getUint32(0, true);
  if (length < RECORD_HEADER_BYTES || length > RecordLimits.maxRecordBytes) {
    throw corrupt(`record at ${offset}: length ${length} out of range`);
  }
  if (offset + length > bytes.length) {
    throw corrupt(`record at ${offset}: truncated (length ${length}, ${bytes.length - offset} bytes left)`);
  }
  return length;
}

/** True when the record's CRC matches its bytes. `record` is exactly one record. */
export function recordChecksumOk(record: Uint8Array): boolean {
  if (record.length < RECORD_HEADER_BYTES) return false;
  const stored = new DataView(record.buffer, record.byteOffset, 8).getUint32(4, true);
  return crc32c(record.subarray(CRC_START)) === stored;
}

/**
 * crc32c of `previous`'s bytes followed by the whole record (length and
 * checksum fields too), from the record's stored checksum, with no pass
 * over its body (the record is trusted: sealed here).
 */
export function recordCrc32c(record: Uint8Array, previous = 0): number {
  const stored = new DataView(record.buffer, record.byteOffset, 8).getUint32(4, true);
  return crc32cCombine(crc32c(record.subarray(0, CRC_START), previous), stored, record.length - CRC_START);
}

/** LSN of an encoded record, without decoding the rest (the record is trusted). */
export function recordLsn(record: Uint8Array): number {
  return Number(new DataView(record.buffer, record.byteOffset, 24).getBigUint64(RECORD_LSN_OFFSET, true));
}

/**
 * The header fields of an encoded record whose checksum was verified: op,
 * LSN, term, collection and (create, upsert) dimension, without decoding the
 * points. For checking a record against the schema before it is appended.
 */
export function peekRecord(record: Uint8Array): {
  op: number;
  lsn: number;
  term: number;
  collection: string;
  dimension: number;
} {
  if (record.length < RECORD_HEADER_BYTES)
    throw corrupt(`record: ${record.length} bytes, shorter than a header`);
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  const originLen = view.getUint16(40, true);
  const collectionLen = view.getUint16(42, true);
  const at = RECORD_HEADER_BYTES + originLen;
  if (
    at + collectionLen + 8 > record.length &&
    (record[9] === Op.Upsert || record[9] === Op.CreateCollection)
  ) {
    throw corrupt('record: header runs past its end');
  }
  const op = record[9] as number;
  const body = RECORD_HEADER_BYTES + pad4(originLen + collectionLen);
  return {
    op,
    lsn: Number(view.getBigUint64(RECORD_LSN_OFFSET, true)),
    term: Number(view.getBigUint64(RECORD_TERM_OFFSET, true)),
    collection: text(record, at, collectionLen, 'collection'),
    dimension: op === Op.Upsert || op === Op.CreateCollection ? view.getUint32(body, true) : 0,
  };
}

/** Term of an encoded record, without decoding the rest (the record is trusted). */
export function recordTerm(record: Uint8Array): number {
  return Number(new DataView(record.buffer, record.byteOffset, 32).getBigUint64(RECORD_TERM_OFFSET, true));
}

function copyBytes(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  return out;
}

/**
 * Decodes and fully validates one record (exactly `record.length` bytes):
 * checksum, version, op, every length against the limits and the buffer.
 * The vectors are a view into `record` when aligned, else a copy.
 * `checksumVerified`: the caller checked this very buffer's checksum
 * already (a pass over megabytes per batch); every other check still runs.
 */
export function decodeRecord(record: Uint8Array, opts?: { checksumVerified?: boolean }): LogRecord {
  const length = recordLengthAt(record, 0);
  if (length !== record.length)
    throw corrupt(`record: length field ${length} but ${record.length} bytes given`);
  if (opts?.checksumVerified !== true && !recordChecksumOk(record))
    throw corrupt('record: checksum mismatch');
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  const version = record[8] as number;
  if (version !== RECORD_FORMAT_VERSION) throw corrupt(`record: unknown format version ${version}`);
  const op = record[9] as number;
  const lsn = Number(view.getBigUint64(16, true));
  const term = Number(view.getBigUint64(24, true));
  const hlc = view.getBigUint64(32, true);
  if (!Number.isSafeInteger(lsn) || !Number.isSafeInteger(term))
    throw corrupt('record: lsn or term out of range');
  const originLen = view.getUint16(40, true);
  const collectionLen = view.getUint16(42, true);
  const count = view.getUint32(44, true);
  if (originLen > RecordLimits.maxNodeIdBytes || collectionLen > RecordLimits.maxCollectionBytes) {
    throw corrupt('record: origin or collection too long');
  }
  let at = RECORD_HEADER_BYTES;
  const need = (n: number, what: string): void => {
    if (at + n > length) throw corrupt(`record: ${what} runs past the end (${at + n} > ${length})`);
  };
  need(pad4(originLen + collectionLen), 'strings');
  const meta: RecordMeta = {
    lsn,
    term,
    hlcMs: Number(hlc >> 16n),
    hlcLogical: Number(hlc & 0xffffn),
    origin: text(record, at, originLen, 'origin'),
    collection: text(record, at + originLen, collectionLen, 'collection'),
  };
  at += pad4(originLen + collectionLen);

  const readLengths = (label: string, max: number): Uint32Array => {
    need(4 * count, `${label} lengths`);
    const out = new Uint32Array(count);
    for (let i = 0; i < count; i++) {
      const n = view.getUint32(at + 4 * i, true);
      if (n > max) throw corrupt(`record: ${label}[${i}] length ${n} over limit ${max}`);
      out[i] = n;
    }
    at += 4 * count;
    return out;
  };
  const readStrings = (lengths: Uint32Array, label: string): string[] => {
    const out: string[] = new Array(lengths.length);
    let total = 0;
    for (let i = 0; i < lengths.length; i++) total += lengths[i] as number;
    need(total, label);
    const block = record.subarray(at, at + total);
    if (isAscii(block)) {
      // Ids are ASCII almost always: one decode of the whole block, then slices (byte = char
      // offsets), instead of a TextDecoder call per id (the cost of every apply and WAL read).
      const all = Buffer.from(block.buffer, block.byteOffset, block.byteLength).toString('latin1');
      for (let i = 0, from = 0; i < lengths.length; i++) {
        const n = lengths[i] as number;
        out[i] = all.slice(from, from + n);
        from += n;
      }
      at += total;
      return out;
    }
    for (let i = 0; i < lengths.length; i++) {
      const n = lengths[i] as number;
      out[i] = text(record, at, n, `${label}[${i}]`);
      at += n;
    }
    return out;
  };

  let body: RecordBody;
  switch (op) {
    case Op.CreateCollection: {
      need(8, 'create body');
      const dimension = view.getUint32(at, true);
      const metric = metricNames[view.getUint32(at + 4, true)];
      if (dimension < 1 || dimension > RecordLimits.maxDimension || metric === undefined) {
        throw corrupt('record: bad dimension or metric');
      }
      at += 8;
      body = { op, dimension, metric };
      break;
    }
    case Op.DropCollection:
      body = { op };
      break;
    case Op.Upsert: {
      if (count < 1 || count > RecordLimits.maxBatchPoints) throw corrupt(`record: bad point count ${count}`);
      need(8, 'upsert header');
      const dimension = view.getUint32(at, true);
      if (dimension < 1 || dimension > RecordLimits.maxDimension)
        throw corrupt(`record: bad dimension ${dimension}`);
      at += 8;
      const vectorBytes = count * dimension * 4;
      need(vectorBytes, 'vectors');
      const absolute = record.byteOffset + at;
      const vectors =
        absolute % 4 === 0
          ? new Float32Array(record.buffer, absolute, count * dimension)
          : // A copy (Uint8Array, not record.slice: on a Buffer that is a view of a shared pool).
            new Float32Array(copyBytes(record.subarray(at, at + vectorBytes)).buffer);
      at += vectorBytes;
      const idLengthsAt = at;
      const idLengths = readLengths('ids', RecordLimits.maxIdBytes);
      const payloadLengths = readLengths('payloads', RecordLimits.maxPayloadBytes);
      const idBytesAt = at;
      const ids = readStrings(idLengths, 'ids');
      const packedIds = {
        lengths: record.subarray(idLengthsAt, idLengthsAt + 4 * count),
        bytes: record.subarray(idBytesAt, at),
      };
      const payloads: Uint8Array[] = new Array(count);
      for (let i = 0; i < count; i++) {
        const n = payloadLengths[i] as number;
        need(n, `payloads[${i}]`);
        payloads[i] = record.subarray(at, at + n);
        at += n;
      }
      body = { op, dimension, ids, vectors, payloads, packedIds };
      break;
    }
    case Op.Delete: {
      if (count < 1 || count > RecordLimits.maxBatchPoints) throw corrupt(`record: bad point count ${count}`);
      const ids = readStrings(readLengths('ids', RecordLimits.maxIdBytes), 'ids');
      body = { op, ids };
      break;
    }
    case Op.Config: {
      if (count > MAX_CONFIG_BYTES) throw corrupt(`record: config of ${count} bytes`);
      need(count, 'config');
      let members: ConfigMember[];
      try {
        members = checkConfigMembers(JSON.parse(text(record, at, count, 'config')));
      } catch (err) {
        throw corrupt(`record: bad config (${(err as Error).message})`);
      }
      at += count;
      body = { op, members };
      break;
    }
    case Op.GroupPosition: {
      need(GROUP_BODY_BYTES, 'group position');
      if (meta.collection === '') throw corrupt('record: a group position names no group');
      const flags = view.getUint32(at + 20, true);
      if ((flags & ~GROUP_DELETED) !== 0) throw corrupt(`record: unknown group flags ${flags}`);
      const term = Number(view.getBigUint64(at, true));
      const lsn = Number(view.getBigUint64(at + 8, true));
      const index = view.getUint32(at + 16, true);
      if (!Number.isSafeInteger(term) || !Number.isSafeInteger(lsn))
        throw corrupt('record: group position out of range');
      at += GROUP_BODY_BYTES;
      body = {
        op,
        position:
          flags === GROUP_DELETED ? null : { term, lsn, index: index === GROUP_NO_INDEX ? null : index },
      };
      break;
    }
    default:
      throw corrupt(`record: unknown op ${op}`);
  }
  if (length !== pad4(at)) throw corrupt(`record: ${length - at} unexplained trailing bytes`);
  for (let i = at; i < length; i++) if (record[i] !== 0) throw corrupt('record: non-zero padding');
  return { ...meta, ...body } as LogRecord;
}

function text(bytes: Uint8Array, at: number, n: number, label: string): string {
  try {
    return decoder.decode(bytes.subarray(at, at + n));
  } catch {
    throw corrupt(`record: ${label} is not valid UTF-8`);
  }
}
