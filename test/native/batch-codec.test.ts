import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  batchCodecLimits,
  compressBatch,
  compressBatchAsync,
  decompressBatch,
  decompressBatchAsync,
  inspectBatchFrame,
  partAsFloat32,
  shuffleBytes,
  unshuffleBytes,
  type BatchPart,
  type CompressBatchOptions,
} from '../../src/native/batch-codec.ts';
import { crc32c } from '../../src/native/crc32c.ts';
import { binding } from '../../src/native/addon.ts';
import { isVrepError, type ErrorCode } from '../../src/errors.ts';
import { randomBytes, rng, unitVectors } from './codec-fixtures.ts';

const LONG = process.env['VREP_TEST_SCALE'] === 'long';
const MiB = 1 << 20;
const HEADER_FIXED_BYTES = 28;

const bytesOf = (p: BatchPart): Uint8Array => new Uint8Array(p.buffer, p.byteOffset, p.byteLength);
const isCode =
  (...codes: ErrorCode[]) =>
  (e: unknown): boolean =>
    codes.some((c) => isVrepError(e, c));

function assertRoundTrip(parts: readonly BatchPart[], decoded: Uint8Array[]): void {
  assert.equal(decoded.length, parts.length);
  for (let i = 0; i < parts.length; i++) {
    const want = bytesOf(parts[i]!);
    const got = decoded[i]!;
    assert.equal(got.byteLength, want.byteLength, `part ${i} length`);
    assert.equal(got.byteOffset % batchCodecLimits.partAlignBytes, 0, `part ${i} alignment`);
    assert.ok(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(want), `part ${i} bytes`);
  }
}

// ---- arbitraries ------------------------------------------------------------

const specialFloats = [NaN, Infinity, -Infinity, 0, -0, 1e-45, -1e-45, 3.4e38, -3.4e38, 1, -1];

const floatPart = fc.oneof(
  fc.float32Array({ maxLength: 300 }),
  fc.array(fc.constantFrom(...specialFloats), { maxLength: 300 }).map((a) => Float32Array.from(a)),
  fc
    .record({ n: fc.nat(8), dim: fc.integer({ min: 1, max: 64 }), seed: fc.nat() })
    .map(({ n, dim, seed }) => unitVectors(n, dim, seed)),
);
const bytePart = fc.oneof(
  fc.uint8Array({ maxLength: 600 }),
  fc.nat(2000).map((n) => new Uint8Array(n)),
  fc.nat(2000).map((n) => randomBytes(n, n + 1)),
  fc.json().map((s) => new TextEncoder().encode(s)),
  fc.constantFrom(new Uint8Array(0), new Uint8Array([7])),
);
const part: fc.Arbitrary<BatchPart> = fc.oneof(floatPart, bytePart);
const batch = fc.array(part, { maxLength: 12 });
const options = (n: number): fc.Arbitrary<CompressBatchOptions> =>
  fc.record(
    {
      level: fc.constantFrom(-5, -1, 1, 2, 3, 6),
      store: fc.boolean(),
      shuffle: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
    },
    { requiredKeys: [] },
  );

/** Only Float32Array parts (or multiples of 4 bytes) may be shuffled. */
function fixShuffle(parts: readonly BatchPart[], opts: CompressBatchOptions): CompressBatchOptions {
  if (!Array.isArray(opts.shuffle)) return opts;
  return { ...opts, shuffle: opts.shuffle.map((f, i) => f && parts[i]!.byteLength % 4 === 0) };
}

// ---- round trips --------------------------------------------------------------

