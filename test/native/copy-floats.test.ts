/**
 * copyFloats copies as Float32Array.prototype.set does, into shared memory
 * as into an ArrayBuffer, from sources at any 4-byte offset, and refuses a
 * copy that does not fit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFloats } from '../../src/native/copy-floats.ts';
import { binding } from '../../src/native/addon.ts';
import { isVrepError } from '../../src/errors.ts';

for (const [what, make] of [
  ['an ArrayBuffer', (n: number) => new Float32Array(n)],
  ['a SharedArrayBuffer', (n: number) => new Float32Array(new SharedArrayBuffer(n * 4))],
] as const) {
  test(`copyFloats into ${what} equals set(), from a source 4 bytes off 8-byte alignment`, () => {
    const raw = new ArrayBuffer(4 * 1001);
    const source = new Float32Array(raw, 4, 1000).map((_, i) => i * 0.5 - 7);
    const target = make(1200);
    const expected = new Float32Array(1200);
    expected.set(source, 123);
    copyFloats(target, 123, source);
    assert.deepEqual(Array.from(target), Array.from(expected));
    copyFloats(target, 1200, new Float32Array(0));
    copyFloats(target, 200, source); // ends at the last element
    assert.equal(target[1199], source[999]);
  });
}

test('copyFloats within one buffer copies as if through a temporary (overlap)', () => {
  const a = Float32Array.from({ length: 16 }, (_, i) => i);
  const b = Float32Array.from({ length: 16 }, (_, i) => i);
  copyFloats(a, 2, a.subarray(0, 10));
  b.set(b.subarray(0, 10), 2);
  assert.deepEqual(Array.from(a), Array.from(b));
});

test('copyFloats refuses what does not fit or is not a Float32Array, in TS and natively', () => {
  const target = new Float32Array(10);
  assert.throws(() => copyFloats(target, 5, new Float32Array(6)), RangeError);
  assert.throws(() => copyFloats(target, -1, new Float32Array(1)), RangeError);
  assert.throws(() => copyFloats(target, 0.5, new Float32Array(1)), TypeError);
  assert.throws(() => copyFloats(new Uint8Array(8) as never, 0, new Float32Array(1)), TypeError);
  assert.throws(
    () => binding.copyFloats(target, 5, new Float32Array(6)),
    (err: unknown) => isVrepError(err) && err.code === 'ERR_INVALID_ARG',
  );
  assert.throws(
    () => binding.copyFloats(new Uint8Array(40) as never, 0, new Float32Array(1)),
    (err: unknown) => isVrepError(err) && err.code === 'ERR_INVALID_ARG',
  );
  assert.deepEqual(Array.from(target), new Array(10).fill(0));
});
