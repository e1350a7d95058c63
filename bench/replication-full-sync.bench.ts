/**
 * Full sync against a raw TCP copy, in the same run: a primary holding
 * 1M x 128 vectors (quick: 100k) takes a snapshot; its files are copied
 * over one TCP connection into another process that writes and fsyncs them
 * (the bound), then a fresh replica joins and is full-synced. Reported: the
 * replica's MB/s from its start to Connected at the primary's LSN, the
 * moment its last snapshot byte arrived, and the ratio to the raw copy.
 *
 * Then a second fresh replica joins while the primary takes writes at a
 * steady rate: the records written during its full sync stream alongside
 * the snapshot. Reported: the share of them it held at the switch (1.0:
 * all, live the moment the snapshot is in), and how long after the switch
 * it held everything the primary had then. Every process started here is
 * killed on exit.
 */
import { readdirSync, statSync, createReadStream } from 'node:fs';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { processBench } from './lib/process-bench.ts';
import { isQuick, type Row, type Section } from './lib/harness.ts';
import { ConsistencyLevel } from '../src/node/consistency.ts';
import { NodeChild, type IngestResult } from './lib/node-client.ts';
import { freePort, waitUntil, wallMs, withTimeout } from './lib/processes.ts';
import { digestsEqual } from './lib/cluster.ts';

const quick = isQuick();
const BATCH = 1000;
const SEED = 42;
const FULL_SYNC_VECTORS = quick ? 100_000 : 1_000_000;
const START_TIMEOUT_MS = 30_000;
const FULL_SYNC_TIMEOUT_MS = quick ? 120_000 : 600_000;
const WHOLE_BENCH_TIMEOUT_MS = quick ? 5 * 60_000 : 20 * 60_000;
/** Writes during the second full sync (vectors/s, batches of BATCH). */
const WRITES_DURING_SYNC_PER_SEC = 10_000;

const { tmpRoot, problems, run } = processBench('replication-full-sync', WHOLE_BENCH_TIMEOUT_MS);
const benchStart = performance.now();
function progress(message: string): void {
  process.stderr.write(
    `replication-full-sync bench [${((performance.now() - benchStart) / 1000).toFixed(1)} s] ${message}\n`,
  );
}
const nodeDir = (name: string): string => path.join(tmpRoot, name);

// ---- full sync --------------------------------------------------------------

function filesOf(dir: string): { name: string; bytes: number }[] {
  return readdirSync(dir)
    .sort()
    .map((name) => ({ name, bytes: statSync(path.join(dir, name)).size }))
    .filter((f) => statSync(path.join(dir, f.name)).isFile());
}

/** Sends every file of `dir` to the receiver child's port; resolves once all bytes are written out. */
async function sendFiles(dir: string, port: number): Promise<void> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const header = (h: object): Buffer => {
    const json = Buffer.from(JSON.stringify(h));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(json.length);
    return Buffer.concat([len, json]);
  };
  for (const f of filesOf(dir)) {
    socket.write(header({ name: f.name, bytes: f.bytes }));
    for await (const chunk of createReadStream(path.join(dir, f.name), { highWaterMark: 1 << 20 })) {
      if (!socket.write(chunk as Buffer)) await once(socket, 'drain');
    }
  }
  socket.end(header({ end: true }));
}

/** Starts a replica of the primary at `port` in the forked `joiner`, with an empty data dir. */
async function startReplica(joiner: NodeChild, nodeId: string, port: number): Promise<void> {
  await joiner.call(
    {
      cmd: 'start',
      options: {
        nodeId,
        dataDir: nodeDir(nodeId),
        storage: { fsync: 'no' },
        replication: { role: 'replica', bindAddress: '127.0.0.1:0', masterAddress: `127.0.0.1:${port}` },
      },
    },
    START_TIMEOUT_MS,
  );
}

interface UnderWrites {
  /** Records written after the snapshot and before the switch, and those of them that came alongside. */
  writtenDuring: number;
  alongside: number;
  /** Records the replica lacked at the switch (of what the primary had then). */
  behindAtSwitch: number;
  /** From the switch until the replica held what the primary had at the switch. */
  catchUpMs: number;
  syncSeconds: number;
  digestsEqual: boolean;
}

interface FullSyncCase {
  snapshotBytes: number;
  vectors: number;
  rawMBps: number;
  underWrites: UnderWrites;
  vrep: {
    mbPerSec: number;
    seconds: number;
    /** Until the replica reported every snapshot byte received (null: never seen while polling). */
    transferSeconds: number | null;
    digestsEqual: boolean;
    fullSyncs: number;
  };
}

