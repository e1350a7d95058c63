/**
 * The HTTP API listener, on Node's own `node:http` (llhttp). It was on
 * uWebSockets.js, whose parser gave no answer at all to HTTP/1.0 requests
 * and to HTTP/1.1 requests without Host (a load balancer's health check),
 * took two different Content-Lengths, and dropped a request pipelined right
 * after a body; none of that is reachable from JS. Peers stay on uWS
 * (peer-server.ts).
 *
 * Routing is done here so that a known path with the wrong method answers
 * 405 and an unknown path 404; HEAD runs the GET handler and sends no body.
 * A body is read into one buffer of its Content-Length (a chunked one grows
 * by doubling; one that arrives in a single chunk is that chunk); the size limit is enforced up front from Content-Length and
 * while streaming, answering 413 and closing the connection instead of
 * buffering more. Framing llhttp refuses (two Content-Lengths, chunked not
 * last) is a 400 with a close. Every reply is serialized under a guard: an
 * answer that cannot be serialized becomes a 500 for that request only.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { listenError } from './listen-error.ts';
import { BodyBufferPool } from './body-pool.ts';
import { httpStatusOf, messageOf, type HttpErrorCode } from '../errors.ts';

export interface HttpRequest {
  /** Upper case: GET, PUT, POST, DELETE ... (HEAD reaches the GET handler as HEAD). */
  readonly method: string;
  readonly path: string;
  /** Decoded path parameters (`:name` segments of the route pattern). */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** Lower-cased media type without parameters ('' when absent). */
  readonly contentType: string;
  readonly authorization: string;
  readonly remoteAddress: string;
  /**
   * The whole body (empty when there is none). Valid until the handler's
   * answer settles: the listener then reuses its memory for another body, so
   * a handler copies whatever it keeps (body-pool.ts).
   */
  readonly body: Uint8Array;
}

export interface HttpReply {
  status: number;
  /** Serialized as JSON unless `text` is given. */
  body?: unknown;
  /** A ready-made text body, sent with `contentType`. */
  text?: string;
  contentType?: string;
  /** Extra response headers (Allow, Retry-After ...). */
  headers?: Readonly<Record<string, string>>;
  /** Close the connection after this reply (used when a body was refused). */
  close?: boolean;
}

export type RouteHandler = (req: HttpRequest) => HttpReply | Promise<HttpReply>;

export interface Route {
  method: string;
  /** e.g. `/collections/:name/points/:id`. */
  pattern: string;
  handler: RouteHandler;
}

/**
 * A request to upgrade the connection (`Upgrade: websocket`), after the
 * listener's checks (path, method, guard). The handler owns the socket
 * from then on: it upgrades it, or answers with `refuse`.
 */
export interface UpgradeRequest {
  readonly path: string;
  readonly query: URLSearchParams;
  readonly authorization: string;
  readonly remoteAddress: string;
  readonly raw: http.IncomingMessage;
  readonly socket: Duplex;
  readonly head: Buffer;
}

export interface UpgradeRoute {
  /** Exact path, e.g. `/changes` (GET only). */
  path: string;
  /**
   * Upgrades the connection. A throw or a rejection before the upgrade is
   * answered as an HTTP error (onError) on the raw socket and closes it.
   */
  handler: (req: UpgradeRequest) => void | Promise<void>;
}

/** What is known about a request before its body is read. */
export interface RequestHead {
  readonly method: string;
  /** The matched route pattern, or undefined for an unknown path. */
  readonly route: string | undefined;
  readonly authorization: string;
  readonly remoteAddress: string;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  routes: readonly Route[];
  /** Largest request body accepted; larger ones get 413 while streaming. */
  maxBodyBytes: number;
  /** Requests handled at once; more get 503 ERR_OVERLOADED. Default 1024. */
  maxInFlightRequests?: number;
  /** Runs before the body is read; a reply returned here is sent instead of the handler's. */
  guard?: (head: RequestHead) => HttpReply | undefined;
  /** Called once per answered request (route is the pattern, or 'unmatched'). */
  onResponse?: (route: string, method: string, status: number) => void;
  /** Maps an exception thrown by a handler (or by serializing its answer) to a reply (default: 500, no details). */
  onError?: (err: unknown) => HttpReply;
  /**
   * Paths that upgrade the connection (WebSockets). With a handler for the
   * `upgrade` event node sends every request carrying `Upgrade` there, so a
   * request to another path that asks to upgrade (h2c) is answered 400.
   */
  upgrades?: readonly UpgradeRoute[];
}

