/**
 * Three (or more) node processes in role auto, and a client that writes to
 * whichever of them leads, for the multi-process election tests
 * (test/replication/auto-*.test.ts). Every write attempt is kept with its
 * target and outcome, so a test can ask what was acknowledged, by whom and
 * when; an attempt the client gave up waiting for still settles and counts.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import type { NodeProc } from './node-proc.ts';
import { until } from './node-proc.ts';
import { idsOf, missingOn, Procs, sleep, waitLogsConverged as waitLogsConvergedOn } from './safety.ts';
import type { NodeEvent, ReplicationNodeOptions, ReplicationOptions } from '../../src/node/types.ts';
import type { ConsistencyLevel } from '../../src/node/consistency.ts';

export const DIM = 16;
export const ELECTION_TIMEOUT_MS = 1000;
export const TIMING = {
  electionTimeoutMs: ELECTION_TIMEOUT_MS,
  heartbeatIntervalMs: 100,
  replicaTimeoutMs: 5000,
  reconnectIntervalMs: 200,
};

export interface ClusterSpec {
  dir: string;
  /** Peer listener of node i. */
  bind: (i: number) => string;
  /** The address node i dials node j at. */
  peer: (i: number, j: number) => string;
  count?: number;
  /** The HTTP address node i tells its peers (named in ERR_NOT_LEADER's `primary`); none by default. */
  httpAddress?: (i: number) => string;
  replication?: Partial<ReplicationOptions>;
}

interface StatusLite {
  state: string;
  term: number;
  leader: { node_id: string } | null;
}

export class AutoCluster {
  readonly ids: string[];
  readonly nodes: (NodeProc | null)[];

  private constructor(
    readonly procs: Procs,
    private readonly spec: ClusterSpec,
  ) {
    this.ids = Array.from({ length: spec.count ?? 3 }, (_, i) => `n${i + 1}`);
    this.nodes = this.ids.map(() => null);
  }

  static async start(procs: Procs, spec: ClusterSpec): Promise<AutoCluster> {
    const c = new AutoCluster(procs, spec);
    await Promise.all(c.ids.map(async (_, i) => (c.nodes[i] = await procs.start(c.options(i)))));
    return c;
  }

  options(i: number): ReplicationNodeOptions {
    return {
      nodeId: this.ids[i] as string,
      dataDir: path.join(this.spec.dir, this.ids[i] as string),
      storage: { fsync: 'always' },
      replication: {
        role: 'auto',
        bindAddress: this.spec.bind(i),
        peers: this.ids.flatMap((_, j) => (j === i ? [] : [this.spec.peer(i, j)])),
        ...TIMING,
        ...(this.spec.httpAddress ? { httpAddress: this.spec.httpAddress(i) } : {}),
        ...this.spec.replication,
      },
    };
  }

  /** Starts one more node, outside the spec (a replacement that joins as a learner); returns its index. */
  async join(id: string, options: ReplicationNodeOptions): Promise<number> {
    const node = await this.procs.start(options);
    this.ids.push(id);
    this.nodes.push(node);
    return this.ids.length - 1;
  }

  node(i: number): NodeProc {
    const n = this.nodes[i];
    if (!n) throw new Error(`node ${this.ids[i]} is not running`);
    return n;
  }

  get live(): NodeProc[] {
    return this.nodes.filter((n): n is NodeProc => n !== null);
  }

  indexOf(id: string): number {
    return this.ids.indexOf(id);
  }

  /** The index of the node that leads, as the nodes' status says (the highest term among those leading). */
  async findLeader(among: number[] = this.ids.map((_, i) => i)): Promise<{ i: number; term: number } | null> {
    const states = await Promise.all(
      among.map(async (i) => {
        const n = this.nodes[i];
        const s = n ? await n.call<StatusLite>('status', {}, 2000).catch(() => null) : null;
        return { i, s };
      }),
    );
    let best: { i: number; term: number } | null = null;
    for (const { i, s } of states) {
      if (s?.state === 'leader' && (best === null || s.term > best.term)) best = { i, term: s.term };
    }
    return best;
  }

