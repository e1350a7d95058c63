/**
 * Issue 9, item 1: snapshots under fire. A real primary process takes a
 * snapshot every 1 MiB of WAL under write load while its replicas are
 * forced into a full sync about every 100 ms (and the operator asks for
 * snapshots of its own, twice at the same LSN now and then). No snapshot
 * may lose a file, every full sync that is let finish must succeed, and a
 * clean stop must be followed by a clean start. The disk-full variant: a
 * replica whose disk cannot hold the snapshot retries its full sync again
 * and again, and the primary (whose disk is fine) must not notice.
 *
 * VREP_SNAPSHOT_HAMMER_SECONDS sets how long the hammer runs (default 10,
 * inside `npm test`; `npm run test:hammer` runs it for 5 minutes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { NodeProc, until } from '../helpers/node-proc.ts';
import { tempDir } from '../helpers/tmp.ts';
import { smallDisk } from '../helpers/small-disk.ts';
import { freePorts } from '../helpers/addresses.ts';
import { listSnapshots, readManifest, readSnapshot } from '../../src/store/snapshot.ts';
import type { NodeEvent, ReplicationNodeOptions, ReplicationStatus } from '../../src/node/types.ts';

const HAMMER_SECONDS = Number(process.env['VREP_SNAPSHOT_HAMMER_SECONDS'] ?? 10);
const FAST = { heartbeatIntervalMs: 200, replicaTimeoutMs: 20_000, reconnectIntervalMs: 200 };
const DIM = 32;
/** Ids cycle in this range, so the data (and every snapshot) stays a few MiB. */
const ID_SPACE = 16_384;
const BATCH = 256;
const STORAGE = {
  fsync: 'no' as const,
  snapshotEveryBytes: 1024 * 1024,
  walSegmentBytes: 256 * 1024,
};
/** What a damaged snapshot or a failed full sync looks like in a node's log. */
const DAMAGE =
  /ENOENT|unreadable manifest|checksum mismatch|ERR_SNAPSHOT_CORRUPT|could not offer a full sync|short read/;

async function primaryOptions(
  dir: string,
  storage: ReplicationNodeOptions['storage'] = {},
): Promise<ReplicationNodeOptions> {
  return {
    nodeId: 'p',
    dataDir: path.join(dir, 'p'),
    storage: { ...STORAGE, ...storage },
    replication: {
      role: 'primary', // The primary keeps its port across its restart, so the replicas find it again.
      bindAddress: `127.0.0.1:${(await freePorts(1))[0]}`,
      ...FAST,
    },
  };
}

function replicaOptions(dataDir: string, id: string, primaryPort: number): ReplicationNodeOptions {
  return {
    nodeId: id,
    dataDir,
    storage: { fsync: 'no', snapshotEveryBytes: 0 },
    replication: {
      role: 'replica',
      bindAddress: '127.0.0.1:0',
      masterAddress: `127.0.0.1:${primaryPort}`,
      ...FAST,
    },
  };
}

/**
 * Verifies every installed snapshot in `dataDir` (manifest CRC and schema,
 * every chunk's size and CRC, rows adding up). `racing`: the node is
 * running, so a snapshot may be pruned between the listing and the read
 * once a newer one is in place; only a snapshot that is still the newest
 * must verify.
 */
async function verifySnapshots(dataDir: string, racing: boolean): Promise<number> {
  const dirs = await listSnapshots(dataDir);
  let verified = 0;
  for (const dir of racing ? dirs.slice(0, 1) : dirs) {
    try {
      const manifest = await readManifest(dir);
      let rows = 0;
      await readSnapshot(dir, manifest, (chunk) => (rows += chunk.rows));
      assert.equal(
        rows,
        manifest.collections.reduce((n, c) => n + c.count, 0),
      );
      verified++;
    } catch (err) {
      if (racing) {
        const [newest] = await listSnapshots(dataDir);
        if (newest !== dir) continue; // pruned: a newer one took its place
      }
      throw new Error(`snapshot ${dir} is damaged: ${(err as Error).message}`);
    }
  }
  return verified;
}

async function digestOf(node: NodeProc): Promise<{ digest: string | null; lastLsn: number }> {
  return node.call('digest', { collection: 'c' });
}

async function waitConverged(primary: NodeProc, replicas: NodeProc[], timeoutMs: number): Promise<string> {
  try {
    return await until(
      async () => {
        const want = await digestOf(primary);
        for (const r of replicas) {
          const got = await digestOf(r);
          if (got.lastLsn !== want.lastLsn || got.digest !== want.digest) return false;
        }
        return want.digest;
      },
      timeoutMs,
      'replicas to converge on the primary',
    );
  } catch (err) {
    const states = await Promise.all(
      [primary, ...replicas].map((n) => digestOf(n).catch((e: Error) => e.message)),
    );
    const logs = [primary, ...replicas].map((n) => n.output.slice(-2000)).join('\n---\n');
    throw new Error(`${(err as Error).message}; states ${JSON.stringify(states)}; logs:\n${logs}`);
  }
}

