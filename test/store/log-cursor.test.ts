/**
 * The log cursor: committed readers stop at the committed watermark and
 * wait for it; the feed's cursor reads what the log holds; a named
 * cursor's saved position survives a restart and keeps the WAL it has not
 * read from being removed by snapshots.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Store } from '../../src/store/store.ts';
import { isVrepError } from '../../src/errors.ts';
import { decodeRecord } from '../../src/log/record.ts';
import { StoreWriter } from '../helpers/store-writer.ts';
import { tempDir } from '../helpers/tmp.ts';

const DIM = 4;

async function open(dataDir: string): Promise<Store> {
  return Store.open({
    dataDir,
    nodeId: 'n1',
    fsync: 'no',
    snapshotEveryBytes: 0,
    walSegmentBytes: 4096,
    ringCapacityRecords: 16,
  });
}

async function write(store: Store, count: number): Promise<void> {
  const w = new StoreWriter(store);
  if (store.lastLsn === 0) await w.createCollection('c', { dimension: DIM, metric: 'l2' });
  for (let i = 0; i < count; i++) {
    const id = `p${store.lastLsn}`;
    await w.upsert(
      'c',
      [id],
      Float32Array.from({ length: DIM }, () => i),
      [new TextEncoder().encode(JSON.stringify({ pad: 'x'.repeat(200) }))],
    );
  }
}

const lsns = (records: Uint8Array[]): number[] => records.map((r) => decodeRecord(r).lsn);

test('a committed cursor reads only up to the committed watermark, and waits for it', async (t) => {
  const store = await open(tempDir(t));
  t.after(() => store.close());
  await write(store, 9); // LSNs 1..10
  const cursor = store.openCursor({ from: 1 });
  assert.deepEqual(await cursor.next(1 << 20), [], 'nothing is committed yet');
  store.setCommitted(4);
  assert.deepEqual(lsns(await cursor.next(1 << 20)), [1, 2, 3, 4]);
  assert.equal(cursor.position, 5);
  let woke = false;
  const waiting = cursor.waitReadable().then(() => (woke = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(woke, false, 'no record past the watermark wakes a reader');
  store.setCommitted(7);
  await waiting;
  assert.deepEqual(lsns(await cursor.next(1 << 20)), [5, 6, 7]);
  // The feed's cursor reads what the log holds (the core bounds it to durable records).
  const feed = store.openCursor({ from: 1, bound: 'appended' });
  assert.deepEqual(lsns(await feed.next(1 << 20)), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  // maxBytes bounds a read, one record at least.
  const small = store.openCursor({ from: 1, bound: 'appended' });
  assert.deepEqual(lsns(await small.next(1)), [1]);
  cursor.close();
  feed.close();
  small.close();
});

test('closing the store rejects waiting readers; bad arguments are refused', async (t) => {
  const store = await open(tempDir(t));
  await write(store, 1);
  const cursor = store.openCursor({ from: 1 });
  const waiting = cursor.waitReadable();
  const outcome = waiting.then(
    () => null,
    (e: unknown) => e,
  );
  await assert.rejects(cursor.waitReadable(), (e) => isVrepError(e, 'ERR_INVALID_ARG'));
  assert.throws(
    () => store.openCursor({ from: 0 }),
    (e) => isVrepError(e, 'ERR_INVALID_ARG'),
  );
  assert.throws(
    () => store.openCursor({ name: 'no spaces' }),
    (e) => isVrepError(e, 'ERR_INVALID_ARG'),
  );
  await assert.rejects(cursor.next(0), (e) => isVrepError(e, 'ERR_INVALID_ARG'));
  assert.throws(
    () => cursor.save(),
    (e) => isVrepError(e, 'ERR_INVALID_ARG'),
  );
  await store.close();
  assert.ok(isVrepError(await outcome, 'ERR_NODE_STOPPED'), 'a waiting reader hears the store closed');
});

test('a named cursor resumes after a restart, and its pin keeps the WAL from snapshots until dropped', async (t) => {
  const dataDir = tempDir(t);
  let store = await open(dataDir);
  await write(store, 200);
  store.setCommitted(store.lastLsn);
  const reader = store.openCursor({ from: 1, name: 'changes' });
  assert.equal((await reader.next(10 * 1024)).length > 0, true);
  const saved = reader.position;
  await reader.save();
  reader.close();
  await store.snapshot();
  await store.close();

  store = await open(dataDir);
  assert.deepEqual(store.savedCursors(), [{ name: 'changes', lsn: saved }]);
  assert.ok(
    store.records.firstLsn <= saved,
    `the WAL still holds ${saved} (starts at ${store.records.firstLsn})`,
  );
  store.setCommitted(store.lastLsn);
  const resumed = store.openCursor({ name: 'changes' });
  assert.equal(resumed.position, saved);
  assert.equal(decodeRecord((await resumed.next(1))[0] as Uint8Array).lsn, saved);
  resumed.close();

  // Without the name, the next snapshot removes what it held; a reader from there is told so.
  assert.equal(await store.dropCursor('changes'), true);
  await write(store, 50);
  await store.snapshot();
  assert.ok(store.records.firstLsn > saved, `the WAL was pruned past ${saved}`);
  store.setCommitted(store.lastLsn);
  const late = store.openCursor({ from: saved });
  await assert.rejects(late.next(1024), (e) => isVrepError(e, 'ERR_LSN_EVICTED'));
  late.close();
  await store.close();
});
