/**
 * Primary/replica replication across processes on loopback: every
 * consistency level, kill and restart (partial resync), a backlog that is
 * gone (exactly one full sync), a full sync cut off midway (resumed, not
 * restarted), a full sync with the writes made meanwhile carried alongside
 * it, a throttled link, SIGSTOPped replicas holding a Quorum write,
 * and a primary restarted with a wiped data dir (not trusted).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { NodeProc, until, CallError } from '../helpers/node-proc.ts';
import { tempDir } from '../helpers/tmp.ts';
import { WsProxy } from '../transport/ws-proxy.ts';
import type { NodeEvent, ReplicationNodeOptions, ReplicationStatus } from '../../src/node/types.ts';

const FAST = { heartbeatIntervalMs: 200, replicaTimeoutMs: 20_000, reconnectIntervalMs: 300 };

function primaryOptions(dir: string, extra: Partial<ReplicationNodeOptions> = {}): ReplicationNodeOptions {
  return {
    nodeId: 'p',
    dataDir: path.join(dir, 'p'),
    ...extra,
    replication: { role: 'primary', bindAddress: '127.0.0.1:0', ...FAST, ...extra.replication },
  };
}

function replicaOptions(
  dir: string,
  id: string,
  primaryPort: number,
  extra: Partial<ReplicationNodeOptions> = {},
): ReplicationNodeOptions {
  return {
    nodeId: id,
    dataDir: path.join(dir, id),
    ...extra,
    replication: {
      role: 'replica',
      bindAddress: '127.0.0.1:0',
      masterAddress: `127.0.0.1:${primaryPort}`,
      ...FAST,
      ...extra.replication,
    },
  };
}

/** Makes each replica a member of the primary's cluster (Quorum and All count members only). */
async function addMembers(primary: NodeProc, replicas: NodeProc[]): Promise<void> {
  for (const r of replicas) {
    const { peerPort } = await r.call<{ peerPort: number }>('info');
    await primary.call('addReplica', { address: `127.0.0.1:${peerPort}` });
  }
}

async function stats(node: NodeProc): Promise<ReplicationStatus> {
  return node.call<ReplicationStatus>('status');
}

async function waitConnected(primary: NodeProc, count: number): Promise<void> {
  await until(
    async () => {
      const s = await stats(primary);
      return s.replicas.filter((r) => r.status === 'Connected').length === count;
    },
    30_000,
    `${count} replicas Connected`,
  );
}

async function digestOf(
  node: NodeProc,
  collection: string,
): Promise<{ digest: string | null; lastLsn: number }> {
  return node.call('digest', { collection });
}

/** Waits until every node has the primary's last LSN and the same digest. */
async function waitConverged(
  primary: NodeProc,
  replicas: NodeProc[],
  collection: string,
  timeoutMs = 60_000,
): Promise<string> {
  return waitConvergedOnce(primary, replicas, collection, timeoutMs).catch(async (err: Error) => {
    const states = await Promise.all(
      [primary, ...replicas].map((n) => digestOf(n, collection).catch((e: Error) => e.message)),
    );
    const logs = [primary, ...replicas].map((n) => n.output.slice(-1500)).join('\n---\n');
    throw new Error(`${err.message}; states ${JSON.stringify(states)}; logs:\n${logs}`);
  });
}

async function waitConvergedOnce(
  primary: NodeProc,
  replicas: NodeProc[],
  collection: string,
  timeoutMs: number,
): Promise<string> {
  return until(
    async () => {
      const want = await digestOf(primary, collection);
      for (const r of replicas) {
        const got = await digestOf(r, collection);
        if (got.lastLsn !== want.lastLsn || got.digest !== want.digest) return false;
      }
      return want.digest;
    },
    timeoutMs,
    'replicas to converge on the primary',
  );
}

async function writeBatches(
  node: NodeProc,
  opts: {
    collection: string;
    first: number;
    batches: number;
    batchSize: number;
    dimension: number;
    consistency?: string;
    inFlight?: number;
  },
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let b = next++; b < opts.batches; b = next++) {
      await node.call('write', {
        collection: opts.collection,
        first: opts.first + b * opts.batchSize,
        count: opts.batchSize,
        dimension: opts.dimension,
        ...(opts.consistency ? { consistency: opts.consistency, timeoutMs: 20_000 } : {}),
      });
    }
  };
  await Promise.all(Array.from({ length: opts.inFlight ?? 4 }, worker));
}

