/**
 * Role auto (elections) on real processes, 3 nodes, each in its own process,
 * on this machine, in the same run:
 *  a. the cost of consensus: replicated throughput of 3 voters in role auto
 *     against a primary + 2 replicas whose roles the operator set, at One /
 *     Quorum / All (dim 768 and 128 at batches of 1000, and dim 128 at
 *     batches of 100), as ratios auto / manual. Same method as
 *     bench/replication.bench.ts: the ingest runs inside the primary's (the
 *     leader's) process, one batch in flight; "acked" is the writer's rate,
 *     "on both replicas" vectors / time until both replicas applied the last
 *     batch. The cases alternate manual, auto, manual, auto, ... so drift in
 *     the machine's load hits both alike; each figure is the median of the
 *     repetitions.
 *  b. failover time: SIGKILLs of the leader under Quorum writes of 100 x 128
 *     from a client in this process (each batch one IPC call to the node that
 *     leads, found from the nodes' status, as a client following
 *     ERR_NOT_LEADER would), the killed node restarted at once with the same
 *     data dir. The client writes at half the Quorum rate it measured
 *     unpaced just before, so the machine is loaded but not saturated.
 *     Reported: kill -> first Quorum write acknowledged by the new leader,
 *     and kill -> leader elected (the first status poll that shows it),
 *     p50 / p99 / max, against the election timeout (goal: p99 <= 3x).
 * Durability alike: WAL fsync everysec (the default) everywhere. Timing: the
 * defaults (election timeout 1000 ms, heartbeat a tenth of it in role auto),
 * redials capped at 200 ms in both clusters so a restarted voter rejoins
 * quickly between kills. Every wait is bounded; every process started here
 * is killed on exit.
 *
 *   npm run bench -- failover
 *   VREP_BENCH_QUICK=1 npm run bench -- failover        # 5 kills, short cases, dim 128 only
 *   VREP_BENCH_FAILOVER_KILLS=50 npm run bench -- failover
 */
import { processBench } from './lib/process-bench.ts';
import { isQuick, type Row, type Section } from './lib/harness.ts';
import { ConsistencyLevel } from '../src/node/consistency.ts';
import type { ReplicationNodeOptions, ReplicationOptions } from '../src/node/types.ts';
import { ChildCommandError, NodeChild, type IngestArgs, type WriteArgs } from './lib/node-client.ts';
import { kill, waitUntil, wallMs } from './lib/processes.ts';
import {
  autoAddresses,
  autoNodeOptions,
  findLeader,
  LEVEL_NAME,
  refreshLeader,
  replicasReach,
  replicatedCase,
  startAutoCluster,
  startManualCluster,
  type Cluster,
  type ClusterOptions,
  type ReplicatedCase,
} from './lib/cluster.ts';
import { mulberry32 } from './lib/seeded.ts';

const quick = isQuick();
const SEED = 42;
const LEVELS = [ConsistencyLevel.One, ConsistencyLevel.Quorum, ConsistencyLevel.All] as const;
/** The cost-of-consensus shapes: the replication bench's (batches of 1000), and the failover writer's. */
const SHAPES: { dim: number; batch: number }[] = quick
  ? [{ dim: 128, batch: 1000 }]
  : [
      { dim: 768, batch: 1000 },
      { dim: 128, batch: 1000 },
      { dim: 128, batch: 100 },
    ];
/** Manual / auto pairs per shape and level (interleaved); the rows give the median. */
const REPS = quick ? 1 : 3;
const CASE_MS = quick ? 1500 : 5000;
const WARMUP_MS = quick ? 500 : 2000;
const CASE_MAX_BYTES = (quick ? 96 : 512) * 1024 * 1024;

