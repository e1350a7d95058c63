/** Addresses of this machine, for tests that need a source address other than loopback. */
import os from 'node:os';

/**
 * A non-loopback IPv4 address of this machine (connecting to it from here
 * gives the server that address as the remote one), or undefined if none.
 */
export function nonLoopbackIPv4(): string | undefined {
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const a of addresses ?? []) {
      if (a.family === 'IPv4' && !a.internal && !a.address.startsWith('127.')) return a.address;
    }
  }
  return undefined;
}
