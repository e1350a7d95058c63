/**
 * Parent side of the ingest bench's two children: the node
 * (bench/lib/serve-child.ts, `serve()` with its HTTP API) and the HTTP
 * client (bench/lib/http-ingest-child.ts). The commands' shapes live here
 * with the protocol, so the children import them and not the reverse.
 */
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConsistencyLevel } from '../../src/node/consistency.ts';
import type { BatchShape, BodyKind } from './ingest-batches.ts';
import { kill, track, withTimeout } from './processes.ts';

/** The node's event-loop delay during a case, and the CPU time its process used (every thread). */
export interface LoopDelay {
  cpuMs: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

export interface TsIngestArgs {
  collection: string;
  shape: BatchShape;
  consistency: ConsistencyLevel;
  /** Writers, each with one batch in flight (as many as the HTTP client's connections). */
  concurrency: number;
  durationMs: number;
  maxBatches: number;
}

export interface TsIngestResult {
  vectors: number;
  elapsedMs: number;
  loopDelay: LoopDelay;
}

export type ServeChildCommand =
  | { cmd: 'createCollection'; name: string; dimension: number }
  | { cmd: 'dropCollection'; name: string }
  | { cmd: 'tsIngest'; args: TsIngestArgs }
  | { cmd: 'snapshot' }
  | { cmd: 'loopStart' }
  | { cmd: 'loopStop' }
  | { cmd: 'profileStart' }
  | { cmd: 'profileStop'; file: string }
  | { cmd: 'stop' };

export interface HttpIngestArgs {
  port: number;
  collection: string;
  shape: BatchShape;
  kind: BodyKind;
  consistency: ConsistencyLevel;
  /** Keep-alive connections, each with one request in flight. */
  connections: number;
  durationMs: number;
  maxBatches: number;
}

export interface HttpIngestResult {
  vectors: number;
  bodyBytes: number;
  elapsedMs: number;
  /** Mean wall time of one request, ms. */
  meanRequestMs: number;
  /** CPU time the client process used. */
  cpuMs: number;
}

export type HttpClientCommand =
  { cmd: 'prepare'; shape: BatchShape; kind: BodyKind } | { cmd: 'run'; args: HttpIngestArgs };

export type ServeChildReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { message: string; code: string | null } };

const here = path.dirname(fileURLToPath(import.meta.url));

/** A forked bench child answering `{id, command}` messages with `{id, ok, result | error}`. */
export class IpcChild<Command extends { cmd: string }> {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exitError: Error | null = null;
  private readonly ready: Promise<unknown>;

  private constructor(
    readonly name: string,
    private readonly child: ReturnType<typeof fork>,
    startTimeoutMs: number,
  ) {
    child.on('message', (msg: ServeChildReply) => {
      const w = this.waiting.get(msg.id);
      if (!w) return;
      this.waiting.delete(msg.id);
      if (msg.ok) w.resolve(msg.result);
      else w.reject(new Error(`${name}: ${msg.error.message}`));
    });
    child.once('exit', (code, signal) => {
      this.exitError = new Error(`${name} exited (${String(code ?? signal)})`);
      for (const w of this.waiting.values()) w.reject(this.exitError);
      this.waiting.clear();
    });
    this.ready = this.await(0, startTimeoutMs, 'start');
  }

  /**
   * Forks `script` (in bench/lib) with `args`; resolves with what the child
   * sends as message 0. `childArgs`: also pass VREP_BENCH_CHILD_ARGS (e.g. --cpu-prof).
   */
  static async fork<C extends { cmd: string }, R>(
    name: string,
    script: string,
    args: string[],
    opts: { timeoutMs: number; childArgs: boolean },
  ): Promise<{ child: IpcChild<C>; started: R }> {
    const extra = opts.childArgs
      ? (process.env['VREP_BENCH_CHILD_ARGS'] ?? '').split(' ').filter(Boolean)
      : [];
    const proc = track(
      fork(path.join(here, script), args, {
        execArgv: ['--import', 'tsx', ...extra],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    );
    const child = new IpcChild<C>(name, proc, opts.timeoutMs);
    try {
      return { child, started: (await child.ready) as R };
    } catch (err) {
      await kill(proc);
      throw err;
    }
  }

  call<T>(command: Command, timeoutMs: number): Promise<T> {
    if (this.exitError) return Promise.reject(this.exitError);
    const id = this.nextId++;
    const reply = this.await<T>(id, timeoutMs, command.cmd);
    this.child.send({ id, command });
    return reply;
  }

  /** Disconnects (the child exits by itself, so exit hooks such as --cpu-prof run), then makes sure it is gone. */
  async close(): Promise<void> {
    try {
      if (this.child.connected && this.child.exitCode === null) {
        const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
        this.child.disconnect();
        await withTimeout(gone, 10_000, `${this.name} to exit`).catch(() => undefined);
      }
    } finally {
      await kill(this.child);
    }
  }

  private await<T>(id: number, timeoutMs: number, what: string): Promise<T> {
    const reply = new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
    });
    return withTimeout(reply, timeoutMs, `${this.name}: ${what}`).finally(() => this.waiting.delete(id));
  }
}
