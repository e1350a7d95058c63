/**
 * Peer authentication: a shared-secret HMAC challenge-response run in both
 * directions inside the replication handshake (docs/wire-protocol.md,
 * "Peer authentication"). Each side sends a fresh random nonce in its HELLO,
 * then an AUTH proof = HMAC-SHA256(secret, fields) over both nonces, both
 * node ids, the cluster id, the sender's term and the direction. A proof is
 * therefore good for one connection, one ordered pair of nodes and one
 * direction: replayed, reflected or cross-cluster proofs do not verify.
 * src/replication/peer-session.ts applies the policy (which checks, in
 * which order, with which close reasons) and sends the HELLO and AUTH
 * frames. Pure apart from node:crypto.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ErrorCodes, VrepError } from '../errors.ts';

/** Domain separation: the first MAC field, so these MACs can never be confused with another use of the secret. */
export const PEER_AUTH_PROTOCOL = 'vrep-peer-auth-v1';
export const NONCE_BYTES = 32;
export const PROOF_BYTES = 32;
export const MIN_SECRET_BYTES = 16;
/** Bound on cluster and node ids inside the MAC input, bytes of UTF-8. */
export const MAX_ID_BYTES = 256;

/** Who sends the proof: the side that dialed the link, or the side that accepted it. */
export type AuthDirection = 'dialer-to-listener' | 'listener-to-dialer';

export interface AuthProofInput {
  /** The shared secret, at least MIN_SECRET_BYTES of UTF-8. */
  secret: string;
  clusterId: string;
  /** Node id of the side that computes (sends) the proof. */
  senderNodeId: string;
  /** Node id of the side that verifies the proof. */
  receiverNodeId: string;
  /** The nonce the sender put in its own HELLO. */
  senderNonce: Uint8Array;
  /** The nonce the receiver put in its HELLO: the challenge this proof answers. */
  receiverNonce: Uint8Array;
  /** The sender's term, as announced in its HELLO. */
  senderTerm: number;
  direction: AuthDirection;
}

function invalid(message: string): VrepError {
  return new VrepError(ErrorCodes.InvalidArg, `peer auth: ${message}`);
}

/** Checks the shared secret once (at configuration time); throws ERR_INVALID_ARG with the reason. */
export function checkSecret(secret: unknown): asserts secret is string {
  if (typeof secret !== 'string') throw invalid(`the shared secret must be a string, got ${typeof secret}`);
  const bytes = Buffer.byteLength(secret, 'utf8');
  if (bytes < MIN_SECRET_BYTES) {
    throw invalid(`the shared secret must be at least ${MIN_SECRET_BYTES} bytes of UTF-8, got ${bytes}`);
  }
}

/** A fresh random nonce for one HELLO. */
export function newNonce(): Uint8Array {
  return new Uint8Array(randomBytes(NONCE_BYTES));
}

function idField(name: string, value: unknown): Buffer {
  if (typeof value !== 'string' || value.length === 0) throw invalid(`${name} must be a non-empty string`);
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.byteLength > MAX_ID_BYTES) {
    throw invalid(`${name} is ${bytes.byteLength} bytes, at most ${MAX_ID_BYTES} allowed`);
  }
  return bytes;
}

function nonceField(name: string, value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array) || value.byteLength !== NONCE_BYTES) {
    const got = value instanceof Uint8Array ? `${value.byteLength} bytes` : typeof value;
    throw invalid(`${name} must be ${NONCE_BYTES} bytes, got ${got}`);
  }
  return value;
}

function termField(value: unknown): Buffer {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalid(`senderTerm must be a non-negative safe integer, got ${String(value)}`);
  }
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(BigInt(value));
  return out;
}

function directionField(value: unknown): Buffer {
  if (value !== 'dialer-to-listener' && value !== 'listener-to-dialer') {
    throw invalid(`direction must be 'dialer-to-listener' or 'listener-to-dialer', got ${String(value)}`);
  }
  return Buffer.from(value, 'utf8');
}

/**
 * The MAC input: every field as u32 big-endian length + bytes, in a fixed
 * order, so two different inputs never encode to the same bytes (no field can
 * absorb its neighbour's bytes). Exported for tests.
 */