test(
  'primary + 2 replicas: every level, restart with partial resync, backlog loss with one full sync, wiped primary not trusted',
  { timeout: 300_000 },
  async (t) => {
    const dir = tempDir(t);
    // Small WAL segments and in-memory log so a backlog can really be lost.
    const storage = { walSegmentBytes: 1024 * 1024, logBytes: 1024 * 1024, snapshotEveryBytes: 0 };
    const procs: NodeProc[] = [];
    t.after(async () => {
      for (const p of procs) p.kill();
    });
    const primary = await NodeProc.start(primaryOptions(dir, { storage }));
    procs.push(primary);
    // The replicas reach the primary through a TCP proxy, so the wiped primary
    // below can come back on any port at the same address (its own port would
    // do too: a restarted node rebinds it at once, docs/replication.md).
    const proxy = await WsProxy.start((await primary.call<{ peerPort: number }>('info')).peerPort);
    t.after(() => proxy.close());
    const peerPort = proxy.port;
    const start = async (id: string): Promise<NodeProc> => {
      const r = await NodeProc.start(replicaOptions(dir, id, peerPort, { storage: { fsync: 'everysec' } }));
      procs.push(r);
      return r;
    };
    let r1 = await start('r1');
    const r2 = await start('r2');
    await addMembers(primary, [r1, r2]);
    await waitConnected(primary, 2);

    const dimension = 32;
    await primary.call('create', { name: 'docs', dimension });
    let first = 0;
    for (const consistency of ['one', 'quorum', 'all']) {
      await writeBatches(primary, {
        collection: 'docs',
        first,
        batches: 100,
        batchSize: 1000,
        dimension,
        consistency,
      });
      first += 100_000;
    }
    const digest = await waitConverged(primary, [r1, r2], 'docs');
    assert.ok(digest);

    // A replica killed and restarted catches up from its position: no full sync.
    let before = (await stats(primary)).stats;
    r1.kill('SIGKILL');
    await r1.exited;
    await writeBatches(primary, {
      collection: 'docs',
      first,
      batches: 5,
      batchSize: 1000,
      dimension,
      consistency: 'quorum',
    });
    first += 5000;
    r1 = await start('r1');
    await waitConverged(primary, [r1, r2], 'docs');
    let after = (await stats(primary)).stats;
    assert.equal(
      after.full_syncs,
      before.full_syncs,
      'a restarted replica within the backlog must not full sync',
    );
    assert.equal(after.partial_syncs, before.partial_syncs + 1);

    // Killed again; meanwhile the primary's memory log and WAL move past its position.
    before = after;
    r1.kill('SIGKILL');
    await r1.exited;
    await writeBatches(primary, {
      collection: 'docs',
      first,
      batches: 40,
      batchSize: 1000,
      dimension,
      consistency: 'one',
    });
    first += 40_000;
    await primary.call('snapshot');
    r1 = await start('r1');
    await waitConverged(primary, [r1, r2], 'docs');
    after = (await stats(primary)).stats;
    assert.equal(after.full_syncs, before.full_syncs + 1, 'exactly one full sync after the backlog was lost');

    // The primary comes back with an empty data dir: its replicas keep their data and refuse it.
    const kept = await digestOf(r1, 'docs');
    await primary.stop();
    rmSync(path.join(dir, 'p'), { recursive: true, force: true });
    const wiped = await NodeProc.start(primaryOptions(dir, { storage }));
    procs.push(wiped);
    proxy.upstreamPort = (await wiped.call<{ peerPort: number }>('info')).peerPort;
    proxy.dropAll();
    for (const r of [r1, r2]) {
      const status = await until(
        async () => {
          const s = await stats(r);
          return s.master?.refused ? s : null;
        },
        30_000,
        'replica to refuse the wiped primary',
      );
      assert.match(status.master?.refused ?? '', /does not contain/);
      assert.deepEqual(await digestOf(r, 'docs'), kept);
    }
    assert.equal((await stats(wiped)).stats.full_syncs >= 1, true, 'the wiped primary offered a full sync');
    await Promise.all(procs.map((p) => p.stop()));
  },
);

