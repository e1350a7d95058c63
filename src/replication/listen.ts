/**
 * Starts the peer listener, waiting out a busy port for a while. uWS
 * (v20.30) does not set SO_REUSEADDR, so after a node stops, connections it
 * closed first keep its peer port in TIME_WAIT for up to a minute (Linux)
 * and an immediate restart on the same address cannot bind. Retrying beats
 * failing: the node starts as soon as the kernel frees the port.
 */
import { startPeerServer, type PeerServer, type PeerServerOptions } from '../transport/peer-server.ts';
import type { SessionLogger } from './peer-session.ts';

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
