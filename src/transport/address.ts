/**
 * HOST:PORT addresses as written in config, env and flags. HOST is a DNS
 * name, an IPv4 address or a bracketed IPv6 address (`[::1]:7001`).
 */

export interface HostPort {
  /** Without brackets (`::1`), as listeners and dialers take it. */
  host: string;
  port: number;
}

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV6 = /^[0-9A-Fa-f:.]{2,45}$/;

/** True when `host` is a DNS name, an IPv4 or a bare IPv6 address. */
export function isHost(host: string): boolean {
  return HOSTNAME.test(host) || (host.includes(':') && IPV6.test(host));
}

/**
 * Parses HOST:PORT; undefined when malformed. `minPort` is 0 for listeners
 * (port 0 picks a free one) and 1 for addresses that are dialed.
 */
export function parseHostPort(text: string, minPort = 0): HostPort | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const host = (m[1] ?? m[2]) as string;
  const port = Number(m[3]);
  if (port < minPort || port > 65535) return undefined;
  if (m[1] !== undefined ? !(host.includes(':') && IPV6.test(host)) : !HOSTNAME.test(host)) return undefined;
  return { host, port };
}

/** Formats an address back, bracketing IPv6 hosts. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
