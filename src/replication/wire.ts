/**
 * The replication protocol on the wire (docs/wire-protocol.md,
 * "Replication messages"): frame payloads for the core's messages and for
 * what only the transport speaks (the handshake, a full sync's files).
 * Control messages are small JSON objects checked with zod (strict: an
 * unknown field is a protocol error, so a newer peer is refused rather than
 * half understood). Bulk messages are binary: RECORDS (records-payload.ts)
 * and SNAPSHOT_CHUNK (below). The sender and receiver of a message are the
 * two ends of its link, so no message names them.
 */
import { z } from 'zod';
import { VrepError } from '../errors.ts';
import { FrameType } from '../transport/frame.ts';
import type { Incoming, Outgoing } from '../consensus/messages.ts';
import { MAX_EPOCHS } from '../consensus/term-history.ts';

/** 3: elections (votes, TimeoutNow) and ReadIndex rounds; 2: terms and term histories; 1: PSYNC by history id. */
export const PROTOCOL_VERSION = 3;
/** Largest control message (a SNAPSHOT_OFFER carries the snapshot manifest). */
export const MAX_CONTROL_BYTES = 16 * 1024 * 1024;
/** Snapshot chunk files are sent in pieces of at most this many bytes. */
export const SNAPSHOT_PIECE_BYTES = 4 * 1024 * 1024;

const hex32 = z.string().regex(/^[0-9a-f]{32}$/);
const lsn = z.number().int().nonnegative();
const term = z.number().int().nonnegative();
const nodeId = z.string().min(1).max(255);
const epoch = z
  .object({ term, historyId: hex32, leaderId: nodeId, firstLsn: z.number().int().min(1) })
  .strict();
const history = z.array(epoch).max(MAX_EPOCHS);

export const helloSchema = z
  .object({
    protocol: z.literal(PROTOCOL_VERSION),
    clusterId: z.string().min(1).max(255),
    nodeId,
    /** What the sender is now (for logs and status; the core decides who follows whom). */
    role: z.enum(['primary', 'replica', 'standalone', 'candidate']),
    /** The sender's term when it sent this (bound into the proof; never adopted from a HELLO). */
    term,
    lastLsn: lsn,
    /** Hex of 32 random bytes, fresh per link (authentication challenge). */
    nonce: z.string().regex(/^[0-9a-f]{64}$/),
    /** This side requires and will send an AUTH proof. */
    auth: z.boolean(),
    httpAddress: z.string().max(300).nullable(),
    /** The port of the sender's peer listener (with the link's source IP: where to dial it back), null if none. */
    listenPort: z.number().int().min(1).max(65535).nullable(),
  })
  .strict();
export type Hello = z.infer<typeof helloSchema>;

export const authSchema = z.object({ proof: z.string().regex(/^[0-9a-f]{64}$/) }).strict();

const probeSchema = z
  .object({ term, probeId: z.number().int().min(1), commit: lsn, applyLimit: lsn, lastLsn: lsn })
  .strict();
const positionSchema = z
  .object({ term, probeId: z.number().int().min(1), lastLsn: lsn, history, commit: lsn, readSeq: lsn })
  .strict();
const syncSchema = z
  .object({
    term,
    probeId: z.number().int().min(1),
    match: lsn,
    history,
    commit: lsn,
    applyLimit: lsn,
    lastLsn: lsn,
  })
  .strict();
export const snapshotOfferSchema = z
  .object({
    term,
    probeId: z.number().int().min(1),
    snapshotLsn: lsn,
    history,
    force: z.boolean(),
    /** The snapshot's manifest.json, byte for byte. */
    manifestText: z.string().max(MAX_CONTROL_BYTES),
    totalBytes: z.number().int().nonnegative(),
    primaryLastLsn: lsn,
  })
  .strict();
export type SnapshotOfferFrame = z.infer<typeof snapshotOfferSchema>;
export const snapshotAcceptSchema = z
  .object({
    term,
    snapshotLsn: lsn,
    /** First chunk file to send (the ones before it are verified on the follower already). */
    fromChunk: z.number().int().nonnegative(),
  })
  .strict();
export const snapshotProgressSchema = z.object({ syncBytes: z.number().int().nonnegative() }).strict();
export const snapshotEndSchema = z
  .object({ snapshotLsn: lsn, chunks: z.number().int().nonnegative() })
  .strict();
const heartbeatSchema = z
  .object({
    term,
    commit: lsn,
    applyLimit: lsn,
    lastLsn: lsn,
    /** The follower's lag as the leader measures it (age of the oldest write it lacks), ms. */
    lagMs: z.number().nonnegative().nullable(),
    readSeq: lsn,
  })
  .strict();
const ackSchema = z
  .object({
    term,
    match: lsn,
    synced: z.boolean(),
    gap: lsn.nullable(),
    receivingSnapshot: z.boolean(),
    readSeq: lsn,
  })
  .strict();
const voteRequestSchema = z
  .object({ term, preVote: z.boolean(), lastLsn: lsn, lastTerm: term, force: z.boolean() })
  .strict();
