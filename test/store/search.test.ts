import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Collection } from '../../src/store/collection.ts';
import { searchCollection } from '../../src/store/search.ts';
import type { MetricName } from '../../src/log/record.ts';

function reference(metric: MetricName, q: Float32Array, v: Float32Array): number {
  let dot = 0,
    l2 = 0,
    nq = 0,
    nv = 0;
  for (let i = 0; i < q.length; i++) {
    const a = q[i] as number,
      b = v[i] as number;
    dot += a * b;
    l2 += (a - b) ** 2;
    nq += a * a;
    nv += b * b;
  }
  if (metric === 'l2') return l2;
  if (metric === 'dot') return dot;
  return nq === 0 || nv === 0 ? 0 : dot / Math.sqrt(nq * nv);
}

for (const metric of ['l2', 'cosine', 'dot'] as const) {
  test(`search (${metric}) equals a brute-force reference, with and without filters`, () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 33 }),
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer(),
        fc.boolean(),
        (dim, n, k, seed, filtered) => {
          let s = seed >>> 0;
          const rand = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
          const c = new Collection('c', dim, metric);
          const ids = Array.from({ length: n }, (_, i) => `id${i}`);
          const vectors = Float32Array.from({ length: n * dim }, rand);
          const enc = new TextEncoder();
          c.upsert(
            ids,
            vectors,
            ids.map((_, i) => enc.encode(JSON.stringify({ group: i % 3, name: `n${i}` }))),
          );
          // Some deletes so rows move.
          c.delete(ids.filter((_, i) => i % 7 === 3));
          const query = Float32Array.from({ length: dim }, rand);
          const filter = filtered ? { group: 1 } : undefined;
          const got = searchCollection(c, query, k, filter);

          const live = ids
            .map((id, i) => ({ id, i }))
            .filter(({ i }) => i % 7 !== 3 && (!filtered || i % 3 === 1));
          const scored = live.map(({ id, i }) => ({
            id,
            score: reference(metric, query, vectors.subarray(i * dim, (i + 1) * dim)),
          }));
          scored.sort((a, b) => (metric === 'l2' ? a.score - b.score : b.score - a.score));
          const want = scored.slice(0, k);
          assert.equal(got.length, want.length);
          for (let i = 0; i < want.length; i++) {
            const w = want[i] as { id: string; score: number };
            const g = got[i] as { id: string; score: number };
            const tol = 1e-4 * Math.max(1, Math.abs(w.score));
            assert.ok(Math.abs(g.score - w.score) <= tol, `rank ${i}: score ${g.score} vs ${w.score}`);
            // Ids may differ only where scores tie within tolerance.
            if (g.id !== w.id) {
              const ref = scored.find((x) => x.id === g.id);
              assert.ok(ref && Math.abs(ref.score - w.score) <= tol, `rank ${i}: ${g.id} vs ${w.id}`);
            }
          }
        },
      ),
      { numRuns: 150 },
    );
  });
}

test('search spans several storage chunks', () => {
  const dim = 4;
  const n = 40_000; // > 2 chunks of 16384 rows
  const c = new Collection('c', dim, 'l2');
  const ids = Array.from({ length: n }, (_, i) => String(i));
  const vectors = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) vectors[i * dim] = i;
  c.upsert(
    ids,
    vectors,
    ids.map(() => new Uint8Array(0)),
  );
  const got = searchCollection(c, new Float32Array([39_000.2, 0, 0, 0]), 3);
  assert.deepEqual(
    got.map((h) => h.id),
    ['39000', '39001', '38999'],
  );
});
