/**
 * Peer links of a role (primary or replica), from its settings: the
 * listener on bind_address and dialers to other nodes' addresses.
 *
 * The listener waits out a busy port for a while. uWS
 * (v20.30) does not set SO_REUSEADDR, so after a node stops, connections it
 * closed first keep its peer port in TIME_WAIT for up to a minute (Linux)
 * and an immediate restart on the same address cannot bind. Retrying beats
 * failing: the node starts as soon as the kernel frees the port.
 */
import { startPeerServer, type PeerServer, type PeerServerOptions } from '../transport/peer-server.ts';
import { startPeerClient, type PeerClient } from '../transport/peer-client.ts';
import type { LinkCounters, PeerLink } from '../transport/link.ts';
import type { SessionLogger } from './peer-session.ts';
import { peerUrl, type ResolvedReplication } from './settings.ts';

/** Linux keeps TIME_WAIT for 60 s; a little more. */
export const BIND_RETRY_MS = 65_000;
const RETRY_PAUSE_MS = 500;
const WARN_EVERY_MS = 5000;

export async function listenForPeers(
  options: PeerServerOptions,
  logger: SessionLogger,
  retryMs = BIND_RETRY_MS,
): Promise<PeerServer> {
  const startMs = Date.now();
  let warnedMs = 0;
  for (;;) {
    try {
      return await startPeerServer(options);
    } catch (err) {
      const elapsedMs = Date.now() - startMs;
      if (options.port === 0 || !/cannot listen/.test((err as Error).message) || elapsedMs >= retryMs)
        throw err;
      if (elapsedMs - warnedMs >= WARN_EVERY_MS || warnedMs === 0) {
        warnedMs = Math.max(elapsedMs, 1);
        logger.warn(
          { host: options.host, port: options.port, waitedMs: elapsedMs, limitMs: retryMs },
          'replication: peer port busy (TIME_WAIT after a restart, or another process); retrying',
        );
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
    }
  }
}

/** Listens on the role's bind address (TLS when configured), handing each link to `onLink`. */
export function peerListener(
  settings: ResolvedReplication,
  logger: SessionLogger,
  onLink: (link: PeerLink) => void,
): Promise<PeerServer> {
  return listenForPeers(
    {
      host: settings.bind.host,
      port: settings.bind.port,
      logger,
      tls: settings.tls ?? undefined,
      ...settings.linkLimits,
      onLink,
    },
    logger,
  );
}

/** Keeps a link to `address` (redialing with backoff up to reconnectIntervalMs). */
export function peerDialer(
  address: string,
  settings: ResolvedReplication,
  logger: SessionLogger,
  onLink: (link: PeerLink) => void,
): PeerClient {
  return startPeerClient({
    url: peerUrl(address, settings.tls !== null),
    ...(settings.tls ? { tls: settings.tls } : {}),
    logger,
    backoff: { maxMs: settings.timing.reconnectIntervalMs },
    ...settings.linkLimits,
    onLink,
  });
}

/** What the replication status reports of a role's links. */
export interface LinkTotals {
  bytesSent: number;
  bytesReceived: number;
  framesRejected: number;
  slowPeerDisconnects: number;
}

export function sumLinkCounters(all: readonly (Readonly<LinkCounters> | undefined)[]): LinkTotals {
  const sum: LinkTotals = { bytesSent: 0, bytesReceived: 0, framesRejected: 0, slowPeerDisconnects: 0 };
  for (const c of all) {
    if (!c) continue;
    sum.bytesSent += c.bytesSent;
    sum.bytesReceived += c.bytesReceived;
    sum.framesRejected += c.framesRejected;
    sum.slowPeerDisconnects += c.slowPeerDisconnects;
  }
  return sum;
}
