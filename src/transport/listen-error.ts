/**
 * Why a listener could not bind, in words an operator can act on, shared by
 * every listener (HTTP, uWS peer, TLS front). uWS only says "no" (false),
 * so for it the reason comes from binding the same address once more with
 * Node's own `net` (SO_REUSEADDR, no SO_REUSEPORT: a live listener makes it
 * fail with EADDRINUSE, a port left in TIME_WAIT does not).
 */
import { createServer } from 'node:net';
import { VrepError } from '../errors.ts';

const REASONS: Record<string, string> = {
  EADDRINUSE: 'address in use: another process listens there (stop it or pick another port)',
  EADDRNOTAVAIL: 'not an address of this machine',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name does not resolve (DNS not answering)',
};

export function formatListenAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** `what` names the listener ("HTTP", "peer server"); `code` is the errno code when known. */
export function listenError(what: string, host: string, port: number, code: string | undefined): VrepError {
  const why = code === undefined ? 'the socket library refused the bind' : (REASONS[code] ?? code);
  return new VrepError('ERR_LISTEN', `${what}: cannot listen on ${formatListenAddress(host, port)}: ${why}`);
}

/**
 * Binds host:port with a plain `net` server and closes it again. Resolves
 * with the port bound (the kernel's pick when `port` is 0), or rejects with
 * the errno error.
 */
export function probeBind(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      const bound = (server.address() as { port: number }).port;
      server.close(() => resolve(bound));
    });
  });
}

/** The errno code a bind of host:port fails with right now; undefined when it would succeed. */
export async function bindFailureCode(host: string, port: number): Promise<string | undefined> {
  try {
    await probeBind(host, port);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'unknown error';
  }
}
