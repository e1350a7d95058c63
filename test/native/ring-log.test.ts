import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RingLog, RingReader, RING_MAX_LSN, type RingHandle } from '../../src/native/ring-log.ts';
import { binding } from '../../src/native/addon.ts';
import { VrepError, isVrepError, ErrorCodes } from '../../src/errors.ts';

/** Deterministic record content: distinct per LSN and per byte. */
function recordBytes(lsn: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let j = 0; j < length; j++) out[j] = (lsn * 131 + j * 7 + (lsn >>> 8)) & 255;
  return out;
}

/** The reference: an array of records, evicting from the front. */
class ModelRing {
  readonly records: { lsn: number; data: Uint8Array }[] = [];
  bytes = 0;
  next: number;
  constructor(
    readonly capacityBytes: number,
    readonly capacityRecords: number,
    startLsn: number,
  ) {
    this.next = startLsn;
  }
  first(): number {
    return this.records[0]?.lsn ?? this.next;
  }
  last(): number {
    return this.next - 1;
  }
  append(data: Uint8Array): number {
    const lsn = this.next++;
    this.records.push({ lsn, data });
    this.bytes += data.length;
    while (this.records.length > this.capacityRecords || this.bytes > this.capacityBytes) {
      this.bytes -= this.records.shift()!.data.length;
    }
    return lsn;
  }
  truncateAfter(lsn: number): number {
    const kept = this.records.filter((r) => r.lsn <= lsn);
    const dropped = Math.max(0, this.next - 1 - lsn);
    this.records.length = 0;
    this.records.push(...kept);
    this.bytes = kept.reduce((n, r) => n + r.data.length, 0);
    if (lsn + 1 < this.next) this.next = lsn + 1;
    return dropped;
  }
  /** Same contract as RingReader.read: records copied, or the error code. */
  read(from: number, to: number, room: number, maxRecords: number): Uint8Array[] | string {
    if (from < this.first()) return ErrorCodes.LsnEvicted;
    if (from > this.last()) return ErrorCodes.LsnNotYetWritten;
    const got: Uint8Array[] = [];
    let used = 0;
    for (const r of this.records) {
      if (r.lsn < from || r.lsn > to || got.length === maxRecords) continue;
      if (used + r.data.length > room) break;
      got.push(r.data);
      used += r.data.length;
    }
    return got.length === 0 ? ErrorCodes.BufferTooSmall : got;
  }
}

function ringRead(
  ring: RingReader,
  from: number,
  to: number,
  room: number,
  maxRecords: number,
): Uint8Array[] | string {
  const out = new Uint8Array(room);
  const lens = new Uint32Array(maxRecords);
  try {
    const n = ring.read(from, to, out, lens);
    const got: Uint8Array[] = [];
    let at = 0;
    for (let i = 0; i < n; i++) {
      got.push(out.slice(at, at + lens[i]!));
      at += lens[i]!;
    }
    return got;
  } catch (err) {
    if (err instanceof VrepError) return err.code;
    throw err;
  }
}

type Op =
  | { kind: 'append'; length: number }
  | { kind: 'batch'; lengths: number[] }
  | { kind: 'read'; fromDelta: number; span: number; room: number; maxRecords: number }
  | { kind: 'truncate'; back: number }
  | { kind: 'peek'; fromDelta: number; offset: number; room: number };

function opArb(capacityBytes: number): fc.Arbitrary<Op> {
  // Sizes: empty, small, and near capacity (so a record evicts everything).
  const length = fc.oneof(
    fc.constant(0),
    fc.integer({ min: 0, max: Math.max(0, Math.floor(capacityBytes / 4)) }),
    fc.integer({ min: Math.max(0, capacityBytes - 3), max: capacityBytes }),
  );
  return fc.oneof(
    fc.record({ kind: fc.constant('append' as const), length }),
    fc.record({ kind: fc.constant('batch' as const), lengths: fc.array(length, { maxLength: 6 }) }),
    fc.record({
      kind: fc.constant('read' as const),
      fromDelta: fc.integer({ min: -3, max: 12 }),
      span: fc.integer({ min: 0, max: 12 }),
      room: fc.integer({ min: 0, max: capacityBytes + 4 }),
      maxRecords: fc.integer({ min: 1, max: 8 }),
    }),
    fc.record({ kind: fc.constant('truncate' as const), back: fc.integer({ min: 0, max: 12 }) }),
    fc.record({
      kind: fc.constant('peek' as const),
      fromDelta: fc.integer({ min: -2, max: 10 }),
      offset: fc.integer({ min: 0, max: capacityBytes + 2 }),
      room: fc.integer({ min: 0, max: 8 }),
    }),
  );
}

