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
import { until } from '../helpers/node-proc.ts';
import { tempDir } from '../helpers/tmp.ts';
import type { ReplicationNodeOptions } from '../../src/node/types.ts';
import { freePorts, Procs, status } from '../helpers/safety.ts';
import {
  assertAllHold,
  AutoCluster,
  Client,
  DIM,
  TIMING,
  waitLogsConverged,
} from '../helpers/auto-cluster.ts';

test(
  'role auto: a dead voter is replaced under load (learner, catch up, promote, remove)',
  { timeout: 180_000 },
  async (t) => {
    const dir = tempDir(t);
    const procs = new Procs(t);
    const ports = (await freePorts(4)) as number[];
    const addr = (i: number): string => `127.0.0.1:${ports[i] as number}`;
    const cluster = await AutoCluster.start(procs, { dir, bind: addr, peer: (_, j) => addr(j) });
    /** Node i knowing `peers`: the replacement, and every node restarted after the change. */
    const options = (i: number, peers: number[]): ReplicationNodeOptions => ({
      nodeId: `n${i + 1}`,
      dataDir: path.join(dir, `n${i + 1}`),
      replication: { role: 'auto', bindAddress: addr(i), peers: peers.map(addr), ...TIMING },
    });
    const first = await cluster.waitLeader('a leader elected');
    await cluster
      .node(first.i)
      .call('create', { name: 'c', dimension: DIM, consistency: 'all', timeoutMs: 10_000 });
    const client = new Client(cluster, { workers: 1, batch: 10, consistency: 'quorum' });
    client.start();

    // The victim: a follower, killed for good.
    await until(async () => client.acked().length >= 5, 30_000, 'writes before the death');
    const leader = await cluster.waitLeader('the leader before the death');
    const victimIndex = [0, 1, 2].find((i) => i !== leader.i) as number;
    const victim = cluster.node(victimIndex);
    cluster.nodes[victimIndex] = null;
    await procs.kill(victim);
    const deadId = cluster.ids[victimIndex] as string;

    // The replacement: a new node in role auto that knows the live members.
    const live = [0, 1, 2].filter((i) => i !== victimIndex);
    await cluster.join('n4', options(3, live));
    const lead = cluster.node((await cluster.waitLeader('the leader after the death')).i);
    const id = await lead.call<string>('addLearner', { address: addr(3) }, 60_000);
    assert.equal(id, 'n4');
    const asLearner = await status(lead);
    assert.equal(asLearner.members.find((m) => m.id === 'n4')?.kind, 'learner');
    await lead.call('promoteLearner', { id: 'n4' }, 90_000);
    await lead.call('removeReplica', { id: deadId }, 60_000);
    const after = await status(lead);
    const kinds = after.members.map((m) => `${m.id ?? m.address}:${m.kind}`).sort();
    assert.deepEqual(kinds, [...live.map((i) => `n${i + 1}:voter`), 'n4:voter'].sort());

    const ackedBefore = client.acked().length;
    await until(
      async () => client.acked().length >= ackedBefore + 15,
      30_000,
      'writes after the replacement',
    );
    await client.stop();
    await waitLogsConverged(cluster, 60_000);
    const ids = client.ackedIds();
    await assertAllHold(cluster, ids);
    t.diagnostic(
      `${client.acked().length} Quorum writes acknowledged across the replacement of ${deadId} by n4`,
    );

    // The membership is in the log: every node restarted still holds it.
    await Promise.all(cluster.live.map((n) => n.stop()));
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
