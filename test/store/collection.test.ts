import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { kernelPrefaults, rssAnonBytes } from '../helpers/memory.ts';
import type { PackedIds } from '../../src/native/id-index.ts';
import { Collection, CHUNK_ROWS } from '../../src/store/collection.ts';
import { decodeRecord, encodeRecord, Op as RecordOp } from '../../src/log/record.ts';

/** The ids of one frozen chunk (u32 little-endian lengths, then the UTF-8 bytes). */
function unpackIds({ lengths, bytes }: PackedIds): string[] {
  const view = new DataView(lengths.buffer, lengths.byteOffset, lengths.byteLength);
  const out: string[] = [];
  let at = 0;
  for (let i = 0; i < lengths.byteLength / 4; i++) {
    const n = view.getUint32(i * 4, true);
    out.push(Buffer.from(bytes.buffer, bytes.byteOffset + at, n).toString('utf8'));
    at += n;
  }
  assert.equal(at, bytes.byteLength);
  return out;
}

const enc = new TextEncoder();
type Op = { del: boolean; id: number; v: number };

function apply(c: Collection, model: Map<string, number>, op: Op, dim: number): void {
  const id = `k${op.id}`;
  if (op.del) {
    c.delete([id]);
    model.delete(id);
  } else {
    c.upsert([id], new Float32Array(dim).fill(op.v), [
      op.v % 2 ? enc.encode(`{"v":${op.v}}`) : new Uint8Array(0),
    ]);
    model.set(id, op.v);
  }
}

const ops = fc.array(
  fc.record({
    del: fc.boolean(),
    id: fc.integer({ min: 0, max: 40 }),
    v: fc.integer({ min: -1000, max: 1000 }),
  }),
  { maxLength: 300 },
);

test('collection matches a Map model under upserts and deletes', () => {
  fc.assert(
    fc.property(ops, (list) => {
      const c = new Collection('c', 3, 'l2');
      const model = new Map<string, number>();
      for (const op of list) apply(c, model, op, 3);
      assert.equal(c.count, model.size);
      for (const [id, v] of model) {
        const p = c.get(id);
        assert.ok(p);
        assert.deepEqual(Array.from(p.vector), [v, v, v]);
        assert.deepEqual(p.payload === null ? null : JSON.parse(p.payload), v % 2 ? { v } : null);
      }
    }),
  );
});

test('digest depends on content only, not on the order of operations', () => {
  fc.assert(
    fc.property(ops, fc.integer(), (list, seed) => {
      const a = new Collection('c', 2, 'dot');
      const model = new Map<string, number>();
      for (const op of list) apply(a, model, op, 2);
      // Build the same content in a shuffled order.
      const entries = [...model];
      let s = seed >>> 0;
      for (let i = entries.length - 1; i > 0; i--) {
        s = (s * 1664525 + 1013904223) >>> 0;
        const j = s % (i + 1);
        [entries[i], entries[j]] = [entries[j] as [string, number], entries[i] as [string, number]];
      }
      const b = new Collection('c', 2, 'dot');
      for (const [id, v] of entries)
        b.upsert([id], new Float32Array(2).fill(v), [v % 2 ? enc.encode(`{"v":${v}}`) : new Uint8Array(0)]);
      assert.equal(a.digest(), b.digest());
      if (entries.length > 0) {
        const [id, v] = entries[0] as [string, number];
        b.upsert([id], new Float32Array(2).fill(v + 0.5), [new Uint8Array(0)]);
        assert.notEqual(a.digest(), b.digest(), 'a changed vector changes the digest');
      }
    }),
  );
});

test('a frozen view stays as it was while writes go on (copy-on-write)', () => {
  const dim = 2;
  const c = new Collection('c', dim, 'l2');
  const n = CHUNK_ROWS + 10;
  const ids = Array.from({ length: n }, (_, i) => `i${i}`);
  c.upsert(
    ids,
    Float32Array.from({ length: n * dim }, (_, i) => i),
    ids.map(() => new Uint8Array(0)),
  );
  const before = c.digest();
  const frozen = c.freeze();
  c.upsert(['i0', 'new'], new Float32Array([9, 9, 9, 9]), [enc.encode('{}'), enc.encode('{}')]);
  c.delete(['i5', `i${n - 1}`]);
  const copy = new Collection('c', dim, 'l2');
  for (let k = 0; k * CHUNK_ROWS < frozen.count; k++) {
    const rows = Math.min(CHUNK_ROWS, frozen.count - k * CHUNK_ROWS);
    copy.upsert(
      unpackIds(frozen.ids[k] as PackedIds),
      (frozen.chunks[k] as Float32Array).subarray(0, rows * dim),
      frozen.payloads
        .slice(k * CHUNK_ROWS, k * CHUNK_ROWS + rows)
        .map((p) => (p === null ? new Uint8Array(0) : enc.encode(p))),
    );
  }
  frozen.release();
  assert.equal(copy.digest(), before);
  assert.notEqual(c.digest(), before);
});