export interface HttpServer {
  /** The port actually bound (useful when asked for port 0). */
  readonly port: number;
  /**
   * Graceful stop, first half: stops listening, answers every request that
   * arrives from now on 503 ERR_NODE_STOPPED with a close, closes idle
   * keep-alive connections, and resolves once the requests in flight are
   * answered or `graceMs` has passed.
   */
  drain(graceMs: number): Promise<void>;
  /** Drops every connection still open (after drain, or at once). */
  close(): void;
}

/** Closing after a refused body: how long to keep reading (and discarding) so the answer is not lost to a reset. */
const LINGER_MS = 1000;
const DEFAULT_MAX_IN_FLIGHT = 1024;
/** Body buffers kept for reuse between requests, at most (body-pool.ts). */
export const POOLED_BODY_BYTES = 128 * 1024 * 1024;

/** An error answer; its status is the code's, from the registry (src/errors.ts). */
export function errorReply(code: HttpErrorCode, message: string): HttpReply {
  return { status: httpStatusOf(code) as number, body: { error: { code, message } } };
}

interface CompiledRoute {
  pattern: string;
  segments: string[];
  /** method -> handler */
  methods: Map<string, RouteHandler>;
}

function compile(routes: readonly Route[]): CompiledRoute[] {
  const byPattern = new Map<string, CompiledRoute>();
  for (const r of routes) {
    let c = byPattern.get(r.pattern);
    if (!c) {
      c = { pattern: r.pattern, segments: r.pattern.split('/').slice(1), methods: new Map() };
      byPattern.set(r.pattern, c);
    }
    c.methods.set(r.method.toUpperCase(), r.handler);
  }
  return [...byPattern.values()];
}

/** Matches a path; undefined when no pattern fits, throws URIError on bad percent-encoding. */
function match(
  routes: CompiledRoute[],
  path: string,
): { route: CompiledRoute; params: Record<string, string> } | undefined {
  const parts = path.split('/').slice(1);
  outer: for (const route of routes) {
    if (route.segments.length !== parts.length) continue;
    const params: Record<string, string> = {};
    for (let i = 0; i < parts.length; i++) {
      const seg = route.segments[i] as string;
      const part = parts[i] as string;
      if (seg.startsWith(':')) {
        if (part.length === 0) continue outer;
        params[seg.slice(1)] = decodeURIComponent(part);
      } else if (seg !== part) continue outer;
    }
    return { route, params };
  }
  return undefined;
}

/** The handler for `method`, HEAD falling back to GET. */
function handlerOf(route: CompiledRoute, method: string): RouteHandler | undefined {
  return route.methods.get(method) ?? (method === 'HEAD' ? route.methods.get('GET') : undefined);
}

function allowedMethods(route: CompiledRoute): string {
  const methods = [...route.methods.keys()];
  if (methods.includes('GET') && !methods.includes('HEAD')) methods.push('HEAD');
  return methods.join(', ');
}

/** Path and query of a request-target (origin form, or absolute form); undefined when it is neither. */
function splitTarget(target: string): { path: string; query: string } | undefined {
  if (target.startsWith('/')) {
    const q = target.indexOf('?');
    return q < 0 ? { path: target, query: '' } : { path: target.slice(0, q), query: target.slice(q + 1) };
  }
  try {
    const url = new URL(target);
    return { path: url.pathname, query: url.search.slice(1) };
  } catch {
    return undefined;
  }
}

/** How many times a header appears (node keeps only the first Host, and joins others). */
function headerCount(req: http.IncomingMessage, name: string): number {
  let n = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if ((req.rawHeaders[i] as string).toLowerCase() === name) n++;
  }
  return n;
}

/** The status and words for a request llhttp could not parse. */
function clientErrorReply(err: NodeJS.ErrnoException & { reason?: string }): HttpReply {
  const why = err.reason ?? err.message;
  if (err.code === 'HPE_HEADER_OVERFLOW')
    return errorReply('ERR_HEADERS_TOO_LARGE', 'request: headers too large');
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT')
    return errorReply('ERR_REQUEST_TIMEOUT', 'request: not received in time');
  return errorReply('ERR_BAD_REQUEST', `request: ${why}`);
}

/**
 * After refusing a body the client is still sending: closing at once, with
 * its bytes unread, makes the kernel send a reset, and a client still busy
 * writing then loses the answer it has not read yet. So the rest of the body
 * is read and dropped for up to LINGER_MS (as nginx's lingering close) while
 * our side is already shut (FIN sent). Node's destroySoon(), called for a
 * Connection: close answer, would destroy the socket as soon as the FIN is
 * out; its pending destroy is taken off and done on our timer instead.
 */
