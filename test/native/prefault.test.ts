/**
 * prefaultAsync maps a fresh array's pages in (the process's resident memory
 * grows by about its size before anything writes to it) and never changes a
 * byte, even while the event loop writes the same array.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prefaultAsync } from '../../src/native/prefault.ts';
import { binding } from '../../src/native/addon.ts';
import { isVrepError } from '../../src/errors.ts';
import { kernelPrefaults, rssAnonBytes } from '../helpers/memory.ts';

const MiB = 1024 * 1024;
const prefaults = kernelPrefaults();

// A collection's vector chunks are views of a SharedArrayBuffer (store/collection.ts).
for (const [what, make] of [
  ['an ArrayBuffer', (bytes: number) => new Float32Array(bytes / 4)],
  ['a SharedArrayBuffer', (bytes: number) => new Float32Array(new SharedArrayBuffer(bytes))],
] as const) {
  test(
    `the pages of a fresh array (a view of ${what}) are resident once it resolves, before any write`,
    { skip: !prefaults && 'needs Linux 5.14+ (MADV_POPULATE_WRITE)' },
    async () => {
      const view = make(64 * MiB);
      const before = rssAnonBytes();
      assert.equal(await prefaultAsync(view), true);
      const grown = rssAnonBytes() - before;
      assert.ok(
        grown >= 60 * MiB,
        `resident memory grew by ${(grown / MiB).toFixed(1)} MiB, expected about 64`,
      );
      assert.equal(view[0], 0);
      assert.equal(view[view.length - 1], 0);
    },
  );
}

test('writes made while it runs all stay (it maps pages, it writes nothing)', async () => {
  const rows = 16384;
  const dim = 512;
  const view = new Float32Array(rows * dim);
  const done = prefaultAsync(view);
  const batch = Float32Array.from({ length: 100 * dim }, (_, i) => i + 1);
  for (let row = 0; row + 100 <= rows; row += 100) {
    view.set(batch, row * dim);
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(typeof (await done), 'boolean');
  for (let row = 0; row + 100 <= rows; row += 100) {
    for (let i = 0; i < batch.length; i += 997) {
      if (view[row * dim + i] !== batch[i]) assert.fail(`row ${row}: float ${i} is ${view[row * dim + i]}`);
    }
  }
});

test('arguments are checked, in TS and natively', async () => {
  assert.throws(() => prefaultAsync(new Uint8Array(8) as never), TypeError);
  const raw = binding as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const args of [[], [{}], [new ArrayBuffer(8)], [new Float32Array(4), 1]]) {
    assert.throws(
      () => raw['prefaultAsync']!(...args),
      (err: unknown) => isVrepError(err, 'ERR_INVALID_ARG'),
      `${args.length} args`,
    );
  }
  // An empty array has no whole page: nothing to map.
  assert.equal(await prefaultAsync(new Float32Array(0)), false);
});
