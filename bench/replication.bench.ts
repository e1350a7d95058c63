/**
 * Replication against Redis 7, both as a primary + 2 replicas, each node in
 * its own process, on this machine, in the same run:
 *  a. vrep ingest + replication throughput at consistency One / Quorum / All
 *     (dim 768 and 128, batches of 1000), driven through the TS API inside
 *     the primary's process (bench/lib/node-child.ts), and at dim 768 by a
 *     client in its own process sending binary batches over HTTP with 4
 *     connections (bench/lib/http-ingest-child.ts);
 *  b. Redis 7 with 2 replicas: pipelined SET of the same vector bytes, with
 *     WAIT 1 (Quorum) / WAIT 2 (All) per batch; ratios vrep / Redis;
 *  c. replication lag at half the One rate of (a): commit on the primary
 *     (its WAL holds the batch) to durable on each replica, p50/p99/p999;
 *  d. full sync: bench/replication-full-sync.bench.ts;
 *  e. event-loop delay on the primary and on each replica during (a), next
 *     to a standalone node;
 *  f. the issue's goals, each a ratio against its same-run reference.
 * Method: one batch in flight on both sides; "acked" = the writer's rate,
 * "on both replicas" = vectors / time until both replicas hold the last
 * batch (vrep: their lastLsn; Redis: WAIT 2). Durability alike: vrep WAL
 * fsync everysec, Redis AOF appendfsync everysec. The vrep driver runs inside
 * the primary's process (vectors generated there from a seed); the Redis
 * client (RESP over net, bench/lib/redis.ts) runs in this process. Every
 * case is bounded in time; every process started here is killed on exit.
 * Needs redis-server (`npm run bench:deps`); starts its own, no service.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { processBench } from './lib/process-bench.ts';
import { isQuick, latencyHistogram, type Row, type Section } from './lib/harness.ts';
import { ConsistencyLevel } from '../src/node/consistency.ts';
import {
  ChildCommandError,
  NodeChild,
  type IngestArgs,
  type IngestResult,
  type LoopStats,
  type Watched,
} from './lib/node-client.ts';
import { IpcChild, type HttpClientCommand, type HttpIngestResult } from './lib/ingest-client.ts';
import { waitUntil, wallMs, withTimeout } from './lib/processes.ts';
import {
  LEVEL_NAME,
  replicasReach,
  replicatedCase,
  startManualCluster,
  type Cluster,
  type ReplicatedCase,
} from './lib/cluster.ts';
import {
  encodeCommand,
  encodeSetBatch,
  RedisReplyError,
  redisServerVersion,
  replicationInfo,
  RespClient,
  startRedis,
  type RedisServer,
} from './lib/redis.ts';
import { batchIds, POOL_BATCHES, vectorPool } from './lib/seeded.ts';

const quick = isQuick();
const DIMS = [768, 128] as const;
const LEVELS = [ConsistencyLevel.One, ConsistencyLevel.Quorum, ConsistencyLevel.All] as const;
const BATCH = 1000;
const SEED = 42;
/** Each throughput case runs this long or until CASE_MAX_BYTES, whichever first. */
const CASE_MS = quick ? 1500 : 5000;
/** Vector bytes one case may write (each node holds them until the case drops its collection). */
const CASE_MAX_BYTES = (quick ? 96 : 512) * 1024 * 1024;
const caseMaxBatches = (dim: number): number => Math.max(1, Math.floor(CASE_MAX_BYTES / (BATCH * dim * 4)));
const WARMUP_MS = quick ? 500 : 2000;
/** The paced lag run (one sample per batch and replica). */
const LAG_MS = quick ? 2000 : 20_000;
/** Limits: every wait in the bench has one. */
const START_TIMEOUT_MS = 30_000;
const CATCH_UP_TIMEOUT_MS = 120_000;
const CASE_TIMEOUT_MS = CASE_MS + 120_000;
const WHOLE_BENCH_TIMEOUT_MS = quick ? 10 * 60_000 : 40 * 60_000;

const { tmpRoot, problems, run } = processBench('replication', WHOLE_BENCH_TIMEOUT_MS);
const benchStart = performance.now();
/** Progress on stderr (run.ts passes it through; results go to stdout). */
function progress(message: string): void {
  process.stderr.write(
    `replication bench [${((performance.now() - benchStart) / 1000).toFixed(1)} s] ${message}\n`,
  );
}

