import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeBinaryBatch, encodeBinaryBatch } from '../../src/server/binary-batch.ts';
import { VrepError } from '../../src/errors.ts';

const HEADER_BYTES = 20;

function batch(ids: string[], dimension = 2): Uint8Array {
  const vectors = Float32Array.from({ length: ids.length * dimension }, (_, i) => i / 4);
  return encodeBinaryBatch({ ids, vectors, dimension, payloads: ids.map((_, i) => ({ n: i })) });
}

/** Where the id bytes start in a batch of `count` points of `dimension`. */
const idsAt = (count: number, dimension: number): number => HEADER_BYTES + 8 * count + 4 * count * dimension;

function assertInvalid(body: Uint8Array, dimension: number, message: RegExp): void {
  assert.throws(
    () => decodeBinaryBatch(body, dimension),
    (err: unknown) =>
      err instanceof VrepError && err.code === 'ERR_INVALID_INPUT' && message.test(err.message),
  );
}

test('ASCII ids are cut out of one string; payloads and vectors are views of the body', () => {
  const ids = ['a', 'point-17', 'x'.repeat(256), '0'];
  const body = batch(ids);
  const decoded = decodeBinaryBatch(body, 2);
  assert.deepEqual(decoded.ids, ids);
  assert.deepEqual(
    decoded.payloads.map((p) => JSON.parse(new TextDecoder().decode(p)) as unknown),
    ids.map((_, i) => ({ n: i })),
  );
  assert.deepEqual([...decoded.vectors], [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75]);
  // No copies of the vectors or payloads: changing the body shows through.
  assert.equal(decoded.vectors.buffer, body.buffer);
  assert.equal(decoded.payloads[0]?.buffer, body.buffer);
});

test('non-ASCII ids are decoded one by one, each as valid UTF-8', () => {
  const ids = ['é', 'plain', '日本語', '🙂x'];
  assert.deepEqual(decodeBinaryBatch(batch(ids), 2).ids, ids);
});

test('an id that is not valid UTF-8 is refused naming the point, even when the id bytes together are', () => {
  // "é" is c3 a9: ids "a\xc3" and "\xa9b" are each invalid, their concatenation "aéb" is not.
  const body = batch(['a?', '?b']);
  const at = idsAt(2, 2);
  body[at + 1] = 0xc3;
  body[at + 2] = 0xa9;
  assertInvalid(body, 2, /^binary batch: points\[0\]\.id: not valid UTF-8$/);
  const lone = batch(['ok', 'no']);
  lone[idsAt(2, 2) + 3] = 0xff;
  assertInvalid(lone, 2, /^binary batch: points\[1\]\.id: not valid UTF-8$/);
});

test('a body in a Buffer at an odd offset decodes the same (the vectors copied to align them)', () => {
  const ids = ['p1', 'p2'];
  const body = batch(ids);
  const holder = Buffer.alloc(body.length + 3);
  holder.set(body, 3);
  const decoded = decodeBinaryBatch(holder.subarray(3), 2);
  assert.deepEqual(decoded.ids, ids);
  assert.deepEqual([...decoded.vectors], [0, 0.25, 0.5, 0.75]);
  assert.deepEqual(
    decoded.payloads.map((p) => new TextDecoder().decode(p)),
    ['{"n":0}', '{"n":1}'],
  );
});

test('malformed framing gives ERR_INVALID_INPUT naming what is wrong, before anything is allocated', () => {
  const good = batch(['a', 'b']);
  const withWord = (at: number, value: number): Uint8Array => {
    const copy = good.slice();
    new DataView(copy.buffer).setUint32(at, value, true);
    return copy;
  };
  assertInvalid(good.subarray(0, 10), 2, /10 bytes, shorter than the 20-byte header/);
  assertInvalid(withWord(0, 0x12345678), 2, /bad magic/);
  assertInvalid(withWord(4, 0), 2, /count: expected 1 to 100000, got 0/);
  assertInvalid(withWord(4, 4_000_000_000), 2, /count: expected 1 to 100000, got 4000000000/);
  assertInvalid(good, 3, /dimension: the collection has 3, the batch says 2/);
  assertInvalid(good.subarray(0, good.length - 1), 2, /the header describes \d+ bytes, the body has/);
  assertInvalid(withWord(12, 0xffff_ffff), 2, /the header describes/);
  // The id lengths run past the id bytes / leave some uncovered.
  assertInvalid(withWord(HEADER_BYTES, 5), 2, /points\[0\]\.id: runs past the id bytes/);
  assertInvalid(withWord(HEADER_BYTES, 0), 2, /ids: 1 bytes not covered by the id lengths/);
  assertInvalid(withWord(HEADER_BYTES + 8, 100), 2, /points\[0\]\.payload: runs past the payload bytes/);
  assertInvalid(withWord(HEADER_BYTES + 8, 0), 2, /payloads: 7 bytes not covered by the payload lengths/);
});
