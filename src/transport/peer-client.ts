/**
 * The dialing side of peer links, on `ws` (uWS has no client). Keeps one
 * link to one peer URL: dials, hands every new link to `onLink`, and when a
 * link closes for any reason (bad frame, slow peer, network, peer restart)
 * dials again after an exponential backoff with jitter, until `stop()`.
 *
 * The backoff grows by 1.25 per failed dial, not the usual 2, so that a peer
 * that restarts is found soon after it listens again. The delay before a
 * redial is (growth - 1) x the time already spent redialing, plus initialMs:
 * with 2, a dialer could come back as late again as its peer had been away.
 * A primary SIGKILLed and started again 1.5 s later was redialed by its
 * replica only at 3.1 s; measured, the replica's link came back up to 1.3 s
 * after the restarted primary served (test/transport/rejoin.test.ts). With
 * 1.25 the redial comes at most a quarter of the outage, plus initialMs,
 * after the peer is back (measured: up to 0.5 s). maxMs still bounds how
 * often a peer that stays down is dialed, and the count starts again from
 * initialMs after each link that opened.
 */
import WebSocket from 'ws';
import {
  CloseCodes,
  emptyCounters,
  LinkCore,
  resolveLimits,
  silentLogger,
  type LinkCounters,
  type LinkLimits,
  type LinkLogger,
  type PeerLink,
} from './link.ts';
import { loadPeerTls, PEER_TLS_MIN_VERSION, type PeerTlsFiles } from './tls-config.ts';

export interface BackoffOptions {
  /** Delay before the first redial, ms. */
  initialMs: number;
  /** Cap of the exponential growth, ms. */
  maxMs: number;
  /** Factor by which each failed dial lengthens the next delay, >= 1 (see the top of this file). */
  growth: number;
  /** Fraction of the delay that is random, in [0, 1]: delay * (1 - jitter * random()). */
  jitter: number;
}

export const defaultBackoff: BackoffOptions = { initialMs: 100, maxMs: 10_000, growth: 1.25, jitter: 0.5 };

/** Delay before redial number `attempt` (0 = first redial after a drop). Pure; `random` in [0, 1). */
export function backoffDelayMs(attempt: number, backoff: BackoffOptions, random: number): number {
  // Past the range of a double this is Infinity (then the cap), or NaN when initialMs is 0.
  const grown = backoff.initialMs * backoff.growth ** attempt;
  const exponential = Number.isNaN(grown) ? 0 : Math.min(backoff.maxMs, grown);
  return Math.round(exponential * (1 - backoff.jitter * random));
}

/** Time and randomness of the dialer, injectable so tests control them. */
export interface ClientEnv {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  random(): number;
}

const realEnv: ClientEnv = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  random: Math.random,
};

export interface PeerClientOptions extends Partial<LinkLimits> {
  /** ws://host:port/peer of the peer's listener; wss:// exactly when `tls` is given. */
  url: string;
  /**
   * Mutual TLS (PEM file paths, read once here): present `cert`, and accept
   * only a listener whose certificate is signed by `ca` and names the URL's host.
   */
  tls?: PeerTlsFiles | undefined;
  logger?: LinkLogger;
  /** Called for every link, the first and each one after a redial. */
  onLink(link: PeerLink): void;
  backoff?: Partial<BackoffOptions>;
  /** Give up a dial attempt after this long, ms. Default 5000. */
  handshakeTimeoutMs?: number;
  /**
   * The dialer pings every idleTimeoutMs / 2 and drops the link (4022) when
   * nothing at all arrived for two such periods: a peer that vanished without
   * a FIN is noticed and redialed. Default 30000.
   */
  idleTimeoutMs?: number;
  env?: ClientEnv;
}

export interface PeerClient {
  /** The open link, if any. */
  readonly link: PeerLink | undefined;
  /** Sums over every link this client ever had. */
  readonly counters: Readonly<LinkCounters>;
  /** Dial attempts that opened a link. */
  readonly connects: number;
  /**
   * The next redial waits at least this long, whatever the backoff says (the
   * peer refused us: dialing again sooner changes nothing).
   */
  holdOff(delayMs: number): void;
  /** Dial attempts that failed before opening. */
  readonly dialFailures: number;
  /** Stops redialing and closes the open link (code 1000). Resolves once the socket is closed. */
  stop(): Promise<void>;
}