/** Writes batches until `stop()` is true; returns how many were acknowledged. */
function writeLoop(primary: NodeProc, shouldStop: () => boolean, paused: () => boolean): Promise<number> {
  let acked = 0;
  let b = 0;
  const worker = async (): Promise<void> => {
    while (!shouldStop()) {
      if (paused()) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      const n = b++;
      await primary.call('write', {
        collection: 'c',
        first: (n * BATCH) % ID_SPACE,
        count: BATCH,
        dimension: DIM,
        seed: n + 1,
      });
      acked++;
    }
  };
  return Promise.all([worker(), worker()]).then(() => acked);
}

function fullSyncsFinished(events: NodeEvent[]): number {
  return events.filter((e) => e.type === 'FullSyncFinished').length;
}

test(
  `snapshot hammer: automatic snapshots every 1 MiB, a full sync forced every 100 ms, operator snapshots, for ${HAMMER_SECONDS} s; no snapshot is damaged, full syncs succeed, the restart is clean`,
  { timeout: HAMMER_SECONDS * 1000 + 240_000 },
  async (t) => {
    const dir = tempDir(t);
    const pOpts = await primaryOptions(dir);
    let primary = await NodeProc.start(pOpts);
    t.after(() => primary.kill());
    const { peerPort } = await primary.call<{ peerPort: number }>('info');
    await primary.call('create', { name: 'c', dimension: DIM });
    const replicas = await Promise.all(
      ['r1', 'r2'].map((id) => NodeProc.start(replicaOptions(path.join(dir, id), id, peerPort))),
    );
    t.after(() => replicas.forEach((r) => r.kill()));

    let stop = false;
    let paused = false;
    const writes = writeLoop(
      primary,
      () => stop,
      () => paused,
    );

    // Full syncs, one every ~100 ms, alternating between the replicas.
    let forced = 0;
    const forcing = (async () => {
      for (let i = 0; !stop; i++) {
        await new Promise((r) => setTimeout(r, 100));
        await primary.call('forceSync', { id: i % 2 === 0 ? 'r1' : 'r2' }).then(
          () => forced++,
          () => undefined, // not connected at this instant (it is redialing after the last one)
        );
      }
    })();

    // The operator's snapshots: one every ~2 s, and now and then two at the
    // same LSN (writes paused) while full syncs read the current one.
    let operatorSnapshots = 0;
    const operator = (async () => {
      for (let i = 1; !stop; i++) {
        await new Promise((r) => setTimeout(r, 2000));
        if (stop) break;
        if (i % 3 === 0) {
          paused = true;
          await new Promise((r) => setTimeout(r, 150));
          await primary.call('snapshot');
          await primary.call('forceSync', { id: 'r1' }).catch(() => undefined);
          await new Promise((r) => setTimeout(r, 30));
          await primary.call('snapshot');
          operatorSnapshots += 2;
          paused = false;
        } else {
          await primary.call('snapshot');
          operatorSnapshots++;
        }
      }
    })();

    // The newest snapshot verifies at all times.
    let checks = 0;
    const checker = (async () => {
      while (!stop) {
        await new Promise((r) => setTimeout(r, 500));
        checks += await verifySnapshots(pOpts.dataDir, true);
      }
    })();

    const endAt = Date.now() + HAMMER_SECONDS * 1000;
    while (Date.now() < endAt) {
      await new Promise((r) => setTimeout(r, 1000));
      assert.doesNotMatch(primary.output, DAMAGE, 'the primary reports a damaged snapshot or a failed offer');
    }
    stop = true;
    const acked = await writes;
    await Promise.all([forcing, operator, checker]);
    t.diagnostic(
      `${acked} batches written, ${forced} full syncs forced, ${operatorSnapshots} operator snapshots, ${checks} snapshot checks`,
    );
    assert.ok(forced >= HAMMER_SECONDS * 3, `full syncs were forced (${forced})`);

    // Once the forcing stops, the last full syncs complete and the replicas hold what the primary holds.
    const digest = await waitConverged(primary, replicas, 120_000);
    const finished = await Promise.all(
      replicas.map((r) => r.call<NodeEvent[]>('events').then(fullSyncsFinished)),
    );
    t.diagnostic(`full syncs finished on the replicas: ${finished.join(', ')}`);
    for (const n of finished) assert.ok(n >= 2, `full syncs finished on a replica (${n})`);
    assert.doesNotMatch(primary.output, DAMAGE);
    const before = await digestOf(primary);

    // Clean stop: every snapshot left verifies, no temporary directory stays.
    await primary.stop();
    const snapRoot = path.join(pOpts.dataDir, 'snapshots');
    const left = readdirSync(snapRoot);
    assert.deepEqual(
      left.filter((n) => n.startsWith('tmp-')),
      [],
      'a clean stop leaves no temporary snapshot directory',
    );
    assert.ok((await verifySnapshots(pOpts.dataDir, false)) >= 1, 'a snapshot is kept');

    // Restart: the same data, and a full sync from it succeeds.
    primary = await NodeProc.start(pOpts);
    assert.deepEqual(await digestOf(primary), before);
    assert.equal(before.digest, digest);
    const r1 = replicas[0] as NodeProc;
    const finishedBefore = fullSyncsFinished(await r1.call<NodeEvent[]>('events'));
    await until(
      async () => primary.call('forceSync', { id: 'r1' }).then(() => true),
      30_000,
      'r1 to reconnect to the restarted primary',
    );
    await primary.call('write', { collection: 'c', first: 0, count: BATCH, dimension: DIM, seed: 999_999 });
    await waitConverged(primary, replicas, 60_000);
    await until(
      async () => fullSyncsFinished(await r1.call<NodeEvent[]>('events')) > finishedBefore,
      30_000,
      'a full sync from the restarted primary',
    );
    assert.doesNotMatch(primary.output, DAMAGE);
    await Promise.all([primary.stop(), ...replicas.map((r) => r.stop())]);
  },
);