test('ring answers like the model: appends, batches, reads, peeks, eviction, truncation (property)', () => {
  const scenario = fc
    .record({
      capacityBytes: fc.integer({ min: 1, max: 64 }),
      capacityRecords: fc.integer({ min: 1, max: 9 }),
      startLsn: fc.oneof(
        fc.constant(1),
        fc.integer({ min: 1, max: 2 ** 40 }),
        fc.constant(RING_MAX_LSN - 400),
      ),
    })
    .chain((g) =>
      fc.tuple(fc.constant(g), fc.array(opArb(g.capacityBytes), { minLength: 1, maxLength: 60 })),
    );
  let evictedSeen = 0;
  let readsOk = 0;
  fc.assert(
    fc.property(scenario, ([g, ops]) => {
      let truncations = 0;
      const ring = new RingLog(g);
      const model = new ModelRing(g.capacityBytes, g.capacityRecords, g.startLsn);
      for (const op of ops) {
        if (op.kind === 'append') {
          const data = recordBytes(model.next, op.length);
          assert.equal(ring.append(data), model.append(data));
        } else if (op.kind === 'batch') {
          const expectedFirst = model.next;
          const parts = op.lengths.map((len, i) => recordBytes(expectedFirst + i, len));
          const data = new Uint8Array(op.lengths.reduce((a, b) => a + b, 0));
          let at = 0;
          for (const p of parts) {
            data.set(p, at);
            at += p.length;
          }
          assert.equal(ring.appendBatch(data, Uint32Array.from(op.lengths)), expectedFirst);
          for (const p of parts) model.append(p);
        } else if (op.kind === 'truncate') {
          const lsn = Math.max(0, model.last() - op.back);
          const dropped = model.truncateAfter(lsn);
          assert.equal(ring.truncateAfter(lsn), dropped);
          if (dropped > 0) truncations++;
          assert.equal(ring.truncations(), truncations);
        } else if (op.kind === 'peek') {
          const lsn = Math.max(1, model.first() + op.fromDelta);
          const out = new Uint8Array(op.room);
          let got: Uint8Array | string;
          try {
            const n = ring.peek(lsn, op.offset, out);
            got = out.slice(0, n);
          } catch (err) {
            got = (err as VrepError).code;
          }
          const rec = model.records.find((r) => r.lsn === lsn);
          const want =
            lsn < model.first()
              ? ErrorCodes.LsnEvicted
              : lsn > model.last() || !rec
                ? ErrorCodes.LsnNotYetWritten
                : rec.data.slice(op.offset, op.offset + op.room);
          assert.deepEqual(got, want, `peek(${lsn}, ${op.offset}, ${op.room})`);
        } else {
          const from = Math.max(1, model.first() + op.fromDelta);
          const to = Math.min(RING_MAX_LSN, from + op.span);
          const want = model.read(from, to, op.room, op.maxRecords);
          const got = ringRead(ring, from, to, op.room, op.maxRecords);
          assert.deepEqual(got, want, `read(${from}, ${to}, room ${op.room}, max ${op.maxRecords})`);
          if (want === ErrorCodes.LsnEvicted) evictedSeen++;
          if (Array.isArray(want)) readsOk++;
        }
        assert.equal(ring.firstLsn(), model.first());
        assert.equal(ring.lastLsn(), model.last());
      }
    }),
    { numRuns: process.env['VREP_TEST_SCALE'] === 'long' ? 4000 : 400 },
  );
  // The generator must actually exercise eviction and successful reads.
  assert.ok(evictedSeen > 0 && readsOk > 0, `evicted ${evictedSeen}, ok ${readsOk}`);
});

test('LSNs: start at startLsn, batches are contiguous, empty ring bounds', () => {
  const ring = new RingLog({ capacityBytes: 100, capacityRecords: 10, startLsn: 42 });
  assert.deepEqual(ring.bounds(), { firstLsn: 42, lastLsn: 41 });
  assert.equal(ring.append(new Uint8Array([1])), 42);
  assert.equal(ring.appendBatch(new Uint8Array([2, 3, 4]), new Uint32Array([1, 2, 0])), 43);
  assert.equal(ring.appendBatch(new Uint8Array(0), new Uint32Array(0)), 46);
  assert.deepEqual(ring.bounds(), { firstLsn: 42, lastLsn: 45 });
  const out = new Uint8Array(16);
  const lens = new Uint32Array(8);
  assert.equal(ring.read(42, 1000, out, lens), 4);
  assert.deepEqual([...lens.subarray(0, 4)], [1, 1, 2, 0]);
  assert.deepEqual([...out.subarray(0, 4)], [1, 2, 3, 4]);
});