// ---- vrep cluster -----------------------------------------------------------

const nodeDir = (name: string): string => path.join(tmpRoot, name);

/**
 * Primary + 2 replicas (p, r1, r2), each in its own process, both members
 * (Quorum and All count them); the primary serves its HTTP API too.
 */
function startVrepCluster(): Promise<Cluster> {
  return startManualCluster({ dir: tmpRoot, idPrefix: '', primaryHttp: true, timeoutMs: START_TIMEOUT_MS });
}

/** The HTTP case's client: binary batches of dim HTTP_DIM, HTTP_CONNECTIONS connections. */
const HTTP_DIM = 768;
const HTTP_CONNECTIONS = 4;
const httpShape = { seed: SEED + HTTP_DIM, dim: HTTP_DIM, batchSize: BATCH, idPrefix: 'h' };

async function startHttpClient(): Promise<IpcChild<HttpClientCommand>> {
  const { child } = await IpcChild.fork<HttpClientCommand, null>('HTTP client', 'http-ingest-child.ts', [], {
    timeoutMs: START_TIMEOUT_MS,
    childArgs: false,
  });
  await child.call({ cmd: 'prepare', shape: httpShape, kind: 'binary' }, 60_000);
  return child;
}

/** Level `level` written by the HTTP client, replicated to both replicas. */
async function httpCase(
  cluster: Cluster,
  client: IpcChild<HttpClientCommand>,
  level: ConsistencyLevel,
): Promise<ReplicatedCase> {
  const port = cluster.primaryHttpPort;
  if (port === null) throw new Error('the primary serves no HTTP API');
  const collection = `h${HTTP_DIM}_${level}`;
  const { primary } = cluster;
  const drive = async (): Promise<IngestResult> => {
    await primary.call({ cmd: 'loopStart' }, 10_000);
    const startWallMs = wallMs();
    const r = await client.call<HttpIngestResult>(
      {
        cmd: 'run',
        args: {
          port,
          collection,
          shape: httpShape,
          kind: 'binary',
          consistency: level,
          connections: HTTP_CONNECTIONS,
          durationMs: CASE_MS,
          maxBatches: caseMaxBatches(HTTP_DIM),
        },
      },
      CASE_TIMEOUT_MS,
    );
    const loopDelay = await primary.call<LoopStats>({ cmd: 'loopStop' }, 10_000);
    // Every batch was answered, so the primary has applied all of them.
    const { lastLsn } = await primary.status();
    return {
      vectors: r.vectors,
      batches: r.vectors / BATCH,
      elapsedMs: r.elapsedMs,
      vectorsPerSec: (r.vectors * 1000) / r.elapsedMs,
      startWallMs,
      endWallMs: startWallMs + r.elapsedMs,
      lastLsn,
      loopDelay,
      commits: [],
    };
  };
  const result = await replicatedCase(cluster, {
    args: await ingestArgs(collection, HTTP_DIM, level),
    drive,
    ingestTimeoutMs: CASE_TIMEOUT_MS,
    catchUpTimeoutMs: CATCH_UP_TIMEOUT_MS,
  });
  if (!result.digestsEqual) problems.push(`vrep digests differ after ${collection}`);
  return result;
}

async function ingestArgs(
  collection: string,
  dim: number,
  consistency: ConsistencyLevel,
  extra: Partial<IngestArgs> = {},
): Promise<IngestArgs> {
  return {
    collection,
    dim,
    batchSize: BATCH,
    seed: SEED + dim,
    idPrefix: 'v',
    consistency,
    durationMs: CASE_MS,
    maxBatches: caseMaxBatches(dim),
    ...extra,
  };
}

async function vrepCase(
  cluster: Cluster,
  dim: number,
  level: ConsistencyLevel,
  durationMs = CASE_MS,
): Promise<ReplicatedCase> {
  const collection = `t${dim}_${level}`;
  const result = await replicatedCase(cluster, {
    args: await ingestArgs(collection, dim, level, { durationMs }),
    ingestTimeoutMs: CASE_TIMEOUT_MS,
    catchUpTimeoutMs: CATCH_UP_TIMEOUT_MS,
  });
  if (!result.digestsEqual) problems.push(`vrep digests differ after ${collection}`);
  return result;
}