test(
  'a replica whose disk cannot hold the snapshot retries its full sync again and again; the primary is not damaged',
  { timeout: 300_000 },
  async (t) => {
    const disk = smallDisk(t, 3 * 1024 * 1024);
    if (disk === null) {
      t.skip('mounting a tmpfs needs root');
      return;
    }
    const dir = tempDir(t);
    // A small in-memory log: the replica's position is soon gone from it
    // (and from the WAL, which snapshots cut), so it needs a full sync.
    const pOpts = await primaryOptions(dir, { logBytes: 1024 * 1024 });
    let primary = await NodeProc.start(pOpts);
    t.after(() => primary.kill());
    const { peerPort } = await primary.call<{ peerPort: number }>('info');
    await primary.call('create', { name: 'c', dimension: 128 });
    // About 10 MiB of vectors: more than the replica's disk holds.
    for (let b = 0; b < 80; b++) {
      await primary.call('write', {
        collection: 'c',
        first: b * BATCH,
        count: BATCH,
        dimension: 128,
        seed: b + 1,
      });
    }
    const full = await NodeProc.start(replicaOptions(path.join(disk.dir, 'rf'), 'rf', peerPort));
    t.after(() => full.kill());

    // The primary goes on writing (automatic snapshots keep coming) while the replica retries.
    let stop = false;
    let b = 80;
    const writing = (async () => {
      while (!stop) {
        const n = b++;
        await primary.call('write', {
          collection: 'c',
          first: (n * BATCH) % (120 * BATCH),
          count: BATCH,
          dimension: 128,
          seed: n + 1,
        });
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const seconds = Math.max(10, Math.min(HAMMER_SECONDS, 60));
    const endAt = Date.now() + seconds * 1000;
    while (Date.now() < endAt) {
      await new Promise((r) => setTimeout(r, 1000));
      await verifySnapshots(pOpts.dataDir, true);
      assert.doesNotMatch(primary.output, DAMAGE);
    }
    stop = true;
    await writing;
    const status = await primary.call<ReplicationStatus>('status');
    t.diagnostic(`full syncs offered by the primary: ${status.stats.full_syncs}`);
    assert.ok(status.stats.full_syncs >= 3, `the replica retried its full sync (${status.stats.full_syncs})`);
    const rf = await digestOf(full);
    assert.equal(rf.digest, null, 'the replica never held the data');
    assert.ok((await digestOf(primary)).digest !== null);

    // Space comes back: the same replica process completes its full sync (no restart).
    disk.resize(256 * 1024 * 1024);
    await waitConverged(primary, [full], 60_000);

    // A healthy replica full-syncs from the same primary.
    const healthy = await NodeProc.start(replicaOptions(path.join(dir, 'r2'), 'r2', peerPort));
    t.after(() => healthy.kill());
    await waitConverged(primary, [healthy], 60_000);
    const before = await digestOf(primary);
    await full.stop();

    // Clean stop and restart of the primary.
    await primary.stop();
    assert.ok((await verifySnapshots(pOpts.dataDir, false)) >= 1);
    assert.equal(existsSync(path.join(pOpts.dataDir, 'snapshots')), true);
    primary = await NodeProc.start(pOpts);
    assert.deepEqual(await digestOf(primary), before);
    assert.doesNotMatch(primary.output, DAMAGE);
    await Promise.all([primary.stop(), healthy.stop()]);
  },
);
