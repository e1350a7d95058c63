/**
 * SnapshotStaging: a full sync's chunks applied as they arrive hold exactly
 * the snapshot (the digest of the collections the store snapshotted), and a
 * chunk that does not decode, a chunk out of order or a missing chunk is
 * refused rather than installed.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Store } from '../../src/store/store.ts';
import { SnapshotStaging } from '../../src/store/snapshot-staging.ts';
import { CHUNK_ROWS, Collection } from '../../src/store/collection.ts';
import type { PackedIds } from '../../src/native/id-index.ts';
import { isVrepError } from '../../src/errors.ts';
import { StoreWriter } from '../helpers/store-writer.ts';
import { tempDir } from '../helpers/tmp.ts';

const DIM = 4;
const enc = new TextEncoder();

/** A snapshot of two collections, one over two vector chunks with a partial third, some payloads. */
async function snapshotFiles(t: TestContext): Promise<{
  manifestText: string;
  chunks: Uint8Array[];
  digests: Map<string, string>;
}> {
  const store = await Store.open({ dataDir: tempDir(t), fsync: 'no', snapshotEveryBytes: 0 });
  const writer = new StoreWriter(store);
  await writer.createCollection('big', { dimension: DIM, metric: 'l2' });
  await writer.createCollection('small', { dimension: DIM, metric: 'dot' });
  const count = 2 * CHUNK_ROWS + 1234;
  for (let first = 0; first < count; first += 5000) {
    const n = Math.min(5000, count - first);
    const ids = Array.from({ length: n }, (_, i) => `id-${first + i}`);
    const vectors = Float32Array.from({ length: n * DIM }, (_, i) => Math.sin(first * DIM + i));
    const payloads = ids.map((id, i) =>
      i % 3 === 0 ? enc.encode(JSON.stringify({ id })) : new Uint8Array(0),
    );
    await writer.upsert('big', ids, vectors, payloads);
  }
  // Non-ASCII ids and payloads take the per-row decode, the rest the one-pass ASCII decode.
  await writer.upsert(
    'small',
    ['a', 'é', 'b'],
    Float32Array.from({ length: 3 * DIM }, (_, i) => i),
    [new Uint8Array(0), enc.encode(JSON.stringify({ title: 'café ☕' })), enc.encode('{}')],
  );
  await writer.delete('big', ['id-7', 'id-20000']);
  const info = await store.snapshot();
  const digests = new Map(['big', 'small'].map((c) => [c, store.digest(c)]));
  await store.close();
  const manifestText = readFileSync(path.join(info.dir, 'manifest.json'), 'utf8');
  const chunks = info.manifest.collections.flatMap((c) =>
    c.chunks.map((k) => new Uint8Array(readFileSync(path.join(info.dir, k.file)))),
  );
  return { manifestText, chunks, digests };
}

test('chunks staged as they arrive hold exactly the snapshot', async (t) => {
  const { manifestText, chunks, digests } = await snapshotFiles(t);
  assert.equal(chunks.length, 4, 'three chunks of one collection and one of the other');
  const staging = new SnapshotStaging(manifestText);
  for (const [i, frame] of chunks.entries()) await staging.add(i, frame);
  const collections = await staging.finish();
  for (const [name, digest] of digests) {
    assert.equal((collections.get(name) as Collection).digest(), digest, `collection ${name}`);
  }
  assert.equal((collections.get('big') as Collection).get('id-3')?.payload, JSON.stringify({ id: 'id-3' }));
  assert.equal((collections.get('big') as Collection).get('id-7'), null);
});

test('a chunk that does not decode, one out of order, or one missing is refused', async (t) => {
  const { manifestText, chunks } = await snapshotFiles(t);

  const damaged = new SnapshotStaging(manifestText);
  const bad = (chunks[1] as Uint8Array).slice();
  const at = Math.floor(bad.length / 2);
  bad[at] = (bad[at] as number) ^ 0xff;
  await damaged.add(0, chunks[0] as Uint8Array);
  const refused = async (): Promise<void> => {
    await damaged.add(1, bad);
    await damaged.add(2, chunks[2] as Uint8Array);
    await damaged.add(3, chunks[3] as Uint8Array);
    await damaged.finish();
  };
  await assert.rejects(refused, (err) => isVrepError(err) && err.code === 'ERR_SNAPSHOT_CORRUPT');

  const outOfOrder = new SnapshotStaging(manifestText);
  await assert.rejects(
    outOfOrder.add(1, chunks[1] as Uint8Array),
    (err) => isVrepError(err) && err.code === 'ERR_PROTOCOL',
  );

  const short = new SnapshotStaging(manifestText);
  for (const i of [0, 1, 2]) await short.add(i, chunks[i] as Uint8Array);
  await assert.rejects(short.finish(), /3 of 4 chunks staged/);
});

test('a bulk load takes the vectors, then the ids in slices; a repeated id or one too many is refused', () => {
  const c = new Collection('c', 2, 'l2');
  assert.equal(c.appendVectors(Float32Array.from([1, 2, 3, 4, 5, 6]), 3), true);
  assert.equal(c.appendVectors(Float32Array.from([1, 2]), 1), false, 'ids still missing');
  c.appendIds(packed(['a']), []);
  c.appendIds(packed(['b', 'c']), [new Uint8Array(0), enc.encode('{"k":1}')]);
  assert.equal(c.count, 3);
  assert.deepEqual(Array.from(c.get('b')?.vector ?? []), [3, 4]);
  assert.equal(c.get('c')?.payload, '{"k":1}');
  assert.throws(() => c.appendIds(packed(['d']), []), /1 ids for 0 rows/);
  assert.equal(c.appendVectors(Float32Array.from([7, 8]), 1), false, 'not on a chunk boundary');

  const d = new Collection('d', 2, 'l2');
  d.appendVectors(Float32Array.from([1, 2, 3, 4]), 2);
  assert.throws(() => d.appendIds(packed(['a', 'a']), []), /appears twice/);

  // Packed ids that are not UTF-8, or whose lengths do not add up, never go in.
  const e = new Collection('e', 2, 'l2');
  e.appendVectors(Float32Array.from([1, 2, 3, 4]), 2);
  const bad = {
    lengths: new Uint8Array(new Uint32Array([1, 1]).buffer),
    bytes: new Uint8Array([0x61, 0xff]),
  };
  assert.throws(
    () => e.appendIds(bad, []),
    (err: unknown) => isVrepError(err, 'ERR_INVALID_ARG'),
  );
  const short = {
    lengths: new Uint8Array(new Uint32Array([1, 2]).buffer),
    bytes: new Uint8Array([0x61, 0x62]),
  };
  assert.throws(() => e.appendIds(short, []), /add up to 3 bytes/);
  assert.equal(e.count, 0);
});

/** Ids packed as a snapshot chunk stores them (u32 LE lengths, then the UTF-8 bytes). */
function packed(ids: string[]): PackedIds {
  const bytes = ids.map((id) => Buffer.from(id, 'utf8'));
  const lengths = new DataView(new ArrayBuffer(ids.length * 4));
  bytes.forEach((b, i) => lengths.setUint32(i * 4, b.length, true));
  return { lengths: new Uint8Array(lengths.buffer), bytes: new Uint8Array(Buffer.concat(bytes)) };
}
