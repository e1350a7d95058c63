/**
 * The durable store, each figure next to a bound measured in the same run:
 * - write throughput per fsync policy (dim 768, batches of 1000) vs writing
 *   the same encoded bytes to a file with the same fsync cadence;
 * - recovery time (snapshot + WAL replay) for 1M x 128 vs reading the same
 *   files and checksumming them;
 * - snapshot build MB/s vs compressing the same vector bytes alone;
 * - paced write latency while a snapshot is built vs the same writes alone;
 * - search latency, 100k x 768, k=10, vs usearch's exact search (1 thread);
 * - the id index: new ids in batches of 1000 into IdIndex (native) vs a JS
 *   Map of the same ids (get + set, as the collection did), per id and the
 *   slowest batch (a growing table rehashes within one).
 */
import {
  mkdtempSync,
  openSync,
  writeSync,
  fsyncSync,
  closeSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import os from 'node:os';
import * as hdr from 'hdr-histogram-js';
import path from 'node:path';
import {
  emit,
  isQuick,
  latencyHistogram,
  measure,
  withRatios,
  type Row,
  type Section,
} from './lib/harness.ts';
import { loadUsearch } from './lib/peers.ts';
import { Store } from '../src/store/store.ts';
import { ReplicationNode } from '../src/node/replication-node.ts';
import { StoreWriter as BenchWriter } from '../test/helpers/store-writer.ts';
import { encodeRecord, Op } from '../src/log/record.ts';
import { crc32c } from '../src/native/crc32c.ts';
import { compressBatch } from '../src/native/batch-codec.ts';
import { IdIndex } from '../src/native/id-index.ts';
import type { FsyncPolicy } from '../src/log/wal.ts';

const usearch = loadUsearch();
const quick = isQuick();
const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'vrep-bench-store-'));
const sections: Section[] = [];

function randomBatch(start: number, n: number, dim: number) {
  const ids = Array.from({ length: n }, (_, i) => `p${start + i}`);
  const vectors = new Float32Array(n * dim);
  for (let i = 0; i < vectors.length; i++) vectors[i] = Math.random() * 2 - 1;
  const payloads = ids.map((id) => new TextEncoder().encode(`{"id":"${id}","group":${start % 7}}`));
  return { ids, vectors, payloads };
}

// ---- write throughput per fsync policy --------------------------------------
{
  const dim = 768;
  const batchSize = 1000;
  const batches = quick ? 10 : 60;
  const rows: Row[] = [];
  const pre = Array.from({ length: 4 }, (_, b) => randomBatch(b * batchSize, batchSize, dim));
  const recordBytes = encodeRecord({
    lsn: 1,
    term: 0,
    hlcMs: 0,
    hlcLogical: 0,
    origin: 'n1',
    collection: 'w',
    op: Op.Upsert,
    dimension: dim,
    ...(pre[0] as ReturnType<typeof randomBatch>),
  }).length;
  for (const fsync of ['always', 'everysec', 'no'] as FsyncPolicy[]) {
    const dir = path.join(tmpRoot, `w-${fsync}`);
    const node = await ReplicationNode.start({ dataDir: dir, storage: { fsync, snapshotEveryBytes: 0 } });
    await node.createCollection('w', { dimension: dim, metric: 'cosine' });
    const t0 = performance.now();
    for (let b = 0; b < batches; b++) {
      const batch = pre[b % pre.length] as ReturnType<typeof randomBatch>;
      await node.writePacked('w', batch);
    }
    const seconds = (performance.now() - t0) / 1000;
    await node.stop();
    const vectorsPerSec = (batches * batchSize) / seconds;
    rows.push({
      name: `vrep write, fsync=${fsync}`,
      value: vectorsPerSec,
      unit: 'vectors/s',
      note: `${((batches * recordBytes) / seconds / 1e6).toFixed(0)} MB/s of records`,
    });

    // Bound: the same bytes appended to a file with the same fsync cadence.
    const file = path.join(tmpRoot, `raw-${fsync}`);
    const fd = openSync(file, 'w');
    const bytes = new Uint8Array(recordBytes);
    const r0 = performance.now();
    for (let b = 0; b < batches; b++) {
      writeSync(fd, bytes);
      if (fsync === 'always') fsyncSync(fd);
    }
    if (fsync === 'everysec') fsyncSync(fd);
    const rawSeconds = (performance.now() - r0) / 1000;
    closeSync(fd);
    rows.push({
      name: `raw file append, fsync=${fsync}`,
      value: (batches * batchSize) / rawSeconds,
      unit: 'vectors/s',
    });
  }
  const paired = rows.map((r, i) => {
    const bound = rows[i + 1];
    return i % 2 === 0 && bound ? { ...r, ratio: r.value / bound.value, vs: bound.name } : r;
  });
  sections.push({
    title: `write throughput, dim ${dim}, batches of ${batchSize} (${batches} batches)`,
    rows: paired,
  });
}