test('round trip: random and adversarial batches, levels, shuffle on/off, stored; sync and async agree', async () => {
  await fc.assert(
    fc.asyncProperty(
      batch.chain((parts) => fc.tuple(fc.constant(parts), options(parts.length))),
      async ([parts, rawOpts]) => {
        const opts = fixShuffle(parts, rawOpts);
        const frame = compressBatch(parts, opts);
        const frameAsync = await compressBatchAsync(parts, opts);
        assert.deepEqual(frameAsync, frame, 'async frame is byte-identical');
        const info = inspectBatchFrame(frame);
        assert.equal(info.partCount, parts.length);
        assert.equal(
          info.totalBytes,
          parts.reduce((s, p) => s + p.byteLength, 0),
        );
        if (opts.store) assert.equal(info.compressed, false);
        if (info.compressed) assert.ok(info.payloadBytes < info.totalBytes, 'compressed only when it pays');
        const maxBytes = info.totalBytes;
        assertRoundTrip(parts, decompressBatch(frame, { maxBytes }));
        assertRoundTrip(parts, await decompressBatchAsync(frame, { maxBytes }));
        const shared = await decompressBatchAsync(frame, { maxBytes, shared: true });
        assertRoundTrip(parts, shared);
        for (const p of shared)
          assert.ok(p.buffer instanceof SharedArrayBuffer, 'shared: views of one SharedArrayBuffer');
        if (shared.length > 0) assert.equal(shared[0]!.buffer.byteLength, info.outputBytes);
      },
    ),
    { numRuns: LONG ? 1000 : 150 },
  );
});

test('zero parts, empty parts and one byte', () => {
  for (const parts of [
    [],
    [new Uint8Array(0)],
    [new Uint8Array(0), new Float32Array(0)],
    [new Uint8Array([42])],
  ]) {
    for (const store of [false, true]) {
      const frame = compressBatch(parts, { store });
      assert.equal(inspectBatchFrame(frame).compressed, false, 'nothing to gain: stored');
      assertRoundTrip(parts, decompressBatch(frame, { maxBytes: 1 }));
    }
  }
});

test('float parts that are not a multiple of 4 bytes are refused when shuffled', async () => {
  const odd = new Uint8Array(7);
  assert.throws(() => compressBatch([odd], { shuffle: true }), RangeError);
  assert.throws(() => compressBatch([new Uint8Array(8), odd], { shuffle: [false, true] }), RangeError);
  await assert.rejects(compressBatchAsync([odd], { shuffle: true }), RangeError);
  // The native layer refuses it too (callers that bypass the wrapper).
  assert.throws(() => binding.compressBatch([odd], Uint8Array.of(4), 1, false, 0), isCode('ERR_INVALID_ARG'));
  assert.throws(() => binding.compressBatch([odd], Uint8Array.of(3), 1, false, 0), isCode('ERR_INVALID_ARG'));
  await assert.rejects(
    binding.compressBatchAsync([odd], Uint8Array.of(4), 1, false, 0),
    isCode('ERR_INVALID_ARG'),
  );
  // Unshuffled, an odd length is fine.
  assertRoundTrip([odd], decompressBatch(compressBatch([odd], { shuffle: false }), { maxBytes: 7 }));
});

test('large parts: MB-sized unit vectors, zeros and noise; shuffle helps on floats', async () => {
  const vectors = unitVectors(LONG ? 10_000 : 1_500, 768); // ~4.6 MB by default
  const zeros = new Uint8Array(3 * MiB);
  const noise = randomBytes(MiB, 99);
  const maxBytes = 64 * MiB;
  const shuffled = compressBatch([vectors], { shuffle: true });
  const plain = compressBatch([vectors], { shuffle: false });
  assert.ok(
    shuffled.byteLength < plain.byteLength,
    `shuffled ${shuffled.byteLength} < plain ${plain.byteLength}`,
  );
  assert.ok(shuffled.byteLength < vectors.byteLength * 0.95, 'shuffle+zstd compresses unit-norm floats');
  assertRoundTrip([vectors], decompressBatch(shuffled, { maxBytes }));
  assertRoundTrip([vectors], await decompressBatchAsync(shuffled, { maxBytes }));
  const floats = partAsFloat32(decompressBatch(shuffled, { maxBytes })[0]!);
  assert.deepEqual(floats, vectors);

  const mixed: BatchPart[] = [zeros, vectors, noise, new TextEncoder().encode('{"a":1}')];
  const frame = compressBatch(mixed, { level: 3 });
  assert.deepEqual(await compressBatchAsync(mixed, { level: 3 }), frame);
  assertRoundTrip(mixed, decompressBatch(frame, { maxBytes }));
  // zstd worker threads: same format, same content, and the same bytes for any worker count >= 1.
  const threaded = compressBatch(mixed, { level: 3, workers: 2 });
  assertRoundTrip(mixed, decompressBatch(threaded, { maxBytes }));
  assert.deepEqual(await compressBatchAsync(mixed, { level: 3, workers: 2 }), threaded);
  assertRoundTrip(mixed, await decompressBatchAsync(threaded, { maxBytes }));

  const incompressible = compressBatch([noise]);
  assert.equal(inspectBatchFrame(incompressible).compressed, false, 'random bytes are stored');
  assert.ok(incompressible.byteLength < noise.byteLength + 64);
  assertRoundTrip([noise], decompressBatch(incompressible, { maxBytes }));
});

