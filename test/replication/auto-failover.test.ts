/**
 * Issue 11 acceptance, on real processes: three nodes in role auto elect
 * their primary, and repeated SIGKILLs of whichever node leads, under
 * Quorum write load, lose no acknowledged write. A client writes at Quorum
 * to the node that leads (it finds it in the nodes' status, as a client
 * following ERR_NOT_LEADER would); each killed leader is restarted at once
 * with the same data dir and options and rejoins as a follower. After the
 * last kill every node must hold the same log and digest, and every point
 * whose write was acknowledged must be on all three.
 *
 * Reported: the time from each kill to the first Quorum write acknowledged
 * by the new leader (p50, p99), against the election timeout.
 *
 * VREP_FAILOVER_KILLS sets the number of kills (default 5; the acceptance
 * run: 20). VREP_FAILOVER_SEED replays the kill timing of a run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { NodeProc } from '../helpers/node-proc.ts';
import { until } from '../helpers/node-proc.ts';
import { tempDir } from '../helpers/tmp.ts';
import { rng } from '../helpers/rng.ts';
import type { ReplicationNodeOptions } from '../../src/node/types.ts';
import { freePorts, idsOf, missingOn, Procs, sleep, status, waitConverged } from '../helpers/safety.ts';

const KILLS = Number(process.env['VREP_FAILOVER_KILLS'] ?? 5);
const SEED = Number(process.env['VREP_FAILOVER_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const ELECTION_TIMEOUT_MS = 1000;
const TIMING = {
  electionTimeoutMs: ELECTION_TIMEOUT_MS,
  heartbeatIntervalMs: 100,
  replicaTimeoutMs: 5000,
  reconnectIntervalMs: 200,
};
const DIM = 16;
const BATCH = 10;
const WORKERS = 3;
const IDS = ['n1', 'n2', 'n3'] as const;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

test(
  `role auto: ${KILLS} SIGKILLs of the leader under Quorum load; a new leader takes writes, nothing acknowledged is lost`,
  { timeout: 120_000 + KILLS * 30_000 },
  async (t) => {
    t.diagnostic(`seed ${SEED} (VREP_FAILOVER_SEED=${SEED} replays the kill timing)`);
    const rand = rng(SEED);
    const dir = tempDir(t);
    const procs = new Procs(t);
    const ports = (await freePorts(3)) as number[];
    const addr = (i: number): string => `127.0.0.1:${ports[i] as number}`;
    const options = (i: number): ReplicationNodeOptions => ({
      nodeId: IDS[i] as string,
      dataDir: path.join(dir, IDS[i] as string),
      storage: { fsync: 'always' },
      replication: {
        role: 'auto',
        bindAddress: addr(i),
        peers: [0, 1, 2].filter((j) => j !== i).map(addr),
        ...TIMING,
      },
    });
    const nodes: (NodeProc | null)[] = await Promise.all([0, 1, 2].map((i) => procs.start(options(i))));

    /** The node that leads now, as the nodes' status says (the highest term among those leading). */
    const findLeader = async (): Promise<NodeProc | null> => {
      let best: { node: NodeProc; term: number } | null = null;
      for (const n of nodes) {
        if (n === null) continue;
        const s = await n.call<{ state: string; term: number }>('status', {}, 2000).catch(() => null);
        if (s?.state === 'leader' && (best === null || s.term > best.term)) best = { node: n, term: s.term };
      }
      return best?.node ?? null;
    };
    let leader: NodeProc | null = null;
    await until(async () => (leader = await findLeader()) !== null, 30_000, 'a leader elected');
    await (leader as unknown as NodeProc).call('create', {
      name: 'c',
      dimension: DIM,
      consistency: 'all',
      timeoutMs: 10_000,
    });

    // The client: WORKERS writers at Quorum to the leader, each batch new ids; an ack is the resolved call.
    const acked: number[] = [];
    let failed = 0;
    let next = 0;
    let ackedSinceKill = 0;
    let killedAtMs: number | null = null;
    const failoverMs: number[] = [];
    let stopClient = false;
    const worker = async (): Promise<void> => {
      while (!stopClient) {
        const p = leader;
        if (p === null) {
          leader = await findLeader();
          if (leader === null) await sleep(20);
          continue;
        }
        const first = next;
        next += BATCH;
        try {
          await p.call(
            'write',
            { collection: 'c', first, count: BATCH, dimension: DIM, consistency: 'quorum', timeoutMs: 5000 },
            20_000,
          );
          acked.push(first);
          ackedSinceKill++;
          if (killedAtMs !== null) {
            failoverMs.push(performance.now() - killedAtMs);
            killedAtMs = null;
          }
        } catch {
          // Not the leader (any more), the process died under it, or indeterminate (a timeout).
          failed++;
          if (leader === p) leader = null;
          await sleep(20);
        }
      }
    };
    const workers = Array.from({ length: WORKERS }, worker);

    const started = performance.now();
    for (let k = 0; k < KILLS; k++) {
      await until(async () => ackedSinceKill >= 3, 60_000, `writes acknowledged after kill ${k}`).catch(
        (err: Error) => {
          throw new Error(`${err.message}\n${procs.logs()}`);
        },
      );
      await sleep(50 + Math.floor(rand() * 600));
      const victim: NodeProc | null = leader ?? (await findLeader());
      if (victim === null) continue;
      const i = nodes.indexOf(victim);
      nodes[i] = null;
      if (leader === victim) leader = null;
      ackedSinceKill = 0;
      killedAtMs = performance.now();
      await procs.kill(victim);
      nodes[i] = await procs.start(options(i));
    }
    await until(async () => ackedSinceKill >= 3, 60_000, 'writes acknowledged after the last kill');
    stopClient = true;
    await Promise.all(workers);
    const sorted = [...failoverMs].sort((a, b) => a - b);
    t.diagnostic(
      `${KILLS} leader kills in ${Math.round(performance.now() - started)} ms: ${acked.length} Quorum writes acknowledged, ${failed} failed or indeterminate; kill to first acknowledged write on the new leader: p50 ${Math.round(percentile(sorted, 50))} ms, p99 ${Math.round(percentile(sorted, 99))} ms, max ${Math.round(sorted.at(-1) ?? 0)} ms (election timeout ${ELECTION_TIMEOUT_MS} ms)`,
    );
    assert.equal(failoverMs.length, KILLS, 'every kill was followed by an acknowledged write');

    const live = nodes as NodeProc[];
    await waitConverged(live, 'c', 60_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${procs.logs()}`);
    });
    const ids = acked.flatMap((first) => idsOf(first, BATCH));
    for (const [i, node] of live.entries()) {
      const missing = await missingOn(node, 'c', ids);
      assert.deepEqual(
        missing.slice(0, 20),
        [],
        `${IDS[i]} lacks ${missing.length} of ${ids.length} acknowledged points (seed ${SEED})`,
      );
    }
    const terms = await Promise.all(live.map(async (n) => (await status(n)).term));
    t.diagnostic(`terms at the end: ${terms.join(', ')}`);
    await Promise.all(live.map((n) => n.stop()));
  },
);
