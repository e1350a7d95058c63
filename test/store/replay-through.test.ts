/**
 * Store.open({ replayThrough: 'commit' }): start-up applies the snapshot and
 * the WAL only up to the persisted commit point; the records after it stay
 * in the log, and applying them later gives the state a full replay gives.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { Store, type StoreOptions } from '../../src/store/store.ts';
import { StoreWriter } from '../helpers/store-writer.ts';
import { tempDir } from '../helpers/tmp.ts';
import { isVrepError } from '../../src/errors.ts';
import { encodeRecord, Op, recordLsn, recordTerm } from '../../src/log/record.ts';
import type { Entry } from '../../src/consensus/messages.ts';

const DIM = 4;
const enc = new TextEncoder();
const EPOCH = { term: 1, historyId: 'ef'.repeat(16), leaderId: 'n1', firstLsn: 1 };

function points(seed: number, n = 3): [string[], Float32Array, Uint8Array[]] {
  const ids = Array.from({ length: n }, (_, i) => `p${(seed * 7 + i) % 40}`);
  const vectors = Float32Array.from({ length: n * DIM }, (_, i) => Math.cos(seed + i));
  return [ids, vectors, ids.map((id) => enc.encode(JSON.stringify({ id, seed })))];
}

/** Upserts and deletes into `c`, `count` records from `seed` on. */
async function fill(w: StoreWriter, seed: number, count: number): Promise<void> {
  for (let s = seed; s < seed + count; s++) {
    if (s % 4 === 3) await w.delete('c', [`p${s % 40}`]);
    else await w.upsert('c', ...points(s));
  }
}

/** The state of every collection, and the collections the state has. */
function stateOf(store: Store): { digests: Record<string, string>; collections: string[] } {
  return { digests: store.state.digests(), collections: store.listCollections().map((c) => c.name) };
}

function commitAt(store: Store, lsn: number): Promise<void> {
  return store.saveHardState({ term: 1, votedFor: null, commit: lsn }, [EPOCH]);
}

function appendConfig(store: Store): Promise<void> {
  const lsn = store.lastLsn + 1;
  const bytes = encodeRecord({
    lsn,
    term: 1,
    hlcMs: lsn,
    hlcLogical: 0,
    origin: 'test',
    collection: '',
    op: Op.Config,
    members: [{ id: 'n1', address: '127.0.0.1:1' }],
  });
  return store
    .append([bytes])
    .then(() =>
      store.apply([{ lsn, term: 1, bytes, config: { members: [{ id: 'n1', address: '127.0.0.1:1' }] } }]),
    );
}

/** Applies the log's records (from, lastLsn] read back from `store.records`, as the runtime's readLog does. */
async function applyRest(store: Store): Promise<number> {
  let applied = 0;
  while (store.appliedLsn < store.lastLsn) {
    const bytes = await store.records.read(store.appliedLsn + 1, store.lastLsn, 4096);
    assert.ok(bytes.length > 0);
    const entries: Entry[] = bytes.map((b) => ({
      lsn: recordLsn(b),
      term: recordTerm(b),
      bytes: b,
      config: null,
    }));
    store.apply(entries);
    applied += entries.length;
  }
  return applied;
}

const base = (dataDir: string): StoreOptions => ({ dataDir, fsync: 'no', snapshotEveryBytes: 0 });

