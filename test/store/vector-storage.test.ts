/**
 * A collection's vector storage is shared memory (which V8 does not count),
 * and what a collection lets go of is reported to V8 as memory it may free,
 * once per buffer, and taken back once collected (store/vector-storage.ts).
 * The V8 side is read through adjustExternalMemory(0), which returns V8's
 * total without changing it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { adjustExternalMemory } from '../../src/native/external-memory.ts';
import { Collection, CHUNK_ROWS } from '../../src/store/collection.ts';
import { discardStorage, sharedFloats, trackStorage } from '../../src/store/vector-storage.ts';
import { repoRoot, startNode } from '../helpers/process.ts';

const externalNow = (): number => adjustExternalMemory(0);

/** A collection of `chunks` full chunks of dimension `dim`. */
function filled(dim: number, chunks: number): Collection {
  const c = new Collection('v', dim, 'l2');
  const rows = chunks * CHUNK_ROWS;
  c.upsert(
    Array.from({ length: rows }, (_, i) => `p${i}`),
    new Float32Array(rows * dim).fill(0.5),
    [],
  );
  return c;
}

test('storage is zeroed shared memory; discarding reports its bytes once; an ArrayBuffer is never reported', () => {
  const view = sharedFloats(1000);
  assert.ok(view.buffer instanceof SharedArrayBuffer);
  assert.ok(view.every((x) => x === 0));
  const before = externalNow();
  discardStorage(view);
  assert.equal(externalNow() - before, 4000, 'reported once');
  discardStorage(view);
  assert.equal(externalNow() - before, 4000, 'not twice');
  const plain = new Float32Array(1000);
  trackStorage(plain);
  const mid = externalNow();
  discardStorage(plain);
  assert.equal(externalNow(), mid, 'V8 counts an ArrayBuffer itself');
});

test("a collection's chunks are shared; dropping it reports them, deferred for chunks a frozen snapshot still reads", () => {
  const dim = 8;
  const chunkBytes = CHUNK_ROWS * dim * 4;
  const c = filled(dim, 2);
  const frozen = c.freeze();
  assert.ok(frozen.chunks.every((k) => k.buffer instanceof SharedArrayBuffer));
  // A write into a frozen chunk copies it (into shared memory too): the original waits for the release.
  c.upsert(['p0'], new Float32Array(dim).fill(2), []);
  const before = externalNow();
  c.drop();
  assert.equal(externalNow() - before, chunkBytes, 'the copy at once; the frozen second chunk not yet');
  frozen.release();
  assert.equal(externalNow() - before, 3 * chunkBytes, 'on release: the original and the second chunk');
  assert.equal(c.get('p0')?.vector[0], 2, 'dropping changes nothing in the collection itself');
});

test('deletes that empty a chunk report it', () => {
  const dim = 8;
  const c = filled(dim, 1);
  c.upsert(['extra'], new Float32Array(dim), []);
  const before = externalNow();
  c.delete(['p1']);
  assert.equal(externalNow() - before, CHUNK_ROWS * dim * 4, 'the last row moved out of the second chunk');
});

test("a dropped collection's memory comes back at the next GC, and the report is then taken back", async (t) => {
  const child = startNode([
    '--expose-gc',
    '--import',
    'tsx',
    path.join(repoRoot, 'test/store/vector-storage-child.ts'),
  ]);
  t.after(() => child.kill());
  assert.equal(await child.exited(120_000), 0, child.stderr());
  const r = JSON.parse(child.stdout().trim().split('\n').at(-1) as string) as {
    storageBytes: number;
    reported: number;
    afterGc: number;
    rssFreed: number;
  };
  t.diagnostic(JSON.stringify(r));
  assert.equal(r.reported, r.storageBytes, 'dropping reported every chunk');
  assert.ok(Math.abs(r.afterGc) < 1024 * 1024, `after the GC ${r.afterGc} bytes still reported`);
  assert.ok(r.rssFreed >= 0.8 * r.storageBytes, `${r.rssFreed} of ${r.storageBytes} bytes came back`);
});