  async waitLeader(what: string, among?: number[], timeoutMs = 30_000): Promise<{ i: number; term: number }> {
    return until(() => this.findLeader(among), timeoutMs, what).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.procs.logs()}`);
    });
  }

  async events(i: number): Promise<NodeEvent[]> {
    return this.node(i).call<NodeEvent[]>('events');
  }
}

export interface Attempt {
  first: number;
  count: number;
  /** Index of the node written to. */
  node: number;
  consistency: ConsistencyLevel;
  sentMs: number;
  endMs: number | null;
  /** null while unsettled. */
  ok: boolean | null;
  lsn: number | null;
  code: string | null;
  message: string | null;
  /** error.primary of a refusal that names the primary (absent on other errors). */
  primary?: string | null;
}

export type Outcome<T> =
  { ok: true; result: T } | { ok: false; code?: string; message: string; primary?: string | null };

/**
 * Writes batches of new ids to `node` and keeps the attempt. `callTimeoutMs`
 * bounds the IPC call (a paused process answers late or never); a call that
 * times out is settled as code 'IPC_TIMEOUT' (indeterminate).
 */
export async function attemptWrite(
  cluster: AutoCluster,
  node: number,
  first: number,
  opts: { count: number; consistency: ConsistencyLevel; timeoutMs?: number; callTimeoutMs?: number },
  into: Attempt[],
): Promise<Attempt> {
  const a: Attempt = {
    first,
    count: opts.count,
    node,
    consistency: opts.consistency,
    sentMs: Date.now(),
    endMs: null,
    ok: null,
    lsn: null,
    code: null,
    message: null,
  };
  into.push(a);
  const args = {
    collection: 'c',
    first,
    count: opts.count,
    dimension: DIM,
    consistency: opts.consistency,
    timeoutMs: opts.timeoutMs ?? 5000,
  };
  try {
    const out = await cluster
      .node(node)
      .call<Outcome<{ lsn: number }>>('attempt', { cmd: 'write', args }, opts.callTimeoutMs ?? 60_000);
    a.ok = out.ok;
    if (out.ok) a.lsn = out.result.lsn;
    else {
      a.code = out.code ?? null;
      a.message = out.message;
      if (out.primary !== undefined) a.primary = out.primary;
    }
  } catch (err) {
    a.ok = false;
    a.message = (err as Error).message;
    a.code = /^timed out/.test(a.message) ? 'IPC_TIMEOUT' : 'IPC_FAILED';
  }
  a.endMs = Date.now();
  return a;
}

/**
 * WORKERS writers of BATCH new ids each, to the node that leads (found in
 * the nodes' status, as a client following ERR_NOT_LEADER would). A worker
 * waits at most `patienceMs` for an answer before it looks for the leader
 * again; the attempt it left settles on its own and is kept.
 */
export class Client {
  readonly attempts: Attempt[] = [];
  private next = 0;
  private leader: number | null = null;
  private stopped = false;
  private readonly pending = new Set<Promise<Attempt>>();
  private workers: Promise<void>[] = [];

  constructor(
    private readonly cluster: AutoCluster,
    private readonly opts: {
      workers?: number;
      batch?: number;
      consistency?: ConsistencyLevel;
      patienceMs?: number;
      firstId?: number;
      /** Nodes the client may write to (default all). */
      among?: () => number[];
    } = {},
  ) {
    this.next = opts.firstId ?? 0;
  }

  start(): void {
    this.workers = Array.from({ length: this.opts.workers ?? 3 }, () => this.work());
  }

  /** Stops the workers, then waits for every attempt to settle. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.workers);
    await Promise.all([...this.pending]);
  }

  acked(): Attempt[] {
    return this.attempts.filter((a) => a.ok === true);
  }

  ackedIds(): string[] {
    return this.acked().flatMap((a) => idsOf(a.first, a.count));
  }

  /** Acknowledged attempts to `node` sent after `sinceMs`. */
  ackedSince(sinceMs: number, node?: number): Attempt[] {
    return this.acked().filter((a) => a.sentMs >= sinceMs && (node === undefined || a.node === node));
  }

  private async work(): Promise<void> {
    const batch = this.opts.batch ?? 10;
    while (!this.stopped) {
      if (this.leader === null) {
        this.leader = (await this.cluster.findLeader(this.opts.among?.()))?.i ?? null;
        if (this.leader === null) await sleep(50);
        continue;
      }
      const target = this.leader;
      const first = this.next;
      this.next += batch;
      const p = attemptWrite(
        this.cluster,
        target,
        first,
        { count: batch, consistency: this.opts.consistency ?? 'quorum' },
        this.attempts,
      );
      this.pending.add(p);
      void p.then(() => this.pending.delete(p));
      const patience = sleep(this.opts.patienceMs ?? 2000).then(() => null);
      const a = await Promise.race([p, patience]);
      if (a === null || a.ok !== true) {
        if (this.leader === target) this.leader = null;
        if (a !== null) await sleep(20);
      }
    }
  }
}

/** Codes of the failed attempts, counted. */
export function failureCodes(attempts: Attempt[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of attempts) if (a.ok === false) out[a.code ?? 'none'] = (out[a.code ?? 'none'] ?? 0) + 1;
  return out;
}

export interface ReadAttempt {
  node: number;
  sentMs: number;
  ok: boolean;
  found: boolean;
  code: string | null;
  primary?: string | null;
}

/** A get of `id` at `consistency` on `node`, kept in `into`; an IPC failure counts as code 'IPC_FAILED'. */
export async function attemptRead(
  cluster: AutoCluster,
  node: number,
  id: string,
  consistency: 'local' | 'linearizable',
  into: ReadAttempt[],
): Promise<ReadAttempt> {
  const sentMs = Date.now();
  let r: ReadAttempt;
  try {
    const out = await cluster
      .node(node)
      .call<Outcome<{ found: boolean }>>(
        'attempt',
        { cmd: 'read', args: { collection: 'c', id, consistency } },
        60_000,
      );
    r = out.ok
      ? { node, sentMs, ok: true, found: out.result.found, code: null }
      : {
          node,
          sentMs,
          ok: false,
          found: false,
          code: out.code ?? null,
          ...(out.primary !== undefined ? { primary: out.primary } : {}),
        };
  } catch {
    r = { node, sentMs, ok: false, found: false, code: 'IPC_FAILED' };
  }
  into.push(r);
  return r;
}

/** safety.ts's waitLogsConverged over the cluster's live nodes and collection c, with their logs on failure. */
export async function waitLogsConverged(cluster: AutoCluster, timeoutMs: number): Promise<void> {
  await waitLogsConvergedOn(cluster.live, 'c', timeoutMs).catch((err: Error) => {
    throw new Error(`${err.message}\n${cluster.procs.logs()}`);
  });
}

/** Every live node holds every one of `ids` in collection c (`context` ends the message, e.g. a seed). */
export async function assertAllHold(cluster: AutoCluster, ids: string[], context = ''): Promise<void> {
  for (const [i, node] of cluster.live.entries()) {
    const missing = await missingOn(node, 'c', ids);
    assert.deepEqual(
      missing.slice(0, 20),
      [],
      `${cluster.ids[i]} lacks ${missing.length} of ${ids.length} acknowledged points${context}`,
    );
  }
}