test('many tiny parts', async () => {
  const next = rng(5);
  const parts = Array.from({ length: 20_000 }, (_, i) =>
    i % 3 === 0 ? Float32Array.of(next()) : randomBytes((next() * 4) | 0, i + 1),
  );
  const frame = compressBatch(parts);
  assertRoundTrip(parts, decompressBatch(frame, { maxBytes: MiB }));
  assertRoundTrip(parts, await decompressBatchAsync(frame, { maxBytes: MiB }));
});

test('high levels and negative levels round-trip', () => {
  const parts = [unitVectors(20, 64), new TextEncoder().encode('payload '.repeat(200))];
  for (const level of [batchCodecLimits.minLevel, -1, 0, 19, batchCodecLimits.maxLevel]) {
    assertRoundTrip(parts, decompressBatch(compressBatch(parts, { level }), { maxBytes: MiB }));
  }
});

test('concurrent async calls each get their own result', async () => {
  const batches = Array.from({ length: 16 }, (_, i) => [unitVectors(50, 32, i + 1), randomBytes(100 * i, i)]);
  const frames = await Promise.all(batches.map((b) => compressBatchAsync(b)));
  frames.forEach((f, i) => assert.deepEqual(f, compressBatch(batches[i]!)));
  const decoded = await Promise.all(frames.map((f) => decompressBatchAsync(f, { maxBytes: MiB })));
  decoded.forEach((d, i) => assertRoundTrip(batches[i]!, d));
});

// ---- damaged frames -----------------------------------------------------------

/** Decoding either fails with a frame error or returns exactly the original. */
function assertRefusedOrExact(parts: readonly BatchPart[], damaged: Uint8Array): void {
  let decoded: Uint8Array[];
  try {
    decoded = decompressBatch(damaged, { maxBytes: 64 * MiB });
  } catch (e) {
    assert.ok(isCode('ERR_CORRUPT_FRAME', 'ERR_FRAME_TOO_LARGE')(e), `unexpected error ${String(e)}`);
    return;
  }
  assertRoundTrip(parts, decoded);
}

const damageable = fc
  .tuple(fc.array(part, { minLength: 1, maxLength: 6 }), fc.boolean(), fc.constantFrom(1, 3))
  .map(([parts, store, level]) => ({ parts, frame: compressBatch(parts, { store, level }) }));

test('truncated frames are refused', () => {
  fc.assert(
    fc.property(damageable, fc.nat(), ({ frame }, cut) => {
      const at = cut % frame.byteLength; // strictly shorter
      assert.throws(
        () => decompressBatch(frame.subarray(0, at), { maxBytes: 64 * MiB }),
        isCode('ERR_CORRUPT_FRAME'),
      );
      // Trailing garbage is refused as well.
      const longer = new Uint8Array(frame.byteLength + 1 + (cut % 7));
      longer.set(frame);
      assert.throws(() => decompressBatch(longer, { maxBytes: 64 * MiB }), isCode('ERR_CORRUPT_FRAME'));
    }),
    { numRuns: LONG ? 2000 : 300 },
  );
});

test('bit flips anywhere are refused (the frame CRC covers every byte)', () => {
  let refused = 0;
  let flips = 0;
  fc.assert(
    fc.property(damageable, fc.array(fc.nat(), { minLength: 1, maxLength: 3 }), ({ parts, frame }, bits) => {
      const damaged = frame.slice();
      for (const b of bits) damaged[(b >>> 3) % damaged.length]! ^= 1 << (b & 7);
      if (Buffer.from(damaged).equals(frame)) return; // two flips cancelled out
      flips++;
      try {
        decompressBatch(damaged, { maxBytes: 64 * MiB });
      } catch {
        refused++;
      }
      assertRefusedOrExact(parts, damaged);
    }),
    { numRuns: LONG ? 3000 : 400 },
  );
  // The frame CRC32C covers every byte: every 1-3 bit error is caught.
  assert.equal(refused, flips);
});