test('a record of exactly capacityBytes evicts all others; one byte more is refused', () => {
  const ring = new RingLog({ capacityBytes: 8, capacityRecords: 4 });
  ring.append(new Uint8Array(3));
  ring.append(new Uint8Array(8).fill(9));
  assert.deepEqual(ring.bounds(), { firstLsn: 2, lastLsn: 2 });
  assert.throws(() => ring.append(new Uint8Array(9)), { code: 'ERR_RECORD_TOO_LARGE' });
  // A batch with one oversized record appends nothing.
  assert.throws(() => ring.appendBatch(new Uint8Array(10), new Uint32Array([1, 9])), {
    code: 'ERR_RECORD_TOO_LARGE',
  });
  assert.throws(() => ring.appendBatch(new Uint8Array(10), new Uint32Array([1, 2])), {
    code: 'ERR_INVALID_ARG',
  });
  assert.deepEqual(ring.bounds(), { firstLsn: 2, lastLsn: 2 });
});

test('LSN space ends at 2^53 - 1', () => {
  const ring = new RingLog({ capacityBytes: 8, capacityRecords: 2, startLsn: RING_MAX_LSN - 1 });
  assert.equal(ring.append(new Uint8Array(1)), RING_MAX_LSN - 1);
  assert.equal(ring.append(new Uint8Array(1)), RING_MAX_LSN);
  assert.throws(() => ring.append(new Uint8Array(1)), { code: 'ERR_INVALID_ARG' });
  assert.throws(() => ring.appendBatch(new Uint8Array(0), new Uint32Array([0])), { code: 'ERR_INVALID_ARG' });
  const lens = new Uint32Array(4);
  assert.equal(ring.read(RING_MAX_LSN - 1, RING_MAX_LSN, new Uint8Array(4), lens), 2);
});

test('wrong arguments throw JS errors from the wrappers', () => {
  const ring = new RingLog({ capacityBytes: 64, capacityRecords: 4 });
  ring.append(new Uint8Array(4));
  const out = new Uint8Array(64);
  const lens = new Uint32Array(4);
  const bad: [string, () => unknown, new (...a: never[]) => Error][] = [
    ['no options', () => new RingLog(undefined as never), TypeError],
    ['capacityBytes 0', () => new RingLog({ capacityBytes: 0, capacityRecords: 1 }), RangeError],
    ['capacityBytes NaN', () => new RingLog({ capacityBytes: NaN, capacityRecords: 1 }), TypeError],
    ['capacityBytes huge', () => new RingLog({ capacityBytes: 2 ** 40, capacityRecords: 1 }), RangeError],
    ['capacityRecords 1.5', () => new RingLog({ capacityBytes: 8, capacityRecords: 1.5 }), TypeError],
    ['startLsn 0', () => new RingLog({ capacityBytes: 8, capacityRecords: 1, startLsn: 0 }), RangeError],
    [
      'startLsn 2^53',
      () => new RingLog({ capacityBytes: 8, capacityRecords: 1, startLsn: 2 ** 53 }),
      RangeError,
    ],
    ['append string', () => ring.append('abc' as never), TypeError],
    ['append Float32Array', () => ring.append(new Float32Array(2) as never), TypeError],
    [
      'batch lengths Int32Array',
      () => ring.appendBatch(new Uint8Array(2), new Int32Array([2]) as never),
      TypeError,
    ],
    ['read from 0', () => ring.read(0, 1, out, lens), RangeError],
    ['read from -1', () => ring.read(-1, 1, out, lens), RangeError],
    ['read from NaN', () => ring.read(NaN, 1, out, lens), TypeError],
    ['read from 2^53', () => ring.read(2 ** 53, 2 ** 53, out, lens), RangeError],
    ['read to < from', () => ring.read(2, 1, out, lens), RangeError],
    ['read out Uint16Array', () => ring.read(1, 1, new Uint16Array(8) as never, lens), TypeError],
    ['read lens Uint8Array', () => ring.read(1, 1, out, new Uint8Array(4) as never), TypeError],
    ['read lens empty', () => ring.read(1, 1, out, new Uint32Array(0)), RangeError],
    ['reader of nothing', () => new RingReader(undefined as never), TypeError],
    ['reader of ArrayBuffer', () => new RingReader({ buffer: new ArrayBuffer(4096) } as never), TypeError],
  ];
  for (const [name, fn, type] of bad) assert.throws(fn, type, name);
  assert.throws(() => ring.read(1, 1, new Uint8Array(2), lens), { code: 'ERR_BUFFER_TOO_SMALL' });
  assert.throws(() => ring.read(2, 5, out, lens), { code: 'ERR_LSN_NOT_YET_WRITTEN' });
});

