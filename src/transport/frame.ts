/**
 * Peer frame codec. One WebSocket binary message carries exactly one frame:
 * a 24-byte header then an opaque payload. The header names the message
 * type, carries a per-direction sequence number (so replayed, dropped or
 * reordered frames are detected) and a CRC32C over header and payload.
 * Byte layout: docs/wire-protocol.md.
 *
 * The decoder trusts nothing: it checks the declared length against the
 * caller's limit before anything else, and every failure is a `FrameError`
 * with a machine-readable `reason`; it throws nothing else.
 */
import { ErrorCodes, VrepError } from '../errors.ts';
import { crc32c, crc32cCombine } from '../native/crc32c.ts';

/** "VF" (vrep frame), little-endian u16 at offset 0. */
export const FRAME_MAGIC = 0x4656;
export const FRAME_VERSION = 1;
export const FRAME_HEADER_BYTES = 24;
/** Offset of the CRC field; the CRC covers bytes [0, 20) then the payload. */
const CRC_OFFSET = 20;
const SEQ_OFFSET = 8;
const LENGTH_OFFSET = 16;

/** Message types of the peer protocol. The codec itself treats payloads as opaque bytes. */
export const FrameType = {
  Hello: 1,
  Auth: 2,
  /** Follower → leader: its log (last LSN, term history), answering a probe. */
  Position: 3,
  /** Leader → follower: where the logs agree; what to drop above it. */
  Sync: 4,
  /** Leader → follower: a full sync (snapshot manifest, term history). */
  SnapshotOffer: 5,
  SnapshotChunk: 6,
  SnapshotEnd: 7,
  Records: 8,
  Ack: 9,
  Heartbeat: 10,
  Error: 11,
  /** Leader → follower: "I lead this term; where are you?" */
  Probe: 12,
  /** Follower → leader: the full sync is taken, from this chunk on. */
  SnapshotAccept: 13,
  /** Follower → leader: why it will not follow. */
  Refuse: 14,
  /** Follower → leader: snapshot bytes written so far (flow control of a full sync). */
  SnapshotProgress: 15,
  /** Candidate → voter: a (pre-)vote request (elections). */
  VoteRequest: 16,
  /** Voter → candidate: the (pre-)vote, granted or not. */
  Vote: 17,
  /** Leader → the voter it hands over to: campaign now. */
  TimeoutNow: 18,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

const knownTypes = new Set<number>(Object.values(FrameType));

/** Frame flags (u8 bit set). Unknown bits are rejected: new meanings need a new version. */
export const FrameFlags = {
  /** The payload is compressed (by the layer above; the codec does not look). */
  Compressed: 0x01,
} as const;
const KNOWN_FLAGS = FrameFlags.Compressed;

/** Largest sequence number: sequences are JS numbers, exact up to 2^53 - 1. */
export const MAX_FRAME_SEQ = Number.MAX_SAFE_INTEGER;
/** Largest payload the u32 length field can describe. */
export const MAX_PAYLOAD_FIELD = 0xffffffff;

export interface Frame {
  type: FrameType;
  flags: number;
  seq: number;
  /** A view into the decoded bytes (no copy). */
  payload: Uint8Array;
}

/** Why a frame was refused. Each maps to one WebSocket close code (see link.ts). */
export type FrameRejectReason =
  | 'truncated'
  | 'trailing-bytes'
  | 'too-large'
  | 'bad-magic'
  | 'bad-version'
  | 'unknown-type'
  | 'bad-flags'
  | 'bad-reserved'
  | 'bad-crc'
  | 'bad-seq';

/** A frame failed a check; nothing of it may be used. */
export class FrameError extends VrepError {
  readonly reason: FrameRejectReason;

  constructor(reason: FrameRejectReason, message: string) {
    super(reason === 'too-large' ? ErrorCodes.FrameTooLarge : ErrorCodes.CorruptFrame, message);
    this.name = 'FrameError';
    this.reason = reason;
  }
}

export function isFrameError(err: unknown): err is FrameError {
  return err instanceof FrameError;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function checkEncodeArgs(type: number, flags: number, seq: number, payload: Uint8Array): void {
  if (!knownTypes.has(type)) throw new RangeError(`encodeFrame: type ${type} is not a FrameType`);
  if (!Number.isInteger(flags) || (flags & ~KNOWN_FLAGS) !== 0 || flags < 0) {
    throw new RangeError(`encodeFrame: flags ${flags} has unknown bits`);
  }
  if (!Number.isSafeInteger(seq) || seq < 1) {
    throw new RangeError(`encodeFrame: seq must be an integer in [1, 2^53 - 1], got ${seq}`);
  }
  if (!(payload instanceof Uint8Array)) throw new TypeError('encodeFrame: payload must be a Uint8Array');
  if (payload.byteLength > MAX_PAYLOAD_FIELD) {
    throw new RangeError(`encodeFrame: payload of ${payload.byteLength} bytes exceeds the u32 length field`);
  }
}

/**
 * Encodes one frame into a new buffer of FRAME_HEADER_BYTES + payload bytes
 * (the payload is copied once).
 * A `prefix` goes in front of the payload, in the same copy: a small
 * per-link header before a body shared by several links. `payloadCrc`,
 * when given, is `crc32c(payload)` taken once by the caller: the frame's
 * CRC is then combined from it without another pass over the payload (a
 * payload of megabytes sent on several links is summed once, not per
 * link). A wrong value makes the peer refuse the frame, never accept
 * damaged bytes.
 */
export function encodeFrame(
  type: FrameType,
  flags: number,
  seq: number,
  payload: Uint8Array,
  prefix?: Uint8Array,
  payloadCrc?: number,
): Uint8Array {
  checkEncodeArgs(type, flags, seq, payload);
  const prefixBytes = prefix?.byteLength ?? 0;
  if (payload.byteLength + prefixBytes > MAX_PAYLOAD_FIELD) {
    throw new RangeError(
      `encodeFrame: payload of ${payload.byteLength + prefixBytes} bytes exceeds the u32 length field`,
    );
  }
  const out = new Uint8Array(FRAME_HEADER_BYTES + prefixBytes + payload.byteLength);
  if (prefix) out.set(prefix, FRAME_HEADER_BYTES);
  out.set(payload, FRAME_HEADER_BYTES + prefixBytes);
  writeHeader(out, type, flags, seq, prefixBytes, payloadCrc);
  return out;
}

/**
 * Like encodeFrame, without copying the payload: the header and `prefix`
 * are written into the FRAME_HEADER_BYTES + prefix bytes right before
 * `payload` in its own buffer (which the caller reserved for this and lets
 * every send overwrite), and the frame is a view over that buffer. For a
 * body of megabytes shared by several links: each send writes its own
 * header in front and hands the view to a socket library that copies it
 * before returning, so neither the payload nor a frame per link is copied
 * here.
 */
export function encodeFrameInPlace(
  type: FrameType,
  flags: number,
  seq: number,
  payload: Uint8Array,
  prefix?: Uint8Array,
  payloadCrc?: number,
): Uint8Array {
  checkEncodeArgs(type, flags, seq, payload);
  const prefixBytes = prefix?.byteLength ?? 0;
  const headBytes = FRAME_HEADER_BYTES + prefixBytes;
  if (payload.byteOffset < headBytes) {
    throw new RangeError(
      `encodeFrameInPlace: the payload has ${payload.byteOffset} bytes before it in its buffer; the header and prefix need ${headBytes}`,
    );
  }
  if (payload.byteLength + prefixBytes > MAX_PAYLOAD_FIELD) {
    throw new RangeError(
      `encodeFrameInPlace: payload of ${payload.byteLength + prefixBytes} bytes exceeds the u32 length field`,
    );
  }
  const out = new Uint8Array(payload.buffer, payload.byteOffset - headBytes, headBytes + payload.byteLength);
  if (prefix) out.set(prefix, FRAME_HEADER_BYTES);
  writeHeader(out, type, flags, seq, prefixBytes, payloadCrc);
  return out;
}

/** The header of the frame `out` (prefix and payload already in place), its CRC last. */
function writeHeader(
  out: Uint8Array,
  type: FrameType,
  flags: number,
  seq: number,
  prefixBytes: number,
  payloadCrc: number | undefined,
): void {
  const payloadBytes = out.byteLength - FRAME_HEADER_BYTES - prefixBytes;
  const dv = view(out);
  dv.setUint16(0, FRAME_MAGIC, true);
  out[2] = FRAME_VERSION;
  out[3] = type;
  out[4] = flags;
  out[5] = 0;
  out[6] = 0;
  out[7] = 0; // bytes 5..7 reserved, zero
  dv.setUint32(SEQ_OFFSET, seq % 0x1_0000_0000, true);
  dv.setUint32(SEQ_OFFSET + 4, Math.floor(seq / 0x1_0000_0000), true);
  dv.setUint32(LENGTH_OFFSET, prefixBytes + payloadBytes, true);
  const payloadAt = FRAME_HEADER_BYTES + prefixBytes;
  const crc =
    payloadCrc === undefined
      ? frameCrc(out.subarray(0, CRC_OFFSET), out.subarray(FRAME_HEADER_BYTES))
      : crc32cCombine(
          frameCrc(out.subarray(0, CRC_OFFSET), out.subarray(FRAME_HEADER_BYTES, payloadAt)),
          payloadCrc,
          payloadBytes,
        );
  dv.setUint32(CRC_OFFSET, crc, true);
}

function frameCrc(headerWithoutCrc: Uint8Array, payload: Uint8Array): number {
  return crc32c(payload, crc32c(headerWithoutCrc));
}

export interface DecodeOptions {
  /** Largest whole frame (header + payload) accepted, bytes. */
  maxFrameBytes: number;
  /** The sequence number this frame must carry (last accepted + 1). */
  expectedSeq: number;
}

/**
 * Decodes and verifies one frame. Order of checks: header present, declared
 * length within `maxFrameBytes` (before touching the payload), magic,
 * version, type, flags, reserved bytes, exact length, CRC, sequence (so a
 * corrupted frame reads as 'bad-crc' and an intact replayed one as 'bad-seq'). The
 * returned payload is a view into `bytes`. Throws only `FrameError`.
 */
export function decodeFrame(bytes: Uint8Array, { maxFrameBytes, expectedSeq }: DecodeOptions): Frame {
  if (bytes.byteLength < FRAME_HEADER_BYTES) {
    throw new FrameError(
      'truncated',
      `frame of ${bytes.byteLength} bytes is shorter than the ${FRAME_HEADER_BYTES}-byte header`,
    );
  }
  const dv = view(bytes);
  const payloadBytes = dv.getUint32(LENGTH_OFFSET, true);
  if (FRAME_HEADER_BYTES + payloadBytes > maxFrameBytes) {
    throw new FrameError(
      'too-large',
      `frame declares ${payloadBytes} payload bytes; limit is ${maxFrameBytes - FRAME_HEADER_BYTES}`,
    );
  }
  const magic = dv.getUint16(0, true);
  if (magic !== FRAME_MAGIC) throw new FrameError('bad-magic', `bad magic 0x${magic.toString(16)}`);
  const version = bytes[2]!;
  if (version !== FRAME_VERSION) {
    throw new FrameError('bad-version', `frame version ${version}; this node speaks ${FRAME_VERSION}`);
  }
  const type = bytes[3]!;
  if (!knownTypes.has(type)) throw new FrameError('unknown-type', `unknown frame type ${type}`);
  const flags = bytes[4]!;
  if ((flags & ~KNOWN_FLAGS) !== 0)
    throw new FrameError('bad-flags', `unknown flag bits 0x${flags.toString(16)}`);
  if (bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) {
    throw new FrameError('bad-reserved', 'reserved header bytes are not zero');
  }
  const total = FRAME_HEADER_BYTES + payloadBytes;
  if (bytes.byteLength < total) {
    throw new FrameError('truncated', `frame has ${bytes.byteLength} of its ${total} bytes`);
  }
  if (bytes.byteLength > total) {
    throw new FrameError('trailing-bytes', `frame has ${bytes.byteLength - total} bytes after its ${total}`);
  }
  const payload = bytes.subarray(FRAME_HEADER_BYTES, total);
  const stored = dv.getUint32(CRC_OFFSET, true);
  const actual = frameCrc(bytes.subarray(0, CRC_OFFSET), payload);
  if (stored !== actual) {
    throw new FrameError(
      'bad-crc',
      `CRC32C mismatch (frame says 0x${stored.toString(16)}, bytes give 0x${actual.toString(16)})`,
    );
  }
  const seqLow = dv.getUint32(SEQ_OFFSET, true);
  const seqHigh = dv.getUint32(SEQ_OFFSET + 4, true);
  // Compare as two u32 halves: a garbage high half must not round into a match.
  if (seqLow !== expectedSeq % 0x1_0000_0000 || seqHigh !== Math.floor(expectedSeq / 0x1_0000_0000)) {
    const seq = seqHigh * 0x1_0000_0000 + seqLow;
    throw new FrameError(
      'bad-seq',
      `frame seq ${seq} where ${expectedSeq} was expected (replayed, lost or reordered)`,
    );
  }
  return { type: type as FrameType, flags, seq: expectedSeq, payload };
}
