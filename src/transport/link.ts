/**
 * `PeerLink`: one open WebSocket connection to a peer, the same interface
 * whether this node accepted it (uWS, peer-server.ts) or dialed it (ws,
 * peer-client.ts). A link numbers its outgoing frames, verifies incoming
 * ones (decodeFrame), enforces the buffering limit and the slow-peer policy,
 * and closes itself with a 4000-range code on the first bad frame. It does
 * not reconnect: the dialer makes a new link (peer-client.ts).
 */
import {
  decodeFrame,
  encodeFrame,
  encodeFrameInPlace,
  FRAME_HEADER_BYTES,
  isFrameError,
  type Frame,
  type FrameRejectReason,
  type FrameType,
} from './frame.ts';

/**
 * - 'ok': sent (possibly queued) and the queue is below `maxBufferedBytes`.
 * - 'backpressure': sent, but the queue is now at or over `maxBufferedBytes`:
 *   await `whenWritable()` before the next send.
 * - 'dropped': NOT sent (link closed, or the queue was already over the limit).
 *   No sequence number was used, so the link stays consistent.
 */
export type SendResult = 'ok' | 'backpressure' | 'dropped';

export interface OutgoingFrame {
  type: FrameType;
  payload: Uint8Array;
  /** Bytes sent in front of `payload` (a per-link header before a shared body). */
  prefix?: Uint8Array;
  /** FrameFlags bits; 0 when omitted. */
  flags?: number;
  /** crc32c(payload), when the sender has it (see encodeFrame). */
  payloadCrc?: number;
  /**
   * The FRAME_HEADER_BYTES + prefix bytes right before `payload` in its
   * buffer are free for this send to overwrite: the frame is built there
   * (encodeFrameInPlace), not copied. Safe because both socket libraries
   * copy a message before send returns (uWS into its socket buffer or the
   * kernel, ws while masking), so the next send may overwrite them again.
   */
  inPlace?: boolean;
}

export interface CloseInfo {
  code: number;
  reason: string;
  /** 'local': this side closed (bad frame, slow peer, close()); 'remote': the peer or the network did. */
  by: 'local' | 'remote';
}

export interface LinkCounters {
  bytesSent: number;
  bytesReceived: number;
  framesSent: number;
  framesReceived: number;
  /** Incoming frames refused by the decoder (each also closed its link). */
  framesRejected: number;
  /** Links this side closed because the peer did not drain its queue in time. */
  slowPeerDisconnects: number;
}

export function emptyCounters(): LinkCounters {
  return {
    bytesSent: 0,
    bytesReceived: 0,
    framesSent: 0,
    framesReceived: 0,
    framesRejected: 0,
    slowPeerDisconnects: 0,
  };
}

export interface PeerLink {
  /** "<local side>:<n>" unique within the process, for logs. */
  readonly id: string;
  readonly remoteAddress: string;
  readonly closed: boolean;
  /** Bytes queued for the peer and not yet written to the kernel. */
  readonly bufferedAmount: number;
  readonly counters: Readonly<LinkCounters>;
  /** Frames one at a time, in sequence order. The payload is owned by the handler. */
  onFrame(handler: (frame: Frame) => void): void;
  /** Called once, when the link closes for any reason. */
  onClose(handler: (info: CloseInfo) => void): void;
  /** Numbers, encodes and queues one frame; throws RangeError if it exceeds maxFrameBytes. */
  send(frame: OutgoingFrame): SendResult;
  /** Resolves true when the queue is below half of `maxBufferedBytes`, false if the link closes first. */
  whenWritable(): Promise<boolean>;
  /** Graceful close; 1000 when no code is given. */
  close(code?: number, reason?: string): void;
}

export interface LinkLimits {
  /** Largest whole frame (header + payload), both directions, bytes. */
  maxFrameBytes: number;
  /** Outgoing queue limit, bytes: at or above it send() reports backpressure, above it drops. */
  maxBufferedBytes: number;
  /** A peer whose queue stays at or above maxBufferedBytes this long is disconnected. */
  slowPeerTimeoutMs: number;
}