test('the raw binding checks its arguments too (no crash, coded errors)', () => {
  const size = binding.ringByteLength(64, 4);
  const sab = new SharedArrayBuffer(size);
  const writer = new binding.RingWriter(new Uint8Array(sab), 64, 4, 1);
  const reader = new binding.RingReader(new Uint8Array(sab));
  writer.append(new Uint8Array([1, 2]));
  const out = new Uint8Array(8);
  const lens = new Uint32Array(2);
  const raw = binding as unknown as Record<string, (...a: unknown[]) => unknown>;
  const rawReader = reader as unknown as Record<string, (...a: unknown[]) => unknown>;
  const rawWriter = writer as unknown as Record<string, (...a: unknown[]) => unknown>;
  const RawWriter = binding.RingWriter as unknown as new (...a: unknown[]) => unknown;
  const RawReader = binding.RingReader as unknown as new (...a: unknown[]) => unknown;
  const cases: [string, () => unknown][] = [
    ['byteLength no args', () => raw['ringByteLength']!()],
    ['byteLength 0', () => raw['ringByteLength']!(0, 1)],
    ['byteLength too many records', () => raw['ringByteLength']!(1, 2 ** 30)],
    ['writer on ArrayBuffer', () => new RawWriter(new Uint8Array(size), 64, 4, 1)],
    ['writer wrong size', () => new RawWriter(new Uint8Array(new SharedArrayBuffer(size + 1)), 64, 4, 1)],
    [
      'writer unaligned view',
      () => new RawWriter(new Uint8Array(new SharedArrayBuffer(size + 8), 1, size), 64, 4, 1),
    ],
    ['writer startLsn 0', () => new RawWriter(new Uint8Array(new SharedArrayBuffer(size)), 64, 4, 0)],
    ['second writer', () => new RawWriter(new Uint8Array(sab), 64, 4, 1)],
    ['writer Int8Array', () => new RawWriter(new Int8Array(sab), 64, 4, 1)],
    ['append no args', () => rawWriter['append']!()],
    ['append number', () => rawWriter['append']!(5)],
    ['append too large', () => rawWriter['append']!(new Uint8Array(65))],
    ['batch lengths mismatch', () => rawWriter['appendBatch']!(new Uint8Array(3), new Uint32Array([1]))],
    ['batch lengths Float64Array', () => rawWriter['appendBatch']!(new Uint8Array(3), new Float64Array([3]))],
    [
      'batch lengths overflow',
      () => rawWriter['appendBatch']!(new Uint8Array(0), new Uint32Array([2 ** 32 - 1, 1])),
    ],
    ['read NaN', () => rawReader['read']!(NaN, 1, out, lens)],
    ['read -1', () => rawReader['read']!(-1, 1, out, lens)],
    ['read Infinity', () => rawReader['read']!(1, Infinity, out, lens)],
    ['read 2^64', () => rawReader['read']!(1, 2 ** 64, out, lens)],
    ['read 1.5', () => rawReader['read']!(1.5, 2, out, lens)],
    ['read to < from', () => rawReader['read']!(3, 2, out, lens)],
    ['read BigInt', () => rawReader['read']!(1n, 2, out, lens)],
    ['read out missing', () => rawReader['read']!(1, 2)],
    ['read lens empty', () => rawReader['read']!(1, 2, out, new Uint32Array(0))],
    ['read into the ring', () => rawReader['read']!(1, 2, new Uint8Array(sab), lens)],
    ['read lens into the ring', () => rawReader['read']!(1, 2, out, new Uint32Array(sab, 0, 2))],
    ['reader no args', () => new RawReader()],
    ['reader Uint32Array', () => new RawReader(new Uint32Array(sab))],
  ];
  for (const [name, fn] of cases) {
    assert.throws(fn, (err: unknown) => err instanceof Error, name);
  }
  // The ring is intact afterwards.
  assert.equal(reader.read(1, 1, out, lens), 1);
  assert.deepEqual([...out.subarray(0, 2)], [1, 2]);
});

function formattedRing(): { handle: RingHandle; words: DataView } {
  const ring = new RingLog({ capacityBytes: 128, capacityRecords: 8 });
  for (let i = 0; i < 20; i++) ring.append(recordBytes(i + 1, i % 11));
  return { handle: ring.handle, words: new DataView(ring.handle.buffer) };
}

