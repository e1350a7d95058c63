import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeFrame,
  encodeFrame,
  encodeFrameInPlace,
  FRAME_HEADER_BYTES,
  FrameError,
  FrameFlags,
  FrameType,
  MAX_FRAME_SEQ,
  type FrameRejectReason,
} from '../../src/transport/frame.ts';
import { ErrorCodes } from '../../src/errors.ts';
import { crc32c } from '../../src/native/crc32c.ts';

const MAX = 1 << 16;
const types = Object.values(FrameType);
const arbFrame = fc.record({
  type: fc.constantFrom(...types),
  flags: fc.constantFrom(0, FrameFlags.Compressed),
  seq: fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: MAX_FRAME_SEQ })),
  payload: fc.uint8Array({ maxLength: 2048 }),
});

function rejects(fn: () => unknown, reasons?: FrameRejectReason[]): FrameError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof FrameError, `expected FrameError, got ${String(err)}`);
    if (reasons) assert.ok(reasons.includes(err.reason), `reason ${err.reason} not in ${reasons.join(',')}`);
    return err;
  }
  assert.fail('frame was accepted');
}

test('round trip: every field and the payload come back', () => {
  fc.assert(
    fc.property(arbFrame, ({ type, flags, seq, payload }) => {
      const bytes = encodeFrame(type, flags, seq, payload);
      assert.equal(bytes.byteLength, FRAME_HEADER_BYTES + payload.byteLength);
      const frame = decodeFrame(bytes, { maxFrameBytes: MAX, expectedSeq: seq });
      assert.equal(frame.type, type);
      assert.equal(frame.flags, flags);
      assert.equal(frame.seq, seq);
      assert.deepEqual(frame.payload, payload);
    }),
  );
});

test('header layout is the documented one (docs/wire-protocol.md)', () => {
  const bytes = encodeFrame(FrameType.Records, FrameFlags.Compressed, 0x1_0000_0002, Uint8Array.of(7, 8, 9));
  assert.deepEqual(
    [...bytes.subarray(0, 20)],
    [0x56, 0x46, 1, 8, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0],
  );
  assert.deepEqual([...bytes.subarray(24)], [7, 8, 9]);
});

test('any truncation is rejected as truncated', () => {
  fc.assert(
    fc.property(arbFrame, fc.nat(), ({ type, flags, seq, payload }, cutSeed) => {
      const bytes = encodeFrame(type, flags, seq, payload);
      const keep = cutSeed % bytes.byteLength;
      rejects(
        () => decodeFrame(bytes.subarray(0, keep), { maxFrameBytes: MAX, expectedSeq: seq }),
        ['truncated'],
      );
    }),
  );
});

test('any single bit flip is rejected', () => {
  fc.assert(
    fc.property(arbFrame, fc.nat(), fc.integer({ min: 0, max: 7 }), (f, at, bit) => {
      const bytes = encodeFrame(f.type, f.flags, f.seq, f.payload);
      bytes[at % bytes.byteLength]! ^= 1 << bit;
      rejects(() => decodeFrame(bytes, { maxFrameBytes: MAX, expectedSeq: f.seq }));
    }),
  );
});

test('a flipped payload byte reads as bad-crc, an extra byte as trailing-bytes', () => {
  const bytes = encodeFrame(FrameType.Ack, 0, 1, new Uint8Array(100));
  bytes[FRAME_HEADER_BYTES + 50]! ^= 0x10;
  rejects(() => decodeFrame(bytes, { maxFrameBytes: MAX, expectedSeq: 1 }), ['bad-crc']);
  const good = encodeFrame(FrameType.Ack, 0, 1, new Uint8Array(10));
  const longer = new Uint8Array(good.byteLength + 1);
  longer.set(good);
  rejects(() => decodeFrame(longer, { maxFrameBytes: MAX, expectedSeq: 1 }), ['trailing-bytes']);
});

test('replayed, skipped or reordered frames are rejected as bad-seq', () => {
  fc.assert(
    fc.property(arbFrame, fc.integer({ min: 1, max: MAX_FRAME_SEQ }), (f, expected) => {
      fc.pre(expected !== f.seq);
      const bytes = encodeFrame(f.type, f.flags, f.seq, f.payload);
      const err = rejects(
        () => decodeFrame(bytes, { maxFrameBytes: MAX, expectedSeq: expected }),
        ['bad-seq'],
      );
      assert.equal(err.code, ErrorCodes.CorruptFrame);
    }),
  );
});

