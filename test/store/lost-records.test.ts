/**
 * A log cut lists what it drops in `<dataDir>/lost/` before dropping it
 * (src/store/lost-records.ts, docs/storage.md "Lost records"): one header
 * line, then one line per record with its op and ids. A cut that drops
 * nothing writes nothing; a list that cannot be written fails the cut, and
 * nothing is dropped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { Store } from '../../src/store/store.ts';
import { writeLostFile, lostFileName } from '../../src/store/lost-records.ts';
import { LostFileLimits } from '../../src/limits.ts';
import { encodeRecord, Op, recordTerm, decodeRecord } from '../../src/log/record.ts';
import { StoreWriter } from '../helpers/store-writer.ts';
import { smallDisk } from '../helpers/small-disk.ts';
import { tempDir } from '../helpers/tmp.ts';

const DIM = 4;
const enc = new TextEncoder();

async function open(dataDir: string): Promise<Store> {
  // Small segments and a small ring: the dropped tail spans segments and is read from the WAL.
  return Store.open({
    dataDir,
    nodeId: 'n1',
    fsync: 'no',
    snapshotEveryBytes: 0,
    walSegmentBytes: 4096,
    ringCapacityRecords: 8,
  });
}

function points(ids: string[]): [string[], Float32Array, Uint8Array[]] {
  const vectors = Float32Array.from({ length: ids.length * DIM }, (_, i) => i % 7);
  return [ids, vectors, ids.map((id) => enc.encode(JSON.stringify({ id, pad: 'x'.repeat(100) })))];
}

interface Line {
  lsn: number;
  term: number;
  origin: string;
  op: string;
  collection: string;
  ids: string[];
}

function readLost(dataDir: string): { name: string; header: Record<string, unknown>; lines: Line[] }[] {
  const dir = path.join(dataDir, 'lost');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .map((name) => {
      const [head, ...rest] = readFileSync(path.join(dir, name), 'utf8').trimEnd().split('\n');
      return {
        name,
        header: JSON.parse(head as string) as Record<string, unknown>,
        lines: rest.map((l) => JSON.parse(l) as Line),
      };
    });
}

test('a log cut lists every dropped record in lost/ (LSNs, ops, ids of two collections), and a restart sees the cut log', async (t) => {
  const dataDir = tempDir(t);
  const store = await open(dataDir);
  const epoch = { term: 1, historyId: 'ab'.repeat(16), leaderId: 'n1', firstLsn: 1 };
  await store.saveHardState({ term: 1, votedFor: null, commit: 0 }, [epoch]);
  const w = new StoreWriter(store);
  await w.createCollection('a', { dimension: DIM, metric: 'l2' });
  await w.createCollection('b', { dimension: DIM, metric: 'cosine' });
  for (let i = 0; i < 20; i++) await w.upsert(i % 2 === 0 ? 'a' : 'b', ...points([`k${i}`]));
  const cut = store.lastLsn;
  const digests = { a: store.digest('a'), b: store.digest('b') };
  // The divergent tail: writes to both collections, a delete, a collection dropped.
  const tail: { lsn: number; op: string; collection: string; ids: string[] }[] = [];
  const put = async (op: string, collection: string, ids: string[], write: () => Promise<number>) =>
    tail.push({ lsn: await write(), op, collection, ids });
  for (let i = 0; i < 30; i++) {
    const ids = [`a-${i}`, `a-${i}-2`];
    await put('upsert', 'a', ids, () => w.upsert('a', ...points(ids)));
    await put('upsert', 'b', [`b-${i}`], () => w.upsert('b', ...points([`b-${i}`])));
  }
  await put('delete', 'a', ['k0', 'a-3'], () => w.delete('a', ['k0', 'a-3']));
  await put('create_collection', 'c', [], () => w.createCollection('c', { dimension: DIM, metric: 'dot' }));
  const last = store.lastLsn;
  assert.ok(readdirSync(path.join(dataDir, 'wal')).length > 2, 'the tail spans WAL segments');

  const lost = await store.truncateAfter(cut);
  assert.ok(lost !== null);
  assert.equal(lost.fromLsn, cut + 1);
  assert.equal(lost.toLsn, last);
  assert.equal(lost.records, last - cut);
  assert.equal(lost.unlisted, 0);
  assert.equal(path.basename(lost.file), lostFileName(lost.atMs, cut + 1, last));
  assert.match(path.basename(lost.file), /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z-lsn-\d+-\d+\.jsonl$/);
  assert.equal(store.lastLsn, cut);

  const files = readLost(dataDir);
  assert.equal(files.length, 1);
  const [file] = files as [(typeof files)[number]];
  assert.equal(path.join(dataDir, 'lost', file.name), lost.file);
  assert.deepEqual(file.header, {
    format: 1,
    nodeId: 'n1',
    atIso: new Date(lost.atMs).toISOString(),
    truncatedAfter: cut,
    fromLsn: cut + 1,
    toLsn: last,
    records: last - cut,
    unlisted: 0,
    termHistory: [epoch],
  });
  assert.deepEqual(
    file.lines.map((l) => ({ lsn: l.lsn, op: l.op, collection: l.collection, ids: l.ids })),
    tail,
  );
  for (const l of file.lines) {
    assert.equal(l.term, 1);
    assert.equal(l.origin, 'test');
    assert.ok(!('vectors' in l) && !('payloads' in l), 'no vectors, no payloads');
  }
  assert.deepEqual(
    readdirSync(path.join(dataDir, 'lost')).filter((n) => n.includes('.tmp-')),
    [],
    'no temporary file is left',
  );

  await store.rollback(cut);
  assert.deepEqual({ a: store.digest('a'), b: store.digest('b') }, digests);
  await store.close();

  const reopened = await open(dataDir);
  t.after(() => reopened.close());
  assert.equal(reopened.lastLsn, cut, 'the restarted log ends at the cut');
  assert.deepEqual({ a: reopened.digest('a'), b: reopened.digest('b') }, digests);
  assert.deepEqual(
    reopened.listCollections().map((c) => c.name),
    ['a', 'b'],
  );
  const after = await reopened.records.read(1, Infinity, 1 << 30);
  assert.deepEqual(
    after.map((r) => decodeRecord(r).lsn),
    Array.from({ length: cut }, (_, i) => i + 1),
  );
  // Appends continue after the cut; the lost file stays where it was.
  await new StoreWriter(reopened).upsert('a', ...points(['after']));
  assert.equal(reopened.lastLsn, cut + 1);
  assert.equal(readLost(dataDir).length, 1);
});

test('a cut that drops no record writes no lost file: at or past the end, or above records the disk refused', async (t) => {
  const dataDir = tempDir(t);
  const store = await open(dataDir);
  t.after(() => store.close());
  const w = new StoreWriter(store);
  await w.createCollection('a', { dimension: DIM, metric: 'l2' });
  await w.upsert('a', ...points(['x']));
  assert.equal(await store.truncateAfter(store.lastLsn), null);
  assert.equal(await store.truncateAfter(store.lastLsn + 10), null);
  assert.equal(store.lastLsn, 2);
  assert.equal(existsSync(path.join(dataDir, 'lost')), false);

  await t.test('records the disk refused are not in the log: their cut lists nothing', async (t) => {
    const disk = smallDisk(t, 1024 * 1024);
    if (disk === null) {
      t.skip('mounting a tmpfs needs root');
      return;
    }
    const dir = tempDir(t);
    mkdirSync(path.join(disk.dir, 'wal'));
    symlinkSync(path.join(disk.dir, 'wal'), path.join(dir, 'wal'));
    const s = await Store.open({ dataDir: dir, nodeId: 'n1', fsync: 'always', snapshotEveryBytes: 0 });
    t.after(() => s.close());
    const sw = new StoreWriter(s);
    await sw.createCollection('a', { dimension: DIM, metric: 'l2' });
    const held = s.lastLsn;
    disk.fill();
    // As the runtime appends: into the in-memory log at once, refused by the disk.
    const ids = Array.from({ length: 2000 }, (_, i) => `refused-${i}`);
    const bytes = encodeRecord({
      lsn: held + 1,
      term: 1,
      hlcMs: 1,
      hlcLogical: 0,
      origin: 'test',
      collection: 'a',
      op: Op.Upsert,
      dimension: DIM,
      ids,
      vectors: new Float32Array(ids.length * DIM),
      payloads: ids.map(() => new Uint8Array(0)),
    });
    await assert.rejects(s.append([bytes]));
    assert.equal(recordTerm(bytes), 1);
    assert.equal(s.records.ring.lastLsn(), held + 1, 'the ring still holds the refused record');
    assert.equal(await s.truncateAfter(held), null);
    assert.equal(existsSync(path.join(dir, 'lost')), false, 'no lost file for records never held');
    assert.equal(s.records.ring.lastLsn(), held);
  });
});

test('a lost file that cannot be written fails the cut, and nothing is dropped; once it can, the cut goes through', async (t) => {
  const dataDir = tempDir(t);
  const store = await open(dataDir);
  t.after(() => store.close());
  const w = new StoreWriter(store);
  await w.createCollection('a', { dimension: DIM, metric: 'l2' });
  for (let i = 0; i < 10; i++) await w.upsert('a', ...points([`p${i}`]));
  const cut = 5;
  const last = store.lastLsn;
  const snap = await store.snapshot();
  assert.equal(snap.manifest.lsn, last, 'a snapshot above the cut');
  // Where lost/ should be, a file: nothing can be written under it.
  writeFileSync(path.join(dataDir, 'lost'), 'in the way');
  await assert.rejects(store.truncateAfter(cut), (err: Error) => {
    assert.match(err.message, /could not list the 6 records it drops/);
    assert.match(err.message, /nothing was dropped/);
    return true;
  });
  assert.equal(store.lastLsn, last, 'the log is whole');
  assert.equal(store.snapshotLsn, last, 'the snapshot above the cut is still there');
  assert.equal((await store.records.read(cut + 1, last, 1 << 30)).length, last - cut);

  rmSync(path.join(dataDir, 'lost'));
  const lost = await store.truncateAfter(cut);
  assert.equal(lost?.records, last - cut);
  assert.equal(store.lastLsn, cut);
  assert.equal(store.snapshotLsn, 0);

  await t.test('a full disk under lost/: the same, and no temporary file is left', async (t) => {
    const disk = smallDisk(t, 256 * 1024);
    if (disk === null) {
      t.skip('mounting a tmpfs needs root');
      return;
    }
    const dir = tempDir(t);
    symlinkSync(disk.dir, path.join(dir, 'lost'));
    const s = await open(dir);
    t.after(() => s.close());
    const sw = new StoreWriter(s);
    await sw.createCollection('a', { dimension: DIM, metric: 'l2' });
    // Ids long enough that their list does not fit in what is left of the disk.
    for (let i = 0; i < 20; i++)
      await sw.upsert('a', ...points(Array.from({ length: 20 }, (_, k) => `${'id'.repeat(100)}-${i}-${k}`)));
    const end = s.lastLsn;
    disk.fill();
    await assert.rejects(s.truncateAfter(1), /nothing was dropped/);
    assert.equal(s.lastLsn, end);
    assert.deepEqual(
      readdirSync(disk.dir).filter((n) => n !== 'ballast'),
      [],
      'no temporary file is left',
    );
    disk.free();
    assert.equal((await s.truncateAfter(1))?.records, end - 1);
    assert.equal(s.lastLsn, 1);
    const [file] = readLost(dir);
    assert.equal(file?.lines.length, end - 1);
  });
});

test('records the log no longer holds (compacted into a snapshot above the cut) are counted as unlisted', async (t) => {
  const dataDir = tempDir(t);
  const store = await open(dataDir);
  t.after(() => store.close());
  const w = new StoreWriter(store);
  await w.createCollection('a', { dimension: DIM, metric: 'l2' });
  for (let i = 0; i < 5; i++) await w.upsert('a', ...points([`p${i}`]));
  const cut = store.lastLsn;
  // A deposed primary's tail, snapshotted: the WAL segments the snapshot covers go.
  for (let i = 0; i < 60; i++) await w.upsert('a', ...points([`tail-${i}`]));
  await store.snapshot();
  for (let i = 0; i < 3; i++) await w.upsert('a', ...points([`newest-${i}`]));
  const last = store.lastLsn;
  const first = store.records.firstLsn;
  assert.ok(first > cut + 1, `the log starts at ${first}, above the cut at ${cut}`);
  const lost = await store.truncateAfter(cut);
  assert.ok(lost !== null);
  assert.equal(lost.records, last - cut);
  assert.equal(lost.unlisted, first - (cut + 1));
  const [file] = readLost(dataDir);
  assert.ok(file);
  assert.equal(file.header['unlisted'], first - (cut + 1));
  assert.deepEqual(
    file.lines.map((l) => l.lsn),
    Array.from({ length: last - first + 1 }, (_, i) => first + i),
  );
  assert.ok(file.lines.some((l) => l.ids.includes('newest-2')));
});

test('a long tail is listed in batches: never more than LostFileLimits.batchRecords records in hand', async (t) => {
  const dataDir = tempDir(t);
  const total = LostFileLimits.batchRecords * 2 + 17;
  const record = (lsn: number): Uint8Array =>
    encodeRecord({
      lsn,
      term: 2,
      hlcMs: lsn,
      hlcLogical: 0,
      origin: 'n9',
      collection: 'c',
      op: Op.Delete,
      ids: [`d${lsn}`],
    });
  const asked: [number, number][] = [];
  const lost = await writeLostFile({
    dataDir,
    nodeId: 'n9',
    afterLsn: 100,
    toLsn: 100 + total,
    firstReadableLsn: 1,
    history: [
      { term: 1, historyId: '11'.repeat(16), leaderId: 'n1', firstLsn: 1 },
      { term: 2, historyId: '22'.repeat(16), leaderId: 'n9', firstLsn: 90 },
      { term: 3, historyId: '33'.repeat(16), leaderId: 'n9', firstLsn: 101 + total },
    ],
    read: async (from, to, maxBytes) => {
      assert.equal(maxBytes, LostFileLimits.batchBytes);
      asked.push([from, to]);
      return Array.from({ length: to - from + 1 }, (_, i) => record(from + i));
    },
    nowMs: () => Date.UTC(2026, 11, 2, 7, 15, 3, 123),
  });
  assert.equal(path.basename(lost.file), `2026-12-02T07-15-03.123Z-lsn-101-${100 + total}.jsonl`);
  assert.equal(asked.length, 3);
  for (const [from, to] of asked) assert.ok(to - from + 1 <= LostFileLimits.batchRecords);
  const [file] = readLost(dataDir);
  assert.ok(file);
  assert.equal(file.lines.length, total);
  assert.deepEqual(file.lines.at(-1), {
    lsn: 100 + total,
    term: 2,
    origin: 'n9',
    op: 'delete',
    collection: 'c',
    ids: [`d${100 + total}`],
    hlcMs: 100 + total,
  });
  assert.deepEqual(
    (file.header['termHistory'] as { term: number }[]).map((e) => e.term),
    [2],
    'the epochs that wrote the dropped records',
  );
});