test('a foreign or corrupted header is refused when a reader attaches', () => {
  const corruptions: [string, (v: DataView) => void][] = [
    ['magic', (v) => v.setUint32(0, 0xdeadbeef, true)],
    ['version', (v) => v.setUint32(4, 99, true)],
    ['header size', (v) => v.setUint32(8, 64, true)],
    ['slot size', (v) => v.setUint32(12, 8, true)],
    ['capacityRecords 0', (v) => v.setUint32(16, 0, true)],
    ['capacityRecords larger', (v) => v.setUint32(16, 1000, true)],
    ['capacityBytes 0', (v) => v.setBigUint64(24, 0n, true)],
    ['capacityBytes huge', (v) => v.setBigUint64(24, 2n ** 62n, true)],
    ['capacityBytes larger', (v) => v.setBigUint64(24, 129n, true)],
    ['startLsn 0', (v) => v.setBigUint64(32, 0n, true)],
    ['total bytes', (v) => v.setBigUint64(40, 1n, true)],
    ['data offset', (v) => v.setBigUint64(48, 8n, true)],
  ];
  for (const [name, corrupt] of corruptions) {
    const { handle, words } = formattedRing();
    assert.doesNotThrow(() => new RingReader(handle), `${name}: intact`);
    corrupt(words);
    assert.throws(
      () => new RingReader(handle),
      (e: unknown) => isVrepError(e, ErrorCodes.CorruptFrame),
      name,
    );
  }
  assert.throws(() => new RingReader({ buffer: new SharedArrayBuffer(16) }), { code: 'ERR_CORRUPT_FRAME' });
  assert.throws(() => new RingReader({ buffer: new SharedArrayBuffer(4096) }), { code: 'ERR_CORRUPT_FRAME' });
  const random = new SharedArrayBuffer(4096);
  new Uint8Array(random).forEach((_, i, a) => (a[i] = (i * 97 + 13) & 255));
  assert.throws(() => new RingReader({ buffer: random }), { code: 'ERR_CORRUPT_FRAME' });
});

test('scribbling on head, tail and index slots never crashes a reader (property)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 64, max: 192 + 8 * 24 - 1 }), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 40,
      }),
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 0, max: 40 }),
      ([...scribbles], from, span) => {
        const { handle } = formattedRing();
        const reader = new RingReader(handle);
        const bytes = new Uint8Array(handle.buffer);
        for (const [at, value] of scribbles) bytes[at] = value;
        const out = new Uint8Array(64);
        const lens = new Uint32Array(8);
        try {
          const n = reader.read(from, from + span, out, lens);
          assert.ok(n >= 0 && n <= lens.length);
          let total = 0;
          for (let i = 0; i < n; i++) total += lens[i]!;
          assert.ok(total <= out.length);
        } catch (err) {
          assert.ok(err instanceof VrepError, String(err));
        }
        reader.firstLsn();
        reader.lastLsn();
      },
    ),
    { numRuns: 500 },
  );
});

test('truncateAfter drops the tail; the next append reuses the LSN with new bytes; below the oldest empties the ring', () => {
  const ring = new RingLog({ capacityBytes: 64, capacityRecords: 8 });
  for (let i = 1; i <= 5; i++) ring.append(new Uint8Array(4).fill(i));
  assert.equal(ring.truncateAfter(3), 2);
  assert.equal(ring.truncations(), 1);
  assert.deepEqual(ring.bounds(), { firstLsn: 1, lastLsn: 3 });
  assert.equal(ring.append(new Uint8Array(4).fill(40)), 4);
  const out = new Uint8Array(64);
  const lens = new Uint32Array(8);
  assert.equal(ring.read(3, 10, out, lens), 2);
  assert.deepEqual([...out.subarray(0, 8)], [3, 3, 3, 3, 40, 40, 40, 40]);
  const field = new Uint8Array(2);
  assert.equal(ring.peek(4, 2, field), 2);
  assert.deepEqual([...field], [40, 40]);
  assert.equal(ring.truncateAfter(10), 0, 'nothing above the last record: a no-op');
  assert.equal(ring.truncations(), 1);
  // Evict LSN 1..2, then truncate below the oldest held: empty, continuing at 1.
  for (let i = 0; i < 12; i++) ring.append(new Uint8Array(4));
  assert.ok(ring.firstLsn() > 2);
  ring.truncateAfter(1);
  assert.deepEqual(ring.bounds(), { firstLsn: 2, lastLsn: 1 });
  assert.equal(ring.append(new Uint8Array(1)), 2);
  assert.throws(() => ring.read(1, 1, out, lens), { code: 'ERR_LSN_EVICTED' });
});