const KILLS = Number(process.env['VREP_BENCH_FAILOVER_KILLS'] ?? (quick ? 5 : 20));
const FAILOVER_DIM = 128;
const FAILOVER_BATCH = 100;
/** The failover writer's ids cycle over this many batches (upserts after the first round), bounding memory. */
const FAILOVER_ID_BATCHES = 1000;
/** The writer's unpaced warm-up, measuring the Quorum rate; then it writes at half that. */
const FAILOVER_RATE_PROBE_MS = quick ? 1000 : 3000;
/** Acknowledged batches, after a failover, before the next kill (with both others Connected). */
const STEADY_BATCHES = 20;
/** Status polling while no leader is known, and the back-off after a refused write. */
const POLL_MS = 5;
const ELECTION_TIMEOUT_MS = 1000;
const TIMING: ReplicationOptions = { electionTimeoutMs: ELECTION_TIMEOUT_MS, reconnectIntervalMs: 200 };

/** Limits: every wait in the bench has one. */
const START_TIMEOUT_MS = 30_000;
const CATCH_UP_TIMEOUT_MS = 120_000;
const CASE_TIMEOUT_MS = CASE_MS + 120_000;
const FAILOVER_TIMEOUT_MS = 60_000;
const WHOLE_BENCH_TIMEOUT_MS = quick ? 10 * 60_000 : 40 * 60_000;

const { tmpRoot, problems, run } = processBench('failover', WHOLE_BENCH_TIMEOUT_MS);
const benchStart = performance.now();
function progress(message: string): void {
  process.stderr.write(
    `failover bench [${((performance.now() - benchStart) / 1000).toFixed(1)} s] ${message}\n`,
  );
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const fmtRate = (n: number): string => (n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0));

/** Nearest rank (with 20 samples p99 is the largest). */
function percentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

const clusterOptions = (idPrefix: string): ClusterOptions => ({
  dir: tmpRoot,
  idPrefix,
  replication: TIMING,
  timeoutMs: START_TIMEOUT_MS,
});

// ---- a. the cost of consensus --------------------------------------------------

const leaderMoved = (err: unknown): boolean =>
  err instanceof ChildCommandError && (err.code === 'ERR_NOT_LEADER' || err.code === 'ERR_NO_LEADER');

let caseNumber = 0;

/**
 * One replicated ingest on `cluster`. Role auto: on the node leading now; a
 * leader change during the case is a problem of the run, and the case is run
 * again (once) on the new leader.
 */
async function consensusCase(
  cluster: Cluster,
  shape: { dim: number; batch: number },
  level: ConsistencyLevel,
  durationMs = CASE_MS,
): Promise<ReplicatedCase> {
  for (let attempt = 0; ; attempt++) {
    await refreshLeader(cluster, START_TIMEOUT_MS);
    const args: IngestArgs = {
      collection: `c${caseNumber++}_${shape.dim}_${level}`,
      dim: shape.dim,
      batchSize: shape.batch,
      seed: SEED + shape.dim,
      idPrefix: 'v',
      consistency: level,
      durationMs,
      maxBatches: Math.max(1, Math.floor(CASE_MAX_BYTES / (shape.batch * shape.dim * 4))),
    };
    try {
      const result = await replicatedCase(cluster, {
        args,
        ingestTimeoutMs: durationMs + CASE_TIMEOUT_MS,
        catchUpTimeoutMs: CATCH_UP_TIMEOUT_MS,
      });
      if (!result.digestsEqual) problems.push(`${cluster.kind}: digests differ after ${args.collection}`);
      return result;
    } catch (err) {
      if (cluster.kind !== 'auto' || !leaderMoved(err) || attempt > 0) throw err;
      problems.push(`auto: the leader changed during ${args.collection} (${(err as Error).message})`);
      await refreshLeader(cluster, START_TIMEOUT_MS);
      await cluster.primary.call({ cmd: 'dropCollection', name: args.collection }, 30_000).catch(() => null);
    }
  }
}

