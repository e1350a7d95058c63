/**
 * `vrep serve`: a ReplicationNode with its HTTP API (docs/http-api.md).
 *
 * The HTTP listener is bound first so the node can be told its real HTTP
 * address (port 0 picks one), which replicas name in read-only errors. Until
 * the node has recovered its data, every request but an unauthenticated one
 * gets 503 ERR_STARTING. Stopping is the reverse: HTTP stops taking requests
 * and lets the ones in flight finish (up to `shutdownGraceMs`) before the
 * node closes its store, and no handler reaches the node once it is closing.
 */
import type { Logger } from 'pino';
import { messageOf, vrepError } from '../errors.ts';
import { errorReply, startHttpServer, type HttpServer } from '../transport/http-server.ts';
import { apiRoutes, errorToReply, tokenGuard } from './http-api.ts';
import { replicationRoutes } from './replication-api.ts';
import { changesPlainRoute, changesRoute } from './changes-ws.ts';
import { ServerMetrics } from './metrics.ts';
import { nativeInfo } from '../native/info.ts';
import { ReplicationNode } from '../node/replication-node.ts';
import type { ReplicationNodeOptions } from '../node/types.ts';
import { formatHostPort } from '../transport/address.ts';

export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;
/** How long a stop waits for HTTP requests in flight before the node closes under them. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 5000;

export interface ServeHttpOptions {
  host: string;
  port: number;
  /** Bearer token required on every route but /health (null: none). */
  token?: string | null;
  /** Largest HTTP request body accepted (default 64 MiB). */
  maxBodyBytes?: number;
  /** The HTTP address told to peers; default host:port as bound. */
  advertiseAddress?: string | null;
}

/** The resolved configuration (src/config/resolve.ts) and a logger. */
export interface ServeOptions {
  node: ReplicationNodeOptions;
  http: ServeHttpOptions;
  logger: Logger;
  /** How long stop() lets HTTP requests in flight finish (default 5 s). */
  shutdownGraceMs?: number;
}

export interface RunningServer {
  readonly httpPort: number;
  readonly node: ReplicationNode;
  /**
   * Stops accepting requests (later ones get 503), waits for the ones in
   * flight (up to the grace), then stops the node (WAL flushed, links
   * closed) and drops the connections left.
   */
  stop(): Promise<void>;
}

export async function serve(opts: ServeOptions): Promise<RunningServer> {
  const { logger } = opts;
  const startedAtMs = Date.now();
  const maxBodyBytes = opts.http.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const token = opts.http.token ?? null;
  const metrics = new ServerMetrics();
  let started: ReplicationNode | undefined;
  let stopping = false;
  const current = (): ReplicationNode => {
    // Never an answer from a closed store: a handler still running when the node stops gets 503.
    if (stopping) throw vrepError('ERR_NODE_STOPPED');
    // The guard answers 503 before any handler runs while the node starts.
    if (started === undefined) throw new Error('node not started');
    return started;
  };
  // The routes are built before the node exists; this forwards to it once started.
  const node = new Proxy({} as ReplicationNode, {
    get(_target, prop) {
      const n = current();
      const value: unknown = Reflect.get(n, prop, n);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(n) : value;
    },
  });
  const checkToken = tokenGuard(token);
  const http: HttpServer = await startHttpServer({
    host: opts.http.host,
    port: opts.http.port,
    maxBodyBytes,
    routes: [
      ...apiRoutes({
        node,
        metrics,
        logger,
        maxBodyBytes,
        token,
        health: () => {
          const writable = node.writable;
          // Degraded: a node meant to take writes (not a replica) that cannot (a full disk, fenced).
          const degraded = node.role !== 'replica' && !writable.ok;
          return {
            status: degraded ? 'degraded' : 'ok',
            writable,
            node_id: node.nodeId,
            role: node.role,
            uptime_ms: Date.now() - startedAtMs,
            last_lsn: node.lastLsn,
            collections: node.collections().length,
            native: nativeInfo(),
          };
        },
      }),
      ...replicationRoutes({ node }),
      changesPlainRoute,
    ],
    // Behind the same guard as the routes: the token, and 503 while the node starts.
    upgrades: [changesRoute({ node, logger })],
    guard: (head) =>
      checkToken(head) ??
      (started === undefined ? errorReply('ERR_STARTING', messageOf('ERR_STARTING')) : undefined),
    onResponse: (route, method, status) => metrics.httpRequests.inc({ route, method, status }),
    onError: (err) => errorToReply(err, logger),
  });
  const httpAddress = opts.http.advertiseAddress ?? formatHostPort(opts.http.host, http.port);

  try {
    started = await ReplicationNode.start({
      logger,
      ...opts.node,
      replication: { ...opts.node.replication, httpAddress },
    });
    const running = started;
    metrics.observeNode(
      () => running.replicationStatus(),
      () => running.walFsyncLatenciesMs,
    );
  } catch (err) {
    http.close();
    throw err;
  }
  const r = started.recovery;
  logger.info(
    {
      dataDir: opts.node.dataDir,
      lastLsn: started.lastLsn,
      snapshotLsn: r.snapshotLsn,
      walRecords: r.wal.records,
      recoveryMs: Math.round(r.durationMs),
    },
    'store recovered',
  );
  if (r.wal.truncated) logger.warn(r.wal.truncated, 'WAL: a torn tail was cut at the last good record');
  logger.info(
    {
      nodeId: started.nodeId,
      role: started.role,
      http: `${opts.http.host}:${http.port}`,
      httpAddress,
      ...(started.role !== 'standalone'
        ? { bind: opts.node.replication?.bindAddress, peerPort: started.peerPort }
        : {}),
    },
    'vrep node serving',
  );
  const running = started;
  return {
    httpPort: http.port,
    node: running,
    stop: async () => {
      await http.drain(opts.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS);
      stopping = true;
      try {
        await running.stop();
      } finally {
        http.close();
      }
    },
  };
}
