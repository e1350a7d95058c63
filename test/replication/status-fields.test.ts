/**
 * Issue 9, item 11, on real processes: the status fields a new user read
 * wrong on 23ec531.
 * - A replica that dialed in showed `port: 0` and an address without a port.
 * - A refused replica showed lag 0.
 * - A replica reported `total_replicated: 0` after applying operations.
 * - The first connect to an empty primary counted as a full sync.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { until } from '../helpers/node-proc.ts';
import { tempDir } from '../helpers/tmp.ts';
import type { ReplicationNodeOptions } from '../../src/node/types.ts';
import { freePorts, Procs, status } from '../helpers/safety.ts';

const TIMING = { heartbeatIntervalMs: 100, replicaTimeoutMs: 5000, reconnectIntervalMs: 200 };

test(
  "status: a dialed-in replica's address has its listener port, the first sync from an empty primary is partial, a replica counts what it applied, a refused replica is not shown in step",
  { timeout: 120_000 },
  async (t) => {
    const dir = tempDir(t);
    const procs = new Procs(t);
    const [pPort, rPort, oPort] = (await freePorts(3)) as [number, number, number];
    const addr = (port: number): string => `127.0.0.1:${port}`;
    const node = (id: string, port: number, replication: Partial<ReplicationNodeOptions['replication']>) =>
      procs.start({
        nodeId: id,
        dataDir: path.join(dir, id),
        storage: { fsync: 'no' },
        replication: { role: 'primary', bindAddress: addr(port), ...TIMING, ...replication },
      } as ReplicationNodeOptions);

    // An empty primary (no configured peers); the replica dials in.
    const primary = await node('p', pPort, {});
    const replica = await node('r', rPort, { role: 'replica', masterAddress: addr(pPort) });
    await until(
      async () => (await status(primary)).replicas.some((r) => r.id === 'r' && r.status === 'Connected'),
      30_000,
      'the replica Connected',
    );
    const seen = (await status(primary)).replicas.find((r) => r.id === 'r');
    assert.ok(seen);
    assert.equal(seen.port, rPort, 'the dialed-in replica shows its listener port');
    assert.equal(seen.address, addr(rPort));
    assert.equal(seen.host, '127.0.0.1');
    const first = await status(primary);
    assert.equal(first.stats.full_syncs, 0, 'the first connect to an empty primary is no full sync');
    assert.equal(first.stats.partial_syncs, 1);
    assert.equal((await status(replica)).stats.full_syncs, 0);

    // Operations applied on the replica are counted there.
    await primary.call('create', { name: 'c', dimension: 8 });
    for (let b = 0; b < 3; b++)
      await primary.call('write', { collection: 'c', first: b * 10, count: 10, dimension: 8 });
    const last = (await status(primary)).last_lsn;
    await until(async () => (await status(replica)).applied_lsn === last, 30_000, 'the replica to apply');
    const rs = await status(replica);
    assert.equal(
      rs.stats.total_replicated,
      4,
      'the replica applied the create and three writes from its primary',
    );

    // Another primary with its own committed data is pointed at p: it refuses p (p's log lacks
    // its records). p shows it refused and as far behind as it is, never in step.
    const other = await node('o', oPort, {});
    await other.call('create', { name: 'mine', dimension: 8 });
    await other.call('write', { collection: 'mine', first: 0, count: 10, dimension: 8 });
    await other.call('configure', { role: 'replica', masterAddress: addr(pPort) });
    // Read from the status that showed the refusal: between o's redials p may not list it.
    const refused = await until(
      async () => (await status(primary)).replicas.find((r) => r.id === 'o' && r.refused !== null),
      30_000,
      'p to see o refuse it',
    );
    assert.ok(refused);
    assert.notEqual(refused.status, 'Connected');
    assert.equal(refused.lag_operations, last, 'a refused replica holds none of this log');
    assert.ok(refused.lag_ms > 0, `a refused replica's lag_ms is not 0 (${refused.lag_ms})`);
    assert.equal(refused.port, oPort);
    // The replica that follows is still in step.
    assert.equal((await status(primary)).replicas.find((r) => r.id === 'r')?.lag_operations, 0);
  },
);
