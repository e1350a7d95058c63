/**
 * `vrep serve`. This build serves a standalone node's health endpoint; the
 * data API, storage and replication arrive with their own modules.
 */
import type { Logger } from 'pino';
import { startHttpServer, type HttpServer } from '../transport/http-server.ts';
import { nativeInfo } from '../native/info.ts';

export interface ServeOptions {
  nodeId: string;
  httpHost: string;
  httpPort: number;
  logger: Logger;
}

export interface RunningServer {
  readonly httpPort: number;
  stop(): void;
}

export async function serve(opts: ServeOptions): Promise<RunningServer> {
  const startedAtMs = Date.now();
  const http: HttpServer = await startHttpServer(opts.httpHost, opts.httpPort, {
    '/health': () => ({
      status: 200,
      body: {
        status: 'ok',
        node_id: opts.nodeId,
        role: 'standalone',
        uptime_ms: Date.now() - startedAtMs,
        native: nativeInfo(),
      },
    }),
  });
  opts.logger.info({ nodeId: opts.nodeId, http: `${opts.httpHost}:${http.port}` }, 'vrep node serving');
  return {
    httpPort: http.port,
    stop: () => http.close(),
  };
}
