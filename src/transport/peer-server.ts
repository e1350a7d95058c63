/**
 * The accepting side of peer links: a uWebSockets.js listener bound to the
 * node's peer address (bind_address). Every accepted WebSocket becomes a
 * `PeerLink` (link.ts). uWS enforces the frame limit before buffering a
 * message (maxPayloadLength) and the link checks the declared length again.
 * With `tls`, a mutual-TLS front (tls-front.ts) owns the public address and
 * uWS listens on a private Unix socket behind it.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import uWS from 'uWebSockets.js';
import { listenUws } from './uws-listen.ts';
import { isLoopbackAddress } from './loopback.ts';
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
import { loadPeerTls, type PeerTlsFiles } from './tls-config.ts';
import { startTlsFront, type TlsFront } from './tls-front.ts';
import { makePeerSocketDir } from './socket-dir.ts';

export interface PeerServerOptions extends Partial<LinkLimits> {
  host: string;
  /** 0 picks a free port; `PeerServer.port` reports it. */
  port: number;
  /** How long to wait for a port another process holds (see uws-listen.ts); default 0: fail at once. */
  bindRetryMs?: number;
  /**
   * Protected mode: a peer connecting from a non-loopback address is closed
   * at once with 4040 and a reason, and the refusal is logged; it never
   * becomes a link. The replication layer sets it when nothing authenticates
   * peers (no secret, no TLS) and insecure_no_auth is off.
   */
  loopbackOnly?: boolean;
  /** URL path of the peer route; '/peer' by default. */
  path?: string;
  logger?: LinkLogger;
  /** Called once per accepted connection, before any frame is delivered. */
  onLink(link: PeerLink): void;
  /** Seconds without traffic before uWS closes the link (pings keep it alive); 0 disables. Default 60. */
  idleTimeoutSec?: number;
  /**
   * Mutual TLS: only clients with a certificate signed by `ca` are accepted
   * (PEM file paths, read once here). Without it the listener is plain ws://.
   */
  tls?: PeerTlsFiles | undefined;
  /** With `tls`: a TLS handshake not finished in this long is dropped, ms. Default 10000. */
  tlsHandshakeTimeoutMs?: number;
}

export interface PeerServer {
  readonly port: number;
  /** Open links. */
  readonly links: ReadonlySet<PeerLink>;
  /** Sums over every link this server ever had. */
  readonly counters: Readonly<LinkCounters>;
  /** With `tls`: connections refused in the TLS handshake (no or untrusted certificate, not TLS). */
  readonly tlsRefusals: number;
  /** Stops listening and closes every open link with code 4030. */
  close(): void;
}

/** Why protected mode refused a peer: told to the peer (close reason, at most 123 bytes) and logged. */
export const PROTECTED_MODE_REASON = 'no replication.secret: peers are accepted from loopback only';

/** The close message uWS gives when a message exceeds maxPayloadLength (v20.30). */
const UWS_TOO_BIG = 'Received too big message';

interface SocketData {
  link?: LinkCore;
  /** The peer's address; behind the TLS front, from the front's PROXY header. */
  remoteAddress: string;
}

