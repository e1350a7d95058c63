import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplicationNode, ConsistencyLevel, isVrepError, ApiLimits } from '../../src/index.ts';
import { tempDir } from '../helpers/tmp.ts';

test('standalone node: create, write, get, search, delete, restart', async (t) => {
  const dataDir = tempDir(t);
  let node = await ReplicationNode.start({ nodeId: 'n1', dataDir, storage: { fsync: 'always' } });
  await node.createCollection('docs', { dimension: 3, metric: 'l2' });
  const w = await node.write(
    'docs',
    [
      { id: 'a', vector: [1, 0, 0], payload: { color: 'red' } },
      { id: 'b', vector: new Float32Array([0, 1, 0]) },
      { id: 7, vector: [0, 0, 1], payload: { color: 'blue', n: [1, 2] } },
    ],
    { consistency: ConsistencyLevel.Quorum, timeoutMs: 1000 },
  );
  assert.deepEqual(w, { lsn: 2, count: 3 });
  assert.deepEqual(await node.get('docs', '7'), {
    id: '7',
    vector: new Float32Array([0, 0, 1]),
    payload: { color: 'blue', n: [1, 2] },
  });
  assert.equal(await node.get('docs', 'zzz'), null);
  const hits = await node.search('docs', [0.9, 0.1, 0], { k: 2 });
  assert.deepEqual(
    hits.map((h) => h.id),
    ['a', 'b'],
  );
  assert.deepEqual(
    (await node.search('docs', [0, 0, 1], { k: 5, filter: { color: 'red' } })).map((h) => h.id),
    ['a'],
  );
  await node.delete('docs', ['b']);
  assert.equal(await node.get('docs', 'b'), null);
  const digest = node.digest('docs');
  await node.stop();

  node = await ReplicationNode.start({ nodeId: 'n1', dataDir });
  t.after(() => node.stop());
  assert.equal(node.digest('docs'), digest);
  assert.equal(node.lastLsn, 3);
  assert.deepEqual(node.collections(), [{ name: 'docs', dimension: 3, metric: 'l2', count: 2 }]);
});

test('bad input is refused with a message naming the point and field, and changes nothing', async (t) => {
  const node = await ReplicationNode.start({ dataDir: tempDir(t) });
  t.after(() => node.stop());
  await node.createCollection('c', { dimension: 2, metric: 'cosine' });
  await node.write('c', [{ id: 'keep', vector: [1, 2], payload: { a: 1 } }]);
  const before = { digest: node.digest('c'), lsn: node.lastLsn };
  const cases: [unknown, RegExp][] = [
    [[{ id: 'x', vector: [1, 2, 3] }], /points\[0\]\.vector: expected 2 numbers, got 3/],
    [
      [
        { id: 'ok', vector: [1, 2] },
        { id: 'x', vector: [1, NaN] },
      ],
      /points\[1\]\.vector\[1\]: NaN is not allowed/,
    ],
    [[{ id: 'x', vector: [1, Infinity] }], /points\[0\]\.vector\[1\]: Infinity is not allowed/],
    [[{ id: 'x', vector: [1, 1e39] }], /points\[0\]\.vector\[1\]: 1e\+39 is out of float32 range/],
    [[{ id: '', vector: [1, 2] }], /points\[0\]\.id: must not be empty/],
    [[{ vector: [1, 2] }], /points\[0\]\.id: missing/],
    [
      [{ id: {}, vector: [1, 2] }],
      /points\[0\]\.id: expected a non-empty string or a non-negative integer, got object/,
    ],
    [[{ id: 'x', vector: [1, '2'] }], /points\[0\]\.vector\[1\]: expected a number, got string/],
    [[{ id: 'x' }], /points\[0\]\.vector: missing/],
    [
      [{ id: 'x', vector: [1, 2], payload: { big: 'x'.repeat(ApiLimits.maxPayloadBytes) } }],
      new RegExp(`points\\[0\\]\\.payload: \\d+ bytes, limit ${ApiLimits.maxPayloadBytes}$`),
    ],
    [
      [{ id: 'x', vector: [1, 2], payload: [1] }],
      /points\[0\]\.payload: expected an object or null, got array/,
    ],
    [[{ id: 'x', vector: [1, 2], colour: 'red' }], /points\[0\]: unknown field "colour"/],
    [[], /points: a batch needs at least one point/],
    ['nope', /points: expected an array/],
  ];
  for (const [points, re] of cases) {
    await assert.rejects(node.write('c', points as never), (e: unknown) => {
      assert.ok(isVrepError(e, 'ERR_INVALID_INPUT'), String(e));
      assert.match((e as Error).message, re);
      return true;
    });
  }
  await assert.rejects(node.write('missing', [{ id: 'x', vector: [1, 2] }]), (e: unknown) =>
    isVrepError(e, 'ERR_COLLECTION_NOT_FOUND'),
  );
  await assert.rejects(node.createCollection('c', { dimension: 2, metric: 'l2' }), (e: unknown) =>
    isVrepError(e, 'ERR_COLLECTION_EXISTS'),
  );
  await assert.rejects(node.createCollection('bad name!', { dimension: 2, metric: 'l2' }), /collection name/);
  await assert.rejects(node.createCollection('d', { dimension: 0, metric: 'l2' }), /dimension/);
  await assert.rejects(node.createCollection('d', { dimension: 2, metric: 'hamming' as never }), /metric/);
  await assert.rejects(node.search('c', [1, 2, 3], { k: 1 }), /vector: expected 2 numbers, got 3/);
  await assert.rejects(node.search('c', [1, 2], { k: 0 }), /k: expected an integer/);
  await assert.rejects(
    node.write('c', [{ id: 'x', vector: [1, 2] }], { consistency: 'most' as never }),
    /consistency/,
  );
  assert.deepEqual({ digest: node.digest('c'), lsn: node.lastLsn }, before);
});

test('a data dir is used by one process at a time and keeps its node id', async (t) => {
  const dataDir = tempDir(t);
  const node = await ReplicationNode.start({ nodeId: 'n1', dataDir });
  await assert.rejects(ReplicationNode.start({ nodeId: 'n1', dataDir }), (e: unknown) =>
    isVrepError(e, 'ERR_DATA_DIR_LOCKED'),
  );
  await node.stop();
  await assert.rejects(ReplicationNode.start({ nodeId: 'other', dataDir }), (e: unknown) =>
    isVrepError(e, 'ERR_NODE_ID_MISMATCH'),
  );
  await assert.rejects(
    ReplicationNode.start({ dataDir, replication: { role: 'multi-master' } }),
    (e: unknown) => isVrepError(e, 'ERR_UNSUPPORTED'),
  );
});