async function fullSyncCase(): Promise<FullSyncCase> {
  const dim = 128;
  const port = await freePort();
  const { child: primary } = await NodeChild.fork(
    'full-sync primary',
    {
      nodeId: 'fp',
      dataDir: nodeDir('fp'),
      // Small segments: the snapshot covers all but the last one, so the WAL no longer starts at
      // LSN 1 and the joiner's empty log needs a full sync, as a new replica of a primary that has
      // run for a while does (with 64 MiB segments the quick run's 43 MB would stream as records).
      storage: { fsync: 'no', walSegmentBytes: 4 * 1024 * 1024 },
      replication: { role: 'primary', bindAddress: `127.0.0.1:${port}` },
    },
    START_TIMEOUT_MS,
  );
  const others: NodeChild[] = [];
  try {
    await primary.call({ cmd: 'createCollection', name: 'full', dimension: dim, metric: 'l2' }, 10_000);
    const loaded = await primary.call<IngestResult>(
      {
        cmd: 'ingest',
        args: {
          collection: 'full',
          dim,
          batchSize: BATCH,
          seed: SEED + dim,
          idPrefix: 'v',
          consistency: ConsistencyLevel.One,
          durationMs: FULL_SYNC_TIMEOUT_MS,
          maxBatches: FULL_SYNC_VECTORS / BATCH,
        },
      },
      FULL_SYNC_TIMEOUT_MS,
    );
    progress(`full sync: ${loaded.vectors} vectors loaded, taking a snapshot`);
    const snap = await primary.call<{ dir: string; bytes: number; lsn: number }>(
      { cmd: 'snapshot' },
      FULL_SYNC_TIMEOUT_MS,
    );
    const snapshotBytes = filesOf(snap.dir).reduce((sum, f) => sum + f.bytes, 0);

    // Bound: the same files over one TCP connection into another process that writes and fsyncs them.
    const { child: receiver } = await NodeChild.fork('raw TCP receiver', null, START_TIMEOUT_MS);
    others.push(receiver);
    const { port: rxPort } = await receiver.call<{ port: number }>(
      { cmd: 'tcpReceive', dir: path.join(tmpRoot, 'rawcopy') },
      10_000,
    );
    progress('full sync: raw TCP copy');
    const rawStart = performance.now();
    await withTimeout(sendFiles(snap.dir, rxPort), FULL_SYNC_TIMEOUT_MS, 'the raw TCP copy to send');
    const rx = await receiver.call<{ bytes: number }>({ cmd: 'tcpReceived' }, FULL_SYNC_TIMEOUT_MS);
    const rawMs = performance.now() - rawStart;
    if (rx.bytes !== snapshotBytes) throw new Error(`raw copy moved ${rx.bytes} of ${snapshotBytes} bytes`);
    const rawMBps = snapshotBytes / 1e6 / (rawMs / 1000);

    // The joiner's process is up before the clock starts: only the sync is timed.
    const { child: joiner } = await NodeChild.fork('full-sync replica', null, START_TIMEOUT_MS);
    others.push(joiner);
    progress('full sync: a new replica joins');
    const syncStart = performance.now();
    await startReplica(joiner, 'fr', port);
    const primaryLsn = (await primary.status()).lastLsn;
    // When the last snapshot byte arrived (the rest is the replica loading it).
    let transferredMs: number | null = null;
    const joined = await waitUntil(
      async () => {
        const s = await joiner.status();
        const sync = s.status.master?.sync;
        if (transferredMs === null && sync && sync.bytes_total > 0 && sync.bytes_done >= sync.bytes_total) {
          transferredMs = performance.now() - syncStart;
        }
        return s.lastLsn >= primaryLsn && s.status.master?.status === 'Connected' ? s : undefined;
      },
      FULL_SYNC_TIMEOUT_MS,
      'the new replica to be Connected at the primary LSN',
      5,
    );
    const syncMs = performance.now() - syncStart;
    const equal = await digestsEqual([primary, joiner], 'full');
    if (!equal) problems.push('vrep digests differ after the full sync');
    if (joined.status.stats.full_syncs < 1) problems.push('the joining replica synced without a full sync');
    const underWrites = await fullSyncUnderWrites(primary, port, others, snap.lsn, syncMs, loaded.batches);
    return {
      snapshotBytes,
      vectors: loaded.vectors,
      rawMBps,
      underWrites,
      vrep: {
        mbPerSec: snapshotBytes / 1e6 / (syncMs / 1000),
        seconds: syncMs / 1000,
        transferSeconds: transferredMs === null ? null : (transferredMs as number) / 1000,
        digestsEqual: equal,
        fullSyncs: joined.status.stats.full_syncs,
      },
    };
  } finally {
    await Promise.allSettled([primary, ...others].map((c) => c.stop(30_000)));
  }
}

/**
 * A second fresh replica full-syncs while the primary writes at a steady
 * rate (its snapshot at `snapshotLsn` is the one offered, taken above).
 */
