/**
 * One peer link from the first HELLO to the close: the handshake (HELLO
 * both ways, then AUTH both ways when a secret is set) and serial handling
 * of the frames after it (each handler finishes before the next frame is
 * looked at, with a bound on what may wait). It knows who the peer is and
 * decides nothing about replication: established, it hands every frame to
 * the owner (peers.ts), which turns it into a step of the core.
 *
 * A HELLO carries the sender's term only because the proof binds it; no
 * node ever takes a term from a HELLO (a stranger's claim changes nothing).
 */
import { isErrorCode, isVrepError, VrepError, type ErrorCode } from '../errors.ts';
import { FrameType, type Frame } from '../transport/frame.ts';
import type { PeerLink } from '../transport/link.ts';
import {
  authSchema,
  decodeControl,
  encodeControl,
  errorSchema,
  frameName,
  helloSchema,
  PROTOCOL_VERSION,
  protocolError,
  type Hello,
} from './wire.ts';
import {
  authProof,
  verifyProof,
  type AuthDirection,
  type NonceRegistry,
  newNonce,
} from '../transport/peer-auth.ts';
import { formatHostPort } from '../transport/address.ts';
import { ReplicationCloseCodes, closeCodeOf } from './close-codes.ts';

export interface LocalIdentity {
  clusterId: string;
  nodeId: string;
  secret: string | null;
  /** Peer HELLO nonces seen recently (one registry per node): a replayed HELLO is refused. */
  nonces: NonceRegistry;
  httpAddress: string | null;
  /** The port this node's peer listener is bound to (null while it has none). */
  listenPort(): number | null;
  role(): Hello['role'];
  term(): number;
  lastLsn(): number;
}

export interface SessionLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Most bytes of received frames waiting for their handler; past it the link closes. */
export const MAX_PENDING_BYTES = 256 * 1024 * 1024;
/** Handshake must finish within this. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface SessionHandlers {
  /** The peer is who it says (and proved it, with a secret). */
  established(session: PeerSession): void;
  /** A frame after the handshake. Throwing (or rejecting) closes the link with the reason. */
  frame(session: PeerSession, frame: Frame): void | Promise<void>;
  /** The link closed (once). */
  closed(session: PeerSession, reason: string, code: number): void;
}

export class PeerSession {
  readonly link: PeerLink;
  /** The peer's HELLO, once received. */
  peer: Hello | null = null;
  /** This side dialed the link (the proof binds the direction, so a proof cannot be reflected). */
  readonly dialed: boolean;
  /** Set by the owner: this link was dialed to the primary this node is configured to follow. */
  viaConfiguredPrimary = false;
  lastHeardMs = Date.now();
  private readonly nonce = Buffer.from(newNonce()).toString('hex');
  /** The term announced in our HELLO (the proof binds it). */
  private readonly sentTerm: number;
  private authed = false;
  private sentAuth = false;
  private established = false;
  private queue: Frame[] = [];
  private pendingBytes = 0;
  private running = false;
  private readonly handshakeTimer: NodeJS.Timeout;

  constructor(
    link: PeerLink,
    private readonly local: LocalIdentity,
    private readonly logger: SessionLogger,
    private readonly handlers: SessionHandlers,
    dialed: boolean,
  ) {
    this.link = link;
    this.dialed = dialed;
    this.sentTerm = local.term();
    link.onFrame((frame) => this.enqueue(frame));
    link.onClose((info) => {
      clearTimeout(this.handshakeTimer);
      this.queue = [];
      this.handlers.closed(this, `${info.code} ${info.reason} (${info.by})`, info.code);
    });
    this.handshakeTimer = setTimeout(() => {
      if (!this.established) this.fail(ReplicationCloseCodes.protocol, 'handshake timed out');
    }, HANDSHAKE_TIMEOUT_MS);
    this.handshakeTimer.unref();
    this.sendControl(FrameType.Hello, {
      protocol: PROTOCOL_VERSION,
      clusterId: local.clusterId,
      nodeId: local.nodeId,
      role: local.role(),
      term: this.sentTerm,
      lastLsn: local.lastLsn(),
      nonce: this.nonce,
      auth: local.secret !== null,
      httpAddress: local.httpAddress,
      listenPort: local.listenPort(),
    } satisfies Hello);
  }

  get isEstablished(): boolean {
    return this.established;
  }

  get peerId(): string | null {
    return this.peer?.nodeId ?? null;
  }

  /**
   * Where the peer's listener is: the address dialed, or (a link it dialed
   * in) the link's source IP with the listener port its HELLO announced,
   * as Redis combines the source IP with REPLCONF listening-port.
   */
  get listenAddress(): string {
    if (this.dialed) return /^wss?:\/\/([^/]+)/.exec(this.link.remoteAddress)?.[1] ?? this.link.remoteAddress;
    const ip = this.link.remoteAddress.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
    const port = this.peer?.listenPort ?? null;
    return port === null ? ip : formatHostPort(ip, port);
  }

  sendControl(type: FrameType, value: object): boolean {
    return this.link.send({ type, payload: encodeControl(value) }) !== 'dropped';
  }