function lingeringClose(req: http.IncomingMessage): void {
  const socket = req.socket;
  socket.removeListener('finish', socket.destroy);
  req.resume();
  const timer = setTimeout(() => socket.destroy(), LINGER_MS).unref();
  socket.once('end', () => socket.destroy());
  socket.once('close', () => clearTimeout(timer));
}

/** Writes a reply on a socket that has no HTTP response object (a request llhttp refused, an upgrade refused). */
export function writeRawReply(socket: Duplex, reply: HttpReply): void {
  const payload = JSON.stringify(reply.body);
  const headers = Object.entries(reply.headers ?? {})
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${reply.status} ${http.STATUS_CODES[reply.status] ?? ''}\r\n` +
      `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\n` +
      `${headers}connection: close\r\n\r\n${payload}`,
  );
}

/** Starts an HTTP server; unknown paths get 404, known paths with another method 405. */
export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const routes = compile(opts.routes);
  const bodies = new BodyBufferPool(POOLED_BODY_BYTES);
  const onError = opts.onError ?? ((): HttpReply => errorReply('ERR_INTERNAL', 'internal error'));
  const maxInFlight = opts.maxInFlightRequests ?? DEFAULT_MAX_IN_FLIGHT;
  let inFlight = 0;
  let draining = false;
  // Per connection, the answer of the latest request: pipelined requests run one after
  // another (RFC 9112 9.3.2 allows parallel work only when every method is safe).
  const turns = new WeakMap<Socket, Promise<void>>();
  let drained: (() => void) | undefined;

  const handle = (req: http.IncomingMessage, res: http.ServerResponse, expectsContinue: boolean): void => {
    const method = (req.method ?? '').toUpperCase();
    const target = splitTarget(req.url ?? '');
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    const authorization = req.headers.authorization ?? '';
    const remoteAddress = req.socket.remoteAddress ?? '';
    const declaredText = req.headers['content-length'];
    const transferEncoding = req.headers['transfer-encoding'];
    const hasBody = declaredText !== undefined || transferEncoding !== undefined;

    inFlight++;
    let finished = false;
    const done = (): void => {
      if (finished) return;
      finished = true;
      inFlight--;
      if (draining && inFlight === 0) drained?.();
    };
    res.once('finish', done);
    res.once('close', done);
    // The body's buffer from the pool goes back once nothing reads it: after the handler's
    // answer settled, or when the request ends without reaching a handler.
    let pooled: Buffer | undefined;
    let dispatched = false;
    const releaseBody = (): void => {
      if (pooled !== undefined) bodies.give(pooled);
      pooled = undefined;
    };
    const releaseUndispatched = (): void => {
      if (!dispatched) releaseBody();
    };
    res.once('finish', releaseUndispatched);
    res.once('close', releaseUndispatched);
    const previousTurn = turns.get(req.socket);
    turns.set(
      req.socket,
      new Promise((resolve) => {
        res.once('finish', resolve);
        res.once('close', resolve);
      }),
    );

    let answered = false;
    let routeLabel = 'unmatched';
    const send = (r: HttpReply, payload: string): void => {
      opts.onResponse?.(routeLabel, method, r.status);
      const close = r.close === true || draining;
      res.statusCode = r.status;
      res.setHeader(
        'content-type',
        r.text !== undefined ? (r.contentType ?? 'text/plain') : 'application/json',
      );
      res.setHeader('content-length', Buffer.byteLength(payload));
      for (const [name, value] of Object.entries(r.headers ?? {})) res.setHeader(name, value);
      if (close) {
        res.setHeader('connection', 'close');
        if (hasBody && !req.complete) res.once('finish', () => lingeringClose(req));
      }
      res.end(payload);
    };
    const reply = (r: HttpReply): void => {
      if (answered || res.destroyed) return;
      answered = true;
      let payload: string;
      let sent = r;
      try {
        payload = r.text ?? JSON.stringify(r.body ?? {});
      } catch (err) {
        // e.g. RangeError from a payload nested too deep: this request fails, nothing else.
        try {
          sent = onError(err);
          payload = sent.text ?? JSON.stringify(sent.body ?? {});
        } catch {
          sent = errorReply('ERR_INTERNAL', 'internal error');
          payload = JSON.stringify(sent.body);
        }
      }
      send(sent, payload);
    };

    if (!target) {
      reply({ ...errorReply('ERR_BAD_REQUEST', 'request: target must be a path'), close: true });
      return;
    }
    const { path } = target;
    // RFC 9112 3.2: an HTTP/1.1 request without exactly one Host is a 400 (HTTP/1.0 needs none).
    const hosts = headerCount(req, 'host');
    if ((req.httpVersion === '1.1' && hosts === 0) || hosts > 1) {
      const why = hosts === 0 ? 'an HTTP/1.1 request needs a Host header' : 'more than one Host header';
      reply({ ...errorReply('ERR_BAD_REQUEST', `host: ${why}`), close: true });
      return;
    }
    // llhttp has already refused codings where chunked is not last; anything but chunked alone is not implemented.
    if (transferEncoding !== undefined && transferEncoding.trim().toLowerCase() !== 'chunked') {
      reply({
        ...errorReply(
          'ERR_UNSUPPORTED',
          `transfer-encoding: ${JSON.stringify(transferEncoding)} not supported (only chunked)`,
        ),
        close: true,
      });
      return;
    }
    if (draining) {
      reply({ ...errorReply('ERR_NODE_STOPPED', messageOf('ERR_NODE_STOPPED')), close: true });
      return;
    }
    if (inFlight > maxInFlight) {
      reply({
        ...errorReply('ERR_OVERLOADED', `more than ${maxInFlight} requests in flight; retry shortly`),
        headers: { 'retry-after': '1' },
        close: hasBody,
      });
      return;
    }

    let found: ReturnType<typeof match>;
    try {
      found = match(routes, path);
    } catch {
      reply({ ...errorReply('ERR_INVALID_INPUT', 'path: malformed percent-encoding'), close: hasBody });
      return;
    }
    if (found) routeLabel = found.route.pattern;
    const handler = found ? handlerOf(found.route, method) : undefined;
    const guarded = opts.guard?.({ method, route: found?.route.pattern, authorization, remoteAddress });
    if (guarded) {
      reply({ ...guarded, close: guarded.close ?? hasBody });
      return;
    }
    if (!found) {
      reply({ ...errorReply('ERR_NOT_FOUND', `no route ${method} ${path}`), close: hasBody });
      return;
    }
    if (!handler) {
      const allowed = allowedMethods(found.route);
      reply({
        ...errorReply('ERR_METHOD_NOT_ALLOWED', `${method} not allowed on ${path} (allowed: ${allowed})`),
        headers: { allow: allowed },
        close: hasBody,
      });
      return;
    }

    const dispatch = (body: Uint8Array): void => {
      const request: HttpRequest = {
        method,
        path,
        params: found.params,
        query: new URLSearchParams(target.query),
        contentType,
        authorization,
        remoteAddress,
        body,
      };
      dispatched = true;
      // A handler that throws synchronously lands in the same rejection path as an async one.
      (previousTurn ?? Promise.resolve())
        .then(() => handler(request))
        .then(reply, (err: unknown) => reply(onError(err)))
        .finally(releaseBody);
    };

    const tooLarge = (): HttpReply => ({
      ...errorReply('ERR_BODY_TOO_LARGE', `request body: more than ${opts.maxBodyBytes} bytes`),
      close: true,
    });
    if (!hasBody) {
      dispatch(new Uint8Array(0));
      return;
    }
    // llhttp has checked Content-Length is one non-negative integer.
    const declared = declaredText === undefined ? undefined : Number(declaredText);
    if (declared !== undefined && declared > opts.maxBodyBytes) {
      reply(tooLarge());
      return;
    }
    if (expectsContinue) res.writeContinue();
    // Known length: one buffer of it, from the pool; chunked: grow by doubling up to the limit.
    // A body that arrives in one chunk is used as it is: node hands each chunk over in its own buffer.
    let buffer: Buffer | undefined;
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      if (answered || res.destroyed) return;
      if (length + chunk.length > opts.maxBodyBytes) {
        reply(tooLarge());
        return;
      }
      if (buffer === undefined && chunk.length === declared) {
        buffer = chunk;
        length = chunk.length;
        return;
      }
      if (buffer === undefined) {
        if (declared !== undefined) buffer = pooled = bodies.take(declared);
        else buffer = Buffer.allocUnsafe(Math.min(64 * 1024, opts.maxBodyBytes));
      }
      if (length + chunk.length > buffer.length) {
        const grown = Buffer.allocUnsafe(
          Math.min(opts.maxBodyBytes, Math.max(buffer.length * 2, length + chunk.length)),
        );
        buffer.copy(grown, 0, 0, length);
        buffer = grown;
      }
      chunk.copy(buffer, length);
      length += chunk.length;
    });
    req.on('end', () => {
      if (!answered) dispatch(buffer === undefined ? new Uint8Array(0) : buffer.subarray(0, length));
    });
  };

  /** A throw out of the routing code (a guard, onResponse) fails its request, never the process. */
  const handleSafely = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    expectsContinue: boolean,
  ): void => {
    try {
      handle(req, res, expectsContinue);
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const fallback = errorReply('ERR_INTERNAL', 'internal error');
      let status = fallback.status;
      let payload = JSON.stringify(fallback.body);
      try {
        const reply = onError(err);
        payload = JSON.stringify(reply.body ?? {});
        status = reply.status;
      } catch {
        // the fixed 500 above
      }
      res.writeHead(status, { 'content-type': 'application/json', connection: 'close' });
      res.end(payload);
    }
  };

  const server = http.createServer(
    {
      // Checked in `handle`, so the 400 has a JSON body and is counted like every answer.
      requireHostHeader: false,
      keepAliveTimeout: 5000,
      headersTimeout: 20_000,
      requestTimeout: 120_000,
      noDelay: true,
    },
    (req, res) => handleSafely(req, res, false),
  );
  // Expect: 100-continue: the guard and the size limit run before the client sends the body.
  server.on('checkContinue', (req, res) => handleSafely(req, res, true));
  server.on('clientError', (err: NodeJS.ErrnoException & { reason?: string }, socket: Socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const reply = clientErrorReply(err);
    opts.onResponse?.('unmatched', 'UNPARSED', reply.status);
    writeRawReply(socket, reply);
  });

  // Upgraded connections are not requests: they are tracked so close() can end them.
  const upgraded = new Set<Duplex>();
  if (opts.upgrades !== undefined && opts.upgrades.length > 0) {
    const upgradeRoutes = new Map(opts.upgrades.map((u) => [u.path, u]));
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      const method = (req.method ?? '').toUpperCase();
      const target = splitTarget(req.url ?? '');
      const route = target === undefined ? undefined : upgradeRoutes.get(target.path);
      const refuse = (reply: HttpReply): void => {
        opts.onResponse?.(route?.path ?? 'unmatched', method, reply.status);
        writeRawReply(socket, reply);
      };
      socket.on('error', () => socket.destroy());
      if (target === undefined || route === undefined) {
        refuse(
          errorReply('ERR_BAD_REQUEST', `upgrade: only ${[...upgradeRoutes.keys()].join(', ')} upgrade`),
        );
        return;
      }
      if (method !== 'GET') {
        refuse({
          ...errorReply('ERR_METHOD_NOT_ALLOWED', `${method} not allowed on ${route.path} (allowed: GET)`),
          headers: { allow: 'GET' },
        });
        return;
      }
      if (draining) {
        refuse(errorReply('ERR_NODE_STOPPED', messageOf('ERR_NODE_STOPPED')));
        return;
      }
      const authorization = req.headers.authorization ?? '';
      const remoteAddress = req.socket.remoteAddress ?? '';
      const guarded = opts.guard?.({ method, route: route.path, authorization, remoteAddress });
      if (guarded) {
        refuse(guarded);
        return;
      }
      upgraded.add(socket);
      socket.once('close', () => upgraded.delete(socket));
      const request: UpgradeRequest = {
        path: target.path,
        query: new URLSearchParams(target.query),
        authorization,
        remoteAddress,
        raw: req,
        socket,
        head,
      };
      Promise.resolve()
        .then(() => route.handler(request))
        .then(
          () => opts.onResponse?.(route.path, method, 101),
          (err: unknown) => {
            if (!socket.writable) return;
            let reply: HttpReply;
            try {
              reply = onError(err);
            } catch {
              reply = errorReply('ERR_INTERNAL', 'internal error');
            }
            refuse(reply);
          },
        );
    });
  }

  await new Promise<void>((resolve, reject) => {
    const onListenError = (err: NodeJS.ErrnoException): void =>
      reject(listenError('HTTP', opts.host, opts.port, err.code ?? err.message));
    server.once('error', onListenError);
    // libuv sets SO_REUSEADDR and never SO_REUSEPORT: a live listener is EADDRINUSE, TIME_WAIT is not.
    server.listen({ host: opts.host, port: opts.port, exclusive: true }, () => {
      server.off('error', onListenError);
      resolve();
    });
  });

  return {
    port: (server.address() as { port: number }).port,
    drain: (graceMs) => {
      draining = true;
      // Stops listening and closes keep-alive connections with no request on them.
      server.close();
      server.closeIdleConnections();
      if (inFlight === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    },
    close: () => {
      draining = true;
      server.close();
      server.closeAllConnections();
      for (const socket of upgraded) socket.destroy();
    },
  };
}