test(
  'a full sync cut off midway resumes from the last verified chunk; the throttle holds the link to its rate',
  { timeout: 180_000 },
  async (t) => {
    const dir = tempDir(t);
    const procs: NodeProc[] = [];
    t.after(() => {
      for (const p of procs) p.kill();
    });
    const bytesPerSec = 2_000_000;
    const primary = await NodeProc.start(
      primaryOptions(dir, {
        replication: { role: 'primary', bandwidthBytesPerSec: bytesPerSec },
        // Small segments: the snapshot takes the WAL below it away, so a new replica needs a full sync.
        storage: { snapshotEveryBytes: 0, walSegmentBytes: 1024 * 1024 },
      }),
    );
    procs.push(primary);
    const { peerPort } = await primary.call<{ peerPort: number }>('info');
    const dimension = 64;
    await primary.call('create', { name: 'big', dimension });
    await writeBatches(primary, { collection: 'big', first: 0, batches: 150, batchSize: 1000, dimension });
    await primary.call('snapshot');

    let replica = await NodeProc.start(replicaOptions(dir, 'r1', peerPort));
    procs.push(replica);
    // Wait for more than one whole chunk file (16384 rows, ~4 MB) to be on the replica, then kill it.
    await until(
      async () => {
        const s = await stats(replica);
        return (s.master?.sync?.bytes_done ?? 0) > 6_000_000;
      },
      60_000,
      'the full sync to pass its first chunk',
    );
    replica.kill('SIGKILL');
    await replica.exited;

    replica = await NodeProc.start(replicaOptions(dir, 'r1', peerPort));
    procs.push(replica);
    const resumed = await until(
      async () => {
        const events = await primary.call<NodeEvent[]>('events');
        const starts = events.filter((e) => e.type === 'FullSyncStarted');
        return starts.length >= 2 ? starts : null;
      },
      30_000,
      'the second full sync to start',
    );
    const second = resumed[1] as Extract<NodeEvent, { type: 'FullSyncStarted' }>;
    assert.ok(second.resumeFromChunk >= 1, `resumed from chunk ${second.resumeFromChunk}, expected >= 1`);

    // Throttle: bytes the primary sent over a 10 s window of the resumed sync.
    const sentAt = async (): Promise<number> => (await stats(primary)).stats.bytes_sent;
    await new Promise((r) => setTimeout(r, 500));
    const b0 = await sentAt();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 10_000));
    const b1 = await sentAt();
    const seconds = (performance.now() - t0) / 1000;
    const rate = (b1 - b0) / seconds;
    t.diagnostic(
      `throttled link: ${Math.round(rate)} bytes/s over ${seconds.toFixed(1)} s for a limit of ${bytesPerSec}`,
    );
    assert.ok(
      Math.abs(rate - bytesPerSec) / bytesPerSec <= 0.1,
      `rate ${Math.round(rate)} not within 10% of ${bytesPerSec}`,
    );

    await waitConverged(primary, [replica], 'big', 120_000);
    await Promise.all(procs.map((p) => p.stop()));
  },
);