test(
  "the pages ahead of a collection's last row are mapped in off the event loop (the next chunk's too), no more than it holds",
  { skip: !kernelPrefaults() && 'needs Linux 5.14+ (MADV_POPULATE_WRITE)' },
  async () => {
    const dim = 1024; // 4 KiB rows, 64 MiB chunks
    const MiB = 1024 * 1024;
    const settle = async (until: (grown: number) => boolean, from: number): Promise<number> => {
      let grown = rssAnonBytes() - from;
      for (let i = 0; i < 400 && !until(grown); i++) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        grown = rssAnonBytes() - from;
      }
      return grown;
    };
    // Batches of 4 MiB fill the first chunk, each given time to map ahead (the inputs resident before).
    const batch = 1024;
    const fill = new Float32Array(batch * dim).fill(2);
    const start = rssAnonBytes();
    const c = new Collection('pf', dim, 'l2');
    c.upsert(['first'], new Float32Array(dim).fill(1), [new Uint8Array(0)]);
    const small = await settle(() => false, start);
    assert.ok(small < 8 * MiB, `one row made ${(small / MiB).toFixed(1)} MiB resident`);
    let next = 0;
    while (c.count < CHUNK_ROWS) {
      const n = Math.min(batch, CHUNK_ROWS - c.count);
      c.upsert(
        Array.from({ length: n }, () => `p${next++}`),
        fill.subarray(0, n * dim),
        [],
      );
      // Time for the last mapping to end: one that is still running makes the next write skip its own.
      await new Promise((resolve) => setTimeout(resolve, 60));
    }
    // The first chunk is full (64 MiB): the next one has 16 MiB mapped before a row goes in
    // (8 at least: the rest of this process's memory, the earlier tests' garbage, moves by a few MiB
    // meanwhile; without the mapping the growth stays at the 64 MiB of rows or below).
    const grown = await settle((g) => g >= 79 * MiB, start);
    const ahead = grown - 64 * MiB;
    assert.ok(ahead >= 8 * MiB, `the next chunk had ${(ahead / MiB).toFixed(1)} MiB mapped ahead`);
    assert.ok(
      ahead < 32 * MiB,
      `the next chunk had ${(ahead / MiB).toFixed(1)} MiB mapped ahead, more than 16`,
    );
    c.upsert(['second'], new Float32Array(dim).fill(3), [new Uint8Array(0)]);
    assert.deepEqual(Array.from(c.get('second')?.vector ?? []).slice(0, 3), [3, 3, 3]);
    assert.deepEqual(Array.from(c.get(`p${next - 1}`)?.vector ?? []).slice(0, 2), [2, 2]);
    assert.equal(c.count, CHUNK_ROWS + 1);
    assert.equal(fill[fill.length - 1], 2);
  },
);

test("upsert with a record's packed ids indexes them as their strings would (repeats, updates, beyond ASCII)", () => {
  const dim = 2;
  const batches = [
    ['a', 'é', 'b', 'a', '日本'],
    ['b', 'new', 'é', '🙂'],
  ];
  const viaStrings = new Collection('s', dim, 'l2');
  const viaPacked = new Collection('p', dim, 'l2');
  batches.forEach((ids, k) => {
    const bytes = encodeRecord({
      lsn: k + 1,
      term: 1,
      hlcMs: 1,
      hlcLogical: 0,
      origin: 'n',
      collection: 'c',
      op: RecordOp.Upsert,
      dimension: dim,
      ids,
      vectors: Float32Array.from({ length: ids.length * dim }, (_, i) => k * 100 + i),
      payloads: ids.map(() => new Uint8Array(0)),
    });
    const r = decodeRecord(bytes);
    assert.ok(r.op === RecordOp.Upsert && r.packedIds);
    viaStrings.upsert(r.ids, r.vectors, r.payloads);
    viaPacked.upsert(r.ids, r.vectors, r.payloads, r.packedIds);
  });
  assert.equal(viaPacked.count, viaStrings.count);
  assert.equal(viaPacked.count, 6);
  for (let row = 0; row < viaStrings.count; row++) {
    assert.deepEqual(viaPacked.pointAt(row), viaStrings.pointAt(row));
  }
  for (const id of ['a', 'é', 'b', '日本', 'new', '🙂']) assert.ok(viaPacked.has(id), id);
});

test('the digest is the one a Hash object per point gives (ids and payloads beyond ASCII, big payloads)', () => {
  const dim = 5;
  const c = new Collection('dg', dim, 'cosine');
  const ids = ['a', 'é', '日本語', 'x'.repeat(300), '🙂', 'plain'];
  const payloads = ['{"k":1}', '{"t":"ü"}', null, JSON.stringify({ big: 'z'.repeat(5000) }), '{}', null];
  c.upsert(
    ids,
    Float32Array.from({ length: ids.length * dim }, (_, i) => i / 7),
    payloads.map((p) => (p === null ? new Uint8Array(0) : enc.encode(p))),
  );
  // The digest as it was written first: one Hash per point, fed piece by piece.
  let lo = 0n;
  let hi = 0n;
  const mask = (1n << 64n) - 1n;
  for (let row = 0; row < c.count; row++) {
    const p = c.pointAt(row);
    const h = createHash('sha256');
    h.update(`${p.id.length}:${p.id}`);
    h.update(new Uint8Array(p.vector.buffer, p.vector.byteOffset, dim * 4));
    h.update(p.payload === null ? 'none:' : `${Buffer.byteLength(p.payload)}:`);
    if (p.payload) h.update(p.payload);
    const d = h.digest();
    lo += d.readBigUInt64LE(0);
    hi += d.readBigUInt64LE(8) + (lo >> 64n);
    lo &= mask;
    hi &= mask;
  }
  const head = createHash('sha256').update(`dg\0${dim}\0cosine\0${c.count}`).digest('hex');
  const expected = createHash('sha256')
    .update(head)
    .update(hi.toString(16).padStart(16, '0') + lo.toString(16).padStart(16, '0'))
    .digest('hex');
  assert.equal(c.digest(), expected);
});