async function consensusSections(): Promise<Section[]> {
  progress('cost of consensus: starting a primary + 2 replicas and 3 voters in role auto');
  const [manual, auto] = await Promise.all([
    startManualCluster(clusterOptions('m')),
    startAutoCluster(clusterOptions('a')),
  ]);
  const sections: Section[] = [];
  const summary: Row[] = [];
  try {
    for (const shape of SHAPES) {
      const label = `dim ${shape.dim}, batches of ${shape.batch}`;
      progress(`${label}: warm-up`);
      await consensusCase(manual, shape, ConsistencyLevel.One, WARMUP_MS);
      await consensusCase(auto, shape, ConsistencyLevel.One, WARMUP_MS);
      const rows: Row[] = [];
      for (const level of LEVELS) {
        const name = LEVEL_NAME[level];
        const runs: { manual: ReplicatedCase[]; auto: ReplicatedCase[] } = { manual: [], auto: [] };
        for (let rep = 0; rep < REPS; rep++) {
          progress(`${label}, ${name}: manual, then auto (${rep + 1}/${REPS})`);
          runs.manual.push(await consensusCase(manual, shape, level));
          runs.auto.push(await consensusCase(auto, shape, level));
        }
        const med = (cases: ReplicatedCase[], k: 'replicatedPerSec' | 'loggedPerSec'): number =>
          median(cases.map((c) => c[k]));
        const ackedMed = (cases: ReplicatedCase[]): number =>
          median(cases.map((c) => c.ingest.vectorsPerSec));
        const each = (cases: ReplicatedCase[]): string =>
          cases.map((c) => fmtRate(c.replicatedPerSec)).join(' / ');
        const mAcked: Row = {
          name: `primary/replica ${name}: acked`,
          value: ackedMed(runs.manual),
          unit: 'vectors/s',
        };
        const aAcked: Row = {
          name: `auto ${name}: acked`,
          value: ackedMed(runs.auto),
          unit: 'vectors/s',
          ratio: ackedMed(runs.auto) / mAcked.value,
          vs: mAcked.name,
        };
        const mRepl: Row = {
          name: `primary/replica ${name}: on both replicas`,
          value: med(runs.manual, 'replicatedPerSec'),
          unit: 'vectors/s',
          note: `runs ${each(runs.manual)}; in both logs ${fmtRate(med(runs.manual, 'loggedPerSec'))}`,
        };
        const aRepl: Row = {
          name: `auto ${name}: on both replicas`,
          value: med(runs.auto, 'replicatedPerSec'),
          unit: 'vectors/s',
          ratio: med(runs.auto, 'replicatedPerSec') / mRepl.value,
          vs: mRepl.name,
          note: `runs ${each(runs.auto)}; in both logs ${fmtRate(med(runs.auto, 'loggedPerSec'))}`,
        };
        rows.push(mAcked, aAcked, mRepl, aRepl);
        summary.push({
          name: `${label}, ${name}`,
          value: aRepl.ratio ?? NaN,
          unit: 'x',
          note:
            `on both replicas ${fmtRate(aRepl.value)} vs ${fmtRate(mRepl.value)} vectors/s; ` +
            `acked ${(aAcked.ratio ?? NaN).toFixed(2)}x`,
        });
      }
      sections.push({
        title:
          `cost of consensus, ${label}: 3 voters in role auto vs a primary + 2 replicas (own processes, ` +
          `WAL fsync everysec, ingest in the leader's process, median of ${REPS})`,
        rows,
      });
    }
  } finally {
    await Promise.allSettled([...manual.nodes, ...auto.nodes].map((c) => c.stop()));
  }
  sections.push({
    title: 'auto / primary-replica throughput ratio, on both replicas (<1: consensus costs)',
    rows: summary,
  });
  return sections;
}

// ---- b. failover -----------------------------------------------------------------

interface Kill {
  killedMs: number;
  victim: NodeChild;
  term: number;
  /** Wall ms the first status poll showed a leader of a newer term. */
  seenMs: number | null;
  newTerm: number | null;
  firstAckMs: number | null;
}

