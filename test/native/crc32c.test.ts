import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { crc32c, crc32cCombine, crc32cImplementation, crc32cSoftware } from '../../src/native/crc32c.ts';
import { binding } from '../../src/native/addon.ts';
import { isVrepError } from '../../src/errors.ts';

/** Bit-at-a-time reference, straight from the definition (reflected 0x82F63B78). */
function crc32cReference(data: Uint8Array, previous = 0): number {
  let crc = ~previous >>> 0;
  for (const byte of data) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const filled = (n: number, f: (i: number) => number): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => f(i));

// RFC 3720 (iSCSI) appendix B.4 vectors and the usual check value.
const vectors: [string, Uint8Array, number][] = [
  ['"123456789"', text('123456789'), 0xe3069283],
  ['empty', new Uint8Array(0), 0],
  ['32 zero bytes', new Uint8Array(32), 0x8a9136aa],
  ['32 0xff bytes', new Uint8Array(32).fill(0xff), 0x62a8ab43],
  ['0..31', filled(32, (i) => i), 0x46dd794e],
  ['31..0', filled(32, (i) => 31 - i), 0x113fdb5c],
];

test('crc32c matches the known vectors on both paths', () => {
  for (const [name, data, expected] of vectors) {
    assert.equal(crc32c(data), expected, `hardware-or-default: ${name}`);
    assert.equal(crc32cSoftware(data), expected, `software: ${name}`);
    assert.equal(crc32cReference(data), expected, `reference: ${name}`);
  }
});

test('crc32cImplementation names a known path', () => {
  assert.ok(['sse4.2', 'armv8-crc', 'software'].includes(crc32cImplementation()));
});

test('crc32c equals the reference and the software path on random data (any offset, any length)', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 3000 }),
      fc.nat(7),
      fc.integer({ min: 0, max: 0xffffffff }),
      (bytes, shift, previous) => {
        // A subarray at an odd offset exercises the unaligned loads.
        const data = bytes.subarray(Math.min(shift, bytes.length));
        const expected = crc32cReference(data, previous);
        assert.equal(crc32c(data, previous), expected);
        assert.equal(crc32cSoftware(data, previous), expected);
      },
    ),
    { numRuns: 300 },
  );
});

test('incremental chaining equals one shot', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), fc.array(fc.nat(), { maxLength: 5 }), (data, cuts) => {
      const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
      let crc = 0;
      let crcSoft = 0;
      let at = 0;
      for (const p of [...points, data.length]) {
        crc = crc32c(data.subarray(at, p), crc);
        crcSoft = crc32cSoftware(data.subarray(at, p), crcSoft);
        at = p;
      }
      const whole = crc32c(data);
      assert.equal(crc, whole);
      assert.equal(crcSoft, whole);
    }),
    { numRuns: 200 },
  );
});

test('combine: crc32cCombine(crc(a), crc(b), |b|) is crc(a || b), for any split and for empty parts', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 5000 }), fc.nat(), (data, cut) => {
      const at = cut % (data.length + 1);
      const a = data.subarray(0, at);
      const b = data.subarray(at);
      assert.equal(crc32cCombine(crc32c(a), crc32c(b), b.length), crc32c(data));
    }),
    { numRuns: 300 },
  );
  // Long runs of zeros exercise the high powers (a few MB, as a RECORDS payload).
  const big = new Uint8Array(3 * 1024 * 1024 + 17);
  big[5] = 1;
  big[big.length - 1] = 0xff;
  const head = big.subarray(0, 40);
  const tail = big.subarray(40);
  assert.equal(crc32cCombine(crc32c(head), crc32c(tail), tail.length), crc32c(big));
  assert.equal(crc32cCombine(0x12345678, 0, 0), 0x12345678);
});

test('combine refuses values that are not CRCs or lengths', () => {
  for (const [a, b, n] of [
    [-1, 0, 0],
    [2 ** 32, 0, 0],
    [0, 1.5, 0],
    [0, 0, -1],
    [0, 0, 2 ** 53],
    [0, 0, NaN],
  ] as const) {
    assert.throws(
      () => crc32cCombine(a, b, n),
      (e) => e instanceof RangeError || e instanceof TypeError,
    );
    assert.throws(
      () => binding.crc32cCombine(a, b, n),
      (e) => isVrepError(e, 'ERR_INVALID_ARG'),
    );
  }
  assert.throws(
    () => (binding.crc32cCombine as (...a: unknown[]) => number)(1, 2),
    (e) => isVrepError(e, 'ERR_INVALID_ARG'),
  );
});

test('a large buffer agrees across paths', () => {
  const data = filled(1 << 20, (i) => (i * 2654435761) >>> 24);
  assert.equal(crc32c(data), crc32cSoftware(data));
  assert.equal(crc32c(Buffer.from(data)), crc32cSoftware(data), 'a Buffer is a Uint8Array');
  // Lengths around the hardware path's 3 x 256-byte blocks and 8-byte steps.
  for (const base of [0, 768, 1536, 2304]) {
    for (let n = Math.max(0, base - 9); n <= base + 9; n++) {
      const slice = data.subarray(5, 5 + n);
      assert.equal(crc32c(slice), crc32cReference(slice), `length ${n}`);
    }
  }
});

test('wrong types and values throw, never crash', () => {
  const bad: unknown[] = ['abc', 42, null, undefined, [1, 2], new Float32Array(4), new ArrayBuffer(4)];
  for (const value of bad) {
    assert.throws(() => crc32c(value as Uint8Array), TypeError);
    assert.throws(
      () => (binding.crc32c as (x: unknown) => number)(value),
      (e) => isVrepError(e, 'ERR_INVALID_ARG'),
    );
  }
  for (const previous of [-1, 2 ** 32, 1.5, NaN]) {
    assert.throws(
      () => crc32c(new Uint8Array(1), previous),
      (e) => e instanceof RangeError || e instanceof TypeError,
    );
    assert.throws(
      () => binding.crc32c(new Uint8Array(1), previous),
      (e) => isVrepError(e, 'ERR_INVALID_ARG'),
    );
  }
  assert.throws(
    () => (binding.crc32cSoftware as (...a: unknown[]) => number)(new Uint8Array(1), 'x'),
    (e) => isVrepError(e, 'ERR_INVALID_ARG'),
  );
  assert.throws(
    () => (binding.crc32c as (...a: unknown[]) => number)(),
    (e) => isVrepError(e, 'ERR_INVALID_ARG'),
  );
});
