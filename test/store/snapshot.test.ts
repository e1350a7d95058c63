import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { Store } from '../../src/store/store.ts';
import { StoreWriter } from '../helpers/store-writer.ts';
import { Collection } from '../../src/store/collection.ts';
import { isVrepError } from '../../src/errors.ts';
import { scale, tempDir } from '../helpers/tmp.ts';
import { smallDisk } from '../helpers/small-disk.ts';
import { encodeRecord, Op, recordTerm } from '../../src/log/record.ts';

const DIM = 8;
const enc = new TextEncoder();

function batch(seed: number, n: number) {
  const ids = Array.from({ length: n }, (_, i) => `p${(seed * 31 + i * 17) % 5000}`);
  const unique = [...new Set(ids)];
  const vectors = Float32Array.from({ length: unique.length * DIM }, (_, i) => Math.sin(seed + i));
  return { ids: unique, vectors, payloads: unique.map((id) => enc.encode(JSON.stringify({ id, seed }))) };
}

async function fill(store: Store, from: number, to: number): Promise<void> {
  const writer = new StoreWriter(store);
  for (let s = from; s < to; s++) {
    const b = batch(s, 50);
    await writer.upsert('c', b.ids, b.vectors, b.payloads);
    if (s % 5 === 0) await writer.delete('c', b.ids.slice(0, 5));
  }
}

test('a snapshot taken while writes go on equals the state at its LSN; snapshot + WAL replay equals the live state', async (t) => {
  const dataDir = tempDir(t);
  const store = await Store.open({
    dataDir,
    fsync: 'no',
    snapshotEveryBytes: 0,
    walSegmentBytes: 256 * 1024,
  });
  await new StoreWriter(store).createCollection('c', { dimension: DIM, metric: 'cosine' });
  await fill(store, 0, 200);
  const digestAtSnapshot = store.digest('c');
  const lsnAtSnapshot = store.lastLsn;
  const snap = store.snapshot(); // frozen now
  // Writes continue while the snapshot is being built.
  const writing = fill(store, 200, 400);
  const info = await snap;
  await writing;
  assert.equal(info.manifest.lsn, lsnAtSnapshot);

  // The snapshot alone (WAL beyond it ignored) holds the state at its LSN.
  const model = new Collection('c', DIM, 'cosine');
  const { idStrings, readSnapshot } = await import('../../src/store/snapshot.ts');
  // Upserted, not appended as a node loads it: the two paths must agree.
  await readSnapshot(info.dir, info.manifest, (chunk) =>
    model.upsert(idStrings(chunk), chunk.vectors, chunk.payloads),
  );
  assert.equal(model.digest(), digestAtSnapshot);

  const live = store.digest('c');
  const lastLsn = store.lastLsn;
  await store.close();
  const walFiles = readdirSync(path.join(dataDir, 'wal'));
  assert.ok(walFiles.length >= 1);
  const reopened = await Store.open({ dataDir });
  t.after(() => reopened.close());
  assert.equal(reopened.recovery.snapshotLsn, lsnAtSnapshot);
  assert.equal(reopened.digest('c'), live);
  assert.equal(reopened.lastLsn, lastLsn);
  // The log still serves records after the snapshot, from memory or disk.
  const recs = await reopened.records.read(lsnAtSnapshot + 1, lsnAtSnapshot + 3, 1 << 20);
  assert.equal(recs.length, 3);
});

test('damaged snapshot files stop start-up with a message naming the file; never load garbage', async (t) => {
  const base = tempDir(t);
  // One good data dir, copied per case.
  const golden = path.join(base, 'golden');
  const store = await Store.open({ dataDir: golden, fsync: 'no', snapshotEveryBytes: 0 });
  await new StoreWriter(store).createCollection('c', { dimension: DIM, metric: 'l2' });
  await fill(store, 0, 400);
  await store.snapshot();
  const digest = store.digest('c');
  await store.close();
  const snapDir = path.join(golden, 'snapshots', readdirSync(path.join(golden, 'snapshots'))[0] as string);
  const files = readdirSync(snapDir).sort();
  assert.ok(files.length >= 2);
  const { cpSync } = await import('node:fs');
  let run = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...files),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.integer({ min: 0, max: 7 }),
      fc.boolean(),
      async (file, where, bit, truncate) => {
        const dir = path.join(base, `r${run++}`);
        cpSync(golden, dir, { recursive: true });
        const target = path.join(dir, 'snapshots', path.basename(snapDir), file);
        const size = statSync(target).size;
        const pos = Math.min(size - 1, Math.floor(where * size));
        if (truncate) truncateSync(target, pos);
        else {
          const bytes = readFileSync(target);
          bytes[pos] = (bytes[pos] as number) ^ (1 << bit);
          writeFileSync(target, bytes);
        }
        let s: Store | undefined;
        try {
          s = await Store.open({ dataDir: dir });
        } catch (err) {
          assert.ok(isVrepError(err, 'ERR_SNAPSHOT_CORRUPT'), String(err));
          assert.ok(
            (err as Error).message.includes(file),
            `message names ${file}: ${(err as Error).message}`,
          );
          return;
        }
        // A flip that leaves the content valid (e.g. JSON whitespace) must still give the same data.
        try {
          assert.equal(s.digest('c'), digest);
        } finally {
          await s.close();
        }
      },
    ),
    { numRuns: scale(30, 300) },
  );
});

