/**
 * Raw HTTP over a TCP socket, for requests `fetch` will not send (HTTP/1.0,
 * no Host, duplicate framing headers, pipelining) and for watching whether
 * the server closes the connection.
 */
import { connect, type Socket } from 'node:net';

export interface RawExchange {
  /** Everything the server sent, as text. */
  text: string;
  /** True when the server closed (or reset) the connection before `waitMs` ran out. */
  closed: boolean;
}

/**
 * Sends `request` and collects the answer until the server closes the
 * connection or `waitMs` passes without it closing (then the socket is
 * destroyed here and `closed` is false).
 */
export function rawExchange(port: number, request: string | Buffer, waitMs = 1500): Promise<RawExchange> {
  return new Promise((resolve) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let text = '';
    let settled = false;
    const finish = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.setEncoding('utf8').on('data', (d: string) => (text += d));
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
    socket.write(request);
  });
}

/** The status codes of every response in `text`, in order (a pipelined one starts right after a body). */
export function statusesOf(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
}
