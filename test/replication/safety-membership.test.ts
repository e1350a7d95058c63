/**
 * Issue 10 acceptance, on real processes: membership is durable. A primary
 * whose two replicas were made members (addReplica), restarted while both
 * are down, must not acknowledge Quorum or All writes: a majority of its
 * members is not there. The level times out (ERR_CONSISTENCY_TIMEOUT, the
 * write indeterminate, as docs/replication.md promises: HTTP 503). One
 * still works. A member coming back counts again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { CallError, until } from '../helpers/node-proc.ts';
import { tempDir } from '../helpers/tmp.ts';
import type { ReplicationNodeOptions } from '../../src/node/types.ts';
import { digestOf, freePorts, idsOf, missingOn, Procs, status } from '../helpers/safety.ts';

const TIMING = { heartbeatIntervalMs: 100, replicaTimeoutMs: 5000, reconnectIntervalMs: 200 };

test(
  'a primary restarted alone refuses Quorum and All (its members are durable); One still works',
  { timeout: 120_000 },
  async (t) => {
    const dir = tempDir(t);
    const procs = new Procs(t);
    const [pPort, r1Port, r2Port] = (await freePorts(3)) as [number, number, number];
    const addr = (port: number): string => `127.0.0.1:${port}`;
    const storage = { fsync: 'always' as const };
    const primaryOptions: ReplicationNodeOptions = {
      nodeId: 'p',
      dataDir: path.join(dir, 'p'),
      storage,
      replication: { role: 'primary', bindAddress: addr(pPort), ...TIMING },
    };
    const replicaOptions = (id: string, port: number): ReplicationNodeOptions => ({
      nodeId: id,
      dataDir: path.join(dir, id),
      storage,
      replication: { role: 'replica', bindAddress: addr(port), masterAddress: addr(pPort), ...TIMING },
    });
    let primary = await procs.start(primaryOptions);
    let r1 = await procs.start(replicaOptions('r1', r1Port));
    const r2 = await procs.start(replicaOptions('r2', r2Port));
    for (const port of [r1Port, r2Port]) await primary.call('addReplica', { address: addr(port) });
    await until(
      async () => (await status(primary)).replicas.filter((r) => r.status === 'Connected').length === 2,
      30_000,
      'both replicas Connected',
    );
    await primary.call('create', { name: 'c', dimension: 8 });
    await primary.call('write', {
      collection: 'c',
      first: 0,
      count: 10,
      dimension: 8,
      consistency: 'all',
      timeoutMs: 10_000,
    });

    // Both replicas stop; the primary crashes and comes back with nobody to talk to.
    await r1.stop();
    await r2.stop();
    await procs.kill(primary);
    primary = await procs.start(primaryOptions);

    const write = (first: number, consistency: string, timeoutMs: number): Promise<unknown> =>
      primary.call('write', { collection: 'c', first, count: 10, dimension: 8, consistency, timeoutMs });
    const notAcknowledged = (level: string) => (err: unknown) => {
      assert.ok(err instanceof CallError, `${level}: ${String(err)}`);
      assert.equal(err.code, 'ERR_CONSISTENCY_TIMEOUT', `${level}: ${err.message}`);
      assert.match(err.message, /indeterminate/);
      return true;
    };
    await assert.rejects(
      write(100, 'quorum', 1500),
      notAcknowledged('quorum'),
      'a Quorum write was acknowledged by a primary alone',
    );
    await assert.rejects(
      write(200, 'all', 1500),
      notAcknowledged('all'),
      'an All write was acknowledged by a primary alone',
    );
    await write(300, 'one', 5000);
    assert.deepEqual(await missingOn(primary, 'c', idsOf(300, 10)), []);

    const st = await status(primary);
    assert.equal(st.members?.length, 3, `members after the restart: ${JSON.stringify(st.members)}`);
    assert.equal(st.writable?.ok, true);

    // One member back: Quorum is met again (the primary and r1), All still is not.
    r1 = await procs.start(replicaOptions('r1', r1Port));
    await write(400, 'quorum', 20_000);
    assert.deepEqual(await missingOn(r1, 'c', idsOf(400, 10)), [], 'the Quorum write is on r1');
    await assert.rejects(write(500, 'all', 1500), notAcknowledged('all with one member down'));
    await until(
      async () => (await digestOf(r1, 'c')).lastLsn === (await digestOf(primary, 'c')).lastLsn,
      20_000,
      'r1 to catch up',
    );
    await Promise.all([primary.stop(), r1.stop()]);
  },
);