test('random payload behind a valid header is refused', () => {
  fc.assert(
    fc.property(damageable, fc.nat(), ({ parts, frame }, seed) => {
      const headerBytes = 32 + 8 * parts.length;
      const damaged = frame.slice();
      damaged.set(randomBytes(frame.length - headerBytes, seed + 1), headerBytes);
      assertRefusedOrExact(parts, damaged);
      if (damaged.length - headerBytes >= 8) {
        assert.throws(() => decompressBatch(damaged, { maxBytes: 64 * MiB }), isCode('ERR_CORRUPT_FRAME'));
      }
    }),
    { numRuns: LONG ? 1000 : 200 },
  );
});

test('async decoding refuses damaged frames with the same codes', async () => {
  const parts = [unitVectors(30, 16), new TextEncoder().encode('x'.repeat(500))];
  const frame = compressBatch(parts);
  const damaged = frame.slice();
  damaged[damaged.length - 3]! ^= 0x10; // inside the zstd payload
  assert.throws(() => decompressBatch(damaged, { maxBytes: MiB }), isCode('ERR_CORRUPT_FRAME'));
  await assert.rejects(decompressBatchAsync(damaged, { maxBytes: MiB }), isCode('ERR_CORRUPT_FRAME'));
  await assert.rejects(
    decompressBatchAsync(frame.subarray(0, 10), { maxBytes: MiB }),
    isCode('ERR_CORRUPT_FRAME'),
  );
  await assert.rejects(decompressBatchAsync(frame, { maxBytes: 10 }), isCode('ERR_FRAME_TOO_LARGE'));
});

// ---- size limits ----------------------------------------------------------------

/** Rewrites a one-part frame's declared sizes, with a valid frame CRC (header, then payload). */
function withDeclaredSize(frame: Uint8Array, totalBytes: number): Uint8Array {
  const out = frame.slice();
  const view = new DataView(out.buffer);
  view.setBigUint64(16, BigInt(totalBytes), true);
  view.setUint32(HEADER_FIXED_BYTES, totalBytes >>> 0, true);
  const crcAt = HEADER_FIXED_BYTES + 8 * view.getUint32(8, true);
  view.setUint32(crcAt, crc32c(out.subarray(crcAt + 4), crc32c(out.subarray(0, crcAt))), true);
  return out;
}

test('a frame declaring 2^40 bytes is refused before allocating', async () => {
  const frame = withDeclaredSize(compressBatch([new Uint8Array(100)]), 2 ** 40);
  assert.equal(new DataView(frame.buffer).getBigUint64(16, true), 2n ** 40n);
  assert.throws(() => decompressBatch(frame, { maxBytes: MiB }), isCode('ERR_FRAME_TOO_LARGE'));
  assert.throws(
    () => decompressBatch(frame, { maxBytes: 2 ** 50 }),
    isCode('ERR_FRAME_TOO_LARGE'),
    'hard limit',
  );
  await assert.rejects(decompressBatchAsync(frame, { maxBytes: MiB }), isCode('ERR_FRAME_TOO_LARGE'));
  await assert.rejects(
    decompressBatchAsync(frame, { maxBytes: MiB, shared: true }),
    isCode('ERR_FRAME_TOO_LARGE'),
  );
  assert.throws(() => inspectBatchFrame(frame), isCode('ERR_FRAME_TOO_LARGE'));

  // Within the hard limit but over the caller's: nothing is allocated.
  const claim = withDeclaredSize(compressBatch([new Uint8Array(100)]), 512 * MiB);
  const before = process.memoryUsage().arrayBuffers;
  for (let i = 0; i < 4; i++) {
    assert.throws(() => decompressBatch(claim, { maxBytes: MiB }), isCode('ERR_FRAME_TOO_LARGE'));
  }
  for (let i = 0; i < 4; i++) {
    await assert.rejects(
      decompressBatchAsync(claim, { maxBytes: MiB, shared: true }),
      isCode('ERR_FRAME_TOO_LARGE'),
    );
  }
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 * MiB, 'no 512 MiB buffer was made');
});