export const defaultLinkLimits: LinkLimits = {
  maxFrameBytes: 64 * 1024 * 1024 + FRAME_HEADER_BYTES,
  maxBufferedBytes: 16 * 1024 * 1024,
  slowPeerTimeoutMs: 10_000,
};

/** Validates limits once, at server/client construction. */
export function resolveLimits(partial: Partial<LinkLimits> = {}): LinkLimits {
  const limits = { ...defaultLinkLimits, ...partial };
  const check = (name: keyof LinkLimits, min: number, max: number): void => {
    const v = limits[name];
    if (!Number.isSafeInteger(v) || v < min || v > max) {
      throw new RangeError(`link limits: ${name} must be an integer in [${min}, ${max}], got ${v}`);
    }
  };
  check('maxFrameBytes', FRAME_HEADER_BYTES, 2 ** 31 - 1);
  check('maxBufferedBytes', 1, 2 ** 40);
  check('slowPeerTimeoutMs', 1, 3_600_000);
  return limits;
}

/** WebSocket close codes (application range 4000-4999). */
export const CloseCodes = {
  /** Incoming frame refused; 4001 + index of the reason. */
  frame: {
    truncated: 4001,
    'trailing-bytes': 4002,
    'too-large': 4003,
    'bad-magic': 4004,
    'bad-version': 4005,
    'unknown-type': 4006,
    'bad-flags': 4007,
    'bad-reserved': 4008,
    'bad-crc': 4009,
    'bad-seq': 4010,
  } satisfies Record<FrameRejectReason, number>,
  /** A text message where only binary frames are allowed. */
  notBinary: 4011,
  /** The peer did not drain its queue within slowPeerTimeoutMs. */
  slowPeer: 4020,
  /** The underlying library refused a send it should have taken (queue inconsistent). */
  sendFailed: 4021,
  /** The dialer heard nothing (not even a pong) for idleTimeoutMs. */
  idle: 4022,
  /** This node is shutting down. */
  shutdown: 4030,
  /** Peer authentication failed (wrong or missing proof, replayed nonce, wrong cluster): "auth failed". */
  authFailed: 4040,
} as const;

/** pino-compatible subset; pass a pino logger or anything with these two methods. */
export interface LinkLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export const silentLogger: LinkLogger = { info: () => {}, warn: () => {} };

/** What the two WebSocket libraries do differently, behind one face. */
export interface SocketOps {
  /** Queue bytes as one binary message; false if the library refused them. */
  write(bytes: Uint8Array): boolean;
  bufferedAmount(): number;
  /** Close frame with code and reason. */
  end(code: number, reason: string): void;
  /** Drop the connection without a close handshake (the queue may be full). */
  terminate(): void;
}

/** WebSocket close reasons are limited to 123 bytes of UTF-8. */
export function clipCloseReason(reason: string): string {
  const bytes = Buffer.from(reason, 'utf8');
  if (bytes.byteLength <= 123) return reason;
  return (
    bytes
      .subarray(0, 120)
      .toString('utf8')
      .replace(/\uFFFD$/, '') + '...'
  );
}

let linkCounter = 0;

/**
 * The shared link logic; the server and the client feed it incoming
 * messages, drain notifications and closes from their library's callbacks.
 */
export class LinkCore implements PeerLink {
  readonly id: string;
  readonly remoteAddress: string;
  readonly counters: LinkCounters = emptyCounters();
  private readonly totals: LinkCounters;
  private readonly limits: LinkLimits;
  private readonly logger: LinkLogger;
  private readonly ops: SocketOps;
  private nextSendSeq = 1;
  private expectedRecvSeq = 1;
  private frameHandler: (frame: Frame) => void = () => {};
  private closeHandlers: ((info: CloseInfo) => void)[] = [];
  private writableWaiters: ((writable: boolean) => void)[] = [];
  private slowPeerTimer: NodeJS.Timeout | undefined;
  private closeInfo: CloseInfo | undefined;
  /** Set when this side decided to close, so the library's close callback reports our reason. */
  private localClose: CloseInfo | undefined;

