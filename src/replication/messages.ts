/**
 * Payloads of the replication frames (docs/wire-protocol.md, "Replication
 * messages"). Control messages are small JSON objects checked with zod
 * (strict: an unknown field is a protocol error, so a newer peer is refused
 * rather than half understood). Bulk messages are binary: RECORDS
 * (records-payload.ts) and SNAPSHOT_CHUNK (below).
 */
import { z } from 'zod';
import { VrepError } from '../errors.ts';
import { FrameType } from '../transport/frame.ts';

export const PROTOCOL_VERSION = 1;
/** Largest control message (a FULLSYNC_BEGIN carries the snapshot manifest). */
export const MAX_CONTROL_BYTES = 16 * 1024 * 1024;
/** Snapshot chunk files are sent in pieces of at most this many bytes. */
export const SNAPSHOT_PIECE_BYTES = 4 * 1024 * 1024;

const hex32 = z.string().regex(/^[0-9a-f]{32}$/);
const lsn = z.number().int().nonnegative();
const nodeId = z.string().min(1).max(255);

export const helloSchema = z
  .object({
    protocol: z.literal(PROTOCOL_VERSION),
    clusterId: z.string().min(1).max(255),
    nodeId,
    role: z.enum(['primary', 'replica']),
    term: z.number().int().nonnegative(),
    historyId: hex32,
    lastLsn: lsn,
    /** Hex of 32 random bytes, fresh per link (authentication challenge). */
    nonce: z.string().regex(/^[0-9a-f]{64}$/),
    /** This side requires and will send an AUTH proof. */
    auth: z.boolean(),
    httpAddress: z.string().max(300).nullable(),
  })
  .strict();
export type Hello = z.infer<typeof helloSchema>;

export const authSchema = z.object({ proof: z.string().regex(/^[0-9a-f]{64}$/) }).strict();

export const psyncSchema = z
  .object({
    historyId: hex32,
    /** First LSN the replica needs (its last LSN + 1). */
    nextLsn: z.number().int().min(1),
    /** A full sync cut off midway: the snapshot and how many chunk files are verified on disk. */
    resume: z
      .object({ historyId: hex32, snapshotLsn: lsn, chunksDone: z.number().int().nonnegative() })
      .strict()
      .nullable(),
  })
  .strict();
export type Psync = z.infer<typeof psyncSchema>;

export const continueSchema = z
  .object({
    historyId: hex32,
    previousHistoryId: hex32.nullable(),
    previousHistoryEndLsn: lsn.nullable(),
    fromLsn: z.number().int().min(1),
    primaryLastLsn: lsn,
  })
  .strict();
export type Continue = z.infer<typeof continueSchema>;

export const fullsyncBeginSchema = z
  .object({
    historyId: hex32,
    previousHistoryId: hex32.nullable(),
    previousHistoryEndLsn: lsn.nullable(),
    term: z.number().int().nonnegative(),
    snapshotLsn: lsn,
    primaryLastLsn: lsn,
    /** The snapshot's manifest.json, byte for byte. */
    manifestText: z.string().max(MAX_CONTROL_BYTES),
    totalBytes: z.number().int().nonnegative(),
    /** First chunk file sent (chunks before it are already on the replica). */
    fromChunk: z.number().int().nonnegative(),
    /** Operator asked for it (forceSync): the replica accepts even a history it does not know. */
    force: z.boolean(),
  })
  .strict();
export type FullsyncBegin = z.infer<typeof fullsyncBeginSchema>;

export const fullsyncEndSchema = z
  .object({ snapshotLsn: lsn, chunks: z.number().int().nonnegative() })
  .strict();

export const ackSchema = z
  .object({
    /** Last LSN durable in the replica's WAL (per its fsync policy). */
    lsn,
    wallMs: z.number().int(),
    /** During a full sync: snapshot bytes written to disk so far (flow control and progress). */
    syncBytes: z.number().int().nonnegative().optional(),
  })
  .strict();
export type Ack = z.infer<typeof ackSchema>;

export const heartbeatSchema = z
  .object({
    lastLsn: lsn,
    term: z.number().int().nonnegative(),
    wallMs: z.number().int(),
    /** Primary → replica: the replica's lag as the primary measures it (age of the oldest write it lacks). */
    lagMs: z.number().nonnegative().nullable(),
  })
  .strict();
export type Heartbeat = z.infer<typeof heartbeatSchema>;

export const errorSchema = z.object({ code: z.string().max(64), message: z.string().max(4096) }).strict();
export type PeerErrorMessage = z.infer<typeof errorSchema>;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function protocolError(message: string): VrepError {
  return new VrepError('ERR_PROTOCOL', message);
}

export function encodeControl(value: object): Uint8Array {
  const bytes = encoder.encode(JSON.stringify(value));
  if (bytes.length > MAX_CONTROL_BYTES) throw new RangeError(`control message of ${bytes.length} bytes`);
  return bytes;
}

/** Parses and validates one control payload; ERR_PROTOCOL naming the type and field on failure. */
export function decodeControl<T>(schema: z.ZodType<T>, type: string, payload: Uint8Array): T {
  if (payload.length > MAX_CONTROL_BYTES) throw protocolError(`${type}: ${payload.length} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(payload));
  } catch (err) {
    throw protocolError(`${type}: not JSON (${(err as Error).message})`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw protocolError(`${type}: ${issue?.path.join('.') ?? ''} ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

export const SNAPSHOT_PIECE_HEADER_BYTES = 16;

/** SNAPSHOT_CHUNK: u32 chunk index | u32 reserved | u64 byte offset in the chunk file | bytes. */
export function encodeSnapshotPiece(index: number, offset: number, bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(SNAPSHOT_PIECE_HEADER_BYTES + bytes.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, index, true);
  view.setBigUint64(8, BigInt(offset), true);
  out.set(bytes, SNAPSHOT_PIECE_HEADER_BYTES);
  return out;
}

export function decodeSnapshotPiece(payload: Uint8Array): {
  index: number;
  offset: number;
  bytes: Uint8Array;
} {
  if (payload.length < SNAPSHOT_PIECE_HEADER_BYTES) throw protocolError('SNAPSHOT_CHUNK: truncated');
  const view = new DataView(payload.buffer, payload.byteOffset, SNAPSHOT_PIECE_HEADER_BYTES);
  if (view.getUint32(4, true) !== 0) throw protocolError('SNAPSHOT_CHUNK: reserved bytes set');
  return {
    index: view.getUint32(0, true),
    offset: Number(view.getBigUint64(8, true)),
    bytes: payload.subarray(SNAPSHOT_PIECE_HEADER_BYTES),
  };
}

export const frameName: Record<number, string> = Object.fromEntries(
  Object.entries(FrameType).map(([name, value]) => [value, name]),
);
