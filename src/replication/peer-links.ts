/**
 * Peer links of a role (primary or replica), from its settings: the
 * listener on bind_address and dialers to other nodes' addresses.
 */
import { startPeerServer, type PeerServer } from '../transport/peer-server.ts';
import { startPeerClient, type PeerClient } from '../transport/peer-client.ts';
import type { LinkCounters, PeerLink } from '../transport/link.ts';
import type { SessionLogger } from './peer-session.ts';
import { peerUrl, type ResolvedReplication } from './settings.ts';

/** Listens on the role's bind address (TLS when configured), handing each link to `onLink`. */
export function peerListener(
  settings: ResolvedReplication,
  logger: SessionLogger,
  onLink: (link: PeerLink) => void,
): Promise<PeerServer> {
  return startPeerServer({
    host: settings.bind.host,
    port: settings.bind.port,
    logger,
    tls: settings.tls ?? undefined,
    // Protected mode: nothing authenticates peers, so only this machine may connect.
    loopbackOnly: settings.secret === null && settings.tls === null && !settings.insecureNoAuth,
    ...settings.linkLimits,
    onLink,
  });
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