  constructor(opts: {
    side: string;
    remoteAddress: string;
    limits: LinkLimits;
    logger: LinkLogger;
    ops: SocketOps;
    /** Aggregate counters of the owning server/client, incremented alongside the link's own. */
    totals: LinkCounters;
  }) {
    this.id = `${opts.side}:${++linkCounter}`;
    this.remoteAddress = opts.remoteAddress;
    this.limits = opts.limits;
    this.logger = opts.logger;
    this.ops = opts.ops;
    this.totals = opts.totals;
  }

  get closed(): boolean {
    return this.closeInfo !== undefined || this.localClose !== undefined;
  }

  get bufferedAmount(): number {
    return this.closed ? 0 : this.ops.bufferedAmount();
  }

  onFrame(handler: (frame: Frame) => void): void {
    this.frameHandler = handler;
  }

  onClose(handler: (info: CloseInfo) => void): void {
    if (this.closeInfo) handler(this.closeInfo);
    else this.closeHandlers.push(handler);
  }

  private count(field: keyof LinkCounters, n = 1): void {
    this.counters[field] += n;
    this.totals[field] += n;
  }

  send(frame: OutgoingFrame): SendResult {
    if (this.closed) return 'dropped';
    const { maxBufferedBytes } = this.limits;
    if (this.ops.bufferedAmount() > maxBufferedBytes) return 'dropped';
    const payloadBytes = frame.payload.byteLength + (frame.prefix?.byteLength ?? 0);
    if (FRAME_HEADER_BYTES + payloadBytes > this.limits.maxFrameBytes) {
      throw new RangeError(
        `send: a ${payloadBytes}-byte payload exceeds maxFrameBytes ${this.limits.maxFrameBytes}`,
      );
    }
    const bytes = (frame.inPlace ? encodeFrameInPlace : encodeFrame)(
      frame.type,
      frame.flags ?? 0,
      this.nextSendSeq,
      frame.payload,
      frame.prefix,
      frame.payloadCrc,
    );
    if (!this.ops.write(bytes)) {
      // The library dropped a frame we numbered: the peer would see a gap. Start over.
      this.fail(CloseCodes.sendFailed, 'send refused by the socket library', false);
      return 'dropped';
    }
    this.nextSendSeq++;
    this.count('framesSent');
    this.count('bytesSent', bytes.byteLength);
    if (this.ops.bufferedAmount() >= maxBufferedBytes) {
      this.armSlowPeerTimer();
      return 'backpressure';
    }
    return 'ok';
  }