/** Starts the uWS peer listener on exactly host:port (with `tls`, the TLS front takes that address). */
export async function startPeerServer(options: PeerServerOptions): Promise<PeerServer> {
  const limits = resolveLimits(options);
  const logger = options.logger ?? silentLogger;
  const totals = emptyCounters();
  const links = new Set<LinkCore>();
  const tlsMaterial = options.tls ? loadPeerTls(options.tls) : undefined;
  const app = uWS.App();
  app.ws<SocketData>(options.path ?? '/peer', {
    maxPayloadLength: limits.maxFrameBytes,
    // Above our own bound (limit + one frame), so uWS never drops a frame we numbered.
    maxBackpressure: limits.maxBufferedBytes + limits.maxFrameBytes,
    closeOnBackpressureLimit: 0,
    compression: uWS.DISABLED,
    idleTimeout: options.idleTimeoutSec ?? 60,
    sendPingsAutomatically: true,
    upgrade: (res, req, context) => {
      // Behind the front only: there the PROXY header comes from the front, not from the peer.
      const remoteAddress = tlsMaterial
        ? Buffer.from(res.getProxiedRemoteAddressAsText()).toString() || 'unknown (via TLS front)'
        : Buffer.from(res.getRemoteAddressAsText()).toString();
      res.upgrade<SocketData>(
        { remoteAddress },
        req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },
    open: (ws) => {
      const { remoteAddress } = ws.getUserData();
      if (options.loopbackOnly === true && !isLoopbackAddress(remoteAddress)) {
        // Refused after the upgrade rather than before it, so the dialer logs the reason too.
        logger.warn(
          { remote: remoteAddress, reason: PROTECTED_MODE_REASON },
          'peer server: refused a peer from a non-loopback address (protected mode: set replication.secret, or replication.insecure_no_auth)',
        );
        ws.end(CloseCodes.authFailed, PROTECTED_MODE_REASON);
        return;
      }
      const link = new LinkCore({
        side: 'server',
        remoteAddress,
        limits,
        logger,
        totals,
        ops: {
          // uWS: 1 sent, 0 queued (backpressure), 2 dropped over maxBackpressure.
          write: (bytes) => ws.send(bytes, true, false) !== 2,
          bufferedAmount: () => ws.getBufferedAmount(),
          end: (code, reason) => ws.end(code, reason),
          terminate: () => ws.close(),
        },
      });
      ws.getUserData().link = link;
      links.add(link);
      link.onClose(() => links.delete(link));
      options.onLink(link);
    },
    message: (ws, message, isBinary) => {
      // The ArrayBuffer is neutered when this callback returns: the link copies the payload.
      ws.getUserData().link?.handleMessage(new Uint8Array(message), isBinary, false);
    },
    drain: (ws) => ws.getUserData().link?.handleDrain(),
    close: (ws, code, message) => {
      const link = ws.getUserData().link;
      const reason = Buffer.from(message).toString();
      // uWS's own maxPayloadLength refusal (it closes before any callback sees the bytes).
      if (code === 1006 && reason === UWS_TOO_BIG)
        link?.rejectedByLibrary('message over maxFrameBytes (uWS)');
      link?.handleClosed(code, reason);
    },
  });
  const host = options.host;
  if (!tlsMaterial) {
    const listenSocket = await listenUws(app, {
      host,
      port: options.port,
      what: 'peer server',
      ...(options.bindRetryMs !== undefined ? { bindRetryMs: options.bindRetryMs } : {}),
      onBusy: (waitedMs) =>
        logger.warn(
          { host, port: options.port, waitedMs },
          'peer server: port held by another process; retrying',
        ),
    });
    return serverHandle({ port: uWS.us_socket_local_port(listenSocket), listenSocket, links, totals });
  }
  // 0700 (mkdtemp): only this user can reach the socket behind the TLS check. Named by pid, so
  // the directory of a node that was SIGKILLed is swept by the next one (socket-dir.ts).
  const socketDir = makePeerSocketDir();
  const removeSocketDir = (): void => rmSync(socketDir, { recursive: true, force: true });
  const upstreamPath = path.join(socketDir, 'uws.sock');
  const listenSocket = await listen((cb) => app.listen_unix(cb, upstreamPath));
  if (!listenSocket) {
    removeSocketDir();
    throw new Error(`peer server: uWS cannot listen on the Unix socket ${upstreamPath}`);
  }
  let front: TlsFront;
  try {
    front = await startTlsFront({
      host,
      port: options.port,
      tls: tlsMaterial,
      upstreamPath,
      logger,
      handshakeTimeoutMs: options.tlsHandshakeTimeoutMs ?? 10_000,
    });
  } catch (err) {
    uWS.us_listen_socket_close(listenSocket);
    removeSocketDir();
    throw err;
  }
  return serverHandle({
    port: front.port,
    listenSocket,
    links,
    totals,
    tlsRefusals: () => front.refusals,
    closeFront: () => {
      // Links close through the front (below, 4030); the grace lets their close frames out.
      front.close(2000);
      removeSocketDir();
    },
  });
}

type ListenSocket = uWS.us_listen_socket | false;

/** uWS reports listening through a callback, synchronously or later. */
function listen(start: (cb: (listenSocket: ListenSocket) => void) => void): Promise<ListenSocket> {
  return new Promise((resolve) => start(resolve));
}

function serverHandle(parts: {
  port: number;
  listenSocket: uWS.us_listen_socket;
  links: Set<LinkCore>;
  totals: LinkCounters;
  tlsRefusals?: () => number;
  closeFront?: () => void;
}): PeerServer {
  const { port, listenSocket, links, totals, tlsRefusals = () => 0, closeFront = () => {} } = parts;
  let listening = true;
  return {
    port,
    links,
    counters: totals,
    get tlsRefusals() {
      return tlsRefusals();
    },
    close: () => {
      if (listening) {
        uWS.us_listen_socket_close(listenSocket);
        closeFront();
      }
      listening = false;
      for (const link of [...links]) link.close(CloseCodes.shutdown, 'server shutting down');
    },
  };
}