test("replayThrough 'commit' applies up to the saved commit point, keeps the rest in the log, and applying it later equals a full replay", async (t) => {
  const dataDir = tempDir(t);
  const store = await Store.open(base(dataDir));
  const w = new StoreWriter(store);
  await commitAt(store, 0);
  await w.createCollection('c', { dimension: DIM, metric: 'cosine' });
  await fill(w, 0, 30);
  const commit = store.lastLsn;
  const atCommit = stateOf(store);
  await commitAt(store, commit);
  // Above the commit point: more writes, a collection created and written, a config record.
  await fill(w, 30, 20);
  await w.createCollection('d', { dimension: 2, metric: 'l2' });
  await w.upsert('d', ['x'], Float32Array.of(1, 2), [enc.encode('{}')]);
  await appendConfig(store);
  await fill(w, 50, 10);
  const last = store.lastLsn;
  const full = stateOf(store);
  await store.close();

  // A small ring: the older unapplied records are read back from the WAL.
  const reopened = await Store.open({ ...base(dataDir), replayThrough: 'commit', ringCapacityRecords: 8 });
  t.after(() => reopened.close());
  assert.equal(reopened.appliedLsn, commit);
  assert.equal(reopened.lastLsn, last);
  assert.equal(reopened.hardState.commit, commit);
  assert.equal(reopened.recovery.appliedLsn, commit);
  assert.equal(reopened.recovery.unappliedRecords, last - commit);
  assert.deepEqual(stateOf(reopened), atCommit, 'the state holds exactly the records up to the commit point');
  // What is in the log but not applied: readable, counted in the schema at the head, and the config known.
  const rest = await reopened.records.read(commit + 1, last, 64 * 1024 * 1024);
  assert.deepEqual(
    rest.map(recordLsn),
    Array.from({ length: last - commit }, (_, i) => commit + 1 + i),
  );
  assert.equal(reopened.state.collections.has('d'), false);
  assert.deepEqual(reopened.schema.get('d'), { dimension: 2, metric: 'l2' });
  assert.ok(
    reopened.recoveredConfigs.some((c) => c.lsn > commit),
    'a config record above the commit point',
  );
  assert.equal(reopened.state.configs.length, 0, 'the applied state holds no unapplied config');

  assert.equal(await applyRest(reopened), last - commit);
  assert.equal(reopened.appliedLsn, last);
  assert.deepEqual(stateOf(reopened), full, 'applied later, the same digests as a full replay');
  assert.equal(reopened.state.configs.length, 1);
  // New writes continue after them as live records do.
  const w2 = new StoreWriter(reopened);
  await w2.upsert('d', ['y'], Float32Array.of(3, 4), [enc.encode('{}')]);
  assert.equal(reopened.appliedLsn, last + 1);
  assert.equal(reopened.state.collections.get('d')?.count, 2);
});

test("replayThrough 'commit' with a snapshot below the commit point: snapshot, then the WAL up to the commit; a snapshot taken then is of the applied state", async (t) => {
  const dataDir = tempDir(t);
  const store = await Store.open(base(dataDir));
  const w = new StoreWriter(store);
  await commitAt(store, 0);
  await w.createCollection('c', { dimension: DIM, metric: 'l2' });
  await fill(w, 0, 20);
  const snapLsn = (await store.snapshot()).manifest.lsn;
  await fill(w, 20, 15);
  const commit = store.lastLsn;
  const atCommit = stateOf(store);
  await commitAt(store, commit);
  await fill(w, 35, 15);
  const last = store.lastLsn;
  const full = stateOf(store);
  await store.close();

  const reopened = await Store.open({ ...base(dataDir), replayThrough: 'commit' });
  assert.equal(reopened.recovery.snapshotLsn, snapLsn);
  assert.ok(snapLsn < commit);
  assert.equal(reopened.appliedLsn, commit);
  assert.equal(reopened.lastLsn, last);
  assert.deepEqual(stateOf(reopened), atCommit);
  // A snapshot now holds the applied state, and the WAL keeps what is above it.
  const snap = await reopened.snapshot();
  assert.equal(snap.manifest.lsn, commit);
  await reopened.close();

  const again = await Store.open({ ...base(dataDir), replayThrough: 'commit' });
  assert.equal(again.recovery.snapshotLsn, commit);
  assert.equal(again.appliedLsn, commit);
  assert.deepEqual(stateOf(again), atCommit);
  await again.close();
  const all = await Store.open(base(dataDir));
  t.after(() => all.close());
  assert.equal(all.appliedLsn, last);
  assert.deepEqual(stateOf(all), full, 'the records above the snapshot were kept in the WAL');
});