// ---- recovery and snapshot, N x 128 -----------------------------------------
{
  const dim = 128;
  const n = quick ? 100_000 : 1_000_000;
  const dir = path.join(tmpRoot, 'recovery');
  const store = await ReplicationNode.start({
    dataDir: dir,
    storage: { fsync: 'no', snapshotEveryBytes: 0 },
  });
  await store.createCollection('r', { dimension: dim, metric: 'l2' });
  for (let s = 0; s < n; s += 1000) {
    await store.writePacked('r', randomBatch(s, 1000, dim));
  }
  // Half in a snapshot, half in the WAL after it: a realistic restart.
  const s0 = performance.now();
  const snap = await store.snapshot();
  const snapSeconds = (performance.now() - s0) / 1000;
  const vectorBytes = n * dim * 4;
  for (let s = n; s < n + n / 2; s += 1000) {
    await store.writePacked('r', randomBatch(s, 1000, dim));
  }
  await store.stop();

  // Bound for the snapshot: compressing the same vectors alone, same codec.
  const vectors = new Float32Array(16384 * dim).map(() => Math.random() * 2 - 1);
  const c = measure(() => compressBatch([vectors], { level: 1 }), { minTimeMs: 500 });
  const compressMBps = (c.opsPerSec * vectors.byteLength) / 1e6;
  sections.push({
    title: `snapshot build, ${n} x ${dim} (writes could go on meanwhile)`,
    rows: [
      {
        name: 'vrep snapshot (ids, vectors, payloads; fsynced files)',
        value: vectorBytes / snapSeconds / 1e6,
        unit: 'MB/s of vectors',
        ratio: vectorBytes / snapSeconds / 1e6 / compressMBps,
        vs: 'shuffle+zstd of the vectors alone',
        note: `${(snap.bytes / 2 ** 20).toFixed(0)} MiB on disk`,
      },
      { name: 'shuffle+zstd of the vectors alone', value: compressMBps, unit: 'MB/s' },
    ],
  });

  const r0 = performance.now();
  const reopened = await Store.open({ dataDir: dir, fsync: 'no' });
  const recoverySeconds = (performance.now() - r0) / 1000;
  const points = reopened.listCollections()[0]?.count ?? 0;
  await reopened.close();
  // Bound: read every file of the data dir and checksum it.
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else files.push(path.join(d, e.name));
    }
  };
  walk(dir);
  const b0 = performance.now();
  let totalBytes = 0;
  for (const f of files) {
    const data = readFileSync(f);
    crc32c(data);
    totalBytes += statSync(f).size;
  }
  const boundSeconds = (performance.now() - b0) / 1000;
  sections.push({
    title: `recovery, ${points} x ${dim} (snapshot of ${n} + WAL of ${n / 2})`,
    rows: [
      {
        name: 'vrep start-up (verify + load snapshot, replay WAL)',
        value: recoverySeconds * 1000,
        unit: 'ms',
        ratio: recoverySeconds / boundSeconds,
        vs: 'read + CRC32C of the same files',
        note: `${(totalBytes / 2 ** 20).toFixed(0)} MiB on disk`,
      },
      { name: 'read + CRC32C of the same files', value: boundSeconds * 1000, unit: 'ms' },
    ],
  });
}

