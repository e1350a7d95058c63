/**
 * `vrep serve`. This build runs a standalone node: the durable store opened
 * on the data dir, served by the HTTP data API (docs/http-api.md).
 * Replication arrives with its own modules.
 */
import type { Logger } from 'pino';
import { startHttpServer, type HttpServer } from '../transport/http-server.ts';
import { apiRoutes, errorToReply, tokenGuard } from './http-api.ts';
import { ServerMetrics } from './metrics.ts';
import { nativeInfo } from '../native/info.ts';
import { ReplicationNode } from '../node/replication-node.ts';
import type { FsyncPolicy } from '../log/wal.ts';

export interface ServeOptions {
  nodeId: string;
  dataDir: string;
  fsync: FsyncPolicy;
  httpHost: string;
  httpPort: number;
  logger: Logger;
  /** Bearer token required on every route but /health (null: none). */
  token?: string | null;
  /** Largest HTTP request body accepted (default 64 MiB). */
  maxBodyBytes?: number;
}

export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;

export interface RunningServer {
  readonly httpPort: number;
  /** Stops accepting requests, then flushes the WAL and releases the data dir. */
  stop(): Promise<void>;
}

export async function serve(opts: ServeOptions): Promise<RunningServer> {
  const startedAtMs = Date.now();
  const node = await ReplicationNode.start({
    nodeId: opts.nodeId,
    dataDir: opts.dataDir,
    storage: { fsync: opts.fsync },
  });
  const r = node.recovery;
  opts.logger.info(
    {
      dataDir: opts.dataDir,
      lastLsn: node.lastLsn,
      snapshotLsn: r.snapshotLsn,
      walRecords: r.wal.records,
      recoveryMs: Math.round(r.durationMs),
    },
    'store recovered',
  );
  if (r.wal.truncated) opts.logger.warn(r.wal.truncated, 'WAL: a torn tail was cut at the last good record');
  let http: HttpServer;
  try {
    const metrics = new ServerMetrics();
    const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    http = await startHttpServer({
      host: opts.httpHost,
      port: opts.httpPort,
      maxBodyBytes,
      routes: apiRoutes({
        node,
        metrics,
        logger: opts.logger,
        maxBodyBytes,
        token: opts.token ?? null,
        health: () => ({
          status: 'ok',
          node_id: node.nodeId,
          role: node.role,
          uptime_ms: Date.now() - startedAtMs,
          last_lsn: node.lastLsn,
          collections: node.collections().length,
          native: nativeInfo(),
        }),
      }),
      guard: tokenGuard(opts.token ?? null),
      onResponse: (route, method, status) => metrics.httpRequests.inc({ route, method, status }),
      onError: (err) => errorToReply(err, opts.logger),
    });
  } catch (err) {
    await node.stop();
    throw err;
  }
  opts.logger.info({ nodeId: node.nodeId, http: `${opts.httpHost}:${http.port}` }, 'vrep node serving');
  return {
    httpPort: http.port,
    stop: async () => {
      http.close();
      await node.stop();
    },
  };
}