async function standaloneCase(node: NodeChild, dim: number): Promise<IngestResult> {
  const collection = `s${dim}`;
  await node.call({ cmd: 'createCollection', name: collection, dimension: dim, metric: 'l2' }, 10_000);
  await node.call<IngestResult>(
    {
      cmd: 'ingest',
      args: await ingestArgs(collection, dim, ConsistencyLevel.One, { durationMs: WARMUP_MS, idPrefix: 'w' }),
    },
    CASE_TIMEOUT_MS,
  ); // warm-up
  const ingest = await node.call<IngestResult>(
    { cmd: 'ingest', args: await ingestArgs(collection, dim, ConsistencyLevel.One) },
    CASE_TIMEOUT_MS,
  );
  await node.call({ cmd: 'dropCollection', name: collection }, 30_000);
  return ingest;
}

interface LagStats {
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  perReplicaP99Ms: number[];
}

interface LagCase {
  ratePerSec: number;
  achievedPerSec: number;
  /** Batch x replica. */
  samples: number;
  /** The goal's lag: durable on the replica (its WAL holds the batch) - durable on the primary (commit at One). */
  durable: LagStats;
  /** Applied on the replica (visible to its reads) - the primary's write() call. */
  appliedFromCall: LagStats;
  /** The primary's write() call to acknowledgement. */
  writeLatency: { p50Ms: number; p99Ms: number; maxMs: number };
  /** Snapshots each node built during the case, primary first (a build competes with the WAL for the disk). */
  snapshotsBuilt: number[];
}

/** Wall ms at which `seen` (polled [LSN, ms] as it moved) first reached `lsn`. */
function reachedAt(seen: [number, number][], lsn: number, from: { j: number }): number {
  while (from.j < seen.length && (seen[from.j] as [number, number])[0] < lsn) from.j++;
  const hit = seen[from.j];
  if (!hit) throw new Error(`lag: LSN ${lsn} was never seen`);
  return hit[1];
}

/**
 * Lag per batch (one LSN each) and replica: wall time a replica first showed
 * the batch minus `originMs` of it on the primary, one machine clock. Every
 * position is polled every 1 ms in its own process, so up to ~1 ms late on
 * either side.
 */
function lagStats(lsns: number[], originMs: number[], replicas: [number, number][][]): LagStats {
  const all = latencyHistogram();
  const perReplicaP99Ms: number[] = [];
  for (const seen of replicas) {
    const one = latencyHistogram();
    const cursor = { j: 0 };
    lsns.forEach((lsn, i) => {
      const us = Math.max(0, Math.round((reachedAt(seen, lsn, cursor) - (originMs[i] as number)) * 1000));
      all.recordValue(us);
      one.recordValue(us);
    });
    perReplicaP99Ms.push(one.getValueAtPercentile(99) / 1000);
    one.destroy();
  }
  const out = {
    p50Ms: all.getValueAtPercentile(50) / 1000,
    p99Ms: all.getValueAtPercentile(99) / 1000,
    p999Ms: all.getValueAtPercentile(99.9) / 1000,
    maxMs: all.maxValue / 1000,
    perReplicaP99Ms,
  };
  all.destroy();
  return out;
}