// ---- write latency while a snapshot is built --------------------------------
// A snapshot competes with the WAL for the disk and libuv's thread pool; the
// bound is the same paced writes with no snapshot running, on the same node.
{
  const dim = 128;
  const n = quick ? 100_000 : 700_000;
  const batchesPerSec = 39;
  const node = await ReplicationNode.start({
    dataDir: path.join(tmpRoot, 'snapshot-stall'),
    storage: { fsync: 'everysec', snapshotEveryBytes: 0 },
  });
  await node.createCollection('w', { dimension: dim, metric: 'l2' });
  const pool = Array.from({ length: 4 }, (_, b) => randomBatch(b * 1000, 1000, dim));
  let next = 0;
  const write = () => {
    const b = pool[next % pool.length] as ReturnType<typeof randomBatch>;
    const ids = b.ids.map((id) => `${next}-${id}`);
    next++;
    return node.writePacked('w', { ...b, ids });
  };
  for (let s = 0; s < n; s += 1000) await write();
  /** Writes at batchesPerSec until `stop.done`: each write's latency, µs. */
  const paced = async (stop: { done: boolean }): Promise<hdr.Histogram> => {
    const h = latencyHistogram();
    const t0 = performance.now();
    for (let k = 0; !stop.done; k++) {
      const waitMs = t0 + (k * 1000) / batchesPerSec - performance.now();
      if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
      const s0 = performance.now();
      await write();
      h.recordValue(Math.round((performance.now() - s0) * 1000));
    }
    return h;
  };
  // The bound first, so it carries no after-effects of the snapshot (its
  // garbage, the WAL segments it lets go).
  const quiet = { done: false };
  setTimeout(() => (quiet.done = true), quick ? 2000 : 5000);
  const alone = await paced(quiet);
  const during = { done: false };
  const s0 = performance.now();
  const snapshotting = node.snapshot().finally(() => (during.done = true));
  const withSnapshot = await paced(during);
  await snapshotting;
  const snapshotMs = performance.now() - s0;
  await node.stop();
  const ms = (h: hdr.Histogram, p: number) => h.getValueAtPercentile(p) / 1000;
  const row = (name: string, h: hdr.Histogram, p: number): Row => ({ name, value: ms(h, p), unit: 'ms' });
  const boundP99 = row('no snapshot running: write p99', alone, 99);
  const boundMax = row('no snapshot running: write max', alone, 100);
  sections.push({
    title:
      `write latency while a snapshot of ${n} x ${dim} is built (fsync everysec, ` +
      `${batchesPerSec} batches of 1000/s; the snapshot took ${(snapshotMs / 1000).toFixed(1)} s)`,
    rows: [
      boundP99,
      {
        ...row('during the snapshot: write p99', withSnapshot, 99),
        ratio: ms(withSnapshot, 99) / boundP99.value,
        vs: boundP99.name,
      },
      boundMax,
      {
        ...row('during the snapshot: write max', withSnapshot, 100),
        ratio: ms(withSnapshot, 100) / boundMax.value,
        vs: boundMax.name,
      },
    ],
  });
}