test('a snapshot of state applied ahead of the WAL goes in place only once the WAL holds it; refused records abandon it', async (t) => {
  // The WAL on a small disk that fills; the snapshots beside it on a disk with room.
  const disk = smallDisk(t, 2 * 1024 * 1024);
  if (disk === null) {
    t.skip('mounting a tmpfs needs root');
    return;
  }
  const dataDir = tempDir(t);
  mkdirSync(path.join(disk.dir, 'wal'));
  symlinkSync(path.join(disk.dir, 'wal'), path.join(dataDir, 'wal'));
  const store = await Store.open({ dataDir, nodeId: 'n1', fsync: 'always', snapshotEveryBytes: 0 });
  t.after(() => store.close());
  await new StoreWriter(store).createCollection('c', { dimension: DIM, metric: 'cosine' });
  await fill(store, 0, 5);
  // As a follower does: the record is appended, and applied before its disk has it.
  const applyAhead = (rows: number): { lsn: number; durable: Promise<void> } => {
    const lsn = store.lastLsn + 1;
    const b = batch(lsn, rows);
    const bytes = encodeRecord({
      lsn,
      term: 1,
      hlcMs: lsn,
      hlcLogical: 0,
      origin: 'test',
      collection: 'c',
      op: Op.Upsert,
      dimension: DIM,
      ...b,
    });
    const durable = store.append([bytes]);
    store.apply([{ lsn, term: recordTerm(bytes), bytes, config: null }]);
    return { lsn, durable };
  };
  const ahead = applyAhead(50);
  const info = await store.snapshot();
  await ahead.durable;
  assert.equal(info.manifest.lsn, ahead.lsn, 'taken at the applied LSN once the WAL held it');

  disk.fill();
  const refused = applyAhead(5000);
  const abandoned = store.snapshot();
  await assert.rejects(refused.durable, (e: unknown) => isVrepError(e, 'ERR_WAL_IO'));
  await assert.rejects(abandoned, (e: unknown) => isVrepError(e, 'ERR_LSN_TRUNCATED'));
  assert.equal(store.snapshotLsn, ahead.lsn, 'the newest snapshot is still the one the WAL holds');
  assert.deepEqual(
    readdirSync(path.join(dataDir, 'snapshots')).filter((n) => n.startsWith('snap-')).length,
    1,
  );
});

test('a log cut below a snapshot removes it: the restarted store holds the cut state, not the dropped records', async (t) => {
  const dataDir = tempDir(t);
  const opts = { dataDir, fsync: 'no' as const, snapshotEveryBytes: 0 };
  const store = await Store.open(opts);
  await new StoreWriter(store).createCollection('c', { dimension: DIM, metric: 'cosine' });
  await fill(store, 0, 20);
  const cut = store.lastLsn;
  const digestAtCut = store.digest('c');
  // A deposed primary's divergent tail, applied and snapshotted before it was deposed.
  await fill(store, 20, 40);
  const snap = await store.snapshot();
  assert.ok(snap.manifest.lsn > cut);
  await store.truncateAfter(cut);
  await store.rollback(cut);
  assert.equal(store.digest('c'), digestAtCut);
  assert.equal(store.snapshotLsn, 0, 'no snapshot above the cut is left');
  assert.deepEqual(readdirSync(path.join(dataDir, 'snapshots')), []);
  await store.close();

  const reopened = await Store.open(opts);
  t.after(() => reopened.close());
  assert.equal(reopened.lastLsn, cut);
  assert.equal(reopened.digest('c'), digestAtCut, 'the dropped records do not come back from a snapshot');
});

test('start-up refuses a snapshot whose LSN the term history gives to another epoch (it holds replaced records)', async (t) => {
  const dataDir = tempDir(t);
  const opts = { dataDir, fsync: 'no' as const, snapshotEveryBytes: 0 };
  const store = await Store.open(opts);
  const first = { term: 1, historyId: 'cd'.repeat(16), leaderId: 'self', firstLsn: 1 };
  await store.saveHardState({ term: 1, votedFor: null, commit: 0 }, [first]);
  await new StoreWriter(store).createCollection('c', { dimension: DIM, metric: 'cosine' });
  await fill(store, 0, 20);
  const snap = await store.snapshot();
  assert.equal(snap.manifest.historyId, first.historyId);
  // The history as a node that followed a new leader from below the snapshot would hold it,
  // had the snapshot been left behind.
  const replacedFrom = snap.manifest.lsn - 3;
  const history = [first, { term: 2, historyId: 'ab'.repeat(16), leaderId: 'other', firstLsn: replacedFrom }];
  await store.saveHardState({ term: 2, votedFor: null, commit: 0 }, history);
  await store.close();
  await assert.rejects(Store.open(opts), (err: unknown) => {
    assert.ok(isVrepError(err, 'ERR_SNAPSHOT_CORRUPT'), String(err));
    assert.match((err as Error).message, /holds records the log no longer has/);
    return true;
  });
});