/** Paced ingest at consistency One while every node timestamps the LSNs it makes durable and applies. */
async function lagCase(cluster: Cluster, dim: number, ratePerSec: number): Promise<LagCase> {
  const { primary, replicas } = cluster;
  const nodes = [primary, ...replicas];
  const collection = `lag${dim}`;
  const created = await primary.call<{ lsn: number }>(
    { cmd: 'createCollection', name: collection, dimension: dim, metric: 'l2' },
    10_000,
  );
  await replicasReach(replicas, created.lsn, CATCH_UP_TIMEOUT_MS, `replicas to create ${collection}`);
  await Promise.all(nodes.map((r) => r.call({ cmd: 'watch' }, 10_000)));
  const snapshotsTaken = async (): Promise<number[]> =>
    (await Promise.all(nodes.map((n) => n.status()))).map((s) => s.status.stats.snapshots_taken);
  const snapshotsBefore = await snapshotsTaken();
  const ingest = await primary.call<IngestResult>(
    {
      cmd: 'ingest',
      args: await ingestArgs(collection, dim, ConsistencyLevel.One, {
        ratePerSec,
        recordCommits: true,
        durationMs: LAG_MS,
        maxBatches: 1_000_000,
      }),
    },
    LAG_MS + CASE_TIMEOUT_MS,
  );
  await replicasReach(
    replicas,
    ingest.lastLsn,
    CATCH_UP_TIMEOUT_MS,
    `replicas to reach LSN ${ingest.lastLsn}`,
  );
  // Durable on every replica too (applied comes first: a replica applies before its WAL write ends).
  await waitUntil(
    async () => {
      const statuses = await Promise.all(replicas.map((r) => r.status()));
      return statuses.every((s) => s.durableLsn >= ingest.lastLsn) ? true : undefined;
    },
    CATCH_UP_TIMEOUT_MS,
    'replicas to hold the last batch durably',
    5,
  );
  // The watch polls every 1 ms: let it see that last move.
  await new Promise((r) => setTimeout(r, 20));
  const snapshotsBuilt = (await snapshotsTaken()).map((n, i) => n - (snapshotsBefore[i] as number));
  const [onPrimary, ...onReplicas] = await Promise.all(
    nodes.map((r) => r.call<Watched>({ cmd: 'unwatch' }, 10_000)),
  );
  await primary.call({ cmd: 'dropCollection', name: collection }, 30_000);
  const write = latencyHistogram();
  for (const [, calledMs, ackedMs] of ingest.commits)
    write.recordValue(Math.max(0, Math.round((ackedMs - calledMs) * 1000)));
  const writeLatency = {
    p50Ms: write.getValueAtPercentile(50) / 1000,
    p99Ms: write.getValueAtPercentile(99) / 1000,
    maxMs: write.maxValue / 1000,
  };
  write.destroy();
  const lsns = ingest.commits.map((c) => c[0]);
  const cursor = { j: 0 };
  const committedMs = lsns.map((lsn) => reachedAt((onPrimary as Watched).durable, lsn, cursor));
  return {
    ratePerSec,
    achievedPerSec: ingest.vectorsPerSec,
    samples: lsns.length * replicas.length,
    durable: lagStats(
      lsns,
      committedMs,
      onReplicas.map((w) => w.durable),
    ),
    appliedFromCall: lagStats(
      lsns,
      ingest.commits.map((c) => c[1]),
      onReplicas.map((w) => w.applied),
    ),
    writeLatency,
    snapshotsBuilt,
  };
}

// ---- Redis cluster ----------------------------------------------------------

interface RedisCluster {
  servers: RedisServer[];
  client: RespClient;
  replicaClients: RespClient[];
}

async function startRedisCluster(): Promise<RedisCluster> {
  const dir = path.join(tmpRoot, 'redis');
  mkdirSync(dir, { recursive: true });
  const servers: RedisServer[] = [];
  try {
    const primary = await startRedis({ dir, timeoutMs: START_TIMEOUT_MS });
    servers.push(primary);
    for (let i = 0; i < 2; i++) {
      servers.push(await startRedis({ dir, replicaOfPort: primary.port, timeoutMs: START_TIMEOUT_MS }));
    }
    const client = await RespClient.connect(primary.port);
    const replicaClients = await Promise.all(servers.slice(1).map((s) => RespClient.connect(s.port)));
    await waitUntil(
      async () => {
        const info = await replicationInfo(client);
        const online = [0, 1].filter((i) => info.get(`slave${i}`)?.includes('state=online')).length;
        return online === 2 ? true : undefined;
      },
      START_TIMEOUT_MS,
      'the Redis primary to list 2 online replicas',
      20,
    );
    return { servers, client, replicaClients };
  } catch (err) {
    await Promise.allSettled(servers.map((s) => s.stop()));
    throw err;
  }
}

interface RedisCase {
  vectorsPerSec: number;
  replicatedPerSec: number;
  keysEqual: boolean;
}

