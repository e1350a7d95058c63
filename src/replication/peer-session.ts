/**
 * One replication conversation over one PeerLink, from the first HELLO to
 * the close. Does what primary and replica sessions share: the handshake
 * (HELLO both ways, then AUTH both ways when a secret is set), serial
 * handling of incoming frames (each handler finishes before the next frame
 * is looked at, with a bound on what may wait), heartbeats, the silence
 * timeout, and closing with a logged reason on any protocol error.
 */
import { isVrepError, VrepError } from '../errors.ts';
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
} from './messages.ts';
import {
  authProof,
  verifyProof,
  type AuthDirection,
  type NonceRegistry,
  newNonce,
} from '../transport/peer-auth.ts';

/** Close codes of the replication layer (the transport's are in link.ts). */
export const ReplicationCloseCodes = {
  authFailed: 4040,
  protocol: 4041,
  /** Wrong role, wrong cluster, already following another primary. */
  refused: 4042,
  /** The peer's history does not contain ours, or its term is stale. */
  diverged: 4043,
  /** The records this peer needs are gone: it must reconnect and full sync. */
  backlogLost: 4044,
  /** The peer was silent longer than replicaTimeoutMs. */
  timeout: 4045,
  /** The operator removed or re-synced this peer. */
  operator: 4046,
} as const;

export interface LocalIdentity {
  clusterId: string;
  nodeId: string;
  role: 'primary' | 'replica';
  secret: string | null;
  /** Peer HELLO nonces seen recently (one registry per node): a replayed HELLO is refused. */
  nonces: NonceRegistry;
  httpAddress: string | null;
  term(): number;
  historyId(): string;
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

export abstract class PeerSession {
  readonly link: PeerLink;
  protected readonly local: LocalIdentity;
  protected readonly logger: SessionLogger;
  /** The peer's HELLO, once received. */
  peer: Hello | null = null;
  private readonly nonce = Buffer.from(newNonce()).toString('hex');
  /** The term announced in our HELLO (the proof binds it). */
  private readonly sentTerm: number;
  /** This side dialed the link (the proof binds the direction, so a proof cannot be reflected). */
  private readonly dialer: boolean;
  private authed = false;
  private sentAuth = false;
  private established = false;
  private queue: Frame[] = [];
  private pendingBytes = 0;
  private running = false;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;
  lastHeardMs = Date.now();

  constructor(
    link: PeerLink,
    local: LocalIdentity,
    logger: SessionLogger,
    private readonly timing: { heartbeatIntervalMs: number; replicaTimeoutMs: number },
  ) {
    this.link = link;
    this.local = local;
    this.logger = logger;
    this.dialer = link.id.startsWith('client');
    this.sentTerm = local.term();
    link.onFrame((frame) => this.enqueue(frame));
    link.onClose((info) => {
      clearInterval(this.heartbeatTimer);
      clearTimeout(this.handshakeTimer);
      this.queue = [];
      this.closed(`${info.code} ${info.reason} (${info.by})`);
    });
    this.handshakeTimer = setTimeout(() => {
      if (!this.established) this.fail(ReplicationCloseCodes.protocol, 'handshake timed out');
    }, HANDSHAKE_TIMEOUT_MS);
    this.sendControl(FrameType.Hello, {
      protocol: PROTOCOL_VERSION,
      clusterId: local.clusterId,
      nodeId: local.nodeId,
      role: local.role,
      term: this.sentTerm,
      historyId: local.historyId(),
      lastLsn: local.lastLsn(),
      nonce: this.nonce,
      auth: local.secret !== null,
      httpAddress: local.httpAddress,
    } satisfies Hello);
  }

  /** The handshake is done: the peer is who it says (and proved it, with a secret). */
  protected abstract onEstablished(peer: Hello): void | Promise<void>;
  /** A frame after the handshake. Throwing (or rejecting) closes the link with the reason. */
  protected abstract onMessage(frame: Frame): void | Promise<void>;
  /** Every heartbeat interval while established. */
  protected abstract onHeartbeat(): void;
  /** The link closed (once). */
  protected abstract closed(reason: string): void;

