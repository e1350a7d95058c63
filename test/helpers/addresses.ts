/** Addresses of this machine, for tests that need a source address other than loopback. */
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import { PEER_PORT_OFFSET } from '../../src/cli/cluster.ts';

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

/** Listens on 127.0.0.1:`port`; null when it is taken. */
export function listen(port: number): Promise<Server | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(null));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/** A base port whose HTTP and peer ports for `nodes` nodes of `vrep cluster` are all free right now. */
export async function freeBasePort(nodes: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const ports = Array.from({ length: nodes }, (_, i) => [base + i, base + PEER_PORT_OFFSET + i]).flat();
    const servers = await Promise.all(ports.map(listen));
    await Promise.all(servers.map((s) => s && new Promise((r) => s.close(r))));
    if (servers.every((s) => s !== null)) return base;
  }
  throw new Error('no free port range found');
}

/** `count` distinct ports that are free on 127.0.0.1 right now. */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      servers.push(server);
    }
    return servers.map((s) => {
      const a = s.address();
      if (a === null || typeof a === 'string') throw new Error('no port');
      return a.port;
    });
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}
