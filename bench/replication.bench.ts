/**
 * Replication against Redis 7, both as a primary + 2 replicas, each node in
 * its own process, on this machine, in the same run:
 *  a. vrep ingest + replication throughput at consistency One / Quorum / All
 *     (dim 768 and 128, batches of 1000), driven through the TS API inside
 *     the primary's process (bench/lib/node-child.ts);
 *  b. Redis 7 with 2 replicas: pipelined SET of the same vector bytes, with
 *     WAIT 1 (Quorum) / WAIT 2 (All) per batch; ratios vrep / Redis;
 *  c. replication lag p50/p99 at half the One rate of (a);
 *  d. full sync: bench/replication-full-sync.bench.ts;
 *  e. event-loop delay on the primary during (a), next to a standalone node.
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
import * as hdr from 'hdr-histogram-js';
import { processBench } from './lib/process-bench.ts';
import { isQuick, latencyHistogram, type Row, type Section } from './lib/harness.ts';
import { ConsistencyLevel } from '../src/node/consistency.ts';
import { ChildCommandError, NodeChild, type IngestArgs, type IngestResult } from './lib/node-client.ts';
import { waitUntil, withTimeout } from './lib/processes.ts';
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

/** Primary + 2 replicas (p, r1, r2), each in its own process, both members (Quorum and All count them). */
function startVrepCluster(): Promise<Cluster> {
  return startManualCluster({ dir: tmpRoot, idPrefix: '', timeoutMs: START_TIMEOUT_MS });
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
  samples: number;
  /** Replica apply - the primary's write() call: what a writer waits to see its batch on a replica. */
  fromCall: LagStats;
  /** Replica apply - the primary's write() acknowledgement (One: its own WAL). */
  fromAck: LagStats;
  /** Applies seen before the primary's acknowledgement returned (counted as 0 in fromAck). */
  early: number;
  /** The primary's write() call to acknowledgement. */
  writeLatency: { p50Ms: number; p99Ms: number; maxMs: number };
  /** Snapshots each node built during the case, primary first (a build competes with the WAL for the disk). */
  snapshotsBuilt: number[];
}

/**
 * Lag per batch (one LSN each) and replica: wall time the replica's lastLsn
 * first showed it (polled every 1 ms in the replica's process, so up to
 * ~1 ms late) minus wall time on the primary, one machine clock. Two
 * origins, since the primary's commit lies between the write call and its
 * acknowledgement and a replica often applies before the ack returns.
 */
function lagStats(
  commits: [number, number, number][],
  applied: [number, number][][],
): {
  fromCall: LagStats;
  fromAck: LagStats;
  samples: number;
  early: number;
} {
  const allCall = latencyHistogram();
  const allAck = latencyHistogram();
  const callP99: number[] = [];
  const ackP99: number[] = [];
  let early = 0;
  for (const seen of applied) {
    const oneCall = latencyHistogram();
    const oneAck = latencyHistogram();
    let j = 0;
    for (const [lsn, calledMs, ackedMs] of commits) {
      while (j < seen.length && (seen[j] as [number, number])[0] < lsn) j++;
      const hit = seen[j];
      if (!hit) throw new Error(`lag: a replica never showed LSN ${lsn}`);
      const callUs = Math.max(0, Math.round((hit[1] - calledMs) * 1000));
      let ackUs = Math.round((hit[1] - ackedMs) * 1000);
      if (ackUs < 0) {
        early++;
        ackUs = 0;
      }
      for (const h of [allCall, oneCall]) h.recordValue(callUs);
      for (const h of [allAck, oneAck]) h.recordValue(ackUs);
    }
    callP99.push(oneCall.getValueAtPercentile(99) / 1000);
    ackP99.push(oneAck.getValueAtPercentile(99) / 1000);
    oneCall.destroy();
    oneAck.destroy();
  }
  const stats = (h: hdr.Histogram, perReplicaP99Ms: number[]): LagStats => ({
    p50Ms: h.getValueAtPercentile(50) / 1000,
    p99Ms: h.getValueAtPercentile(99) / 1000,
    p999Ms: h.getValueAtPercentile(99.9) / 1000,
    maxMs: h.maxValue / 1000,
    perReplicaP99Ms,
  });
  const out = {
    fromCall: stats(allCall, callP99),
    fromAck: stats(allAck, ackP99),
    samples: allCall.totalCount,
    early,
  };
  allCall.destroy();
  allAck.destroy();
  return out;
}

