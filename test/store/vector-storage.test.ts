/**
 * A collection's vector storage is shared memory (which V8 does not count),
 * and what a collection lets go of is reported to V8 as memory it may free,
 * once per buffer, and taken back once collected (store/vector-storage.ts).
 * The V8 side is read through adjustExternalMemory(0), which returns V8's
 * total without changing it. That total also moves when V8's own sweeper
 * frees ArrayBuffers, on another thread, so the figures are compared within
 * NOISE_BYTES, well below what each check tells apart; the buffers a test
 * makes are held to its end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { adjustExternalMemory } from '../../src/native/external-memory.ts';
import { Collection, CHUNK_ROWS } from '../../src/store/collection.ts';
import { discardStorage, sharedFloats, trackStorage } from '../../src/store/vector-storage.ts';
import { repoRoot, startNode } from '../helpers/process.ts';

const externalNow = (): number => adjustExternalMemory(0);
const MiB = 1024 * 1024;
const NOISE_BYTES = MiB;
/** Dimension 64: a chunk is 4 MiB. */
const DIM = 64;
const CHUNK_BYTES = CHUNK_ROWS * DIM * 4;

/** Keeps buffers reachable up to here: freed earlier, they would move V8's total mid-check. */
function held(...buffers: Float32Array[]): void {
  assert.ok(buffers.every((b) => b.length > 0));
}

function near(actual: number, expected: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) < NOISE_BYTES,
    `${what}: ${actual} bytes, expected about ${expected}`,
  );
}

/** A collection of `chunks` full chunks, and the batch it was written from (to hold). */
function filled(chunks: number): { c: Collection; batch: Float32Array } {
  const c = new Collection('v', DIM, 'l2');
  const rows = chunks * CHUNK_ROWS;
  const batch = new Float32Array(rows * DIM).fill(0.5);
  c.upsert(
    Array.from({ length: rows }, (_, i) => `p${i}`),
    batch,
    [],
  );
  return { c, batch };
}

test('storage is zeroed shared memory; discarding reports its bytes once; an ArrayBuffer is never reported', () => {
  const view = sharedFloats(CHUNK_BYTES / 4);
  assert.ok(view.buffer instanceof SharedArrayBuffer);
  assert.ok(view.every((x) => x === 0));
  const plain = new Float32Array(CHUNK_BYTES / 4);
  const before = externalNow();
  discardStorage(view);
  near(externalNow() - before, CHUNK_BYTES, 'reported once');
  discardStorage(view);
  near(externalNow() - before, CHUNK_BYTES, 'not twice');
  trackStorage(plain);
  const mid = externalNow();
  discardStorage(plain);
  near(externalNow() - mid, 0, 'V8 counts an ArrayBuffer itself');
});

test("a collection's chunks are shared; dropping it reports them, deferred for chunks a frozen snapshot still reads", () => {
  const { c, batch } = filled(2);
  const frozen = c.freeze();
  assert.ok(frozen.chunks.every((k) => k.buffer instanceof SharedArrayBuffer));
  // A write into a frozen chunk copies it (into shared memory too): the original waits for the release.
  const one = new Float32Array(DIM).fill(2);
  c.upsert(['p0'], one, []);
  const before = externalNow();
  c.drop();
  near(externalNow() - before, CHUNK_BYTES, 'the copy at once; the frozen second chunk not yet');
  frozen.release();
  near(externalNow() - before, 3 * CHUNK_BYTES, 'on release: the original and the second chunk');
  assert.equal(c.get('p0')?.vector[0], 2, 'dropping changes nothing in the collection itself');
  held(batch, one);
});

test('deletes that empty a chunk report it', () => {
  const { c, batch } = filled(1);
  const extra = new Float32Array(DIM);
  c.upsert(['extra'], extra, []);
  const before = externalNow();
  c.delete(['p1']);
  near(externalNow() - before, CHUNK_BYTES, 'the last row moved out of the second chunk');
  held(batch, extra);
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
  near(r.reported, r.storageBytes, 'dropping reported every chunk');
  near(r.afterGc, 0, 'still reported after the GC');
  assert.ok(r.rssFreed >= 0.8 * r.storageBytes, `${r.rssFreed} of ${r.storageBytes} bytes came back`);
});