/** Starts dialing `url` at once; never rejects (failures become redials). */
export function startPeerClient(options: PeerClientOptions): PeerClient {
  const limits = resolveLimits(options);
  const logger = options.logger ?? silentLogger;
  const backoff = { ...defaultBackoff, ...options.backoff };
  if (!(
    backoff.initialMs >= 0 &&
    backoff.maxMs >= backoff.initialMs &&
    backoff.growth >= 1 &&
    backoff.jitter >= 0 &&
    backoff.jitter <= 1
  )) {
    throw new RangeError(`peer client: bad backoff ${JSON.stringify(backoff)}`);
  }
  const idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
  if (!Number.isSafeInteger(idleTimeoutMs) || idleTimeoutMs < 2) {
    throw new RangeError(`peer client: idleTimeoutMs must be an integer >= 2, got ${idleTimeoutMs}`);
  }
  const secure = options.url.startsWith('wss://');
  if (secure !== (options.tls !== undefined)) {
    throw new RangeError(
      `peer client: ${options.url} ${secure ? 'needs the tls option' : 'must be wss:// when tls is given'}`,
    );
  }
  const tlsMaterial = options.tls ? loadPeerTls(options.tls) : undefined;
  const tlsOptions = tlsMaterial && {
    ca: tlsMaterial.ca,
    cert: tlsMaterial.cert,
    key: tlsMaterial.key,
    rejectUnauthorized: true,
    minVersion: PEER_TLS_MIN_VERSION,
  };
  const env = options.env ?? realEnv;
  const totals = emptyCounters();
  let socket: WebSocket | undefined;
  let link: LinkCore | undefined;
  let attempt = 0;
  let redialTimer: unknown;
  let stopped = false;
  let connects = 0;
  let dialFailures = 0;
  let holdOffMs = 0;

  const scheduleRedial = (): void => {
    if (stopped) return;
    const delayMs = Math.max(backoffDelayMs(attempt++, backoff, env.random()), holdOffMs);
    holdOffMs = 0;
    logger.info({ url: options.url, delayMs, attempt }, 'peer client: redial scheduled');
    redialTimer = env.setTimeout(() => {
      redialTimer = undefined;
      dial();
    }, delayMs);
  };

  /** Pings the peer; drops the link when nothing arrived for two periods. */
  const keepAlive = (ws: WebSocket, current: LinkCore): void => {
    let heard = false;
    let silentPeriods = 0;
    const markHeard = (): void => {
      heard = true;
    };
    ws.on('message', markHeard).on('ping', markHeard).on('pong', markHeard);
    let timer: unknown;
    const tick = (): void => {
      if (current.closed) return;
      silentPeriods = heard ? 0 : silentPeriods + 1;
      if (silentPeriods >= 2) {
        current.abort(CloseCodes.idle, `peer silent for ${idleTimeoutMs} ms`);
        return;
      }
      heard = false;
      ws.ping();
      timer = env.setTimeout(tick, idleTimeoutMs / 2);
    };
    timer = env.setTimeout(tick, idleTimeoutMs / 2);
    current.onClose(() => env.clearTimeout(timer));
  };

  const dial = (): void => {
    if (stopped) return;
    const ws = new WebSocket(options.url, {
      maxPayload: limits.maxFrameBytes,
      perMessageDeflate: false,
      handshakeTimeout: options.handshakeTimeoutMs ?? 5000,
      ...tlsOptions,
    });
    socket = ws;
    let opened = false;
    let current: LinkCore | undefined;
    ws.on('open', () => {
      opened = true;
      // stop() came while connecting: the peer already holds a link, so say goodbye cleanly.
      if (stopped) {
        ws.close(1000, 'client stopping');
        return;
      }
      // Reset on success: the next outage is redialed from initialMs again.
      attempt = 0;
      connects++;
      const created: LinkCore = new LinkCore({
        side: 'client',
        remoteAddress: options.url,
        limits,
        logger,
        totals,
        ops: {
          write: (bytes) => {
            // The callback runs once these bytes reach the kernel: the moment to re-check the queue.
            ws.send(bytes, { binary: true, compress: false }, () => created.handleDrain());
            return true;
          },
          bufferedAmount: () => ws.bufferedAmount,
          end: (code, reason) => ws.close(code, reason),
          terminate: () => ws.terminate(),
        },
      });
      current = created;
      link = created;
      ws.on('message', (data: Buffer, isBinary: boolean) => created.handleMessage(data, isBinary, true));
      created.onClose(() => {
        if (link === created) link = undefined;
      });
      options.onLink(created);
      keepAlive(ws, created);
    });
    ws.on('error', (err: Error & { code?: string }) => {
      if (!opened) dialFailures++;
      // ws refused a message over maxPayload and closes the socket next.
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        current?.rejectedByLibrary('message over maxFrameBytes (ws)');
      }
      logger.warn({ url: options.url, err: err.message, opened }, 'peer client: socket error');
    });
    ws.on('close', (code: number, reason: Buffer) => {
      if (socket === ws) socket = undefined;
      current?.handleClosed(code, reason.toString());
      scheduleRedial();
    });
  };

  dial();

  return {
    get link() {
      return link;
    },
    counters: totals,
    get connects() {
      return connects;
    },
    get dialFailures() {
      return dialFailures;
    },
    holdOff(delayMs: number) {
      holdOffMs = Math.max(holdOffMs, delayMs);
    },
    stop() {
      stopped = true;
      if (redialTimer !== undefined) env.clearTimeout(redialTimer);
      redialTimer = undefined;
      const ws = socket;
      if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
      return new Promise<void>((resolve) => {
        ws.once('close', () => resolve());
        if (link) link.close(1000, 'client stopping');
        // Still connecting: the 'open' handler closes with 1000 (or the timer below cuts it).
        else if (ws.readyState !== WebSocket.CONNECTING) ws.terminate();
        // A graceful close waits for the peer's reply; do not wait on a dead peer.
        const force = setTimeout(() => ws.terminate(), 1000);
        ws.once('close', () => clearTimeout(force));
      });
    },
  };
}
