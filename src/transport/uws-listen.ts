/**
 * Binding a uWS app to host:port, waiting out a busy port for a while.
 * uWS (v20.30) does not set SO_REUSEADDR on its listening sockets, so after
 * a server stops, connections it closed first keep the port in TIME_WAIT
 * for up to a minute (Linux) and an immediate restart cannot bind. Every
 * uWS listener (HTTP and peer) binds through here; each says how long to
 * retry. A busy port and a port in TIME_WAIT look the same from here, so a
 * retrying listener also waits that long before reporting a real conflict.
 */
import uWS from 'uWebSockets.js';

/** Linux keeps TIME_WAIT for 60 s; a little more. */
export const TIME_WAIT_RETRY_MS = 65_000;
const RETRY_PAUSE_MS = 500;
const WARN_EVERY_MS = 5000;

export interface ListenOptions {
  host: string;
  port: number;
  /** How long to keep retrying a busy port, ms. Default 0: fail at once. */
  bindRetryMs?: number;
  /** Told every 5 s while the port stays busy. */
  onBusy?: (waitedMs: number) => void;
  /** Names the listener in the error message ("peer server", "HTTP"). */
  what: string;
}

function listenOnce(
  app: uWS.TemplatedApp,
  host: string,
  port: number,
): Promise<uWS.us_listen_socket | false> {
  return new Promise((resolve) => app.listen(host, port, resolve));
}

export async function listenUws(app: uWS.TemplatedApp, opts: ListenOptions): Promise<uWS.us_listen_socket> {
  const retryMs = opts.port === 0 ? 0 : (opts.bindRetryMs ?? 0);
  const startMs = Date.now();
  let warnedMs = 0;
  for (;;) {
    const socket = await listenOnce(app, opts.host, opts.port);
    if (socket) return socket;
    const waitedMs = Date.now() - startMs;
    if (waitedMs >= retryMs) {
      throw new Error(
        `${opts.what}: cannot listen on ${opts.host}:${opts.port} (address in use or not available${retryMs > 0 ? `; retried for ${Math.round(waitedMs / 1000)} s` : ''})`,
      );
    }
    if (warnedMs === 0 || waitedMs - warnedMs >= WARN_EVERY_MS) {
      warnedMs = Math.max(waitedMs, 1);
      opts.onBusy?.(waitedMs);
    }
    await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
  }
}
