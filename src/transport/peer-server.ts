/**
 * The accepting side of peer links: a uWebSockets.js listener bound to the
 * node's peer address (bind_address). Every accepted WebSocket becomes a
 * `PeerLink` (link.ts). uWS enforces the frame limit before buffering a
 * message (maxPayloadLength) and the link checks the declared length again.
 */
import uWS from 'uWebSockets.js';
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

export interface PeerServerOptions extends Partial<LinkLimits> {
  host: string;
  /** 0 picks a free port; `PeerServer.port` reports it. */
  port: number;
  /** URL path of the peer route; '/peer' by default. */
  path?: string;
  logger?: LinkLogger;
  /** Called once per accepted connection, before any frame is delivered. */
  onLink(link: PeerLink): void;
  /** Seconds without traffic before uWS closes the link (pings keep it alive); 0 disables. Default 60. */
  idleTimeoutSec?: number;
}

export interface PeerServer {
  readonly port: number;
  /** Open links. */
  readonly links: ReadonlySet<PeerLink>;
  /** Sums over every link this server ever had. */
  readonly counters: Readonly<LinkCounters>;
  /** Stops listening and closes every open link with code 4030. */
  close(): void;
}

/** The close message uWS gives when a message exceeds maxPayloadLength (v20.30). */
const UWS_TOO_BIG = 'Received too big message';

interface SocketData {
  link?: LinkCore;
}

/** Starts the uWS peer listener on exactly host:port. */
export async function startPeerServer(options: PeerServerOptions): Promise<PeerServer> {
  const limits = resolveLimits(options);
  const logger = options.logger ?? silentLogger;
  const totals = emptyCounters();
  const links = new Set<LinkCore>();
  const app = uWS.App();
  app.ws<SocketData>(options.path ?? '/peer', {
    maxPayloadLength: limits.maxFrameBytes,
    // Above our own bound (limit + one frame), so uWS never drops a frame we numbered.
    maxBackpressure: limits.maxBufferedBytes + limits.maxFrameBytes,
    closeOnBackpressureLimit: 0,
    compression: uWS.DISABLED,
    idleTimeout: options.idleTimeoutSec ?? 60,
    sendPingsAutomatically: true,
    open: (ws) => {
      const remoteAddress = Buffer.from(ws.getRemoteAddressAsText()).toString();
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
  return new Promise((resolve, reject) => {
    app.listen(host, options.port, (listenSocket) => {
      if (!listenSocket) {
        reject(new Error(`peer server: cannot listen on ${host}:${options.port} (in use or not available)`));
        return;
      }
      let listening = true;
      resolve({
        port: uWS.us_socket_local_port(listenSocket),
        links,
        counters: totals,
        close: () => {
          if (listening) uWS.us_listen_socket_close(listenSocket);
          listening = false;
          for (const link of [...links]) link.close(CloseCodes.shutdown, 'server shutting down');
        },
      });
    });
  });
}