interface FailoverResult {
  rateTarget: number;
  /** ms from each kill to the first acknowledged write on the new leader. */
  toWriteMs: number[];
  /** ms from each kill until a status poll first showed the new leader. */
  toElectedMs: number[];
  /** ms from that poll to the first acknowledged write. */
  electedToWriteMs: number[];
  termsPerKill: number[];
  acked: number;
  refused: Map<string, number>;
  converged: boolean;
  seconds: number;
}

/** Kill -> the first status poll that showed a leader of a newer term (the first ack, if none did). */
function toElected(k: Kill): number {
  return (k.seenMs ?? (k.firstAckMs as number)) - k.killedMs;
}

async function failoverRun(): Promise<FailoverResult> {
  const rand = mulberry32(SEED);
  const o = clusterOptions('f');
  const addresses = await autoAddresses(3);
  const optionsOf = (i: number): ReplicationNodeOptions => autoNodeOptions(o, addresses, i);
  const nameOf = (i: number): string => `vrep auto fn${i + 1}`;
  progress('failover: starting 3 voters in role auto');
  const nodes: (NodeChild | null)[] = (
    await Promise.all([0, 1, 2].map((i) => NodeChild.fork(nameOf(i), optionsOf(i), START_TIMEOUT_MS)))
  ).map((f) => f.child);
  const live = (): NodeChild[] => nodes.filter((n): n is NodeChild => n !== null);
  const collection = 'f';

  // The client. `current` is the index of the node it writes to; null: it looks for the leader.
  let current: number | null = null;
  let stop = false;
  let pace: number | null = null; // batches/s; null: unpaced
  let batch = 0;
  let acked = 0;
  let ackedSinceFailover = 0;
  let lastAckedLsn = 0;
  let pending: Kill | null = null;
  const refused = new Map<string, number>();
  const writer = async (): Promise<void> => {
    // When the next write is due (paced); a refused write resets it, so a new leader is tried at once.
    let dueMs = performance.now();
    while (!stop) {
      let i = current;
      if (i === null) {
        const found = await findLeader(nodes, 1000);
        if (found === null) {
          await sleep(POLL_MS);
          continue;
        }
        i = current = found.index;
        const open = pending;
        if (open !== null && open.seenMs === null && found.status.term > open.term) {
          open.seenMs = wallMs();
          open.newTerm = found.status.term;
        }
      }
      const node = nodes[i];
      if (!node) {
        current = null;
        continue;
      }
      if (pace !== null && dueMs > performance.now()) await sleep(dueMs - performance.now());
      const args: WriteArgs = {
        collection,
        dim: FAILOVER_DIM,
        batchSize: FAILOVER_BATCH,
        seed: SEED,
        idPrefix: 'f',
        batch: batch % FAILOVER_ID_BATCHES,
        consistency: ConsistencyLevel.Quorum,
        timeoutMs: 5000,
      };
      try {
        const { lsn } = await node.call<{ lsn: number }>({ cmd: 'write', args }, 20_000);
        const now = wallMs();
        // Behind after a stall: restart the schedule from now rather than burst.
        if (pace !== null) dueMs = Math.max(dueMs, performance.now() - 1000 / pace) + 1000 / pace;
        batch++;
        acked++;
        ackedSinceFailover++;
        lastAckedLsn = Math.max(lastAckedLsn, lsn);
        const open = pending;
        if (open !== null && open.firstAckMs === null && node !== open.victim) {
          open.firstAckMs = now;
          ackedSinceFailover = 1;
        }
      } catch (err) {
        // Not the leader (any more), its process died under the call, or no majority in time.
        const code =
          err instanceof ChildCommandError ? (err.code ?? 'error') : 'in flight at a kill (no reply)';
        refused.set(code, (refused.get(code) ?? 0) + 1);
        if (current === i) current = null;
        dueMs = performance.now();
        await sleep(POLL_MS);
      }
    }
  };

  const started = performance.now();
  const kills: Kill[] = [];
  let writing: Promise<void> | null = null;
  let rateTarget = 0;
  try {
    const first = await waitUntil(
      async () => {
        const f = await findLeader(nodes);
        return f && f.status.replicas.filter((r) => r.status === 'Connected').length >= 2 ? f : undefined;
      },
      START_TIMEOUT_MS,
      'a leader listing both other voters Connected',
      20,
    );
    const leader = nodes[first.index] as NodeChild;
    const created = await leader.call<{ lsn: number }>(
      { cmd: 'createCollection', name: collection, dimension: FAILOVER_DIM, metric: 'l2' },
      10_000,
    );
    await replicasReach(live(), created.lsn, CATCH_UP_TIMEOUT_MS, 'every voter to create the collection');
    current = first.index;
    writing = writer();
    await sleep(FAILOVER_RATE_PROBE_MS);
    const probed = (acked * 1000) / FAILOVER_RATE_PROBE_MS;
    pace = probed / 2;
    rateTarget = pace * FAILOVER_BATCH;
    progress(
      `failover: unpaced Quorum writes ran at ${fmtRate(probed * FAILOVER_BATCH)} vectors/s; ` +
        `writing at ${fmtRate(rateTarget)} during the kills`,
    );

    for (let k = 0; k < KILLS; k++) {
      // Steady: a leader with both others Connected (the last victim rejoined and caught up), writes flowing.
      ackedSinceFailover = 0;
      await waitUntil(
        async () => {
          if (ackedSinceFailover < STEADY_BATCHES || current === null) return undefined;
          const s = await (nodes[current] as NodeChild).status().catch(() => null);
          if (s?.status.state !== 'leader') return undefined;
          return s.status.replicas.filter((r) => r.status === 'Connected').length >= 2 ? true : undefined;
        },
        FAILOVER_TIMEOUT_MS,
        `a steady cluster before kill ${k + 1}`,
        20,
      );
      await sleep(100 + Math.floor(rand() * 500)); // kills fall anywhere between heartbeats
      const v = current;
      if (v === null) {
        k--;
        continue;
      }
      const victim = nodes[v] as NodeChild;
      const { status } = await victim.status();
      if (status.state !== 'leader') {
        k--;
        continue;
      }
      const shot: Kill = {
        killedMs: wallMs(),
        victim,
        term: status.term,
        seenMs: null,
        newTerm: null,
        firstAckMs: null,
      };
      pending = shot;
      nodes[v] = null;
      current = null;
      await kill(victim.process);
      // Restarted at once, same data dir and options: it rejoins as a follower.
      nodes[v] = (await NodeChild.fork(nameOf(v), optionsOf(v), START_TIMEOUT_MS)).child;
      await waitUntil(
        async () => (shot.firstAckMs !== null ? true : undefined),
        FAILOVER_TIMEOUT_MS,
        `a write acknowledged by a new leader after kill ${k + 1}`,
        POLL_MS,
      );
      pending = null;
      kills.push(shot);
      progress(
        `failover: kill ${k + 1}/${KILLS}: first write acknowledged after ` +
          `${((shot.firstAckMs as number) - shot.killedMs).toFixed(0)} ms, leader seen after ` +
          `${toElected(shot).toFixed(0)} ms (term ${shot.term} -> ${String(shot.newTerm)})`,
      );
    }
  } finally {
    stop = true;
    await writing;
  }

  // Every node holds the same log: the last acknowledged write on all three, equal digests.
  let converged = false;
  try {
    await waitUntil(
      async () => {
        const s = await Promise.all(live().map((n) => n.status()));
        const top = Math.max(...s.map((x) => x.lastLsn));
        return top >= lastAckedLsn && s.every((x) => x.lastLsn === top) ? true : undefined;
      },
      CATCH_UP_TIMEOUT_MS,
      'the three voters to reach the same LSN',
      20,
    );
    const digests = await Promise.all(
      live().map((n) => n.call<string>({ cmd: 'digest', collection }, 60_000)),
    );
    converged = digests.every((d) => d === digests[0]);
  } catch (err) {
    problems.push(`failover: ${(err as Error).message}`);
  }
  if (!converged) problems.push('failover: the voters did not converge on one digest');
  await Promise.allSettled(live().map((c) => c.stop()));

  const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
  return {
    rateTarget,
    toWriteMs: sorted(kills.map((k) => (k.firstAckMs as number) - k.killedMs)),
    toElectedMs: sorted(kills.map(toElected)),
    electedToWriteMs: sorted(kills.map((k) => (k.firstAckMs as number) - k.killedMs - toElected(k))),
    termsPerKill: kills.map((k) => (k.newTerm ?? k.term) - k.term),
    acked,
    refused,
    converged,
    seconds: (performance.now() - started) / 1000,
  };
}

