import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeRecord, encodeRecord, Op, recordLsn, type LogRecord } from '../../src/log/record.ts';
import { isVrepError } from '../../src/errors.ts';
import { scale } from '../helpers/tmp.ts';

const enc = new TextEncoder();

const meta = fc.record({
  lsn: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  term: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  hlcMs: fc.integer({ min: 0, max: 2 ** 48 - 1 }),
  hlcLogical: fc.integer({ min: 0, max: 0xffff }),
  origin: fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' }),
  collection: fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' }),
});

const upsertBody = fc
  .record({
    dimension: fc.integer({ min: 1, max: 40 }),
    count: fc.integer({ min: 1, max: 20 }),
    seed: fc.integer(),
  })
  .chain(({ dimension, count }) =>
    fc.record({
      op: fc.constant(Op.Upsert),
      dimension: fc.constant(dimension),
      ids: fc.uniqueArray(fc.string({ minLength: 1, maxLength: 30, unit: 'grapheme' }), {
        minLength: count,
        maxLength: count,
      }),
      vectors: fc.float32Array({ minLength: count * dimension, maxLength: count * dimension }),
      payloads: fc.array(
        fc.oneof(
          fc.constant(new Uint8Array(0)),
          fc.jsonValue().map((v) => enc.encode(JSON.stringify({ v }))),
        ),
        { minLength: count, maxLength: count },
      ),
    }),
  )
  .filter((b) => b.ids.length === b.payloads.length);

const body = fc.oneof(
  fc.record({
    op: fc.constant(Op.CreateCollection),
    dimension: fc.integer({ min: 1, max: 65536 }),
    metric: fc.constantFrom('l2' as const, 'cosine' as const, 'dot' as const),
  }),
  fc.record({ op: fc.constant(Op.DropCollection) }),
  upsertBody,
  fc.record({
    op: fc.constant(Op.Delete),
    ids: fc.array(fc.string({ minLength: 1, maxLength: 30 }), { minLength: 1, maxLength: 30 }),
  }),
);

const record = fc.tuple(meta, body).map(([m, b]) => ({ ...m, ...b }) as LogRecord);

function normalize(r: LogRecord): unknown {
  if (r.op !== Op.Upsert) return r;
  const { packedIds, ...rest } = r;
  if (packedIds) {
    // A decoded record's ids as it stores them: u32 LE lengths, then the UTF-8 bytes.
    const utf8 = r.ids.map((id) => Buffer.from(id, 'utf8'));
    const lengths = Buffer.alloc(4 * utf8.length);
    utf8.forEach((b, i) => lengths.writeUInt32LE(b.length, 4 * i));
    assert.deepEqual(Buffer.from(packedIds.lengths), lengths);
    assert.deepEqual(Buffer.from(packedIds.bytes), Buffer.concat(utf8));
  }
  return {
    ...rest,
    vectors: Array.from(new Uint32Array(r.vectors.buffer, r.vectors.byteOffset, r.vectors.length)),
    payloads: r.payloads.map((p) => Array.from(p)),
  };
}

test('records round-trip through encode/decode, bit for bit', () => {
  fc.assert(
    fc.property(record, (r) => {
      const bytes = encodeRecord(r);
      assert.equal(bytes.length % 4, 0);
      assert.equal(recordLsn(bytes), r.lsn);
      assert.deepEqual(normalize(decodeRecord(bytes)), normalize(r));
    }),
    { numRuns: scale(300, 5000) },
  );
});

test('any single bit flip or truncation is detected, never decoded', () => {
  fc.assert(
    fc.property(record, fc.nat(), fc.integer({ min: 0, max: 7 }), fc.boolean(), (r, pos, bit, truncate) => {
      const bytes = encodeRecord(r);
      const damaged = truncate ? bytes.slice(0, pos % bytes.length) : bytes.slice();
      if (!truncate) damaged[pos % bytes.length] = (damaged[pos % bytes.length] as number) ^ (1 << bit);
      assert.throws(
        () => decodeRecord(damaged),
        (e: unknown) => isVrepError(e, 'ERR_CORRUPT_RECORD'),
      );
    }),
    { numRuns: scale(1000, 20000) },
  );
});

/** An upsert record with fixed header fields, for the tests that look at one record's bytes. */
function smallUpsert(
  fields: { lsn: number; ids: string[]; vectors: Float32Array; dimension: number } & Partial<{
    collection: string;
    payloads: Uint8Array[];
  }>,
): Uint8Array {
  return encodeRecord({
    term: 1,
    hlcMs: 1,
    hlcLogical: 0,
    origin: 'n',
    collection: 'c',
    op: Op.Upsert,
    payloads: fields.ids.map(() => new Uint8Array(0)),
    ...fields,
  });
}

