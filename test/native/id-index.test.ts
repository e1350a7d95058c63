/**
 * IdIndex (native/id_index.cc) against a model (an array of ids by row and a
 * Map), over random batches of upserts and swap-removes; past the 2^24 ids
 * where a JS Map stops; and its argument checks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IdIndex } from '../../src/native/id-index.ts';
import { isVrepError } from '../../src/errors.ts';

/** What the index must agree with: ids by row, and the row of each id. */
class Model {
  readonly ids: string[] = [];
  readonly rows = new Map<string, number>();

  upsert(batch: readonly string[]): number[] {
    return batch.map((id) => {
      let row = this.rows.get(id);
      if (row === undefined) {
        row = this.ids.length;
        this.ids.push(id);
        this.rows.set(id, row);
      }
      return row;
    });
  }

  removeSwap(row: number): void {
    const last = this.ids.length - 1;
    this.rows.delete(this.ids[row] as string);
    if (row !== last) {
      const moved = this.ids[last] as string;
      this.ids[row] = moved;
      this.rows.set(moved, row);
    }
    this.ids.pop();
  }
}

/** UTF-8 sees a lone surrogate as U+FFFD, as a record does: keep the model to well-formed ids. */
const idArb = fc.oneof(
  fc.constantFrom('a', 'b', 'c', 'doc-1', 'doc-2', 'é', '日本', '🙂', 'x'.repeat(300)),
  fc.string({ maxLength: 12, unit: 'grapheme' }),
  fc.nat({ max: 2000 }).map((n) => `p-${n}`),
);
const opArb = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('upsert' as const), ids: fc.array(idArb, { maxLength: 64 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('remove' as const),
      pick: fc.nat(),
      times: fc.nat({ max: 40 }),
    }),
  },
);

test('agrees with a Map model over random upserts and swap-removes (rows, lookups, size)', () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
      const index = new IdIndex();
      const model = new Model();
      for (const op of ops) {
        if (op.kind === 'upsert') {
          const rows = new Int32Array(op.ids.length);
          assert.equal(
            index.upsert(op.ids, rows),
            model.ids.length + new Set(op.ids.filter((id) => !model.rows.has(id))).size,
          );
          assert.deepEqual([...rows], model.upsert(op.ids));
        } else {
          for (let i = 0; i < op.times && model.ids.length > 0; i++) {
            const row = (op.pick + i * 7) % model.ids.length;
            index.removeSwap(row);
            model.removeSwap(row);
          }
        }
        assert.equal(index.size, model.ids.length);
      }
      // Every id held is at its row; ids gone are not found.
      assert.deepEqual(
        model.ids.map((id) => index.get(id)),
        model.ids.map((_, row) => row),
      );
      for (const id of ['never-written', 'p-2001']) assert.equal(index.get(id), model.rows.get(id) ?? -1);
    }),
    { numRuns: 300 },
  );
});

test('grows and shrinks: 200k ids in, all removed again, each found at its row meanwhile', () => {
  const index = new IdIndex();
  const n = 200_000;
  const ids = Array.from({ length: n }, (_, i) => `id-${i}`);
  const rows = new Int32Array(n);
  assert.equal(index.upsert(ids, rows), n);
  assert.deepEqual(
    rows,
    Int32Array.from({ length: n }, (_, i) => i),
  );
  const full = index.memoryBytes;
  // Removing row 0 each time moves the last id there: ids end up in reverse order of removal.
  for (let i = 0; i < n / 2; i++) index.removeSwap(0);
  assert.equal(index.size, n / 2);
  // Gone: id-0, then each id moved into row 0 (id-(n-1) down to id-(n/2+1)). Left: id-(n/2) in
  // row 0, every other at its first row.
  assert.deepEqual(
    ids.map((id) => index.get(id)),
    ids.map((_, i) => (i === n / 2 ? 0 : i === 0 || i > n / 2 ? -1 : i)),
  );
  while (index.size > 0) index.removeSwap(index.size - 1);
  assert.equal(index.get('id-0'), -1);
  assert.ok(index.memoryBytes < full / 4, `memory ${index.memoryBytes} after all removed, ${full} when full`);
});

test('holds more than 2^24 ids (where a JS Map throws RangeError)', () => {
  const index = new IdIndex();
  const total = 170 * 100_000; // whole batches, past 2^24 = 16,777,216
  const batch = 100_000;
  const rows = new Int32Array(batch);
  for (let start = 0; start < total; start += batch) {
    const ids = Array.from({ length: batch }, (_, i) => (start + i).toString(36));
    index.upsert(ids, rows);
    assert.equal(rows[batch - 1], start + batch - 1);
  }
  assert.equal(index.size, total);
  assert.equal(index.get((2 ** 24 + 50_000).toString(36)), 2 ** 24 + 50_000);
  assert.equal(index.get('0'), 0);
});

