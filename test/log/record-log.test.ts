import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Store } from '../../src/store/store.ts';
import { ReplicationNode } from '../../src/node/replication-node.ts';
import { StoreWriter } from '../helpers/store-writer.ts';
import { recordLsn, decodeRecord, Op } from '../../src/log/record.ts';
import { isVrepError } from '../../src/errors.ts';
import { tempDir } from '../helpers/tmp.ts';

test('a read that fell out of the in-memory log is served from the WAL; after a snapshot it is an explicit error', async (t) => {
  const dataDir = tempDir(t);
  // A tiny ring (64 KiB) so most records live only on disk.
  const store = await Store.open({
    dataDir,
    fsync: 'no',
    ringCapacityBytes: 64 * 1024,
    snapshotEveryBytes: 0,
    walSegmentBytes: 128 * 1024,
  });
  t.after(() => store.close());
  const writer = new StoreWriter(store);
  await writer.createCollection('c', { dimension: 64, metric: 'dot' });
  for (let b = 0; b < 100; b++) {
    const ids = Array.from({ length: 20 }, (_, i) => `b${b}-${i}`);
    await writer.upsert(
      'c',
      ids,
      new Float32Array(20 * 64).fill(b),
      ids.map(() => new Uint8Array(0)),
    );
  }
  const log = store.records;
  assert.ok(log.ring.firstLsn() > 10, 'early records were evicted from memory');
  // From disk, across the memory boundary, in order.
  const all = await log.read(1, 101, 1 << 30);
  assert.deepEqual(
    all.map(recordLsn),
    Array.from({ length: 101 }, (_, i) => i + 1),
  );
  const first = decodeRecord(all[1] as Uint8Array);
  assert.equal(first.op, Op.Upsert);
  // Byte-identical whichever side serves it.
  const fromRing = await log.read(100, 100, 1 << 20);
  const fromDisk = await log.wal.read(100, 100, 1 << 20);
  assert.deepEqual(fromRing, fromDisk);

  await store.snapshot();
  await assert.rejects(log.read(1, 5, 1 << 20), (e: unknown) => isVrepError(e, 'ERR_LSN_EVICTED'));
  assert.deepEqual((await log.read(101, 101, 1 << 20)).map(recordLsn), [101]);
});

test('a batch larger than the in-memory log is refused, naming the limit; nothing changes', async (t) => {
  const node = await ReplicationNode.start({
    dataDir: tempDir(t),
    storage: { fsync: 'no', logBytes: 64 * 1024 },
  });
  t.after(() => node.stop());
  await node.createCollection('c', { dimension: 128, metric: 'l2' });
  const ids = Array.from({ length: 200 }, (_, i) => `p${i}`);
  await assert.rejects(
    node.writePacked('c', {
      ids,
      vectors: new Float32Array(200 * 128),
      payloads: ids.map(() => new Uint8Array(0)),
    }),
    /batch: \d+ bytes encoded, limit 65536; split it/,
  );
  assert.equal(node.lastLsn, 1);
  assert.equal(node.collections()[0]?.count, 0);
});

test('when the WAL refuses a write, neither the ring nor the collection changes', async (t) => {
  const store = await Store.open({ dataDir: tempDir(t), fsync: 'no' });
  const writer = new StoreWriter(store);
  await writer.createCollection('c', { dimension: 2, metric: 'l2' });
  await writer.upsert('c', ['a'], new Float32Array([1, 2]), [new Uint8Array(0)]);
  const before = { digest: store.digest('c'), lsn: store.lastLsn, ring: store.records.ring.lastLsn() };
  await store.records.wal.close(); // the disk side goes away underneath the store
  await assert.rejects(
    writer.upsert('c', ['b'], new Float32Array([3, 4]), [new Uint8Array(0)]),
    (e: unknown) => isVrepError(e, 'ERR_WAL_CLOSED'),
  );
  assert.deepEqual(
    { digest: store.digest('c'), lsn: store.lastLsn, ring: store.records.ring.lastLsn() },
    before,
  );
  await store.close();
});