test("replayThrough 'commit' with a snapshot above the commit point starts from the snapshot", async (t) => {
  const dataDir = tempDir(t);
  const store = await Store.open(base(dataDir));
  const w = new StoreWriter(store);
  await commitAt(store, 0);
  await w.createCollection('c', { dimension: DIM, metric: 'l2' });
  await fill(w, 0, 10);
  await commitAt(store, store.lastLsn);
  await fill(w, 10, 10);
  const snapLsn = (await store.snapshot()).manifest.lsn;
  const atSnapshot = stateOf(store);
  await fill(w, 20, 10);
  const last = store.lastLsn;
  const full = stateOf(store);
  await store.close();

  const reopened = await Store.open({ ...base(dataDir), replayThrough: 'commit' });
  t.after(() => reopened.close());
  assert.equal(reopened.appliedLsn, snapLsn);
  assert.equal(reopened.recovery.unappliedRecords, last - snapLsn);
  assert.deepEqual(stateOf(reopened), atSnapshot);
  await applyRest(reopened);
  assert.deepEqual(stateOf(reopened), full);
});

test("replayThrough 'commit' with commit 0 applies nothing; the schema at the head still knows the collections", async (t) => {
  const dataDir = tempDir(t);
  const store = await Store.open(base(dataDir));
  const w = new StoreWriter(store);
  await commitAt(store, 0);
  await w.createCollection('c', { dimension: DIM, metric: 'cosine' });
  await fill(w, 0, 25);
  const last = store.lastLsn;
  const full = stateOf(store);
  await store.close();

  const reopened = await Store.open({ ...base(dataDir), replayThrough: 'commit' });
  t.after(() => reopened.close());
  assert.equal(reopened.appliedLsn, 0);
  assert.equal(reopened.lastLsn, last);
  assert.deepEqual(reopened.listCollections(), []);
  assert.deepEqual(reopened.schema.get('c'), { dimension: DIM, metric: 'cosine' });
  assert.equal(await applyRest(reopened), last);
  assert.deepEqual(stateOf(reopened), full);
});

test('by default (and with "all") start-up replays the whole WAL, whatever the commit point', async (t) => {
  const dataDir = tempDir(t);
  const store = await Store.open(base(dataDir));
  const w = new StoreWriter(store);
  await commitAt(store, 0);
  await w.createCollection('c', { dimension: DIM, metric: 'cosine' });
  await fill(w, 0, 10);
  await commitAt(store, 3);
  await fill(w, 10, 10);
  const last = store.lastLsn;
  const full = stateOf(store);
  await store.close();

  for (const opts of [base(dataDir), { ...base(dataDir), replayThrough: 'all' as const }]) {
    const reopened = await Store.open(opts);
    try {
      assert.equal(reopened.appliedLsn, last);
      assert.equal(reopened.lastLsn, last);
      assert.equal(reopened.recovery.appliedLsn, last);
      assert.equal(reopened.recovery.unappliedRecords, 0);
      assert.deepEqual(stateOf(reopened), full);
    } finally {
      await reopened.close();
    }
  }
});

test("replayThrough 'commit' replays everything when the node meta is gone (the data counts as committed), and refuses an unknown value", async (t) => {
  const dataDir = tempDir(t);
  const store = await Store.open(base(dataDir));
  const w = new StoreWriter(store);
  await commitAt(store, 0);
  await w.createCollection('c', { dimension: DIM, metric: 'cosine' });
  await fill(w, 0, 10);
  const last = store.lastLsn;
  await store.close();

  await assert.rejects(
    Store.open({ ...base(dataDir), replayThrough: 'everything' as 'all' }),
    (err: unknown) => isVrepError(err, 'ERR_INVALID_ARG'),
  );
  rmSync(path.join(dataDir, 'node-meta.json'));
  const reopened = await Store.open({ ...base(dataDir), nodeId: 'n1', replayThrough: 'commit' });
  t.after(() => reopened.close());
  assert.equal(reopened.appliedLsn, last);
  assert.equal(reopened.hardState.commit, last);
});
