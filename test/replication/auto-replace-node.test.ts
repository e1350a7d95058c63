/**
 * Issue 11 acceptance, on real processes: replacing a dead voter under
 * Quorum load in role auto, as the runbook in docs/operations.md says. A
 * voter dies for good; a new node is added as a learner (fed, not
 * counted), catches up, is promoted to voter, and the dead one is removed.
 * Writes go on throughout; at the end the three live members hold the same
 * log and digest and every acknowledged write, and the membership (three
 * voters, the dead node gone) survives a restart of every node.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { NodeProc } from '../helpers/node-proc.ts';
import { until } from '../helpers/node-proc.ts';
import { tempDir } from '../helpers/tmp.ts';
import type { ReplicationNodeOptions } from '../../src/node/types.ts';
import type { ReplicationStatus } from '../../src/replication/types.ts';
import { freePorts, idsOf, missingOn, Procs, sleep, status, waitConverged } from '../helpers/safety.ts';

const TIMING = {
  electionTimeoutMs: 1000,
  heartbeatIntervalMs: 100,
  replicaTimeoutMs: 5000,
  reconnectIntervalMs: 200,
};
const DIM = 16;
const BATCH = 10;

test(
  'role auto: a dead voter is replaced under load (learner, catch up, promote, remove)',
  { timeout: 180_000 },
  async (t) => {
    const dir = tempDir(t);
    const procs = new Procs(t);
    const ports = (await freePorts(4)) as number[];
    const addr = (i: number): string => `127.0.0.1:${ports[i] as number}`;
    const options = (i: number, peers: number[]): ReplicationNodeOptions => ({
      nodeId: `n${i + 1}`,
      dataDir: path.join(dir, `n${i + 1}`),
      replication: { role: 'auto', bindAddress: addr(i), peers: peers.map(addr), ...TIMING },
    });
    const nodes: (NodeProc | null)[] = await Promise.all(
      [0, 1, 2].map((i) =>
        procs.start(
          options(
            i,
            [0, 1, 2].filter((j) => j !== i),
          ),
        ),
      ),
    );
    const leaderOf = async (): Promise<NodeProc | null> => {
      for (const n of nodes) {
        if (n === null) continue;
        const s = await n.call<ReplicationStatus>('status', {}, 2000).catch(() => null);
        if (s?.state === 'leader') return n;
      }
      return null;
    };
    let leader: NodeProc | null = null;
    await until(async () => (leader = await leaderOf()) !== null, 30_000, 'a leader elected');
    await (leader as unknown as NodeProc).call('create', {
      name: 'c',
      dimension: DIM,
      consistency: 'all',
      timeoutMs: 10_000,
    });

    const acked: number[] = [];
    let next = 0;
    let stop = false;
    const writer = (async () => {
      while (!stop) {
        const p: NodeProc | null = leader ?? (await leaderOf());
        leader = p;
        if (p === null) {
          await sleep(20);
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
        } catch {
          leader = null;
          await sleep(20);
        }
      }
    })();

    // The victim: a follower, killed for good.
    await until(async () => acked.length >= 5, 30_000, 'writes before the death');
    const victimIndex = nodes.findIndex((n) => n !== null && n !== leader);
    const victim = nodes[victimIndex] as NodeProc;
    nodes[victimIndex] = null;
    await procs.kill(victim);
    const deadId = `n${victimIndex + 1}`;

    // The replacement: a new node in role auto that knows the live members.
    const live = [0, 1, 2].filter((i) => i !== victimIndex);
    const n4 = await procs.start(options(3, live));
    nodes.push(n4);
    const lead = (await leaderOf()) as NodeProc;
    const id = await lead.call<string>('addLearner', { address: addr(3) }, 60_000);
    assert.equal(id, 'n4');
    const asLearner = await status(lead);
    assert.equal(asLearner.members.find((m) => m.id === 'n4')?.kind, 'learner');
    await lead.call('promoteLearner', { id: 'n4' }, 90_000);
    await lead.call('removeReplica', { id: deadId }, 60_000);
    const after = await status(lead);
    const kinds = after.members.map((m) => `${m.id ?? m.address}:${m.kind}`).sort();
    assert.deepEqual(kinds, [...live.map((i) => `n${i + 1}:voter`), 'n4:voter'].sort());

    await until(async () => acked.length >= 20, 30_000, 'writes after the replacement');
    stop = true;
    await writer;
    const members = nodes.filter((n): n is NodeProc => n !== null);
    await waitConverged(members, 'c', 60_000);
    const ids = acked.flatMap((first) => idsOf(first, BATCH));
    for (const n of members) assert.deepEqual((await missingOn(n, 'c', ids)).slice(0, 10), []);
    t.diagnostic(`${acked.length} Quorum writes acknowledged across the replacement of ${deadId} by n4`);

    // The membership is in the log: every node restarted still holds it.
    await Promise.all(members.map((n) => n.stop()));
    const restarted = await Promise.all(
      [...live, 3].map((i) =>
        procs.start(options(i, i === 3 ? live : [0, 1, 2, 3].filter((j) => j !== i && j !== victimIndex))),
      ),
    );
    await until(
      async () => {
        for (const n of restarted) {
          const s = await status(n);
          const k = s.members.map((m) => `${m.id ?? m.address}:${m.kind}`).sort();
          if (JSON.stringify(k) !== JSON.stringify(kinds)) return false;
        }
        return true;
      },
      30_000,
      'the membership after restarting every node',
    );
    await Promise.all(restarted.map((n) => n.stop()));
  },
);