  get isEstablished(): boolean {
    return this.established;
  }

  sendControl(type: FrameType, value: object): boolean {
    return this.link.send({ type, payload: encodeControl(value) }) !== 'dropped';
  }

  /** Closes the link, telling the peer why (ERROR frame, then the close code). */
  fail(code: number, reason: string, errorCode = 'ERR_PROTOCOL'): void {
    if (this.link.closed) return;
    this.logger.warn(
      { link: this.link.id, peer: this.peer?.nodeId ?? this.link.remoteAddress, code, reason },
      'replication: closing link',
    );
    this.sendControl(FrameType.Error, { code: errorCode, message: reason.slice(0, 4096) });
    this.link.close(code, reason);
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
          const code = isVrepError(err, 'ERR_AUTH')
            ? ReplicationCloseCodes.authFailed
            : isVrepError(err, 'ERR_DIVERGED')
              ? ReplicationCloseCodes.diverged
              : ReplicationCloseCodes.protocol;
          const errorCode = (err as { code?: string }).code ?? 'ERR_INTERNAL';
          if (!isVrepError(err)) this.logger.error({ err }, 'replication: unexpected error handling a frame');
          this.fail(code, `${frameName[frame.type] ?? frame.type}: ${(err as Error).message}`, errorCode);
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
      this.logger.warn(
        { peer: this.peer?.nodeId, code: e.code, reason: e.message },
        'replication: peer reports',
      );
      this.peerError(e.code, e.message);
      return;
    }
    if (!this.established) {
      this.handshakeStep(frame);
      return;
    }
    await this.onMessage(frame);
  }

  /** The peer sent ERROR (it closes the link next). */
  protected peerError(_code: string, _message: string): void {}

  private handshakeStep(frame: Frame): void {
    if (this.peer === null) {
      if (frame.type !== FrameType.Hello) throw protocolError(`expected HELLO, got ${frameName[frame.type]}`);
      const hello = decodeControl(helloSchema, 'HELLO', frame.payload);
      if (hello.clusterId !== this.local.clusterId) {
        throw authError(`cluster "${hello.clusterId}" is not "${this.local.clusterId}"`);
      }
      if (hello.nodeId === this.local.nodeId)
        throw protocolError(`peer claims this node's id "${hello.nodeId}"`);
      if (hello.role === this.local.role) {
        throw protocolError(`both sides are ${hello.role}s (${hello.nodeId} and ${this.local.nodeId})`);
      }
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
        direction: this.dialer ? 'listener-to-dialer' : 'dialer-to-listener',
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
    const direction: AuthDirection = this.dialer ? 'dialer-to-listener' : 'listener-to-dialer';
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
    const { heartbeatIntervalMs, replicaTimeoutMs } = this.timing;
    let lastTickMs = Date.now();
    this.heartbeatTimer = setInterval(() => {
      const nowMs = Date.now();
      // A late tick means this process was busy (or starved): frames may be
      // waiting in the socket unread, so silence cannot be blamed on the peer yet.
      const late = nowMs - lastTickMs > 2 * heartbeatIntervalMs;
      lastTickMs = nowMs;
      if (!late && nowMs - this.lastHeardMs > replicaTimeoutMs) {
        this.fail(ReplicationCloseCodes.timeout, `peer silent for more than ${replicaTimeoutMs} ms`);
        return;
      }
      this.onHeartbeat();
    }, heartbeatIntervalMs);
    this.heartbeatTimer.unref();
    this.logger.info(
      { link: this.link.id, peer: this.peer?.nodeId, role: this.peer?.role, auth: this.authed },
      'replication: peer connected',
    );
    Promise.resolve()
      .then(() => this.onEstablished(this.peer as Hello))
      .catch((err: unknown) => this.fail(ReplicationCloseCodes.protocol, (err as Error).message));
  }

  /** The peer's term in its HELLO (for fencing). */
  get peerTerm(): number {
    return this.peer?.term ?? 0;
  }
}

function authError(message: string): VrepError {
  return new VrepError('ERR_AUTH', message);
}
