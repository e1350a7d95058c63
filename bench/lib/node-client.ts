/**
 * Parent side of bench/lib/node-child.ts: forks the child (tracked, so it is
 * killed with the bench) and sends it commands, each with a time limit.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MetricName } from '../../src/log/record.ts';
import type { ReplicationNodeOptions, ReplicationStatus } from '../../src/node/types.ts';
import type { ConsistencyLevel } from '../../src/node/consistency.ts';
import { kill, track, withTimeout } from './processes.ts';

/** The commands' arguments, defined here with the protocol so the child imports them and not the reverse. */
export interface IngestArgs {
  collection: string;
  dim: number;
  batchSize: number;
  seed: number;
  idPrefix: string;
  consistency: ConsistencyLevel;
  /** Stop after this long or after maxBatches, whichever first. */
  durationMs: number;
  maxBatches: number;
  /** Vectors/s to pace at; omitted = as fast as the acknowledgements come. */
  ratePerSec?: number;
  /** Return [lsn, wall ms of the write call, wall ms of its acknowledgement] of every batch. */
  recordCommits?: boolean;
}

export interface WriteArgs {
  collection: string;
  dim: number;
  batchSize: number;
  seed: number;
  idPrefix: string;
  /** Batch number: picks the ids (`batchIds`) and the pool entry, as `ingest` does. */
  batch: number;
  consistency: ConsistencyLevel;
  timeoutMs: number;
}

export type ChildCommand =
  | { cmd: 'start'; options: ReplicationNodeOptions }
  | { cmd: 'createCollection'; name: string; dimension: number; metric: MetricName }
  | { cmd: 'dropCollection'; name: string }
  | { cmd: 'ingest'; args: IngestArgs }
  | { cmd: 'write'; args: WriteArgs }
  | { cmd: 'status' }
  | { cmd: 'digest'; collection: string }
  | { cmd: 'snapshot' }
  | { cmd: 'watch' }
  | { cmd: 'unwatch' }
  | { cmd: 'loopStart' }
  | { cmd: 'loopStop' }
  | { cmd: 'tcpReceive'; dir: string }
  | { cmd: 'tcpReceived' }
  | { cmd: 'stop' };

export type ChildReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { message: string; code: string | null } };

export interface IngestResult {
  vectors: number;
  batches: number;
  elapsedMs: number;
  vectorsPerSec: number;
  /** Wall-clock ms (performance.timeOrigin based), comparable across processes. */
  startWallMs: number;
  endWallMs: number;
  lastLsn: number;
  /** Event-loop delay on this node while it ingested. */
  loopDelay: { maxMs: number; p99Ms: number; meanMs: number; gc: GcPauses };
  /** [lsn, wall ms of the write call, wall ms of its acknowledgement], when asked for. */
  commits: [number, number, number][];
}

/** [LSN, wall ms] each time the node's applied LSN (lastLsn) or durable LSN moved while watched. */
export interface Watched {
  applied: [number, number][];
  durable: [number, number][];
}

/** A node process's event-loop delay (monitorEventLoopDelay, 1 ms resolution) and CPU time over a span. */
/** Garbage-collection pauses of a node's main thread over a window (PerformanceObserver 'gc'). */
export interface GcPauses {
  count: number;
  totalMs: number;
  maxMs: number;
  /** Of those, full (mark-compact) collections: their count and time. */
  majorCount: number;
  majorMs: number;
}

export interface LoopStats {
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  /** CPU time of the whole process (every thread), ms. */
  cpuMs: number;
  gc: GcPauses;
}

/** Header of one file in the raw TCP copy; `end` closes the transfer. */
export type TcpCopyHeader = { end?: false; name: string; bytes: number } | { end: true };

export interface StartedNode {
  nodeId: string;
  peerPort: number | null;
  /** The HTTP API's port, when forked with `http`. */
  httpPort: number | null;
}

export class ChildCommandError extends Error {
  constructor(
    message: string,
    readonly code: string | null,
  ) {
    super(message);
  }
}

const childPath = path.join(path.dirname(fileURLToPath(import.meta.url)), 'node-child.ts');

export class NodeChild {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exitError: Error | null = null;

  private constructor(
    readonly name: string,
    readonly process: ChildProcess,
  ) {
    process.on('message', (msg: ChildReply) => {
      const w = this.waiting.get(msg.id);
      if (!w) return;
      this.waiting.delete(msg.id);
      if (msg.ok) w.resolve(msg.result);
      else w.reject(new ChildCommandError(`${name}: ${msg.error.message}`, msg.error.code));
    });
    process.once('exit', (code, signal) => {
      this.exitError = new Error(`${name} exited (${String(code ?? signal)})`);
      for (const w of this.waiting.values()) w.reject(this.exitError);
      this.waiting.clear();
    });
  }

  /**
   * Forks a node child. With `options`, the node starts during boot and this
   * resolves once it runs (rejecting with the start error otherwise).
   */
  static async fork(
    name: string,
    options: ReplicationNodeOptions | null,
    timeoutMs: number,
    opts: { http?: boolean } = {},
  ): Promise<{ child: NodeChild; started: StartedNode | null }> {
    if (opts.http && !options) throw new Error('NodeChild.fork: http needs the options to start with');
    const args = options ? [JSON.stringify(options), ...(opts.http ? ['--http'] : [])] : [];
    const proc = track(
      fork(childPath, args, {
        execArgv: [
          '--import',
          'tsx',
          ...(process.env['VREP_BENCH_CHILD_ARGS'] ?? '').split(' ').filter(Boolean),
        ],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    );
    const child = new NodeChild(name, proc);
    const started = child.await<StartedNode | null>(0, timeoutMs, 'start');
    try {
      return { child, started: await started };
    } catch (err) {
      await kill(proc);
      throw err;
    }
  }

  call<T>(command: ChildCommand, timeoutMs: number): Promise<T> {
    if (this.exitError) return Promise.reject(this.exitError);
    const id = this.nextId++;
    const reply = this.await<T>(id, timeoutMs, command.cmd);
    this.process.send({ id, command });
    return reply;
  }

  status(timeoutMs = 10_000): Promise<{ lastLsn: number; durableLsn: number; status: ReplicationStatus }> {
    return this.call({ cmd: 'status' }, timeoutMs);
  }

  /** Stops the node cleanly (bounded), then makes sure the process is gone. */
  async stop(timeoutMs = 30_000): Promise<void> {
    try {
      if (!this.exitError) await this.call({ cmd: 'stop' }, timeoutMs);
      if (this.process.connected && this.process.exitCode === null) {
        // A clean exit (the child exits when its channel closes), so exit hooks such as --cpu-prof run.
        const gone = new Promise<void>((resolve) => this.process.once('exit', () => resolve()));
        this.process.disconnect();
        await withTimeout(gone, 5000, `${this.name} to exit`).catch(() => undefined);
      }
    } finally {
      await kill(this.process);
    }
  }

  private await<T>(id: number, timeoutMs: number, what: string): Promise<T> {
    const reply = new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
    });
    return withTimeout(reply, timeoutMs, `${this.name}: ${what}`).finally(() => this.waiting.delete(id));
  }
}