test("decoding into the caller's output: too small, overlapping or misaligned outputs are refused", async () => {
  const parts = [new Uint8Array(1000).fill(7), new Float32Array(300).fill(0.5)];
  const frame = compressBatch(parts);
  const { outputBytes } = inspectBatchFrame(frame);
  const into = (output: Uint8Array): Promise<number[]> => binding.decompressBatchAsync(frame, MiB, output);
  const output = new Uint8Array(new SharedArrayBuffer(outputBytes + 8));
  const at = await into(output);
  assert.deepEqual(at, [0, 1000, 1000, 1200], '[offset, length] per part, offsets aligned to 8');
  assert.deepEqual(output.subarray(0, 1000), parts[0]);
  assert.deepEqual(new Float32Array(output.buffer, 1000, 300), parts[1]);
  // Bad arguments throw at the call, as the other argument checks do.
  assert.throws(() => into(new Uint8Array(outputBytes - 1)), isCode('ERR_INVALID_ARG'));
  assert.throws(() => into(output.subarray(4)), isCode('ERR_INVALID_ARG'));
  const both = new Uint8Array(frame.length + outputBytes + 16);
  both.set(frame);
  assert.throws(
    () => binding.decompressBatchAsync(both.subarray(0, frame.length), MiB, both.subarray(8)),
    isCode('ERR_INVALID_ARG'),
  );
  const syncWithOutput = binding.decompressBatch as (...args: unknown[]) => unknown;
  assert.throws(
    () => syncWithOutput(frame, MiB, output),
    isCode('ERR_INVALID_ARG'),
    'only the async call takes an output',
  );
  assert.throws(() => binding.inspectBatchFrame(frame, outputBytes / 2), isCode('ERR_FRAME_TOO_LARGE'));
});

test('a zstd bomb is refused with a small maxBytes, and a lying header is caught', () => {
  const bombBytes = 32 * MiB;
  const bomb = compressBatch([new Uint8Array(bombBytes)], { level: 3 });
  assert.ok(bomb.byteLength < 8192, `the bomb is small (${bomb.byteLength} bytes)`);
  assert.throws(() => decompressBatch(bomb, { maxBytes: MiB }), isCode('ERR_FRAME_TOO_LARGE'));
  // A header claiming little while zstd holds 32 MiB: the content sizes disagree.
  const liar = withDeclaredSize(bomb, 1000);
  assert.throws(() => decompressBatch(liar, { maxBytes: MiB }), isCode('ERR_CORRUPT_FRAME'));
  assert.equal(decompressBatch(bomb, { maxBytes: bombBytes })[0]!.byteLength, bombBytes);
});

// ---- shuffle ----------------------------------------------------------------------

function shuffleReference(src: Uint8Array, elementBytes: number): Uint8Array {
  const count = Math.floor(src.length / elementBytes);
  const out = src.slice();
  for (let i = 0; i < count; i++) {
    for (let k = 0; k < elementBytes; k++) out[k * count + i] = src[i * elementBytes + k]!;
  }
  return out;
}

test('shuffleBytes matches the reference and unshuffleBytes inverts it', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 1500 }),
      fc.integer({ min: 1, max: 17 }),
      fc.nat(5),
      (data, eb, off) => {
        const src = data.subarray(Math.min(off, data.length)); // unaligned on purpose
        const shuffled = new Uint8Array(src.length);
        shuffleBytes(src, shuffled, eb);
        assert.deepEqual(shuffled, shuffleReference(src, eb));
        const back = new Uint8Array(src.length);
        unshuffleBytes(shuffled, back, eb);
        assert.deepEqual(back, src);
      },
    ),
    { numRuns: 300 },
  );
  // Exactly the SIMD block sizes and their neighbours, element size 4.
  for (const n of [0, 4, 60, 64, 68, 128, 4096, 4100]) {
    const src = randomBytes(n, n + 3);
    const out = new Uint8Array(n);
    shuffleBytes(src, out, 4);
    assert.deepEqual(out, shuffleReference(src, 4), `length ${n}`);
  }
});