  whenWritable(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.ops.bufferedAmount() < this.limits.maxBufferedBytes / 2) return Promise.resolve(true);
    return new Promise((resolve) => this.writableWaiters.push(resolve));
  }

  /** The library reports progress in writing the queue (uWS drain, ws write callback). */
  handleDrain(): void {
    if (this.closed) return;
    const buffered = this.ops.bufferedAmount();
    if (buffered < this.limits.maxBufferedBytes) this.disarmSlowPeerTimer();
    if (buffered < this.limits.maxBufferedBytes / 2 && this.writableWaiters.length > 0) {
      const waiters = this.writableWaiters;
      this.writableWaiters = [];
      for (const resolve of waiters) resolve(true);
    }
  }

  /** One incoming WebSocket message. `ownsBytes` false: the bytes die after this call, copy the payload. */
  handleMessage(bytes: Uint8Array, isBinary: boolean, ownsBytes: boolean): void {
    if (this.closed) return;
    this.count('bytesReceived', bytes.byteLength);
    if (!isBinary) {
      this.reject(CloseCodes.notBinary, 'not-binary', 'text message on a binary-only link');
      return;
    }
    let frame: Frame;
    try {
      frame = decodeFrame(bytes, {
        maxFrameBytes: this.limits.maxFrameBytes,
        expectedSeq: this.expectedRecvSeq,
      });
    } catch (err) {
      if (!isFrameError(err)) throw err;
      this.reject(CloseCodes.frame[err.reason], err.reason, err.message);
      return;
    }
    this.expectedRecvSeq++;
    this.count('framesReceived');
    if (!ownsBytes) frame.payload = frame.payload.slice();
    this.frameHandler(frame);
  }

  /**
   * The WebSocket library refused an incoming message over maxFrameBytes
   * (uWS maxPayloadLength, ws maxPayload) and is closing the connection
   * itself; record it as our rejection so it is counted and explained.
   */
  rejectedByLibrary(detail: string): void {
    if (this.closed) return;
    const code = CloseCodes.frame['too-large'];
    this.count('framesRejected');
    this.logger.warn(
      { link: this.id, remote: this.remoteAddress, code, reason: 'too-large', detail },
      'peer link: frame rejected, closing',
    );
    this.localClose = { code, reason: `too-large: ${detail}`, by: 'local' };
  }

  private reject(code: number, reason: string, detail: string): void {
    this.count('framesRejected');
    this.logger.warn(
      { link: this.id, remote: this.remoteAddress, code, reason, detail },
      'peer link: frame rejected, closing',
    );
    this.fail(code, `${reason}: ${detail}`, true);
  }

  private armSlowPeerTimer(): void {
    if (this.slowPeerTimer) return;
    this.slowPeerTimer = setTimeout(() => {
      this.slowPeerTimer = undefined;
      if (this.closed) return;
      const buffered = this.ops.bufferedAmount();
      if (buffered < this.limits.maxBufferedBytes) return;
      this.count('slowPeerDisconnects');
      this.logger.warn(
        {
          link: this.id,
          remote: this.remoteAddress,
          bufferedBytes: buffered,
          limitBytes: this.limits.maxBufferedBytes,
          timeoutMs: this.limits.slowPeerTimeoutMs,
        },
        'peer link: slow peer, disconnecting',
      );
      // The queue is full, a close frame would wait behind it: drop the connection.
      this.fail(CloseCodes.slowPeer, 'slow peer', false);
    }, this.limits.slowPeerTimeoutMs);
  }

  private disarmSlowPeerTimer(): void {
    if (!this.slowPeerTimer) return;
    clearTimeout(this.slowPeerTimer);
    this.slowPeerTimer = undefined;
  }

  /** Local decision to end the link. */
  private fail(code: number, reason: string, graceful: boolean): void {
    if (this.closed) return;
    const info: CloseInfo = { code, reason: clipCloseReason(reason), by: 'local' };
    this.localClose = info;
    if (graceful) this.ops.end(info.code, info.reason);
    else this.ops.terminate();
    // Libraries that report the close later (ws) land in handleClosed, which keeps localClose.
    this.handleClosed(code, info.reason);
  }

  close(code = 1000, reason = ''): void {
    this.fail(code, reason, true);
  }

  /** Drops the connection without a close handshake (dead or silent peer), logging why. */
  abort(code: number, reason: string): void {
    if (this.closed) return;
    this.logger.warn({ link: this.id, remote: this.remoteAddress, code, reason }, 'peer link: aborting');
    this.fail(code, reason, false);
  }

  /** The library says the connection is gone. Idempotent. */
  handleClosed(code: number, reason: string): void {
    if (this.closeInfo) return;
    const info = this.localClose ?? { code, reason, by: 'remote' as const };
    this.closeInfo = info;
    this.disarmSlowPeerTimer();
    const waiters = this.writableWaiters;
    this.writableWaiters = [];
    for (const resolve of waiters) resolve(false);
    if (info.by === 'remote') {
      this.logger.info({ link: this.id, remote: this.remoteAddress, ...info }, 'peer link closed by peer');
    }
    const handlers = this.closeHandlers;
    this.closeHandlers = [];
    for (const handler of handlers) handler(info);
  }
}
