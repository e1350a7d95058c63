/**
 * Loopback addresses, for protected mode (peers without a secret are
 * accepted from this machine only) and for the start-up check of a listening
 * host. No DNS: a name other than `localhost` is not loopback, since it may
 * resolve anywhere.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';

// Node's BlockList also matches IPv4-mapped IPv6 (::ffff:127.0.0.1) and unshortened spellings.
const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/** True for 127.0.0.0/8 and ::1, in any spelling a socket library gives a remote address. */
export function isLoopbackAddress(address: string): boolean {
  if (isIPv4(address)) return loopback.check(address, 'ipv4');
  if (isIPv6(address)) return loopback.check(address, 'ipv6');
  return false;
}

/** A host to listen on (config text, brackets removed) that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  return host.toLowerCase() === 'localhost' || isLoopbackAddress(host);
}