test('checksumVerified skips only the checksum: a flipped vector bit decodes, a cut or a bad length never does', () => {
  const r = smallUpsert({ lsn: 9, ids: ['a'], vectors: new Float32Array([1, 2]), dimension: 2 });
  const clean = decodeRecord(r);
  assert.equal(clean.op, Op.Upsert);
  if (clean.op !== Op.Upsert) return;
  const at = clean.vectors.byteOffset - r.byteOffset; // the first float's first byte
  const flipped = r.slice();
  flipped[at] = (flipped[at] as number) ^ 0x40;
  assert.throws(
    () => decodeRecord(flipped),
    (e: unknown) => isVrepError(e, 'ERR_CORRUPT_RECORD'),
  );
  const d = decodeRecord(flipped, { checksumVerified: true });
  assert.equal(d.lsn, 9);
  for (const cut of [1, 8, r.length - 1]) {
    assert.throws(
      () => decodeRecord(r.slice(0, cut), { checksumVerified: true }),
      (e: unknown) => isVrepError(e, 'ERR_CORRUPT_RECORD'),
    );
  }
});

test('the vector block is an aligned zero-copy view into the record', () => {
  const r = smallUpsert({
    lsn: 7,
    collection: 'abc',
    dimension: 3,
    ids: ['a', 'b'],
    vectors: new Float32Array([1, 2, 3, 4, 5, 6]),
    payloads: [new Uint8Array(0), enc.encode('{"x":1}')],
  });
  const d = decodeRecord(r);
  assert.equal(d.op, Op.Upsert);
  if (d.op !== Op.Upsert) return;
  assert.equal(d.vectors.buffer, r.buffer);
  assert.deepEqual(Array.from(d.vectors), [1, 2, 3, 4, 5, 6]);
});

test('encode refuses bad fields with messages naming them', () => {
  const base = { lsn: 1, term: 1, hlcMs: 1, hlcLogical: 0, origin: 'n1', collection: 'c' };
  const up = (over: object) =>
    ({
      ...base,
      op: Op.Upsert,
      dimension: 2,
      ids: ['a'],
      vectors: new Float32Array(2),
      payloads: [new Uint8Array(0)],
      ...over,
    }) as LogRecord;
  const cases: [LogRecord, RegExp][] = [
    [up({ lsn: -1 }), /lsn:/],
    [up({ lsn: 2 ** 53 }), /lsn:/],
    [up({ hlcMs: 2 ** 48 }), /hlcMs:/],
    [up({ hlcLogical: 70000 }), /hlcLogical:/],
    [up({ origin: '' }), /origin: must not be empty/],
    [up({ collection: 'x'.repeat(256) }), /collection: 256 bytes, limit 255/],
    [up({ ids: [] }), /ids: a batch needs at least one point/],
    [up({ ids: [''] }), /ids\[0\]: must not be empty/],
    [up({ ids: ['x'.repeat(1025)] }), /ids\[0\]: 1025 bytes/],
    [up({ vectors: new Float32Array(3) }), /vectors: expected 1 x 2 = 2 floats, got 3/],
    [up({ dimension: 0 }), /dimension:/],
    [up({ payloads: [] }), /payloads: expected 1 entries/],
    [up({ payloads: [new Uint8Array(1024 * 1024 + 1)] }), /payloads\[0\]: 1048577 bytes/],
    [
      { ...base, op: Op.CreateCollection, dimension: 3, metric: 'hamming' } as unknown as LogRecord,
      /metric:/,
    ],
    [{ ...base, op: 99 } as unknown as LogRecord, /op: unknown op 99/],
  ];
  for (const [r, re] of cases) assert.throws(() => encodeRecord(r), re);
});

test('ids decode the same on the all-ASCII path and the UTF-8 path', () => {
  const batch = (ids: string[]): LogRecord =>
    ({
      lsn: 1,
      term: 1,
      hlcMs: 0,
      hlcLogical: 0,
      origin: 'n1',
      collection: 'c',
      op: Op.Upsert,
      dimension: 1,
      ids,
      vectors: new Float32Array(ids.length),
      payloads: ids.map(() => new Uint8Array(0)),
    }) as LogRecord;
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.string({ minLength: 1, maxLength: 30, unit: 'binary-ascii' }), {
        minLength: 1,
        maxLength: 50,
      }),
      fc.option(fc.string({ minLength: 1, maxLength: 5, unit: 'grapheme' })),
      (ascii, other) => {
        const ids = other === null || ascii.includes(other) ? ascii : [...ascii, other];
        const decoded = decodeRecord(encodeRecord(batch(ids)));
        assert.ok(decoded.op === Op.Upsert);
        assert.deepEqual(decoded.ids, ids);
      },
    ),
    { numRuns: scale(300, 3000) },
  );
});