/** Pipelined SET of one batch (+ WAIT n per batch for Quorum / All), one batch in flight, like vrep. */
async function redisCase(
  cluster: RedisCluster,
  dim: number,
  level: ConsistencyLevel,
  durationMs = CASE_MS,
): Promise<RedisCase> {
  const { client, replicaClients } = cluster;
  await client.call('FLUSHALL');
  const pool = vectorPool(SEED + dim, dim, BATCH);
  const waitFor = level === 'one' ? 0 : level === 'quorum' ? 1 : 2;
  const waitCmd = encodeCommand(['WAIT', String(waitFor), String(60_000)]);
  const t0 = performance.now();
  let batches = 0;
  while (batches < caseMaxBatches(dim) && performance.now() - t0 < durationMs) {
    const sets = encodeSetBatch(
      batchIds('v', batches, BATCH),
      pool[batches % POOL_BATCHES] as Float32Array,
      dim,
    );
    const replies = await withTimeout(
      waitFor === 0 ? client.send(sets, BATCH) : client.send(Buffer.concat([sets, waitCmd]), BATCH + 1),
      CASE_TIMEOUT_MS,
      'a Redis batch',
    );
    const bad = replies.find((r) => r instanceof RedisReplyError);
    if (bad) throw new Error(`redis: ${String(bad)}`);
    if (waitFor > 0 && (replies[BATCH] as number) < waitFor) {
      throw new Error(`redis WAIT ${waitFor} returned ${String(replies[BATCH])}`);
    }
    batches++;
  }
  const ackedMs = performance.now() - t0;
  // Until both replicas have everything: WAIT 2 returns when they acknowledged the offset.
  const reached = await client.call('WAIT', '2', String(CATCH_UP_TIMEOUT_MS));
  const replicatedMs = performance.now() - t0;
  if (reached !== 2) throw new Error(`redis replicas did not catch up (WAIT 2 -> ${String(reached)})`);
  const sizes = await Promise.all([client, ...replicaClients].map((c) => c.call('DBSIZE')));
  const keysEqual = sizes.every((s) => s === batches * BATCH);
  if (!keysEqual) problems.push(`redis key counts differ: ${sizes.join(', ')}`);
  await client.call('FLUSHALL');
  const vectors = batches * BATCH;
  return {
    vectorsPerSec: (vectors * 1000) / ackedMs,
    replicatedPerSec: (vectors * 1000) / replicatedMs,
    keysEqual,
  };
}

// ---- report -----------------------------------------------------------------

const fmtRate = (n: number): string => (n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0));

function vs(row: Row, base: Row): Row {
  return base.value > 0 ? { ...row, ratio: row.value / base.value, vs: base.name } : row;
}

/** A goal row: `value` (a ratio or ms) against the issue's bound, saying whether it holds. */
function goal(
  name: string,
  value: number,
  unit: string,
  bound: { atLeast?: number; atMost?: number },
  note: string,
): Row {
  const met =
    (bound.atLeast === undefined || value >= bound.atLeast) &&
    (bound.atMost === undefined || value <= bound.atMost);
  const want = bound.atLeast !== undefined ? `>= ${bound.atLeast}` : `<= ${bound.atMost ?? 0}`;
  return {
    name,
    value,
    unit,
    note: `goal ${want}${unit === 'x' ? 'x' : ` ${unit}`}: ${met ? 'met' : 'NOT met'}; ${note}`,
  };
}

/** Event-loop delay as both the ingest and loopStop report it. */
type LoopDelay = Pick<LoopStats, 'p99Ms' | 'maxMs' | 'gc'>;

/** "GC 12 pauses, 140 ms, max 31 ms": what of the window's loop delay garbage collection explains. */
const gcNote = (l: LoopDelay): string =>
  `GC ${l.gc.count} pauses, ${l.gc.totalMs.toFixed(0)} ms, max ${l.gc.maxMs.toFixed(1)} ms ` +
  `(${l.gc.majorCount} full, ${l.gc.majorMs.toFixed(0)} ms)`;

const worst = (loops: LoopDelay[]): LoopDelay =>
  loops.reduce((a, b) => (b.p99Ms > a.p99Ms ? b : a), loops[0] as LoopDelay);

