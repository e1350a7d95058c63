/**
 * Redis as the bench's peer: starts private redis-server processes (no system
 * service needed; `npm run bench:deps` installs the binary) and talks RESP2
 * over `net`. No npm Redis client is installed in this project and the bench
 * needs three commands, pipelined: a small hand-written client is less code
 * than a new dependency, and it keeps the client cost at a buffer write.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { freePort, kill, track, withTimeout } from './processes.ts';

export type Reply = string | number | Buffer | null | RedisReplyError | Reply[];

export class RedisReplyError extends Error {}

const CRLF = Buffer.from('\r\n');

/** One RESP array-of-bulk-strings command. */
export function encodeCommand(args: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const bytes = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, CRLF);
  }
  return Buffer.concat(parts);
}

/** `SET id value` for each row of `vectors` (dim floats each), as one pipelined buffer. */
export function encodeSetBatch(ids: readonly string[], vectors: Float32Array, dim: number): Buffer {
  const valueBytes = dim * 4;
  const bytes = Buffer.from(vectors.buffer, vectors.byteOffset, vectors.byteLength);
  const parts: Buffer[] = [];
  ids.forEach((id, i) => {
    parts.push(
      Buffer.from(`*3\r\n$3\r\nSET\r\n$${Buffer.byteLength(id)}\r\n${id}\r\n$${valueBytes}\r\n`),
      bytes.subarray(i * valueBytes, (i + 1) * valueBytes),
      CRLF,
    );
  });
  return Buffer.concat(parts);
}

/** Parses one reply at `pos`; undefined when the buffer does not hold all of it yet. */
export function parseReply(buf: Buffer, pos: number): { value: Reply; end: number } | undefined {
  if (pos >= buf.length) return undefined;
  const lineEnd = buf.indexOf(CRLF, pos);
  if (lineEnd < 0) return undefined;
  const line = buf.toString('latin1', pos + 1, lineEnd);
  const after = lineEnd + 2;
  switch (buf[pos]) {
    case 0x2b: // +
      return { value: line, end: after };
    case 0x2d: // -
      return { value: new RedisReplyError(line), end: after };
    case 0x3a: // :
      return { value: Number(line), end: after };
    case 0x24: {
      // $
      const len = Number(line);
      if (len < 0) return { value: null, end: after };
      if (buf.length < after + len + 2) return undefined;
      return { value: Buffer.from(buf.subarray(after, after + len)), end: after + len + 2 };
    }
    case 0x2a: {
      // *
      const count = Number(line);
      if (count < 0) return { value: null, end: after };
      const items: Reply[] = [];
      let at = after;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buf, at);
        if (!item) return undefined;
        items.push(item.value);
        at = item.end;
      }
      return { value: items, end: at };
    }
    default:
      throw new Error(`RESP: unexpected type byte 0x${(buf[pos] ?? 0).toString(16)} from the server`);
  }
}

interface Pending {
  remaining: number;
  replies: Reply[];
  resolve: (replies: Reply[]) => void;
  reject: (err: Error) => void;
}

/** Pipelining RESP client: `send` writes any number of commands and awaits that many replies. */
export class RespClient {
  private buf: Buffer = Buffer.alloc(0);
  private readonly pending: Pending[] = [];
  private closedError: Error | null = null;

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    const fail = (err: Error): void => {
      this.closedError = err;
      for (const p of this.pending.splice(0)) p.reject(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('redis connection closed')));
  }

  static async connect(port: number): Promise<RespClient> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RespClient(socket);
  }

  /** Writes `commands` (already encoded, `count` commands in all) and resolves with their replies. */
  send(commands: Buffer, count: number): Promise<Reply[]> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise<Reply[]>((resolve, reject) => {
      this.pending.push({ remaining: count, replies: [], resolve, reject });
      this.socket.write(commands);
    });
  }

  /** One command; a Redis error reply rejects. */
  async call(...args: string[]): Promise<Reply> {
    const [reply] = await this.send(encodeCommand(args), 1);
    if (reply instanceof RedisReplyError) throw new Error(`redis ${args.join(' ')}: ${reply.message}`);
    return reply ?? null;
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let pos = 0;
    for (;;) {
      const parsed = parseReply(this.buf, pos);
      if (!parsed) break;
      pos = parsed.end;
      const head = this.pending[0];
      if (!head) throw new Error('redis sent a reply nobody asked for');
      head.replies.push(parsed.value);
      if (--head.remaining === 0) {
        this.pending.shift();
        head.resolve(head.replies);
      }
    }
    this.buf = this.buf.subarray(pos);
  }
}

/** Fails clearly when redis-server is missing or older than 7. */
export function redisServerVersion(): string {
  const run = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (run.error || run.status !== 0) {
    throw new Error(
      'redis-server not found on PATH: run `npm run bench:deps` (installs Debian redis-server)',
    );
  }
  const m = /v=(\d+)\.(\d+)\.(\d+)/.exec(run.stdout);
  if (!m || Number(m[1]) < 7) throw new Error(`need Redis >= 7, found: ${run.stdout.trim()}`);
  return `${m[1]}.${m[2]}.${m[3]}`;
}

export interface RedisServer {
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts one redis-server in the foreground on a free port. Persistence is
 * AOF with appendfsync everysec and no RDB saves: the same durability as the
 * vrep nodes in the bench (WAL, fsync everysec), so neither side is timed
 * without the disk writes the other does. AOF rewrites are off: the vrep
 * nodes never reach their snapshot threshold (1 GB of WAL) in these runs, so
 * both sides only append to their log.
 */
export async function startRedis(opts: {
  dir: string;
  replicaOfPort?: number;
  timeoutMs: number;
}): Promise<RedisServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--daemonize',
      'no',
      '--dir',
      opts.dir,
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--auto-aof-rewrite-percentage',
      '0',
      '--appendfilename',
      `appendonly-${port}.aof`,
      '--appenddirname',
      `aof-${port}`,
      '--dbfilename',
      `dump-${port}.rdb`,
      '--logfile',
      '',
    ];
    if (opts.replicaOfPort !== undefined) args.push('--replicaof', '127.0.0.1', String(opts.replicaOfPort));
    const child = track(spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let log = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (log += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (log += d));
    try {
      await withTimeout(
        new Promise<void>((resolve, reject) => {
          const onData = (): void => {
            if (log.includes('Ready to accept connections')) resolve();
          };
          child.stdout.on('data', onData);
          child.once('exit', (code) => reject(new Error(`redis-server exited ${String(code)}:\n${log}`)));
          child.once('error', reject);
        }),
        opts.timeoutMs,
        `redis-server on port ${port} to start`,
      );
      return { port, process: child, stop: () => kill(child) };
    } catch (err) {
      lastError = err;
      await kill(child);
      if (!/Address already in use/.test(log)) break;
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

/** `INFO replication` as key -> value. */
export async function replicationInfo(client: RespClient): Promise<Map<string, string>> {
  const reply = await client.call('INFO', 'replication');
  const text = Buffer.isBuffer(reply) ? reply.toString('utf8') : String(reply);
  const info = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) info.set(line.slice(0, i), line.slice(i + 1));
  }
  return info;
}
