/**
 * Binding a uWS app to host:port, exclusively.
 *
 * What uWS v20.30 does to its listening socket (seen with strace): on a
 * given port it sets SO_REUSEADDR and SO_REUSEPORT; on port 0 it sets
 * neither. SO_REUSEPORT let a second process bind a port a live node holds
 * and the kernel then split connections between the two, so every bind
 * here passes LIBUS_LISTEN_EXCLUSIVE_PORT, which drops SO_REUSEPORT and
 * keeps SO_REUSEADDR: a live listener makes the bind fail, while the
 * TIME_WAIT connections a killed node leaves behind do not. Port 0 would get
 * no SO_REUSEADDR at all (its port could then not be bound again for a
 * minute after a kill), so a free port is picked first with a `net` probe
 * and bound as a given port.
 */
import uWS from 'uWebSockets.js';
import { bindFailureCode, listenError, probeBind } from './listen-error.ts';

const RETRY_PAUSE_MS = 500;
const WARN_EVERY_MS = 5000;
/** The native module's export (the typings declare it only inside a type-only enum). */
const EXCLUSIVE_PORT = (uWS as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT: number })
  .LIBUS_LISTEN_EXCLUSIVE_PORT;
if (EXCLUSIVE_PORT !== 1)
  throw new Error('uWebSockets.js: LIBUS_LISTEN_EXCLUSIVE_PORT missing; check the uWS version');
/** Port 0: how many kernel-picked ports to try (another process may take one between probe and bind). */
const FREE_PORT_ATTEMPTS = 5;

export interface ListenOptions {
  host: string;
  port: number;
  /**
   * How long to keep retrying a port another process holds, ms. Default 0:
   * fail at once (a node never shares a port, and a killed node's TIME_WAIT
   * does not block the bind). For a caller that knows the holder is exiting.
   */
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
  // listen(host, port, options, cb) exists in the native binding; the typings only declare it without host.
  const listen = app.listen as unknown as (
    host: string,
    port: number,
    options: number,
    cb: (socket: uWS.us_listen_socket | false) => void,
  ) => void;
  return new Promise((resolve) => listen.call(app, host, port, EXCLUSIVE_PORT, resolve));
}

/** Binds exactly host:port (port 0: a free one); throws VrepError ERR_LISTEN saying why it cannot. */
export async function listenUws(app: uWS.TemplatedApp, opts: ListenOptions): Promise<uWS.us_listen_socket> {
  if (opts.port === 0) {
    for (let attempt = 0; attempt < FREE_PORT_ATTEMPTS; attempt++) {
      let port: number;
      try {
        port = await probeBind(opts.host, 0);
      } catch (err) {
        throw listenError(opts.what, opts.host, 0, (err as NodeJS.ErrnoException).code);
      }
      const socket = await listenOnce(app, opts.host, port);
      if (socket) return socket;
    }
    throw listenError(opts.what, opts.host, 0, await bindFailureCode(opts.host, 0));
  }
  const retryMs = opts.bindRetryMs ?? 0;
  const startMs = Date.now();
  let warnedMs = 0;
  for (;;) {
    const socket = await listenOnce(app, opts.host, opts.port);
    if (socket) return socket;
    const waitedMs = Date.now() - startMs;
    if (waitedMs >= retryMs) {
      const error = listenError(opts.what, opts.host, opts.port, await bindFailureCode(opts.host, opts.port));
      if (retryMs > 0) error.message += ` (retried for ${Math.round(waitedMs / 1000)} s)`;
      throw error;
    }
    if (warnedMs === 0 || waitedMs - warnedMs >= WARN_EVERY_MS) {
      warnedMs = Math.max(waitedMs, 1);
      opts.onBusy?.(waitedMs);
    }
    await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
  }
}
