/**
 * HTTP listener on uWebSockets.js. All uWS calls stay inside src/transport/
 * so swapping the server library touches one folder.
 *
 * Routing is done here (not with uWS patterns) so that a known path with the
 * wrong method answers 405 and an unknown path 404. Request bodies are read
 * with onData into one buffer; the size limit is enforced while streaming
 * (and up front from Content-Length), answering 413 and closing the
 * connection instead of buffering more.
 */
import uWS from 'uWebSockets.js';
import { listenUws } from './uws-listen.ts';

export interface HttpRequest {
  /** Upper case: GET, PUT, POST, DELETE ... */
  readonly method: string;
  readonly path: string;
  /** Decoded path parameters (`:name` segments of the route pattern). */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** Lower-cased media type without parameters ('' when absent). */
  readonly contentType: string;
  readonly authorization: string;
  readonly remoteAddress: string;
  /** The whole body (empty when there is none). */
  readonly body: Uint8Array;
}

export interface HttpReply {
  status: number;
  /** Serialized as JSON unless `text` is given. */
  body?: unknown;
  /** A ready-made text body, sent with `contentType`. */
  text?: string;
  contentType?: string;
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
  /** Runs before the body is read; a reply returned here is sent instead of the handler's. */
  guard?: (head: RequestHead) => HttpReply | undefined;
  /** Called once per answered request (route is the pattern, or 'unmatched'). */
  onResponse?: (route: string, method: string, status: number) => void;
  /** Maps an exception thrown by a handler to a reply (default: 500, no details). */
  onError?: (err: unknown) => HttpReply;
  /** How long to wait out a busy port (see uws-listen.ts); default 0: fail at once. */
  bindRetryMs?: number;
  onBindBusy?: (waitedMs: number) => void;
}

export interface HttpServer {
  /** The port actually bound (useful when asked for port 0). */
  readonly port: number;
  close(): void;
}

const reasons: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
};

export function errorReply(status: number, code: string, message: string): HttpReply {
  return { status, body: { error: { code, message } } };
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

const textDecoder = new TextDecoder();

/** Starts an HTTP server; unknown paths get 404, known paths with another method 405. */
export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const routes = compile(opts.routes);
  const onError = opts.onError ?? ((): HttpReply => errorReply(500, 'ERR_INTERNAL', 'internal error'));

  const app = uWS.App();
  app.any('/*', (res, req) => {
    // uWS request data is only valid synchronously: copy what we need now.
    const method = req.getCaseSensitiveMethod().toUpperCase();
    const path = req.getUrl();
    const queryText = req.getQuery() ?? '';
    const contentType = (req.getHeader('content-type').split(';')[0] ?? '').trim().toLowerCase();
    const authorization = req.getHeader('authorization');
    const contentLengthText = req.getHeader('content-length');
    const chunked = req.getHeader('transfer-encoding') !== '';
    const remoteAddress = textDecoder.decode(res.getRemoteAddressAsText());

    let aborted = false;
    let answered = false;
    let routeLabel = 'unmatched';
    res.onAborted(() => {
      aborted = true;
    });
    const reply = (r: HttpReply): void => {
      if (aborted || answered) return;
      answered = true;
      opts.onResponse?.(routeLabel, method, r.status);
      const payload = r.text ?? JSON.stringify(r.body ?? {});
      res.cork(() => {
        res
          .writeStatus(`${r.status} ${reasons[r.status] ?? ''}`.trimEnd())
          .writeHeader(
            'content-type',
            r.text !== undefined ? (r.contentType ?? 'text/plain') : 'application/json',
          )
          .end(payload, r.close === true);
      });
    };

    let found: ReturnType<typeof match>;
    try {
      found = match(routes, path);
    } catch {
      reply(errorReply(400, 'ERR_INVALID_INPUT', 'path: malformed percent-encoding'));
      return;
    }
    if (found) routeLabel = found.route.pattern;
    const handler = found?.route.methods.get(method);
    const guarded = opts.guard?.({ method, route: found?.route.pattern, authorization, remoteAddress });
    if (guarded) {
      reply({ ...guarded, close: guarded.close ?? (contentLengthText !== '' || chunked) });
      return;
    }
    if (!found) {
      reply(errorReply(404, 'ERR_NOT_FOUND', `no route ${method} ${path}`));
      return;
    }
    if (!handler) {
      const allowed = [...found.route.methods.keys()].join(', ');
      reply(
        errorReply(405, 'ERR_METHOD_NOT_ALLOWED', `${method} not allowed on ${path} (allowed: ${allowed})`),
      );
      return;
    }

    const dispatch = (body: Uint8Array): void => {
      const request: HttpRequest = {
        method,
        path,
        params: found.params,
        query: new URLSearchParams(queryText),
        contentType,
        authorization,
        remoteAddress,
        body,
      };
      let result: HttpReply | Promise<HttpReply>;
      try {
        result = handler(request);
      } catch (err) {
        reply(onError(err));
        return;
      }
      if (result instanceof Promise) result.then(reply, (err: unknown) => reply(onError(err)));
      else reply(result);
    };

    const tooLarge = (): HttpReply => ({
      ...errorReply(413, 'ERR_BODY_TOO_LARGE', `request body: more than ${opts.maxBodyBytes} bytes`),
      close: true,
    });
    const declared = contentLengthText === '' ? undefined : Number(contentLengthText);
    if (declared === undefined && !chunked) {
      dispatch(new Uint8Array(0));
      return;
    }
    if (declared !== undefined && (!Number.isSafeInteger(declared) || declared < 0)) {
      reply({ ...errorReply(400, 'ERR_INVALID_INPUT', 'content-length: not a number'), close: true });
      return;
    }
    if (declared !== undefined && declared > opts.maxBodyBytes) {
      reply(tooLarge());
      return;
    }
    // Known length: one allocation; chunked: grow by doubling up to the limit.
    let buffer = new Uint8Array(declared ?? Math.min(64 * 1024, opts.maxBodyBytes));
    let length = 0;
    res.onData((chunk, isLast) => {
      if (answered || aborted) return;
      const bytes = new Uint8Array(chunk);
      if (length + bytes.length > opts.maxBodyBytes) {
        reply(tooLarge());
        return;
      }
      if (length + bytes.length > buffer.length) {
        const grown = new Uint8Array(
          Math.min(opts.maxBodyBytes, Math.max(buffer.length * 2, length + bytes.length)),
        );
        grown.set(buffer.subarray(0, length));
        buffer = grown;
      }
      buffer.set(bytes, length); // copies: the chunk is only valid during this call
      length += bytes.length;
      if (isLast) dispatch(buffer.subarray(0, length));
    });
  });

  const listenSocket = await listenUws(app, {
    host: opts.host,
    port: opts.port,
    what: 'HTTP',
    ...(opts.bindRetryMs !== undefined ? { bindRetryMs: opts.bindRetryMs } : {}),
    ...(opts.onBindBusy ? { onBusy: opts.onBindBusy } : {}),
  });
  return {
    port: uWS.us_socket_local_port(listenSocket),
    close: () => uWS.us_listen_socket_close(listenSocket),
  };
}