async function fullSyncUnderWrites(
  primary: NodeChild,
  port: number,
  others: NodeChild[],
  snapshotLsn: number,
  firstSyncMs: number,
  batchesSoFar: number,
): Promise<UnderWrites> {
  const dim = 128;
  const { child: joiner } = await NodeChild.fork('full-sync replica under writes', null, START_TIMEOUT_MS);
  others.push(joiner);
  progress(`full sync under ${WRITES_DURING_SYNC_PER_SEC} vectors/s of writes: a second replica joins`);
  // Writes run through the whole sync and a while after it.
  const writeMs = Math.max(5_000, 2 * firstSyncMs + 3_000);
  const writes = primary.call<IngestResult>(
    {
      cmd: 'ingest',
      args: {
        collection: 'full',
        dim,
        batchSize: BATCH,
        seed: SEED + dim + 1,
        idPrefix: `w${batchesSoFar}-`,
        consistency: ConsistencyLevel.One,
        durationMs: writeMs,
        maxBatches: Number.MAX_SAFE_INTEGER,
        ratePerSec: WRITES_DURING_SYNC_PER_SEC,
      },
    },
    writeMs + 60_000,
  );
  const syncStart = performance.now();
  await startReplica(joiner, 'fw', port);
  const switched = await waitUntil(
    async () => (await joiner.status()).status.last_full_sync ?? undefined,
    FULL_SYNC_TIMEOUT_MS,
    'the replica under writes to install its full sync',
    2,
  );
  const syncSeconds = (performance.now() - syncStart) / 1000;
  const [p, j] = await Promise.all([primary.status(), joiner.status()]);
  const primaryAtSwitch = p.lastLsn;
  const caughtUp = await waitUntil(
    async () => ((await joiner.status()).lastLsn >= primaryAtSwitch ? wallMs() : undefined),
    FULL_SYNC_TIMEOUT_MS,
    'the replica under writes to hold what the primary had at its switch',
    2,
  );
  await writes;
  const last = (await primary.status()).lastLsn;
  await waitUntil(
    async () => ((await joiner.status()).lastLsn >= last ? true : undefined),
    FULL_SYNC_TIMEOUT_MS,
    'the replica under writes to catch up once the writes stopped',
    5,
  );
  const equal = await digestsEqual([primary, joiner], 'full');
  if (!equal) problems.push('vrep digests differ after the full sync under writes');
  if (switched.snapshot_lsn < snapshotLsn)
    problems.push('the replica under writes installed an older snapshot');
  return {
    writtenDuring: Math.max(0, primaryAtSwitch - switched.snapshot_lsn),
    alongside: switched.alongside,
    behindAtSwitch: Math.max(0, primaryAtSwitch - j.lastLsn),
    catchUpMs: Math.max(0, caughtUp - switched.at),
    syncSeconds,
    digestsEqual: equal,
  };
}

// ---- report -----------------------------------------------------------------

function vs(row: Row, base: Row): Row {
  return base.value > 0 ? { ...row, ratio: row.value / base.value, vs: base.name } : row;
}

async function main(): Promise<Section[]> {
  const sections: Section[] = [];
  const full = await fullSyncCase();
  const rawRow: Row = {
    name: 'raw TCP copy of the snapshot files (net, 2 processes, write + fsync)',
    value: full.rawMBps,
    unit: 'MB/s',
  };
  const fullRows: Row[] = [
    rawRow,
    vs(
      {
        name: 'vrep full sync: new replica to Connected at the primary LSN',
        value: full.vrep.mbPerSec,
        unit: 'MB/s',
        note:
          `${full.vrep.seconds.toFixed(2)} s` +
          (full.vrep.transferSeconds === null
            ? ''
            : ` (bytes received after ${full.vrep.transferSeconds.toFixed(2)} s, ` +
              `${(full.snapshotBytes / 1e6 / full.vrep.transferSeconds).toFixed(0)} MB/s; then loading)`) +
          `; digests ${full.vrep.digestsEqual ? 'equal' : 'DIFFER'}; ` +
          `full_syncs on the replica: ${full.vrep.fullSyncs}`,
      },
      rawRow,
    ),
  ];
  sections.push({
    title: `Full sync of ${full.vectors / 1000}k x 128 (snapshot ${(full.snapshotBytes / 1e6).toFixed(0)} MB)`,
    rows: fullRows,
  });
  const w = full.underWrites;
  const writtenRow: Row = {
    name: 'records written on the primary between the snapshot and the switch',
    value: w.writtenDuring,
    unit: 'records',
    note: `${WRITES_DURING_SYNC_PER_SEC} vectors/s in batches of ${BATCH}; sync took ${w.syncSeconds.toFixed(2)} s`,
  };
  sections.push({
    title: `Full sync under writes (dual channel): the live stream alongside the snapshot`,
    rows: [
      writtenRow,
      vs(
        {
          name: 'of them, held by the replica at the switch (came alongside the snapshot)',
          value: w.alongside,
          unit: 'records',
          note: `goal: all of them (ratio 1.0); digests ${w.digestsEqual ? 'equal' : 'DIFFER'} after the writes stopped`,
        },
        writtenRow,
      ),
      {
        name: 'behind the primary right after the switch',
        value: w.behindAtSwitch,
        unit: 'records',
      },
      {
        name: 'switch to holding everything the primary had at the switch',
        value: w.catchUpMs,
        unit: 'ms',
      },
    ],
  });
  return sections;
}

await run(main);
