/**
 * Mutual TLS in front of the uWS peer listener. uWS `SSLApp` with
 * `ca_file_name` refuses a client certificate from another CA, but it accepts
 * a client that sends no certificate at all (it sets SSL_VERIFY_PEER without
 * FAIL_IF_NO_PEER_CERT) and exposes nothing about the peer certificate to
 * JavaScript, so it cannot enforce mutual TLS (tested in
 * test/transport/tls.test.ts). Node's `tls.Server` with `requestCert` and
 * `rejectUnauthorized` can: it terminates TLS on the public address and pipes
 * each verified connection to uWS on a Unix socket inside a private (0700)
 * directory, so nothing reaches uWS without a certificate from the cluster CA.
 * A PROXY protocol v2 header (which uWS parses) carries the real peer address.
 */
import net from 'node:net';
import tls from 'node:tls';
import { PEER_TLS_MIN_VERSION, type PeerTlsMaterial } from './tls-config.ts';
import { listenError } from './listen-error.ts';
import type { LinkLogger } from './link.ts';

export interface TlsFrontOptions {
  host: string;
  port: number;
  tls: PeerTlsMaterial;
  /** The Unix socket uWS listens on. */
  upstreamPath: string;
  logger: LinkLogger;
  /** A TLS handshake not finished in this long is dropped, ms. */
  handshakeTimeoutMs: number;
}

export interface TlsFront {
  readonly port: number;
  /** Connections refused during the TLS handshake (no certificate, wrong CA, not TLS, timeout). */
  readonly refusals: number;
  /** Stops accepting; open connections end when their WebSocket closes (or after graceMs). */
  close(graceMs: number): void;
}

const PROXY_V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);

/** IPv6 text to its 16 bytes (handles `::` and a trailing dotted IPv4). Caller checked net.isIPv6. */
export function ipv6Bytes(address: string): Buffer {
  const text = address.split('%')[0]!;
  let groups: string[];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let head = text;
  const tail: string[] = [];
  if (dotted) {
    const [a, b, c, d] = dotted[1]!.split('.').map(Number) as [number, number, number, number];
    tail.push(((a << 8) | b).toString(16), ((c << 8) | d).toString(16));
    head = text.slice(0, -dotted[1]!.length);
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  if (head.includes('::')) {
    const [left, right] = head.split('::') as [string, string];
    const l = left === '' ? [] : left.split(':');
    const r = right === '' ? [] : right.split(':');
    const missing = 8 - l.length - r.length - tail.length;
    groups = [...l, ...Array<string>(missing).fill('0'), ...r, ...tail];
  } else {
    groups = [...(head === '' ? [] : head.split(':')), ...tail];
  }
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** PROXY protocol v2 header for a TCP connection from `remote` to `local`; LOCAL command if unknown. */
export function proxyV2Header(socket: {
  remoteAddress?: string | undefined;
  remotePort?: number | undefined;
  localAddress?: string | undefined;
  localPort?: number | undefined;
}): Buffer {
  const { remoteAddress, remotePort, localAddress, localPort } = socket;
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(remotePort ?? 0, 0);
  ports.writeUInt16BE(localPort ?? 0, 2);
  let family: number;
  let addresses: Buffer;
  if (remoteAddress && localAddress && net.isIPv4(remoteAddress) && net.isIPv4(localAddress)) {
    family = 0x11;
    addresses = Buffer.from([...remoteAddress.split('.'), ...localAddress.split('.')].map(Number));
  } else if (remoteAddress && localAddress && net.isIPv6(remoteAddress) && net.isIPv6(localAddress)) {
    family = 0x21;
    addresses = Buffer.concat([ipv6Bytes(remoteAddress), ipv6Bytes(localAddress)]);
  } else {
    // Version 2, command LOCAL, no address: uWS reports the socket's own (empty) address.
    return Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
  }
  const body = Buffer.concat([addresses, ports]);
  const head = Buffer.from([0x21, family, 0, 0]);
  head.writeUInt16BE(body.byteLength, 2);
  return Buffer.concat([PROXY_V2_SIGNATURE, head, body]);
}

/** Listens on host:port with mutual TLS and relays each verified connection to `upstreamPath`. */
export async function startTlsFront(options: TlsFrontOptions): Promise<TlsFront> {
  const { logger } = options;
  const open = new Set<tls.TLSSocket>();
  let refusals = 0;
  const server = tls.createServer(
    {
      cert: options.tls.cert,
      key: options.tls.key,
      ca: options.tls.ca,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: PEER_TLS_MIN_VERSION,
      handshakeTimeout: options.handshakeTimeoutMs,
    },
    (socket) => {
      // rejectUnauthorized already refused anything else; checked again because this is the only gate.
      if (!socket.authorized) {
        refusals++;
        logger.warn(
          { remote: socket.remoteAddress, reason: String(socket.authorizationError) },
          'peer TLS: client certificate refused',
        );
        socket.destroy();
        return;
      }
      relay(socket);
    },
  );

  const relay = (socket: tls.TLSSocket): void => {
    open.add(socket);
    const upstream = net.connect(options.upstreamPath);
    upstream.setNoDelay(true);
    socket.setNoDelay(true);
    upstream.write(proxyV2Header(socket));
    socket.pipe(upstream);
    upstream.pipe(socket);
    let lingerTimer: NodeJS.Timeout | undefined;
    socket.on('error', (err) => {
      logger.info({ remote: socket.remoteAddress, err: err.message }, 'peer TLS: connection error');
    });
    upstream.on('error', (err) => {
      logger.warn({ remote: socket.remoteAddress, err: err.message }, 'peer TLS: upstream (uWS) error');
    });
    socket.on('close', (hadError) => {
      open.delete(socket);
      if (lingerTimer) clearTimeout(lingerTimer);
      // A clean close may leave the peer's last bytes (its close frame) queued
      // for uWS: end the upstream so they are flushed, then cut it.
      if (hadError) upstream.destroy();
      else {
        upstream.end();
        setTimeout(() => upstream.destroy(), 5000).unref();
      }
    });
    upstream.on('close', (hadError) => {
      // After a clean end, pipe() has ended the TLS side: let it flush the close frame, then cut.
      if (hadError) socket.destroy();
      else lingerTimer = setTimeout(() => socket.destroy(), 5000).unref();
    });
  };

  server.on('tlsClientError', (err: Error & { code?: string }, socket) => {
    refusals++;
    // A certificate that fails verification is cut by node after the handshake, so the
    // error is a bare ECONNRESET: authorizationError holds the real reason then.
    logger.warn(
      {
        remote: socket.remoteAddress ?? 'unknown',
        reason: socket.authorizationError ?? err.code ?? err.message,
        err: err.message,
      },
      'peer TLS: handshake refused',
    );
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(listenError('peer server', options.host, options.port, err.code ?? err.message));
    };
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => logger.warn({ err: err.message }, 'peer TLS: server error'));

  return {
    port: (server.address() as net.AddressInfo).port,
    get refusals() {
      return refusals;
    },
    close(graceMs) {
      server.close();
      for (const socket of open) setTimeout(() => socket.destroy(), graceMs).unref();
    },
  };
}
