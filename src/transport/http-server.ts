/**
 * HTTP listener on uWebSockets.js. All uWS calls stay inside src/transport/
 * so swapping the server library touches one folder.
 */
import uWS from 'uWebSockets.js';

export interface JsonResponse {
  status: number;
  body: unknown;
}

export type GetHandler = () => JsonResponse;

export interface HttpServer {
  /** The port actually bound (useful when asked for port 0). */
  readonly port: number;
  close(): void;
}

const statusText: Record<number, string> = {
  200: '200 OK',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
};

function send(res: uWS.HttpResponse, { status, body }: JsonResponse): void {
  res.cork(() => {
    res
      .writeStatus(statusText[status] ?? String(status))
      .writeHeader('content-type', 'application/json')
      .end(JSON.stringify(body));
  });
}

/** Starts an HTTP server with JSON GET routes; everything else is 404/405. */
export function startHttpServer(
  host: string,
  port: number,
  routes: Record<string, GetHandler>,
): Promise<HttpServer> {
  const app = uWS.App();
  for (const [path, handler] of Object.entries(routes)) {
    app.get(path, (res) => send(res, handler()));
    app.any(path, (res) => send(res, { status: 405, body: { error: `method not allowed on ${path}` } }));
  }
  app.any('/*', (res, req) => send(res, { status: 404, body: { error: `no route ${req.getUrl()}` } }));
  return new Promise((resolve, reject) => {
    app.listen(host, port, (listenSocket) => {
      if (!listenSocket) {
        reject(new Error(`cannot listen on ${host}:${port} (address in use or not available)`));
        return;
      }
      resolve({
        port: uWS.us_socket_local_port(listenSocket),
        close: () => uWS.us_listen_socket_close(listenSocket),
      });
    });
  });
}