async function main(): Promise<Section[]> {
  const redisVersion = redisServerVersion();
  const sections: Section[] = [];
  progress('starting Redis and vrep clusters');
  const redis = await startRedisCluster();
  let cluster: Cluster | null = null;
  let httpClient: IpcChild<HttpClientCommand> | null = null;
  let unavailable: string | null = null;
  try {
    cluster = await startVrepCluster();
    httpClient = await startHttpClient();
  } catch (err) {
    if (!(err instanceof ChildCommandError && err.code === 'ERR_UNSUPPORTED')) throw err;
    unavailable = err.message;
  }
  // The same ingest on a node without replicas: what replication costs the primary.
  const { child: standalone } = await NodeChild.fork(
    'vrep standalone',
    { nodeId: 's', dataDir: nodeDir('s') },
    START_TIMEOUT_MS,
  );
  const vrepOne = new Map<number, number>();
  const summary: Row[] = [];
  const loopRows: Row[] = [];
  const goals: Row[] = [];
  /** Redis on both replicas, by dim and level (the HTTP case's reference too). */
  const redisRepl = new Map<string, Row>();
  const tsRepl = new Map<string, Row>();
  const loopsSeen: { primary: LoopDelay[]; replicas: LoopDelay[] } = { primary: [], replicas: [] };
  const loopRowsOf = (what: string, primaryLoop: LoopDelay, replicaLoops: LoopStats[], base: Row): Row[] => [
    vs(
      {
        name: `${what}: primary p99`,
        value: primaryLoop.p99Ms,
        unit: 'ms',
        note: `max ${primaryLoop.maxMs.toFixed(1)} ms; ${gcNote(primaryLoop)}`,
      },
      base,
    ),
    ...replicaLoops.map((l, i) => ({
      name: `${what}: replica r${i + 1} p99`,
      value: l.p99Ms,
      unit: 'ms',
      note: `max ${l.maxMs.toFixed(1)} ms; CPU ${l.cpuMs.toFixed(0)} ms; ${gcNote(l)}`,
    })),
  ];
  try {
    for (const dim of DIMS) {
      const rows: Row[] = [];
      // Warm-up (JIT, buffers, connections), not reported.
      progress(`dim ${dim}: warm-up`);
      if (cluster) await vrepCase(cluster, dim, ConsistencyLevel.One, WARMUP_MS);
      await redisCase(redis, dim, ConsistencyLevel.One, WARMUP_MS);
      progress(`dim ${dim}: vrep standalone`);
      const alone = await standaloneCase(standalone, dim);
      rows.push({
        name: 'vrep standalone (no replicas): acked',
        value: alone.vectorsPerSec,
        unit: 'vectors/s',
        note: 'reference: the same ingest without replication',
      });
      const aloneP99: Row = {
        name: `dim ${dim}, standalone: p99`,
        value: alone.loopDelay.p99Ms,
        unit: 'ms',
        note: `max ${alone.loopDelay.maxMs.toFixed(1)} ms; ${gcNote(alone.loopDelay)}`,
      };
      loopRows.push(aloneP99);
      for (const level of LEVELS) {
        const name = LEVEL_NAME[level];
        // vrep then Redis for each level, so drift in the machine's load hits both alike.
        progress(`dim ${dim}, ${name}: vrep`);
        const v = cluster ? await vrepCase(cluster, dim, level) : null;
        progress(`dim ${dim}, ${name}: Redis`);
        const r = await redisCase(redis, dim, level);
        const waitNote = level === 'one' ? 'no WAIT' : `WAIT ${level === 'quorum' ? 1 : 2} per batch`;
        const rAcked: Row = {
          name: `Redis ${name}: acked`,
          value: r.vectorsPerSec,
          unit: 'vectors/s',
          note: `pipelined SET, ${waitNote}`,
        };
        const rRepl: Row = {
          name: `Redis ${name}: on both replicas`,
          value: r.replicatedPerSec,
          unit: 'vectors/s',
          note: `${waitNote}; until WAIT 2 returns; key counts ${r.keysEqual ? 'equal' : 'DIFFER'}`,
        };
        redisRepl.set(`${dim}/${level}`, rRepl);
        rows.push(rAcked);
        if (v) {
          vrepOne.set(dim, vrepOne.get(dim) ?? v.ingest.vectorsPerSec);
          const vAcked = vs(
            {
              name: `vrep ${name}: acked`,
              value: v.ingest.vectorsPerSec,
              unit: 'vectors/s',
              note: `${v.ingest.vectors} vectors in ${(v.ingest.elapsedMs / 1000).toFixed(1)} s`,
            },
            rAcked,
          );
          const vRepl = vs(
            {
              name: `vrep ${name}: on both replicas`,
              value: v.replicatedPerSec,
              unit: 'vectors/s',
              note: `until both replicas' lastLsn = primary's; digests ${v.digestsEqual ? 'equal' : 'DIFFER'}`,
            },
            rRepl,
          );
          tsRepl.set(`${dim}/${level}`, vRepl);
          rows.push(vAcked, rRepl, vRepl);
          summary.push({
            name: `dim ${dim}, ${name}`,
            value: vAcked.ratio ?? 0,
            unit: 'x',
            note:
              `acked ${fmtRate(v.ingest.vectorsPerSec)} vs ${fmtRate(r.vectorsPerSec)} vectors/s; ` +
              `on both replicas ${(vRepl.ratio ?? 0).toFixed(2)}x`,
          });
          goals.push(
            goal(
              `dim ${dim}, ${name}: replicated vs Redis (${waitNote})`,
              vRepl.ratio ?? 0,
              'x',
              { atLeast: 2 },
              `${fmtRate(v.replicatedPerSec)} vs ${fmtRate(r.replicatedPerSec)} vectors/s on both replicas`,
            ),
            goal(
              `dim ${dim}, ${name}: replicated / acked`,
              v.replicatedPerSec / v.ingest.vectorsPerSec,
              'x',
              { atLeast: 0.95 },
              `${fmtRate(v.replicatedPerSec)} vs ${fmtRate(v.ingest.vectorsPerSec)} vectors/s`,
            ),
          );
          loopsSeen.primary.push(v.ingest.loopDelay);
          loopsSeen.replicas.push(...v.replicaLoops);
          loopRows.push(...loopRowsOf(`dim ${dim}, ${name}`, v.ingest.loopDelay, v.replicaLoops, aloneP99));
        } else {
          rows.push(rRepl);
        }
      }
      sections.push({
        title:
          `ingest + replication, dim ${dim}, batches of ${BATCH}, primary + 2 replicas (own processes), ` +
          `vrep vs Redis ${redisVersion} (AOF everysec / WAL fsync everysec)`,
        rows,
      });
    }
    if (cluster && httpClient) {
      const rows: Row[] = [];
      for (const level of LEVELS) {
        const name = LEVEL_NAME[level];
        progress(`HTTP binary, dim ${HTTP_DIM}, ${name}`);
        const h = await httpCase(cluster, httpClient, level);
        const ts = tsRepl.get(`${HTTP_DIM}/${level}`) as Row;
        const rRepl = redisRepl.get(`${HTTP_DIM}/${level}`) as Row;
        const hRepl: Row = {
          name: `vrep ${name} over HTTP: on both replicas`,
          value: h.replicatedPerSec,
          unit: 'vectors/s',
          note: `acked ${fmtRate(h.ingest.vectorsPerSec)} vectors/s; digests ${h.digestsEqual ? 'equal' : 'DIFFER'}`,
        };
        rows.push(vs(hRepl, rRepl), vs({ ...hRepl, name: `${hRepl.name} (vs TS API)` }, ts));
        goals.push(
          goal(
            `HTTP binary dim ${HTTP_DIM}, ${name}: replicated vs Redis`,
            h.replicatedPerSec / rRepl.value,
            'x',
            { atLeast: 2 },
            `${fmtRate(h.replicatedPerSec)} vs ${fmtRate(rRepl.value)} vectors/s`,
          ),
          goal(
            `HTTP binary dim ${HTTP_DIM}, ${name}: replicated / acked`,
            h.replicatedPerSec / h.ingest.vectorsPerSec,
            'x',
            { atLeast: 0.95 },
            `${fmtRate(h.replicatedPerSec)} vs ${fmtRate(h.ingest.vectorsPerSec)} vectors/s`,
          ),
        );
        loopsSeen.primary.push(h.ingest.loopDelay);
        loopsSeen.replicas.push(...h.replicaLoops);
        loopRows.push(
          ...loopRowsOf(
            `HTTP dim ${HTTP_DIM}, ${name}`,
            h.ingest.loopDelay,
            h.replicaLoops,
            loopRows.find((r) => r.name === `dim ${HTTP_DIM}, standalone: p99`) as Row,
          ),
        );
      }
      sections.push({
        title:
          `ingest over HTTP: a client in its own process, binary batches (docs/http-api.md) of ${BATCH} x ${HTTP_DIM} ` +
          `with small JSON payloads, ${HTTP_CONNECTIONS} connections, to the same cluster; vs Redis and vs the TS API case ` +
          '(one batch in flight) of the same level',
        rows,
      });
    }
    if (cluster) {
      sections.push({
        title: 'vrep / Redis throughput ratio, acked vectors/s (>1: vrep faster)',
        rows: summary,
      });
      sections.push({
        title:
          'Event-loop delay on the vrep primary and on each replica during the ingest (monitorEventLoopDelay, ' +
          '1 ms resolution; replicas until they applied the last batch), vs the same ingest on a standalone node',
        rows: loopRows,
      });
      const lagRows: Row[] = [];
      for (const dim of DIMS) {
        const rate = (vrepOne.get(dim) ?? 0) / 2;
        progress(`lag, dim ${dim}, at ${fmtRate(rate)} vectors/s`);
        const lag = await lagCase(cluster, dim, rate);
        const w = lag.writeLatency;
        const d = lag.durable;
        const writeP99: Row = {
          name: `dim ${dim}: primary write() latency p99`,
          value: w.p99Ms,
          unit: 'ms',
          note:
            `p50 ${w.p50Ms.toFixed(2)} ms; ${lag.samples} samples (batch x replica) at ${fmtRate(lag.achievedPerSec)} ` +
            `vectors/s (target ${fmtRate(rate)}); snapshots built meanwhile (primary / replicas): ${lag.snapshotsBuilt.join(' / ')}`,
        };
        lagRows.push(
          writeP99,
          { name: `dim ${dim}: commit -> durable on replica p50`, value: d.p50Ms, unit: 'ms' },
          vs(
            {
              name: `dim ${dim}: commit -> durable on replica p99`,
              value: d.p99Ms,
              unit: 'ms',
              note: `per replica ${d.perReplicaP99Ms.map((v) => v.toFixed(2)).join(' / ')} ms`,
            },
            writeP99,
          ),
          { name: `dim ${dim}: commit -> durable on replica p999`, value: d.p999Ms, unit: 'ms' },
          { name: `dim ${dim}: commit -> durable on replica max`, value: d.maxMs, unit: 'ms' },
          {
            name: `dim ${dim}: write() call -> applied on replica p99`,
            value: lag.appliedFromCall.p99Ms,
            unit: 'ms',
            note: `p50 ${lag.appliedFromCall.p50Ms.toFixed(2)} ms, p999 ${lag.appliedFromCall.p999Ms.toFixed(2)} ms`,
          },
        );
        goals.push(
          goal(
            `dim ${dim}: live lag p99, commit -> durable on replica, at 50% of max One`,
            d.p99Ms,
            'ms',
            { atMost: 5 },
            `p999 ${d.p999Ms.toFixed(2)} ms, max ${d.maxMs.toFixed(2)} ms; write() p99 ${w.p99Ms.toFixed(2)} ms`,
          ),
        );
      }
      sections.push({
        title:
          'Replication lag at 50% of the One rate, consistency One, batches of 1000: wall time a replica holds a batch ' +
          'durably (its WAL, fsync everysec) - the time the primary did (commit at One), each polled every 1 ms in ' +
          "its own process; next to the primary's write() latency",
        rows: lagRows,
      });
      const p = worst(loopsSeen.primary);
      const r = worst(loopsSeen.replicas);
      goals.push(
        goal(
          'event-loop delay p99 under full ingest, primary (worst case)',
          p.p99Ms,
          'ms',
          { atMost: 10 },
          `max ${p.maxMs.toFixed(1)} ms`,
        ),
        goal(
          'event-loop delay p99 under full ingest, replicas (worst case)',
          r.p99Ms,
          'ms',
          { atMost: 10 },
          `max ${r.maxMs.toFixed(1)} ms`,
        ),
      );
      sections.push({
        title: "Issue 12's data-path goals, each against its same-run reference",
        rows: goals,
      });
    } else {
      sections.push({ title: `vrep replication cases skipped: ${unavailable ?? 'unavailable'}`, rows: [] });
    }
  } finally {
    redis.client.close();
    for (const c of redis.replicaClients) c.close();
    await Promise.allSettled([
      ...redis.servers.map((s) => s.stop()),
      standalone.stop(),
      ...(httpClient ? [httpClient.close()] : []),
      ...(cluster ? [cluster.primary, ...cluster.replicas].map((c) => c.stop()) : []),
    ]);
  }

  return sections;
}

await run(main);
