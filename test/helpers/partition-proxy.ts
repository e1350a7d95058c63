/**
 * An in-test TCP proxy that partitions the peer links of a cluster of node
 * processes (Linux only). Every node is reached only through its front port
 * here (its peers list names the others' front ports, and it binds its own
 * listener on port 0, so the membership the first leader writes has no
 * address for the leader itself and every dial goes through a front port).
 * A connection is put down to the pair (dialer, listener): the listener from
 * the front port, the dialer from the owner of the connecting socket
 * (/proc/net/tcp gives its inode, /proc/<pid>/fd the process holding it).
 *
 * `cut(a, b)` closes the links between a and b and refuses new ones (a dial
 * is accepted and closed at once, as a peer that resets); `heal` lets them
 * through again. A dial whose process is not found passes while nothing is
 * cut and is refused while anything is.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

interface Forward {
  from: number | null;
  to: number;
  client: Socket;
  upstream: Socket;
}

export class PartitionProxy {
  private readonly servers: Server[] = [];
  private readonly targets: number[] = [];
  private readonly pids: (number | null)[] = [];
  private readonly cutPairs = new Set<string>();
  private readonly live = new Set<Forward>();
  /** Dials refused because their pair was cut, per "a>b". */
  readonly refused = new Map<string, number>();
  /** Dials whose process was not found (refused while any pair is cut, passed otherwise). */
  unidentified = 0;

  private constructor(readonly frontPorts: number[]) {}

  /** Listens on 127.0.0.1 at one front port per node (the ports given). */
  static async start(frontPorts: number[]): Promise<PartitionProxy> {
    const proxy = new PartitionProxy(frontPorts);
    for (const [i, port] of frontPorts.entries()) {
      const server = createServer((client) => proxy.accept(i, client));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve());
      });
      proxy.servers.push(server);
      proxy.targets.push(0);
      proxy.pids.push(null);
    }
    return proxy;
  }

  frontAddress(i: number): string {
    return `127.0.0.1:${this.frontPorts[i] as number}`;
  }

  /** Node i listens at 127.0.0.1:`port` and runs as process `pid`. */
  setNode(i: number, port: number, pid: number): void {
    this.targets[i] = port;
    this.pids[i] = pid;
  }

  /** Closes the links between a and b (both directions) and refuses new ones until heal(a, b). */
  cut(a: number, b: number): void {
    this.cutPairs.add(key(a, b));
    this.cutPairs.add(key(b, a));
    for (const f of this.live) if (f.from !== null && this.cutPairs.has(key(f.from, f.to))) drop(f);
  }

  /** Cuts node i off from every other node. */
  isolate(i: number): void {
    for (let j = 0; j < this.frontPorts.length; j++) if (j !== i) this.cut(i, j);
  }

  heal(a: number, b: number): void {
    this.cutPairs.delete(key(a, b));
    this.cutPairs.delete(key(b, a));
  }

  healAll(): void {
    this.cutPairs.clear();
  }

  /** Links open now between a and b (either direction). */
  links(a: number, b: number): number {
    let n = 0;
    for (const f of this.live) if ((f.from === a && f.to === b) || (f.from === b && f.to === a)) n++;
    return n;
  }

  async close(): Promise<void> {
    for (const f of this.live) drop(f);
    await Promise.all(this.servers.map((s) => new Promise((r) => s.close(r))));
  }

  private accept(to: number, client: Socket): void {
    client.on('error', () => undefined);
    const from = this.ownerOf(client.remotePort ?? 0, this.frontPorts[to] as number);
    if (from === null) this.unidentified++;
    // A dialer not found (it closed meanwhile) might be a cut-off node: while any pair is cut, refused.
    const pair = from === null ? '?>' + String(to) : key(from, to);
    if (from === null ? this.cutPairs.size > 0 : this.cutPairs.has(pair)) {
      this.refused.set(pair, (this.refused.get(pair) ?? 0) + 1);
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: this.targets[to] as number });
    upstream.on('error', () => undefined);
    const f: Forward = { from, to, client, upstream };
    this.live.add(f);
    const done = (): void => {
      this.live.delete(f);
      drop(f);
    };
    client.once('close', done);
    upstream.once('close', done);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Which node's process holds the socket 127.0.0.1:`localPort` -> `remotePort`; null when none does. */
  private ownerOf(localPort: number, remotePort: number): number | null {
    const inode = socketInode(localPort, remotePort);
    if (inode === null) return null;
    const link = `socket:[${inode}]`;
    for (const [i, pid] of this.pids.entries()) {
      if (pid === null) continue;
      let fds: string[];
      try {
        fds = readdirSync(`/proc/${pid}/fd`);
      } catch {
        continue;
      }
      for (const fd of fds) {
        try {
          if (readlinkSync(`/proc/${pid}/fd/${fd}`) === link) return i;
        } catch {
          // closed meanwhile
        }
      }
    }
    return null;
  }
}

function key(from: number, to: number): string {
  return `${from}>${to}`;
}

function drop(f: Forward): void {
  f.client.destroy();
  f.upstream.destroy();
}

/** The inode of the IPv4 TCP socket with local port `localPort` and remote port `remotePort`. */
function socketInode(localPort: number, remotePort: number): string | null {
  const hex = (p: number): string => p.toString(16).toUpperCase().padStart(4, '0');
  const local = `:${hex(localPort)}`;
  const remote = `:${hex(remotePort)}`;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 10) continue;
    if ((cols[1] as string).endsWith(local) && (cols[2] as string).endsWith(remote)) return cols[9] as string;
  }
  return null;
}