// ---- search latency ---------------------------------------------------------
{
  const dim = 768;
  const n = quick ? 10_000 : 100_000;
  const k = 10;
  const dir = path.join(tmpRoot, 'search');
  const store = await Store.open({ dataDir: dir, fsync: 'no', snapshotEveryBytes: 0 });
  const writer = new BenchWriter(store);
  await writer.createCollection('s', { dimension: dim, metric: 'cosine' });
  const all = new Float32Array(n * dim);
  for (let s = 0; s < n; s += 1000) {
    const b = randomBatch(s, 1000, dim);
    all.set(b.vectors, s * dim);
    await writer.upsert('s', b.ids, b.vectors, b.payloads);
  }
  const query = Float32Array.from({ length: dim }, () => Math.random() * 2 - 1);
  // Search as the store runs it (synchronous, no promise per query).
  const ours = measure(() => store.search('s', query, { k }), { minTimeMs: 1500 });
  const filtered = measure(() => store.search('s', query, { k, filter: { group: 3 } }), { minTimeMs: 1500 });
  const theirs = measure(() => usearch.exactSearch(all, query, dim, k, usearch.MetricKind.Cos, 1), {
    minTimeMs: 1500,
  });
  await store.close();
  sections.push({
    title: `search latency, ${n} x ${dim}, k=${k}, cosine`,
    rows: withRatios(
      [
        { name: 'usearch exactSearch (1 thread)', value: theirs.meanMs, unit: 'ms' },
        { name: 'vrep search', value: ours.meanMs, unit: 'ms' },
        { name: 'vrep search with a payload filter (1/7 match)', value: filtered.meanMs, unit: 'ms' },
      ],
      'usearch exactSearch (1 thread)',
    ),
  });
}

// ---- id index -----------------------------------------------------------------
{
  const n = 1_000_000;
  const batch = 1000;
  const batches = Array.from({ length: n / batch }, (_, b) =>
    Array.from({ length: batch }, (_, i) => `point-${b * batch + i}`),
  );
  /** ns per id and the slowest batch, ms, of `insert` over every batch into a fresh structure. */
  const timeInserts = (fresh: () => (ids: string[]) => void): { nsPerId: number; worstMs: number } => {
    const insert = fresh();
    let worstMs = 0;
    const t0 = performance.now();
    for (const ids of batches) {
      const t = performance.now();
      insert(ids);
      worstMs = Math.max(worstMs, performance.now() - t);
    }
    return { nsPerId: ((performance.now() - t0) * 1e6) / n, worstMs };
  };
  const rows = new Int32Array(batch);
  const viaMap = (): ((ids: string[]) => void) => {
    const map = new Map<string, number>();
    return (ids) => {
      for (const id of ids) if (map.get(id) === undefined) map.set(id, map.size);
    };
  };
  const viaIndex = (): ((ids: string[]) => void) => {
    const index = new IdIndex();
    return (ids) => void index.upsert(ids, rows);
  };
  // Best of three each, alternating, so a noisy moment hits both alike.
  const map: { nsPerId: number; worstMs: number }[] = [];
  const index: { nsPerId: number; worstMs: number }[] = [];
  for (let round = 0; round < 3; round++) {
    map.push(timeInserts(viaMap));
    index.push(timeInserts(viaIndex));
  }
  const best = (xs: { nsPerId: number; worstMs: number }[]) => ({
    nsPerId: Math.min(...xs.map((x) => x.nsPerId)),
    worstMs: Math.min(...xs.map((x) => x.worstMs)),
  });
  const m = best(map);
  const x = best(index);
  sections.push({
    title: `id index: ${n} new ids in batches of ${batch}, best of 3`,
    rows: [
      {
        name: 'JS Map get + set',
        value: m.nsPerId,
        unit: 'ns/id',
        note: `slowest batch ${m.worstMs.toFixed(1)} ms`,
      },
      {
        name: 'IdIndex.upsert (native)',
        value: x.nsPerId,
        unit: 'ns/id',
        note: `slowest batch ${x.worstMs.toFixed(1)} ms`,
        ratio: x.nsPerId / m.nsPerId,
        vs: 'JS Map get + set',
      },
    ],
  });
}

rmSync(tmpRoot, { recursive: true, force: true });
emit('store', sections);