/** Paced ingest at consistency One while both replicas timestamp every LSN they apply. */
async function lagCase(cluster: Cluster, dim: number, ratePerSec: number): Promise<LagCase> {
  const { primary, replicas } = cluster;
  const collection = `lag${dim}`;
  const created = await primary.call<{ lsn: number }>(
    { cmd: 'createCollection', name: collection, dimension: dim, metric: 'l2' },
    10_000,
  );
  await replicasReach(replicas, created.lsn, CATCH_UP_TIMEOUT_MS, `replicas to create ${collection}`);
  await Promise.all(replicas.map((r) => r.call({ cmd: 'watch' }, 10_000)));
  const snapshotsTaken = async (): Promise<number[]> =>
    (await Promise.all([primary, ...replicas].map((n) => n.status()))).map(
      (s) => s.status.stats.snapshots_taken,
    );
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
  const snapshotsBuilt = (await snapshotsTaken()).map((n, i) => n - (snapshotsBefore[i] as number));
  const applied = await Promise.all(
    replicas.map((r) => r.call<[number, number][]>({ cmd: 'unwatch' }, 10_000)),
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
  return {
    ratePerSec,
    achievedPerSec: ingest.vectorsPerSec,
    writeLatency,
    snapshotsBuilt,
    ...lagStats(ingest.commits, applied),
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

async function main(): Promise<Section[]> {
  const redisVersion = redisServerVersion();
  const sections: Section[] = [];
  progress('starting Redis and vrep clusters');
  const redis = await startRedisCluster();
  let cluster: Cluster | null = null;
  let unavailable: string | null = null;
  try {
    cluster = await startVrepCluster();
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
      const aloneMax: Row = { name: `dim ${dim}, standalone: max`, value: alone.loopDelay.maxMs, unit: 'ms' };
      const aloneP99: Row = { name: `dim ${dim}, standalone: p99`, value: alone.loopDelay.p99Ms, unit: 'ms' };
      loopRows.push(aloneMax, aloneP99);
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
          note: `until WAIT 2 returns; key counts ${r.keysEqual ? 'equal' : 'DIFFER'}`,
        };
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
          rows.push(vAcked, rRepl, vRepl);
          summary.push({
            name: `dim ${dim}, ${name}`,
            value: vAcked.ratio ?? 0,
            unit: 'x',
            note:
              `acked ${fmtRate(v.ingest.vectorsPerSec)} vs ${fmtRate(r.vectorsPerSec)} vectors/s; ` +
              `on both replicas ${(vRepl.ratio ?? 0).toFixed(2)}x`,
          });
          loopRows.push(
            vs({ name: `dim ${dim}, ${name}: max`, value: v.ingest.loopDelay.maxMs, unit: 'ms' }, aloneMax),
            vs({ name: `dim ${dim}, ${name}: p99`, value: v.ingest.loopDelay.p99Ms, unit: 'ms' }, aloneP99),
          );
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
    if (cluster) {
      sections.push({
        title: 'vrep / Redis throughput ratio, acked vectors/s (>1: vrep faster)',
        rows: summary,
      });
      sections.push({
        title:
          'Event-loop delay on the vrep primary during the ingest (monitorEventLoopDelay, 1 ms resolution), ' +
          'vs the same ingest on a standalone node',
        rows: loopRows,
      });
      const lagRows: Row[] = [];
      for (const dim of DIMS) {
        const rate = (vrepOne.get(dim) ?? 0) / 2;
        progress(`lag, dim ${dim}, at ${fmtRate(rate)} vectors/s`);
        const lag = await lagCase(cluster, dim, rate);
        const w = lag.writeLatency;
        const writeP50: Row = {
          name: `dim ${dim}: primary write() latency p50`,
          value: w.p50Ms,
          unit: 'ms',
          note:
            `${lag.samples} samples (batch x replica) at ${fmtRate(lag.achievedPerSec)} vectors/s (target ${fmtRate(rate)}); ` +
            `snapshots built meanwhile (primary / replicas): ${lag.snapshotsBuilt.join(' / ')}`,
        };
        const writeP99: Row = { name: `dim ${dim}: primary write() latency p99`, value: w.p99Ms, unit: 'ms' };
        const fromAck = (k: 'p50Ms' | 'p99Ms' | 'p999Ms' | 'maxMs'): string =>
          `${lag.fromAck[k].toFixed(2)} ms after the ack`;
        lagRows.push(
          writeP50,
          writeP99,
          vs(
            {
              name: `dim ${dim}: replica lag p50`,
              value: lag.fromCall.p50Ms,
              unit: 'ms',
              note: fromAck('p50Ms'),
            },
            writeP50,
          ),
          vs(
            {
              name: `dim ${dim}: replica lag p99`,
              value: lag.fromCall.p99Ms,
              unit: 'ms',
              note:
                `${fromAck('p99Ms')}; per replica ` +
                lag.fromCall.perReplicaP99Ms.map((v) => v.toFixed(2)).join(' / ') +
                ' ms',
            },
            writeP99,
          ),
          {
            name: `dim ${dim}: replica lag p999`,
            value: lag.fromCall.p999Ms,
            unit: 'ms',
            note: fromAck('p999Ms'),
          },
          {
            name: `dim ${dim}: replica lag max`,
            value: lag.fromCall.maxMs,
            unit: 'ms',
            note:
              fromAck('maxMs') +
              (lag.early > 0
                ? `; ${lag.early} samples applied before the ack returned (0 after the ack)`
                : ''),
          },
        );
      }
      sections.push({
        title:
          'Replication lag at 50% of the One rate, consistency One, batches of 1000: replica apply time ' +
          "(lastLsn polled every 1 ms in the replica) - the primary's write() call, next to that write's own latency",
        rows: lagRows,
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
      ...(cluster ? [cluster.primary, ...cluster.replicas].map((c) => c.stop()) : []),
    ]);
  }

  return sections;
}

await run(main);