const voteSchema = z.object({ term, preVote: z.boolean(), granted: z.boolean() }).strict();
const timeoutNowSchema = z.object({ term }).strict();
const refuseSchema = z
  .object({
    term,
    code: z.enum(['untrusted', 'stale-term', 'term-taken', 'diverged', 'busy']),
    reason: z.string().max(4096),
    leader: nodeId.nullable(),
  })
  .strict();
export const errorSchema = z.object({ code: z.string().max(64), message: z.string().max(4096) }).strict();

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

export const frameName: Record<number, string> = Object.fromEntries(
  Object.entries(FrameType).map(([name, value]) => [value, name]),
);

/** A core message (other than records and snapshot offers, which carry more) as a frame. */
export function encodeCoreMessage(m: Exclude<Outgoing, { type: 'append' | 'snapshotOffer' }>): {
  type: FrameType;
  payload: Uint8Array;
} {
  switch (m.type) {
    case 'probe':
      return {
        type: FrameType.Probe,
        payload: encodeControl({
          term: m.term,
          probeId: m.probeId,
          commit: m.commit,
          applyLimit: m.applyLimit,
          lastLsn: m.lastLsn,
        }),
      };
    case 'position':
      return {
        type: FrameType.Position,
        payload: encodeControl({
          term: m.term,
          probeId: m.probeId,
          lastLsn: m.lastLsn,
          history: m.history,
          commit: m.commit,
          readSeq: m.readSeq,
        }),
      };
    case 'sync':
      return {
        type: FrameType.Sync,
        payload: encodeControl({
          term: m.term,
          probeId: m.probeId,
          match: m.match,
          history: m.history,
          commit: m.commit,
          applyLimit: m.applyLimit,
          lastLsn: m.lastLsn,
        }),
      };
    case 'heartbeat':
      return {
        type: FrameType.Heartbeat,
        payload: encodeControl({
          term: m.term,
          commit: m.commit,
          applyLimit: m.applyLimit,
          lastLsn: m.lastLsn,
          lagMs: null,
          readSeq: m.readSeq,
        }),
      };
    case 'ack':
      return {
        type: FrameType.Ack,
        payload: encodeControl({
          term: m.term,
          match: m.match,
          synced: m.synced,
          gap: m.gap,
          receivingSnapshot: m.receivingSnapshot,
          readSeq: m.readSeq,
        }),
      };
    case 'voteRequest':
      return {
        type: FrameType.VoteRequest,
        payload: encodeControl({
          term: m.term,
          preVote: m.preVote,
          lastLsn: m.lastLsn,
          lastTerm: m.lastTerm,
          force: m.force,
        }),
      };
    case 'vote':
      return {
        type: FrameType.Vote,
        payload: encodeControl({ term: m.term, preVote: m.preVote, granted: m.granted }),
      };
    case 'timeoutNow':
      return { type: FrameType.TimeoutNow, payload: encodeControl({ term: m.term }) };
    case 'refuse':
      return {
        type: FrameType.Refuse,
        payload: encodeControl({
          term: m.term,
          code: m.code,
          reason: m.reason.slice(0, 4096),
          leader: m.leader,
        }),
      };
    case 'snapshotAccept':
      // The transport adds fromChunk (it knows what the staging directory holds).
      throw new Error('snapshotAccept is encoded by the snapshot receiver');
  }
}

/**
 * A control frame from `from` as the core message it carries, or null for
 * frames the transport handles itself (the handshake, full-sync files, errors).
 */
export function decodeCoreMessage(
  type: number,
  payload: Uint8Array,
  from: string,
  to: string,
): Exclude<Incoming, { type: 'records' | 'snapshotOffer' | 'snapshotAccept' }> | null {
  switch (type) {
    case FrameType.Probe:
      return { type: 'probe', from, to, ...decodeControl(probeSchema, 'PROBE', payload) };
    case FrameType.Position:
      return { type: 'position', from, to, ...decodeControl(positionSchema, 'POSITION', payload) };
    case FrameType.Sync:
      return { type: 'sync', from, to, ...decodeControl(syncSchema, 'SYNC', payload) };
    case FrameType.Heartbeat: {
      const hb = decodeControl(heartbeatSchema, 'HEARTBEAT', payload);
      return {
        type: 'heartbeat',
        from,
        to,
        term: hb.term,
        commit: hb.commit,
        applyLimit: hb.applyLimit,
        lastLsn: hb.lastLsn,
        readSeq: hb.readSeq,
      };
    }
    case FrameType.Ack:
      return { type: 'ack', from, to, ...decodeControl(ackSchema, 'ACK', payload) };
    case FrameType.Refuse:
      return { type: 'refuse', from, to, ...decodeControl(refuseSchema, 'REFUSE', payload) };
    case FrameType.VoteRequest:
      return {
        type: 'voteRequest',
        from,
        to,
        ...decodeControl(voteRequestSchema, 'VOTE_REQUEST', payload),
      };
    case FrameType.Vote:
      return { type: 'vote', from, to, ...decodeControl(voteSchema, 'VOTE', payload) };
    case FrameType.TimeoutNow:
      return { type: 'timeoutNow', from, to, ...decodeControl(timeoutNowSchema, 'TIMEOUT_NOW', payload) };
    default:
      return null;
  }
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