test(
  'a full sync carries the writes made meanwhile alongside it; the replica serves its old data until the switch',
  { timeout: 180_000 },
  async (t) => {
    const dir = tempDir(t);
    const procs: NodeProc[] = [];
    t.after(() => {
      for (const p of procs) p.kill();
    });
    // Throttled, so the snapshot takes seconds; small segments, so the snapshot drops the WAL below it.
    const primary = await NodeProc.start(
      primaryOptions(dir, {
        replication: { role: 'primary', bandwidthBytesPerSec: 4_000_000 },
        storage: { snapshotEveryBytes: 0, walSegmentBytes: 1024 * 1024 },
      }),
    );
    procs.push(primary);
    const { peerPort } = await primary.call<{ peerPort: number }>('info');
    const dimension = 64;
    let replica = await NodeProc.start(replicaOptions(dir, 'r1', peerPort));
    procs.push(replica);
    await addMembers(primary, [replica]);
    await primary.call('create', { name: 'docs', dimension });
    await writeBatches(primary, { collection: 'docs', first: 0, batches: 20, batchSize: 1000, dimension });
    await waitConverged(primary, [replica], 'docs');
    const old = await digestOf(replica, 'docs');

    // The replica is away while its position leaves the primary's log.
    await replica.stop();
    await writeBatches(primary, {
      collection: 'docs',
      first: 20_000,
      batches: 80,
      batchSize: 1000,
      dimension,
    });
    await primary.call('snapshot');

    replica = await NodeProc.start(replicaOptions(dir, 'r1', peerPort));
    procs.push(replica);
    // Writes go on through the whole full sync.
    let writing = true;
    let next = 100_000;
    const writer = (async () => {
      while (writing) {
        await primary.call('write', { collection: 'docs', first: next, count: 100, dimension });
        next += 100;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    // While the snapshot comes in, reads on the replica see its old data, whole.
    let seenDuring = 0;
    const synced = await until(
      async () => {
        const events = await replica.call<NodeEvent[]>('events');
        const done = events.find((e) => e.type === 'Synced' && e.mode === 'full');
        if (done) return done;
        const s = await stats(replica);
        if (s.master?.sync) {
          const now = await digestOf(replica, 'docs');
          assert.equal(now.digest, old.digest, 'the replica must serve its old data until the switch');
          seenDuring++;
        }
        return null;
      },
      120_000,
      'the replica to install its full sync',
    );
    writing = false;
    await writer;
    assert.ok(seenDuring > 0, 'the full sync was never seen running (too fast to observe?)');
    assert.equal(synced.type, 'Synced');
    const alongside = synced.type === 'Synced' ? synced.alongside : 0;
    t.diagnostic(
      `full sync installed with ${alongside} records alongside; old data seen ${seenDuring} times during it`,
    );
    assert.ok(alongside > 0, 'the writes made during the full sync must come alongside it');
    await waitConverged(primary, [replica], 'docs');
    assert.equal((await stats(primary)).stats.full_syncs, 1);
    await Promise.all(procs.map((p) => p.stop()));
  },
);

test(
  'a Quorum write stays pending while the replicas are stopped, and resolves only once one holds it',
  { timeout: 120_000 },
  async (t) => {
    const dir = tempDir(t);
    const procs: NodeProc[] = [];
    t.after(() => {
      for (const p of procs) {
        p.kill('SIGCONT');
        p.kill();
      }
    });
    const primary = await NodeProc.start(
      primaryOptions(dir, { replication: { role: 'primary', replicaTimeoutMs: 60_000 } }),
    );
    procs.push(primary);
    const { peerPort } = await primary.call<{ peerPort: number }>('info');
    const replicas = [
      await NodeProc.start(
        replicaOptions(dir, 'r1', peerPort, { replication: { role: 'replica', replicaTimeoutMs: 60_000 } }),
      ),
      await NodeProc.start(
        replicaOptions(dir, 'r2', peerPort, { replication: { role: 'replica', replicaTimeoutMs: 60_000 } }),
      ),
    ];
    procs.push(...replicas);
    await addMembers(primary, replicas);
    await waitConnected(primary, 2);
    await primary.call('create', { name: 'q', dimension: 8 });
    await primary.call('write', { collection: 'q', first: 0, count: 10, dimension: 8, consistency: 'all' });

    for (const r of replicas) r.kill('SIGSTOP');
    let settled = false;
    const pending = primary
      .call<{ lsn: number }>('write', {
        collection: 'q',
        first: 100,
        count: 10,
        dimension: 8,
        consistency: 'quorum',
        timeoutMs: 20_000,
      })
      .finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(settled, false, 'a Quorum write resolved while no replica could hold it');
    const [r1, r2] = replicas as [NodeProc, NodeProc];
    r1.kill('SIGCONT');
    const { lsn } = await pending;
    const onR1 = await digestOf(r1, 'q');
    assert.ok(onR1.lastLsn >= lsn, `resolved at LSN ${lsn} but r1 holds only ${onR1.lastLsn}`);

    // With both stopped the level cannot be met: a clear timeout, the write indeterminate.
    r1.kill('SIGSTOP');
    await assert.rejects(
      primary.call('write', {
        collection: 'q',
        first: 200,
        count: 10,
        dimension: 8,
        consistency: 'quorum',
        timeoutMs: 1000,
      }),
      (err: CallError) => err.code === 'ERR_CONSISTENCY_TIMEOUT' && /indeterminate/.test(err.message),
    );
    r1.kill('SIGCONT');
    r2.kill('SIGCONT');
    await waitConverged(primary, replicas, 'q').catch((err) => {
      for (const p of procs) console.log(p.output.slice(-4000));
      throw err;
    });
    await Promise.all(procs.map((p) => p.stop()));
  },
);