test('a non-string id is refused with its position; the ids before it are in, the rest not', () => {
  const index = new IdIndex();
  const rows = new Int32Array(3);
  assert.throws(
    () => index.upsert(['a', 7 as unknown as string, 'c'], rows),
    (err: unknown) => isVrepError(err, 'ERR_INVALID_ARG') && /ids\[1\] is not a string/.test(err.message),
  );
  assert.equal(index.size, 1);
  assert.equal(index.get('a'), 0);
  assert.equal(index.get('c'), -1);
});

test('checks its arguments in TS (shapes) and natively (rows, id lengths)', () => {
  const index = new IdIndex();
  assert.throws(() => index.upsert('a' as unknown as string[], new Int32Array(1)), TypeError);
  assert.throws(() => index.upsert(['a'], new Uint32Array(1) as unknown as Int32Array), TypeError);
  assert.throws(() => index.upsert(['a', 'b'], new Int32Array(1)), RangeError);
  assert.throws(() => index.get(1 as unknown as string), TypeError);
  index.upsert(['a'], new Int32Array(1));
  for (const row of [-1, 1, 0.5, Number.NaN]) {
    assert.throws(
      () => index.removeSwap(row),
      (err: unknown) => isVrepError(err, 'ERR_INVALID_ARG'),
    );
  }
  const long = 'x'.repeat(64 * 1024 + 1);
  assert.throws(
    () => index.upsert([long], new Int32Array(1)),
    (err: unknown) => isVrepError(err, 'ERR_INVALID_ARG') && /65537 UTF-8 bytes/.test(err.message),
  );
  // Long ids that fit are held whole, not cut at the scratch size.
  const a = 'y'.repeat(5000) + 'a';
  const b = 'y'.repeat(5000) + 'b';
  index.upsert([a, b], new Int32Array(2));
  assert.equal(index.get(a), 1);
  assert.equal(index.get(b), 2);
});

test('idAt and pack give back the ids held, after swap-removes too, as UTF-8 with u32 LE lengths', () => {
  const index = new IdIndex();
  const ids = ['a', '', 'é', '日本', '🙂', 'x'.repeat(5000), 'last'];
  index.upsert(ids, new Int32Array(ids.length));
  assert.deepEqual(
    ids.map((_, row) => index.idAt(row)),
    ids,
  );
  index.removeSwap(0); // 'last' moves to row 0
  const now = ['last', '', 'é', '日本', '🙂', 'x'.repeat(5000)];
  assert.deepEqual(
    now.map((_, row) => index.idAt(row)),
    now,
  );
  const { lengths, bytes } = index.pack(1, 4);
  const expected = now.slice(1, 5).map((id) => Buffer.from(id, 'utf8'));
  assert.deepEqual(
    [...new Uint32Array(lengths.buffer, lengths.byteOffset, 4)],
    expected.map((b) => b.length),
  );
  assert.deepEqual(Buffer.from(bytes), Buffer.concat(expected));
  assert.equal(index.pack(6, 0).bytes.length, 0);
  for (const [from, count] of [
    [7, 0],
    [0, 7],
    [-1, 1],
  ] as const) {
    assert.throws(
      () => index.pack(from, count),
      (err: unknown) => isVrepError(err, 'ERR_INVALID_ARG'),
    );
  }
  assert.throws(
    () => index.idAt(6),
    (err: unknown) => isVrepError(err, 'ERR_INVALID_ARG'),
  );
});

test('upsertPacked gives the rows upsert gives, for ids packed by pack (new, repeated, already held)', () => {
  const source = new IdIndex();
  const ids = Array.from({ length: 1000 }, (_, i) => (i % 7 === 0 ? `é-${i}` : `id-${i}`));
  source.upsert(ids, new Int32Array(ids.length));
  const packed = source.pack(0, ids.length);
  const viaStrings = new IdIndex();
  const viaPacked = new IdIndex();
  viaStrings.upsert(['id-5', 'other'], new Int32Array(2));
  viaPacked.upsert(['id-5', 'other'], new Int32Array(2));
  const a = new Int32Array(ids.length);
  const b = new Int32Array(ids.length);
  assert.equal(viaPacked.upsertPacked(packed, b), viaStrings.upsert(ids, a));
  assert.deepEqual(b, a);
  // Rows 0, 1 were there; ids[5] is 'id-5' (row 0), so ids[899] took row 2 + 899 - 1.
  assert.equal(viaPacked.idAt(900), ids[899]);
  assert.throws(
    () => viaPacked.upsertPacked({ lengths: new Uint8Array(3), bytes: new Uint8Array(0) }, b),
    (err: unknown) => isVrepError(err, 'ERR_INVALID_ARG') && /whole number of u32/.test(err.message),
  );
});