  /** Closes the link, telling the peer why (ERROR frame, then the close code). */
  fail(
    code: number,
    reason: string,
    errorCode: ErrorCode = 'ERR_PROTOCOL',
    level: 'warn' | 'info' = 'warn',
  ): void {
    if (this.link.closed) return;
    this.logger[level](
      { link: this.link.id, peer: this.peer?.nodeId ?? this.link.remoteAddress, code, reason },
      'replication: closing link',
    );
    this.sendControl(FrameType.Error, { code: errorCode, message: reason.slice(0, 4096) });
    this.link.close(code, reason.slice(0, 120));
  }

  private enqueue(frame: Frame): void {
    this.lastHeardMs = Date.now();
    this.pendingBytes += frame.payload.length;
    if (this.pendingBytes > MAX_PENDING_BYTES) {
      this.fail(ReplicationCloseCodes.protocol, `more than ${MAX_PENDING_BYTES} bytes waiting to be handled`);
      return;
    }
    this.queue.push(frame);
    if (!this.running) void this.drain();
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      for (let frame = this.queue.shift(); frame !== undefined; frame = this.queue.shift()) {
        this.pendingBytes -= frame.payload.length;
        if (this.link.closed) return;
        try {
          await this.handle(frame);
        } catch (err) {
          if (this.link.closed) return;
          // Only registry codes go on the wire (a Node errno code is ours to hide).
          const thrown = (err as { code?: unknown }).code;
          const errorCode = isErrorCode(thrown) ? thrown : 'ERR_INTERNAL';
          if (!isVrepError(err)) this.logger.error({ err }, 'replication: unexpected error handling a frame');
          this.fail(
            closeCodeOf(errorCode),
            `${frameName[frame.type] ?? frame.type}: ${(err as Error).message}`,
            errorCode,
          );
          return;
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async handle(frame: Frame): Promise<void> {
    if (frame.type === FrameType.Error) {
      const e = decodeControl(errorSchema, 'ERROR', frame.payload);
      this.logger.info(
        { peer: this.peer?.nodeId, code: e.code, reason: e.message },
        'replication: peer reports',
      );
      return;
    }
    if (!this.established) {
      this.handshakeStep(frame);
      return;
    }
    await this.handlers.frame(this, frame);
  }

  private handshakeStep(frame: Frame): void {
    if (this.peer === null) {
      if (frame.type !== FrameType.Hello) throw protocolError(`expected HELLO, got ${frameName[frame.type]}`);
      const hello = decodeControl(helloSchema, 'HELLO', frame.payload);
      if (hello.clusterId !== this.local.clusterId) {
        throw authError(`cluster "${hello.clusterId}" is not "${this.local.clusterId}"`);
      }
      if (hello.nodeId === this.local.nodeId)
        throw protocolError(`peer claims this node's id "${hello.nodeId}"`);
      if (!this.local.nonces.remember(Buffer.from(hello.nonce, 'hex'), performance.now())) {
        throw authError(`${hello.nodeId}: HELLO nonce seen before (a replayed handshake)`);
      }
      this.peer = hello;
      if (this.local.secret === null) {
        if (hello.auth)
          throw authError(`${hello.nodeId} requires authentication and this node has no secret`);
        this.establish();
        return;
      }
      if (!hello.auth) throw authError(`${hello.nodeId} sent no authentication; this node requires it`);
      this.sendAuth();
      return;
    }
    if (frame.type !== FrameType.Auth) throw protocolError(`expected AUTH, got ${frameName[frame.type]}`);
    const { proof } = decodeControl(authSchema, 'AUTH', frame.payload);
    const peer = this.peer;
    const ok = verifyProof(
      {
        secret: this.local.secret as string,
        clusterId: this.local.clusterId,
        senderNodeId: peer.nodeId,
        receiverNodeId: this.local.nodeId,
        senderNonce: Buffer.from(peer.nonce, 'hex'),
        receiverNonce: Buffer.from(this.nonce, 'hex'),
        senderTerm: peer.term,
        direction: this.dialed ? 'listener-to-dialer' : 'dialer-to-listener',
      },
      Buffer.from(proof, 'hex'),
    );
    if (!ok)
      throw authError(`${peer.nodeId}: authentication proof does not match (wrong secret or replayed)`);
    this.authed = true;
    this.establish();
  }

  private sendAuth(): void {
    if (this.sentAuth || this.peer === null || this.local.secret === null) return;
    this.sentAuth = true;
    const direction: AuthDirection = this.dialed ? 'dialer-to-listener' : 'listener-to-dialer';
    const proof = authProof({
      secret: this.local.secret,
      clusterId: this.local.clusterId,
      senderNodeId: this.local.nodeId,
      receiverNodeId: this.peer.nodeId,
      senderNonce: Buffer.from(this.nonce, 'hex'),
      receiverNonce: Buffer.from(this.peer.nonce, 'hex'),
      senderTerm: this.sentTerm,
      direction,
    });
    this.sendControl(FrameType.Auth, { proof: Buffer.from(proof).toString('hex') });
  }

  private establish(): void {
    if (this.established || (this.local.secret !== null && !this.authed)) return;
    this.established = true;
    clearTimeout(this.handshakeTimer);
    this.logger.info(
      { link: this.link.id, peer: this.peer?.nodeId, role: this.peer?.role, auth: this.authed },
      'replication: peer connected',
    );
    this.handlers.established(this);
  }
}

function authError(message: string): VrepError {
  return new VrepError('ERR_AUTH', message);
}