test('shuffle refuses bad arguments and overlapping buffers', () => {
  const buf = new Uint8Array(64);
  assert.throws(() => shuffleBytes(buf, new Uint8Array(63), 4), RangeError);
  assert.throws(() => shuffleBytes(buf, new Uint8Array(64), 0), RangeError);
  assert.throws(() => shuffleBytes(buf, new Uint8Array(64), 256), RangeError);
  assert.throws(() => unshuffleBytes('x' as unknown as Uint8Array, buf, 4), TypeError);
  assert.throws(() => shuffleBytes(buf.subarray(0, 32), buf.subarray(16, 48), 4), isCode('ERR_INVALID_ARG'));
  assert.throws(() => binding.shuffleBytes(buf, buf, 4), isCode('ERR_INVALID_ARG'));
  assert.throws(() => binding.unshuffleBytes(buf, new Uint8Array(64), 2.5), isCode('ERR_INVALID_ARG'));
  assert.throws(() => binding.shuffleBytes(new Float32Array(16) as never, buf, 4), isCode('ERR_INVALID_ARG'));
});

// ---- wrong types ----------------------------------------------------------------

test('wrong types and values throw from the wrappers, never crash', async () => {
  const u8 = new Uint8Array(8);
  const call = (f: () => unknown): void =>
    assert.throws(f, (e) => e instanceof TypeError || e instanceof RangeError);
  call(() => compressBatch('parts' as never));
  call(() => compressBatch([u8, 'x' as never]));
  call(() => compressBatch([u8, new Float64Array(2) as never]));
  call(() => compressBatch([u8], { level: 1.5 }));
  call(() => compressBatch([u8], { level: 99 }));
  call(() => compressBatch([u8], { shuffle: [true, false] }));
  call(() => compressBatch([u8], { shuffle: 'yes' as never }));
  call(() => compressBatch([u8], { shuffle: [1] as never }));
  call(() => compressBatch([u8], { store: 1 as never }));
  call(() => compressBatch([u8], { workers: batchCodecLimits.maxWorkers + 1 }));
  call(() => compressBatch([u8], { workers: 0.5 }));
  call(() => compressBatch([u8], null as never));
  call(() => decompressBatch(new Float32Array(8) as never, { maxBytes: 1 }));
  call(() => decompressBatch(u8, { maxBytes: -1 }));
  call(() => decompressBatch(u8, {} as never));
  call(() => decompressBatch(u8, null as never));
  call(() => partAsFloat32(new Uint8Array(8).subarray(1, 5)));
  await assert.rejects(compressBatchAsync('x' as never), TypeError);
  await assert.rejects(decompressBatchAsync(u8, { maxBytes: -1 }), RangeError);
});

test('the raw binding checks its arguments too', async () => {
  const u8 = new Uint8Array(8);
  const invalid = isCode('ERR_INVALID_ARG');
  const raw = binding as unknown as Record<string, (...a: unknown[]) => unknown>;
  const cases: [string, unknown[]][] = [
    ['compressBatch', []],
    ['compressBatch', [[u8], new Uint8Array(1), 1, false]],
    ['compressBatch', ['x', new Uint8Array(0), 1, false, 0]],
    ['compressBatch', [[u8], new Uint8Array(2), 1, false, 0]],
    ['compressBatch', [[u8], new Uint8Array(1), 1.5, false, 0]],
    ['compressBatch', [[u8], new Uint8Array(1), 1, 'no', 0]],
    ['compressBatch', [[u8], new Uint8Array(1), 1, false, 9]],
    ['compressBatch', [[u8], new Uint8Array(1), 1, false, -1]],
    ['compressBatch', [[{}], new Uint8Array(1), 1, false, 0]],
    ['compressBatch', [[new Int8Array(4)], new Uint8Array(1), 1, false, 0]],
    ['decompressBatch', [u8]],
    ['decompressBatch', [u8, -1]],
    ['decompressBatch', [u8, 2 ** 60]],
    ['decompressBatch', [[1, 2], 10]],
    ['inspectBatchFrame', [42]],
  ];
  for (const [fn, args] of cases)
    assert.throws(() => raw[fn]!(...args), invalid, `${fn}(${args.length} args)`);
  assert.throws(() => raw['compressBatchAsync']!([u8], u8, 1, false, 0), invalid);
  assert.throws(() => raw['decompressBatchAsync']!(u8, 'big'), invalid);
  // Garbage frames of every small length.
  for (let n = 0; n < 80; n++) {
    assert.throws(() => binding.decompressBatch(randomBytes(n, n + 11), MiB), isCode('ERR_CORRUPT_FRAME'));
  }
  await assert.rejects(binding.decompressBatchAsync(new Uint8Array(0), MiB), isCode('ERR_CORRUPT_FRAME'));
});
