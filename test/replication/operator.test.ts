/**
 * The operator's calls on a primary: addReplica (the primary dials a
 * replica that has no master address), forceSync (a full sync on demand),
 * removeReplica (out of the membership that All counts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ReplicationNode } from '../../src/node/replication-node.ts';
import type { NodeEvent } from '../../src/replication/types.ts';
import { tempDir } from '../helpers/tmp.ts';
import { until } from '../helpers/node-proc.ts';

const timing = { heartbeatIntervalMs: 100, replicaTimeoutMs: 5000, reconnectIntervalMs: 200 };

test(
  'addReplica dials a replica, forceSync re-syncs it in full, removeReplica drops it from All',
  { timeout: 60_000 },
  async (t) => {
    const dir = tempDir(t);
    const primary = await ReplicationNode.start({
      nodeId: 'p',
      dataDir: path.join(dir, 'p'),
      replication: { role: 'primary', bindAddress: '127.0.0.1:0', ...timing },
    });
    t.after(() => primary.stop());
    const replica = await ReplicationNode.start({
      nodeId: 'r',
      dataDir: path.join(dir, 'r'),
      replication: { role: 'replica', bindAddress: '127.0.0.1:0', masterAddress: null, ...timing },
    });
    t.after(() => replica.stop());
    await primary.createCollection('c', { dimension: 4, metric: 'dot' });
    await primary.write('c', [{ id: 'a', vector: [1, 2, 3, 4], payload: { x: 1 } }]);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(replica.lastLsn, 0, 'a replica with no master address waits to be dialed');

    await primary.addReplica(`127.0.0.1:${replica.peerPort}`);
    await until(async () => replica.lastLsn === primary.lastLsn, 15_000, 'the dialed replica to sync');
    assert.equal(replica.digest('c'), primary.digest('c'));
    await primary.write('c', [{ id: 'b', vector: [4, 3, 2, 1] }], { consistency: 'all', timeoutMs: 5000 });
    assert.equal(replica.lastLsn, primary.lastLsn, 'an All write is on the replica when it resolves');

    const fullBefore = primary.replicationStats().full_syncs;
    const finished: NodeEvent[] = [];
    void (async () => {
      for await (const e of primary.events()) if (e.type === 'FullSyncFinished') finished.push(e);
    })();
    await primary.forceSync('r');
    await until(
      async () => primary.replicationStats().full_syncs === fullBefore + 1,
      15_000,
      'a forced full sync',
    );
    await until(
      async () => replica.lastLsn === primary.lastLsn && primary.replicas()[0]?.status === 'Connected',
      15_000,
      'the replica back after its full sync',
    );
    assert.equal(replica.digest('c'), primary.digest('c'));
    // The snapshot the full sync took and sent: the same files on both nodes.
    const snapshotBytes = primary.replicationStats().snapshot_size;
    assert.ok(snapshotBytes > 0, 'the primary reports the size of the snapshot it took');
    assert.equal(replica.replicationStats().snapshot_size, snapshotBytes, 'the replica holds that snapshot');
    await until(async () => finished.length === 1, 5000, 'FullSyncFinished on the primary');
    assert.equal(
      (finished[0] as Extract<NodeEvent, { type: 'FullSyncFinished' }>).bytes,
      snapshotBytes,
      'FullSyncFinished says how many snapshot bytes were sent',
    );

    await primary.removeReplica('r');
    assert.deepEqual(primary.replicas(), []);
    // All now means the primary alone: it resolves without the removed replica.
    await primary.write('c', [{ id: 'c', vector: [0, 0, 0, 1] }], { consistency: 'all', timeoutMs: 2000 });
    await assert.rejects(primary.removeReplica('r'), /no replica "r"/);
  },
);

test(
  'manual failover: a replica is promoted (new term and history), the other replica is pointed at it and resyncs partially',
  { timeout: 60_000 },
  async (t) => {
    const dir = tempDir(t);
    const primary = await ReplicationNode.start({
      nodeId: 'p',
      dataDir: path.join(dir, 'p'),
      replication: { role: 'primary', bindAddress: '127.0.0.1:0', ...timing },
    });
    const replicas: ReplicationNode[] = [];
    for (const id of ['r1', 'r2']) {
      const r = await ReplicationNode.start({
        nodeId: id,
        dataDir: path.join(dir, id),
        replication: {
          role: 'replica',
          bindAddress: '127.0.0.1:0',
          masterAddress: `127.0.0.1:${primary.peerPort}`,
          ...timing,
        },
      });
      t.after(() => r.stop());
      replicas.push(r);
    }
    const [r1, r2] = replicas as [ReplicationNode, ReplicationNode];
    await primary.createCollection('c', { dimension: 2, metric: 'l2' });
    await primary.write('c', [{ id: 'a', vector: [1, 2] }], { consistency: 'all', timeoutMs: 10_000 });
    const oldHistory = primary.historyId;
    const oldTerm = primary.term;
    await primary.stop();

    await assert.rejects(primary.promote(), /ERR_NODE_STOPPED|not a replica|stopped/);
    await r1.promote();
    assert.equal(r1.role, 'primary');
    assert.equal(r1.term, oldTerm + 1);
    assert.notEqual(r1.historyId, oldHistory);
    await assert.rejects(r1.promote(), (err: Error & { code?: string }) => err.code === 'ERR_ROLE');

    await r2.configure({ masterAddress: `127.0.0.1:${r1.peerPort}` });
    await r1.write('c', [{ id: 'b', vector: [3, 4] }], { consistency: 'all', timeoutMs: 10_000 });
    await until(async () => r2.lastLsn === r1.lastLsn, 15_000, 'r2 to follow the promoted node');
    assert.equal(r2.digest('c'), r1.digest('c'));
    assert.equal(r2.historyId, r1.historyId, 'r2 continued onto the new history');
    assert.equal(r2.replicationStats().full_syncs, 0, 'the old history continues: no full sync');
    assert.equal(r2.replicationStats().partial_syncs, 1);
    await assert.rejects(r2.write('c', [{ id: 'x', vector: [0, 0] }]), /read-only replica/);
  },
);