test('oversize: the declared length is refused before the payload is looked at', () => {
  // A bare header declaring 4 GiB: refused as too-large, not as truncated.
  const header = encodeFrame(FrameType.Records, 0, 1, new Uint8Array(0));
  new DataView(header.buffer).setUint32(16, 0xffffffff, true);
  const err = rejects(() => decodeFrame(header, { maxFrameBytes: MAX, expectedSeq: 1 }), ['too-large']);
  assert.equal(err.code, ErrorCodes.FrameTooLarge);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 4096 }), fc.integer({ min: 1, max: 64 }), (limitPayload, over) => {
      const bytes = encodeFrame(FrameType.SnapshotChunk, 0, 1, new Uint8Array(limitPayload + over));
      const maxFrameBytes = FRAME_HEADER_BYTES + limitPayload;
      rejects(() => decodeFrame(bytes, { maxFrameBytes, expectedSeq: 1 }), ['too-large']);
      const fits = encodeFrame(FrameType.SnapshotChunk, 0, 1, new Uint8Array(limitPayload));
      decodeFrame(fits, { maxFrameBytes, expectedSeq: 1 });
    }),
  );
});

test('header fields: bad magic, version, type, flags, reserved each have their reason', () => {
  const cases: [number, number, FrameRejectReason][] = [
    [0, 0x00, 'bad-magic'],
    [2, 2, 'bad-version'],
    [3, 0, 'unknown-type'],
    [3, 200, 'unknown-type'],
    [4, 0x80, 'bad-flags'],
    [6, 1, 'bad-reserved'],
  ];
  for (const [offset, value, reason] of cases) {
    const bytes = encodeFrame(FrameType.Hello, 0, 1, Uint8Array.of(1, 2, 3));
    bytes[offset] = value;
    rejects(() => decodeFrame(bytes, { maxFrameBytes: MAX, expectedSeq: 1 }), [reason]);
  }
});

test('garbage never throws anything but FrameError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 1, max: 5 }), (bytes, seq) => {
      try {
        decodeFrame(bytes, { maxFrameBytes: MAX, expectedSeq: seq });
      } catch (err) {
        assert.ok(err instanceof FrameError);
      }
    }),
  );
});

test('encodeFrame checks its arguments', () => {
  const p = new Uint8Array(1);
  assert.throws(() => encodeFrame(99 as FrameType, 0, 1, p), /type 99/);
  assert.throws(() => encodeFrame(FrameType.Ack, 0x40, 1, p), /flags/);
  assert.throws(() => encodeFrame(FrameType.Ack, 0, 0, p), /seq/);
  assert.throws(() => encodeFrame(FrameType.Ack, 0, 1.5, p), /seq/);
  assert.throws(() => encodeFrame(FrameType.Ack, 0, 1, [1] as unknown as Uint8Array), /Uint8Array/);
});

test('a payload CRC given by the sender gives the same bytes as summing the payload; a wrong one is refused', () => {
  fc.assert(
    fc.property(arbFrame, fc.uint8Array({ maxLength: 40 }), (f, prefix) => {
      const summed = encodeFrame(f.type, f.flags, f.seq, f.payload, prefix);
      const given = encodeFrame(f.type, f.flags, f.seq, f.payload, prefix, crc32c(f.payload));
      assert.deepEqual(given, summed);
      const wrong = encodeFrame(f.type, f.flags, f.seq, f.payload, prefix, (crc32c(f.payload) ^ 1) >>> 0);
      rejects(() => decodeFrame(wrong, { maxFrameBytes: MAX, expectedSeq: f.seq }), ['bad-crc']);
    }),
    { numRuns: 300 },
  );
});

test('a frame built in place in the room before its payload has the bytes encodeFrame copies; too little room is refused', () => {
  fc.assert(
    fc.property(arbFrame, fc.uint8Array({ maxLength: 40 }), fc.nat(16), (f, prefix, spare) => {
      const room = FRAME_HEADER_BYTES + prefix.length + spare;
      const buffer = new Uint8Array(room + f.payload.length).fill(0xee);
      buffer.set(f.payload, room);
      const payload = buffer.subarray(room);
      const copied = encodeFrame(f.type, f.flags, f.seq, f.payload, prefix);
      for (const crc of [undefined, crc32c(f.payload)]) {
        const inPlace = encodeFrameInPlace(f.type, f.flags, f.seq, payload, prefix, crc);
        assert.equal(inPlace.buffer, buffer.buffer);
        assert.deepEqual(new Uint8Array(inPlace), copied);
      }
      assert.deepEqual(payload, f.payload);
      // A prefix one byte longer than the room left for it.
      const tooLong = new Uint8Array(room - FRAME_HEADER_BYTES + 1);
      assert.throws(() => encodeFrameInPlace(f.type, f.flags, f.seq, payload, tooLong), /need/);
    }),
    { numRuns: 300 },
  );
});
