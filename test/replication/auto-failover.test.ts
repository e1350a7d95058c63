/**
 * Issue 11 acceptance, on real processes: three nodes in role auto elect
 * their primary, and repeated SIGKILLs of whichever node leads, under
 * Quorum write load, lose no acknowledged write. A client writes at Quorum
 * to the node that leads (test/helpers/auto-cluster.ts: it finds it in the
 * nodes' status, as a client following ERR_NOT_LEADER would); each killed leader is restarted at once
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
import { until } from '../helpers/node-proc.ts';
import { tempDir } from '../helpers/tmp.ts';
import { rng } from '../helpers/rng.ts';
import { freePorts, Procs, sleep, status } from '../helpers/safety.ts';
import {
  assertAllHold,
  AutoCluster,
  Client,
  DIM,
  ELECTION_TIMEOUT_MS,
  failureCodes,
  waitLogsConverged,
} from '../helpers/auto-cluster.ts';

const KILLS = Number(process.env['VREP_FAILOVER_KILLS'] ?? 5);
const SEED = Number(process.env['VREP_FAILOVER_SEED'] ?? Math.floor(Math.random() * 2 ** 31));

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

test(
  `role auto: ${KILLS} SIGKILLs of the leader under Quorum load; a new leader takes writes, nothing acknowledged is lost`,
  { timeout: 120_000 + KILLS * 30_000 },
  async (t) => {
    t.diagnostic(`seed ${SEED} (VREP_FAILOVER_SEED=${SEED} replays the kill timing)`);
    const rand = rng(SEED);
    const procs = new Procs(t);
    const ports = (await freePorts(3)) as number[];
    const addr = (i: number): string => `127.0.0.1:${ports[i] as number}`;
    const cluster = await AutoCluster.start(procs, { dir: tempDir(t), bind: addr, peer: (_, j) => addr(j) });
    const first = await cluster.waitLeader('a leader elected');
    await cluster
      .node(first.i)
      .call('create', { name: 'c', dimension: DIM, consistency: 'all', timeoutMs: 10_000 });

    // Three writers at Quorum to whichever node leads; an ack is the resolved call.
    const client = new Client(cluster, { workers: 3, batch: 10, consistency: 'quorum', patienceMs: 2000 });
    client.start();
    const ackedSince = (sinceMs: number): number => client.ackedSince(sinceMs).length;
    const failoverMs: number[] = [];

    const started = Date.now();
    let killedAtMs = 0;
    for (let k = 0; k <= KILLS; k++) {
      await until(
        async () => ackedSince(killedAtMs) >= 3,
        60_000,
        `writes acknowledged after kill ${k}`,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${procs.logs()}`);
      });
      if (k > 0) {
        // Kill to the first write sent after it and acknowledged (by the new leader).
        const firstAck = Math.min(...client.ackedSince(killedAtMs).map((a) => a.endMs as number));
        failoverMs.push(firstAck - killedAtMs);
      }
      if (k === KILLS) break;
      await sleep(50 + Math.floor(rand() * 600));
      const victim = await cluster.findLeader();
      if (victim === null) {
        k--;
        continue;
      }
      const node = cluster.node(victim.i);
      cluster.nodes[victim.i] = null;
      killedAtMs = Date.now();
      await procs.kill(node);
      cluster.nodes[victim.i] = await procs.start(cluster.options(victim.i));
    }
    await client.stop();
    const sorted = [...failoverMs].sort((a, b) => a - b);
    const attempts = client.attempts;
    t.diagnostic(
      `${KILLS} leader kills in ${Date.now() - started} ms: ${client.acked().length} Quorum writes acknowledged, ${attempts.length - client.acked().length} failed or indeterminate (${JSON.stringify(failureCodes(attempts))}); kill to first acknowledged write on the new leader: p50 ${Math.round(percentile(sorted, 50))} ms, p99 ${Math.round(percentile(sorted, 99))} ms, max ${Math.round(sorted.at(-1) ?? 0)} ms (election timeout ${ELECTION_TIMEOUT_MS} ms)`,
    );
    assert.equal(failoverMs.length, KILLS, 'every kill was followed by an acknowledged write');

    await waitLogsConverged(cluster, 60_000);
    const ids = client.ackedIds();
    await assertAllHold(cluster, ids, ` (seed ${SEED})`);
    const terms = await Promise.all(cluster.live.map(async (n) => (await status(n)).term));
    t.diagnostic(`terms at the end: ${terms.join(', ')}`);
    await Promise.all(cluster.live.map((n) => n.stop()));
  },
);