function failoverSection(r: FailoverResult): Section {
  const timeout: Row = {
    name: 'election timeout (electionTimeoutMs)',
    value: ELECTION_TIMEOUT_MS,
    unit: 'ms',
    note: 'a follower that hears no leader this long campaigns (drawn in [1x, 2x))',
  };
  const vsTimeout = (row: Row): Row => ({ ...row, ratio: row.value / ELECTION_TIMEOUT_MS, vs: timeout.name });
  const n = r.toWriteMs.length;
  const p99 = percentile(r.toWriteMs, 99);
  const refused = [...r.refused].map(([code, count]) => `${count} ${code}`).join(', ');
  const terms = r.termsPerKill.reduce((a, b) => a + b, 0);
  return {
    title:
      `${n} SIGKILLs of the leader of 3 voters in role auto (own processes, WAL fsync everysec) ` +
      `under Quorum writes of ${FAILOVER_BATCH} x ${FAILOVER_DIM} at ${fmtRate(r.rateTarget)} vectors/s, ` +
      'the killed node restarted at once',
    rows: [
      timeout,
      vsTimeout({
        name: 'kill -> first acknowledged Quorum write on the new leader: p50',
        value: percentile(r.toWriteMs, 50),
        unit: 'ms',
        note:
          `${r.acked} writes acknowledged in ${r.seconds.toFixed(0)} s; failed: ${refused || 'none'}; ` +
          `voters converged: ${r.converged ? 'yes, equal digests' : 'NO'}`,
      }),
      vsTimeout({
        name: 'kill -> first acknowledged Quorum write on the new leader: p99',
        value: p99,
        unit: 'ms',
        note: `${p99 / ELECTION_TIMEOUT_MS <= 3 ? 'meets' : 'MISSES'} the goal p99 <= 3x the election timeout (nearest rank over ${n} kills)`,
      }),
      vsTimeout({
        name: 'kill -> first acknowledged Quorum write on the new leader: max',
        value: r.toWriteMs.at(-1) ?? NaN,
        unit: 'ms',
      }),
      vsTimeout({
        name: 'kill -> leader elected: p50',
        value: percentile(r.toElectedMs, 50),
        unit: 'ms',
        note:
          `the first status poll (every node, every ${POLL_MS} ms over IPC) showing a leader of a newer term; ` +
          `from there to the first acknowledged write: p50 ${percentile(r.electedToWriteMs, 50).toFixed(0)} ms, ` +
          `max ${(r.electedToWriteMs.at(-1) ?? NaN).toFixed(0)} ms`,
      }),
      vsTimeout({
        name: 'kill -> leader elected: p99',
        value: percentile(r.toElectedMs, 99),
        unit: 'ms',
        note: `terms per failover: ${(terms / Math.max(1, n)).toFixed(2)} on average, ${Math.max(...r.termsPerKill)} at most`,
      }),
      vsTimeout({ name: 'kill -> leader elected: max', value: r.toElectedMs.at(-1) ?? NaN, unit: 'ms' }),
    ],
  };
}

async function main(): Promise<Section[]> {
  const sections = await consensusSections();
  sections.push(failoverSection(await failoverRun()));
  return sections;
}

await run(main);