export function encodeAuthFields(input: Omit<AuthProofInput, 'secret'>): Buffer {
  const fields: Uint8Array[] = [
    Buffer.from(PEER_AUTH_PROTOCOL, 'utf8'),
    idField('clusterId', input.clusterId),
    idField('senderNodeId', input.senderNodeId),
    idField('receiverNodeId', input.receiverNodeId),
    nonceField('senderNonce', input.senderNonce),
    nonceField('receiverNonce', input.receiverNonce),
    termField(input.senderTerm),
    directionField(input.direction),
  ];
  const parts: Uint8Array[] = [];
  for (const field of fields) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(field.byteLength);
    parts.push(length, field);
  }
  return Buffer.concat(parts);
}

/** The proof the sender puts in its AUTH frame. Throws ERR_INVALID_ARG on a malformed input. */
export function authProof(input: AuthProofInput): Uint8Array {
  checkSecret(input.secret);
  const mac = createHmac('sha256', input.secret).update(encodeAuthFields(input)).digest();
  return new Uint8Array(mac.buffer, mac.byteOffset, mac.byteLength);
}

/**
 * True when `proof` is the proof for `input`. Any proof that is not exactly
 * PROOF_BYTES long (missing, truncated, padded) is false before any
 * comparison; the comparison itself is constant-time.
 */
export function verifyProof(input: AuthProofInput, proof: Uint8Array | undefined): boolean {
  if (!(proof instanceof Uint8Array) || proof.byteLength !== PROOF_BYTES) return false;
  return timingSafeEqual(authProof(input), proof);
}

export interface NonceRegistryOptions {
  /** Most nonces remembered; the oldest is forgotten first. */
  capacity: number;
  /** A nonce is forgotten this long after it was seen, ms. */
  maxAgeMs: number;
}

/**
 * The peer nonces seen recently, to refuse a replayed HELLO (a nonce seen
 * before) early and visibly. Bounded in count and age, time passed in. A
 * nonce forgotten by age or eviction could be presented again, but its old
 * proofs still fail: each proof also binds this side's fresh nonce. So this is
 * a second line, never the only one.
 */
export class NonceRegistry {
  private readonly capacity: number;
  private readonly maxAgeMs: number;
  /** hex nonce -> time first seen; Map keeps insertion order, oldest first. */
  private readonly seen = new Map<string, number>();

  constructor(options: NonceRegistryOptions) {
    const { capacity, maxAgeMs } = options;
    if (!Number.isSafeInteger(capacity) || capacity < 1 || capacity > 10_000_000) {
      throw invalid(`NonceRegistry capacity must be an integer in [1, 10000000], got ${capacity}`);
    }
    if (!Number.isSafeInteger(maxAgeMs) || maxAgeMs < 1) {
      throw invalid(`NonceRegistry maxAgeMs must be a positive integer, got ${maxAgeMs}`);
    }
    this.capacity = capacity;
    this.maxAgeMs = maxAgeMs;
  }

  get size(): number {
    return this.seen.size;
  }

  /**
   * Records `nonce` seen at `nowMs`. Returns false (and changes nothing) when
   * the nonce was already seen within maxAgeMs: a replay. `nowMs` comes from
   * a clock that does not go back (performance.now(), Date.now() on a sane host).
   */
  remember(nonce: Uint8Array, nowMs: number): boolean {
    nonceField('nonce', nonce);
    this.expire(nowMs);
    const key = Buffer.from(nonce.buffer, nonce.byteOffset, nonce.byteLength).toString('hex');
    if (this.seen.has(key)) return false;
    if (this.seen.size >= this.capacity) {
      const oldest = this.seen.keys().next();
      if (!oldest.done) this.seen.delete(oldest.value);
    }
    this.seen.set(key, nowMs);
    return true;
  }

  private expire(nowMs: number): void {
    for (const [key, seenAtMs] of this.seen) {
      if (nowMs - seenAtMs < this.maxAgeMs) break;
      this.seen.delete(key);
    }
  }
}

/** The authentication fields of a HELLO (the replication layer encodes the frame). */
