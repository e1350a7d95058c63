/**
 * Issue 10 acceptance, on real processes: a diverged replica's redial backs
 * off on the reconnect interval, and no full sync starts whose result would
 * be refused. The replica holds committed data; its primary comes back with
 * a wiped data dir (a new history that does not contain that data), so the
 * replica refuses it (docs/replication.md, "What a replica refuses"). Over
 * a window, the primary sees about one link per reconnect interval from it,
 * and streams no snapshot to it. The operator's forceSync still works.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { until, type NodeProc } from '../helpers/node-proc.ts';
import { tempDir } from '../helpers/tmp.ts';
import type { NodeEvent, ReplicationNodeOptions } from '../../src/node/types.ts';
import { digestOf, freePorts, Procs, sleep, status, waitConverged } from '../helpers/safety.ts';

const RECONNECT_MS = 1000;
const WINDOW_MS = 6000;
const TIMING = { heartbeatIntervalMs: 100, replicaTimeoutMs: 5000, reconnectIntervalMs: RECONNECT_MS };

async function counts(
  primary: NodeProc,
): Promise<{ links: number; fullSyncsStarted: number; offers: number }> {
  const events = await primary.call<NodeEvent[]>('events');
  return {
    links: events.filter((e) => e.type === 'ReplicaConnected' && e.replica === 'r').length,
    fullSyncsStarted: events.filter((e) => e.type === 'FullSyncStarted' && e.peer === 'r').length,
    offers: (await status(primary)).stats.full_syncs,
  };
}

test(
  'a replica refusing a wiped primary redials on the reconnect interval, and no full sync is streamed to it',
  { timeout: 120_000 },
  async (t) => {
    const dir = tempDir(t);
    const procs = new Procs(t);
    const [pPort, rPort] = (await freePorts(2)) as [number, number];
    const addr = (port: number): string => `127.0.0.1:${port}`;
    const primaryOptions: ReplicationNodeOptions = {
      nodeId: 'p',
      dataDir: path.join(dir, 'p'),
      replication: { role: 'primary', bindAddress: addr(pPort), ...TIMING },
    };
    let primary = await procs.start(primaryOptions);
    const replica = await procs.start({
      nodeId: 'r',
      dataDir: path.join(dir, 'r'),
      replication: { role: 'replica', bindAddress: addr(rPort), masterAddress: addr(pPort), ...TIMING },
    });
    await primary.call('addReplica', { address: addr(rPort) });
    await primary.call('create', { name: 'c', dimension: 16 });
    for (let i = 0; i < 5; i++) {
      await primary.call('write', {
        collection: 'c',
        first: i * 1000,
        count: 1000,
        dimension: 16,
        consistency: 'all',
        timeoutMs: 20_000,
      });
    }
    const kept = await digestOf(replica, 'c');

    // The primary comes back wiped: same id, same address, none of the data.
    await primary.stop();
    rmSync(path.join(dir, 'p'), { recursive: true, force: true });
    primary = await procs.start(primaryOptions);
    await until(
      async () => ((await status(replica)).master?.refused ?? null) !== null,
      30_000,
      'the replica to refuse the wiped primary',
    );

    const c0 = await counts(primary);
    const t0 = performance.now();
    await sleep(WINDOW_MS);
    const c1 = await counts(primary);
    const seconds = (performance.now() - t0) / 1000;
    const links = c1.links - c0.links;
    t.diagnostic(
      `over ${seconds.toFixed(1)} s: ${links} links from the refusing replica (reconnect interval ${RECONNECT_MS} ms), ` +
        `${c1.offers - c0.offers} full-sync offers, ${c1.fullSyncsStarted - c0.fullSyncsStarted} full syncs streamed`,
    );
    assert.ok(
      links <= Math.ceil((seconds * 1000) / RECONNECT_MS) + 1,
      `${links} links in ${seconds.toFixed(1)} s: the refused replica redials faster than every ${RECONNECT_MS} ms`,
    );
    assert.ok(links >= 1, 'the refused replica stopped trying');
    assert.equal(
      c1.fullSyncsStarted,
      0,
      'the wiped primary streamed a full sync to a replica that refuses it',
    );
    assert.ok(c1.offers - c0.offers <= links, 'more full-sync offers than links');
    assert.deepEqual(await digestOf(replica, 'c'), kept, 'the refusing replica kept its data');

    // The operator's override: a forced full sync is taken, and the replica becomes the wiped primary's copy.
    await primary.call('forceSync', { id: 'r' });
    await until(
      async () => (await digestOf(replica, 'c')).digest === null,
      30_000,
      "the forced full sync to replace the replica's data",
    );
    await primary.call('create', { name: 'c', dimension: 16 });
    await waitConverged([primary, replica], 'c', 30_000);
    await Promise.all([primary.stop(), replica.stop()]);
  },
);
