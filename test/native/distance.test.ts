import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { binding } from '../../src/native/addon.ts';
import {
  Metric,
  NO_ROW,
  distanceCapabilities,
  distances,
  distancesBatch,
  setDistanceKernel,
  topK,
  topKBatch,
  type DistanceKernel,
} from '../../src/native/distance.ts';
import { VrepError } from '../../src/errors.ts';
import { referenceScore, topKFromScores } from './distance-reference.ts';
import { rng } from '../helpers/rng.ts';

const long = process.env['VREP_TEST_SCALE'] === 'long';
const METRICS = [Metric.L2, Metric.Dot, Metric.Cosine] as const;
const METRIC_NAME = ['l2', 'dot', 'cosine'] as const;
const ALL_KERNELS: DistanceKernel[] = ['avx512', 'avx2', 'neon', 'scalar'];
const caps = distanceCapabilities();
// Every dim 1..64 (all tails of every vector width) and a spread up to 1536.
const DIMS = [
  ...Array.from({ length: 64 }, (_, i) => i + 1),
  ...[65, 97, 127, 128, 129, 255, 256, 257, 383, 511, 512, 767, 768, 769, 1023, 1024, 1535, 1536],
  ...(long ? [2047, 2048, 3071, 4096] : []),
];

function randomVectors(next: () => number, count: number, dim: number): Float32Array {
  const v = new Float32Array(count * dim);
  for (let i = 0; i < v.length; i++) v[i] = next() * 2 - 1;
  return v;
}

function norm(v: Float32Array, offset: number, dim: number): number {
  let s = 0;
  for (let i = 0; i < dim; i++) s += v[offset + i]! * v[offset + i]!;
  return Math.sqrt(s);
}

/**
 * Allowed |native - reference| for one score, 1e-4 relative in the sense that
 * fits each metric's float32 error:
 * - l2 sums non-negative terms, so rounding error is relative to the result
 *   itself (about dim * 2^-24 * result in the worst case, far less with the
 *   kernels' many accumulators): 1e-4 * |reference|.
 * - dot can cancel to ~0, so its error is bounded relative to sum |q_i r_i| <=
 *   |q| * |r|, not to the result: 1e-4 * |q| * |r|.
 * - cosine is dot / (|q| |r|), so the same bound becomes absolute: 1e-4.
 */
function tolerance(metric: Metric, reference: number, qNorm: number, rNorm: number): number {
  if (metric === Metric.L2) return 1e-4 * Math.max(Math.abs(reference), 1e-12);
  if (metric === Metric.Dot) return 1e-4 * Math.max(qNorm * rNorm, 1e-12);
  return 1e-4;
}

interface Case {
  metric: Metric;
  dim: number;
  query: Float32Array;
  matrix: Float32Array;
  rows: number;
}

/** Checks distances() and topK() of one case against the TS reference. */
function checkCase(c: Case, label: string): void {
  const { metric, dim, query, matrix, rows } = c;
  const qNorm = norm(query, 0, dim);
  const ref = Array.from({ length: rows }, (_, r) => referenceScore(metric, query, matrix, dim, r));
  const tol = (r: number) => tolerance(metric, ref[r]!, qNorm, norm(matrix, r * dim, dim));

  const out = new Float32Array(rows);
  assert.equal(distances(metric, query, matrix, dim, out), rows);
  for (let r = 0; r < rows; r++) {
    const diff = Math.abs(out[r]! - ref[r]!);
    if (!(diff <= tol(r)))
      assert.fail(`${label} row ${r}: native ${out[r]} vs reference ${ref[r]} (tol ${tol(r)})`);
  }

  for (const k of [1, 5, rows + 3]) {
    const idx = new Uint32Array(k);
    const scores = new Float32Array(k);
    const found = topK(metric, query, matrix, dim, k, idx, scores);
    assert.equal(found, Math.min(k, rows), `${label} k=${k} found`);
    // Exact semantics: top-k of the kernel's own scores, ties by lower row.
    assert.deepEqual([...idx.subarray(0, found)], topKFromScores(metric, out, k), `${label} k=${k} order`);
    for (let i = 0; i < found; i++) assert.equal(scores[i], out[idx[i]!]);
    for (let i = found; i < k; i++) {
      assert.equal(idx[i], NO_ROW);
      assert.ok(Number.isNaN(scores[i]));
    }
    // Against the reference: same rows except where the reference scores of
    // the two rows are within tolerance (a near tie float32 may order either way).
    const refTop = topKFromScores(metric, ref, k);
    for (let i = 0; i < found; i++) {
      const mine = idx[i]!;
      const theirs = refTop[i]!;
      if (mine !== theirs && !(Math.abs(ref[mine]! - ref[theirs]!) <= tol(mine) + tol(theirs))) {
        assert.fail(
          `${label} k=${k} rank ${i}: native row ${mine} (${ref[mine]}) vs reference row ${theirs} (${ref[theirs]})`,
        );
      }
    }
  }
}

for (const kernel of ALL_KERNELS) {
  const skip = caps.available.includes(kernel) ? false : `${kernel} kernel not available on this CPU/build`;
  if (skip)
    console.log(`distance: skipping ${kernel}: not available here (available: ${caps.available.join(', ')})`);

  test(
    `${kernel}: one-to-many and top-k match the TS reference for dims 1..1536, all metrics`,
    { skip },
    () => {
      assert.equal(setDistanceKernel(kernel), kernel);
      try {
        assert.equal(distanceCapabilities().selected, kernel);
        const next = rng(0x5eed + kernel.length);
        for (const dim of DIMS) {
          const rows = dim <= 64 ? 33 : 21;
          const query = randomVectors(next, 1, dim);
          const matrix = randomVectors(next, rows, dim);
          for (const metric of METRICS)
            checkCase({ metric, dim, query, matrix, rows }, `${kernel} ${METRIC_NAME[metric]} dim ${dim}`);
        }
      } finally {
        setDistanceKernel('auto');
      }
    },
  );

  test(`${kernel}: top-k across score blocks, row subsets, batches and unaligned views`, { skip }, () => {
    setDistanceKernel(kernel);
    try {
      const next = rng(77);
      // Native code walks the matrix in blocks of 512 rows (dim 19) or
      // 128 KiB / row size (29 rows at dim 1100): both shapes cross blocks.
      for (const [dim, rows] of [
        [19, 1300],
        [1100, 100],
      ] as const) {
        const matrix = randomVectors(next, rows, dim);
        const queries = randomVectors(next, 3, dim);
        for (const metric of METRICS) {
          const query = queries.subarray(0, dim);
          for (let q = 0; q < 3; q++) {
            const label = `${kernel} ${METRIC_NAME[metric]} dim ${dim} blocks query ${q}`;
            checkCase({ metric, dim, query: queries.subarray(q * dim, (q + 1) * dim), matrix, rows }, label);
          }

          // rowIds: scores in rowIds order, top-k returns matrix rows.
          const rowIds = Uint32Array.from(
            { length: Math.floor(rows / 2) + 50 },
            (_, j) => (j * 7 + 3) % rows,
          );
          const sub = new Float32Array(rowIds.length);
          assert.equal(distances(metric, query, matrix, dim, sub, { rowIds }), rowIds.length);
          const full = new Float32Array(rows);
          distances(metric, query, matrix, dim, full);
          rowIds.forEach((r, j) => assert.equal(sub[j], full[r]));
          const idx = new Uint32Array(10);
          const sc = new Float32Array(10);
          assert.equal(topK(metric, query, matrix, dim, 10, idx, sc, { rowIds }), 10);
          const expected = topKFromScores(metric, sub, 10).map((j) => rowIds[j]!);
          assert.deepEqual([...idx], expected);

          // Batch = one call per query.
          const batchOut = new Float32Array(3 * rows);
          assert.equal(distancesBatch(metric, queries, matrix, dim, batchOut), rows);
          const bIdx = new Uint32Array(30);
          const bSc = new Float32Array(30);
          assert.equal(topKBatch(metric, queries, matrix, dim, 10, bIdx, bSc), 10);
          for (let q = 0; q < 3; q++) {
            const one = new Float32Array(rows);
            distances(metric, queries.subarray(q * dim, (q + 1) * dim), matrix, dim, one);
            assert.deepEqual(batchOut.subarray(q * rows, (q + 1) * rows), one);
            assert.deepEqual([...bIdx.subarray(q * 10, q * 10 + 10)], topKFromScores(metric, one, 10));
          }
          topKBatch(metric, queries, matrix, dim, 10, bIdx, bSc, { rowIds });
          assert.deepEqual([...bIdx.subarray(0, 10)], expected, 'batch with rowIds');

          // Views at a 4-byte offset: unaligned loads give the same scores.
          const shifted = new Float32Array(matrix.length + 1);
          shifted.set(matrix, 1);
          const view = shifted.subarray(1);
          const viaView = new Float32Array(rows);
          distances(metric, query, view, dim, viaView);
          assert.deepEqual(viaView, full);
        }
      }
    } finally {
      setDistanceKernel('auto');
    }
  });

  test(`${kernel}: exact ties go to the lower row; zero vectors and NaN are defined`, { skip }, () => {
    setDistanceKernel(kernel);
    try {
      const dim = 13;
      const next = rng(5);
      const base = randomVectors(next, 1, dim);
      const matrix = new Float32Array(8 * dim);
      for (const r of [1, 3, 4, 6]) matrix.set(base, r * dim); // four identical rows
      // A short row 2 cannot beat the copies of the query under any metric.
      matrix.set(
        randomVectors(next, 1, dim).map((x) => x * 0.1),
        2 * dim,
      );
      // rows 0, 5, 7 stay zero vectors
      for (const metric of METRICS) {
        const idx = new Uint32Array(4);
        const sc = new Float32Array(4);
        topK(metric, base, matrix, dim, 4, idx, sc);
        assert.deepEqual([...idx], [1, 3, 4, 6], METRIC_NAME[metric]);
      }
      const out = new Float32Array(8);
      distances(Metric.Cosine, base, matrix, dim, out);
      for (const r of [0, 5, 7]) assert.equal(out[r], 0, 'cosine with a zero row is 0');
      distances(Metric.Cosine, new Float32Array(dim), matrix, dim, out);
      assert.ok(
        out.every((s) => s === 0),
        'cosine of a zero query is 0',
      );

      matrix[1 * dim] = NaN;
      const idx = new Uint32Array(8);
      const sc = new Float32Array(8);
      for (const metric of METRICS) {
        topK(metric, base, matrix, dim, 8, idx, sc);
        assert.equal(idx[7], 1, `${METRIC_NAME[metric]}: a NaN score ranks last`);
        assert.ok(Number.isNaN(sc[7]));
      }
    } finally {
      setDistanceKernel('auto');
    }
  });
}

test('capabilities: a kernel is selected, scalar is always available, unavailable kernels are refused', () => {
  const c = distanceCapabilities();
  console.log(
    `distance: selected ${c.selected}, available ${c.available.join(', ')}, cpu ${JSON.stringify(c.cpu)}`,
  );
  assert.ok(c.available.includes('scalar'));
  assert.ok(c.available.includes(c.selected));
  assert.equal(c.available.includes('avx2'), c.cpu.avx2 && c.cpu.fma);
  assert.equal(c.available.includes('neon'), c.cpu.neon);
  if (!c.forcedScalar) assert.equal(c.selected, c.available[0], 'auto picks the best available');
  for (const k of ALL_KERNELS.filter((name) => !c.available.includes(name))) {
    assert.throws(
      () => setDistanceKernel(k),
      (e: unknown) => e instanceof VrepError && e.code === 'ERR_UNSUPPORTED',
    );
  }
  assert.throws(
    () => setDistanceKernel('sse' as DistanceKernel),
    (e: unknown) => e instanceof VrepError && e.code === 'ERR_INVALID_ARG',
  );
  assert.equal(distanceCapabilities().selected, c.selected, 'a refused switch changes nothing');
});

test('VREP_FORCE_SCALAR=1 selects scalar at load (child process)', () => {
  const moduleUrl = pathToFileURL(path.resolve('src/native/distance.ts')).href;
  const code = `
    const d = await import(${JSON.stringify(moduleUrl)});
    const out = new Float32Array(2);
    d.distances(d.Metric.L2, new Float32Array([1, 2, 3]), new Float32Array([1, 2, 3, 0, 0, 1]), 3, out);
    console.log(JSON.stringify({ caps: d.distanceCapabilities(), out: [...out] }));`;
  const run = (env: NodeJS.ProcessEnv) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      env,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as { caps: typeof caps; out: number[] };
  };
  const forced = run({ ...process.env, VREP_FORCE_SCALAR: '1' });
  assert.equal(forced.caps.selected, 'scalar');
  assert.equal(forced.caps.forcedScalar, true);
  assert.deepEqual(forced.out, [0, 1 + 4 + 4]);
  const env = { ...process.env };
  delete env['VREP_FORCE_SCALAR'];
  const free = run(env);
  assert.equal(free.caps.forcedScalar, false);
  assert.equal(free.caps.selected, free.caps.available[0]);
});

test('the selected kernel is per addon instance: a worker switching does not affect this thread', async () => {
  const before = distanceCapabilities().selected;
  const addonPath = process.env['VREP_ADDON_PATH'] ?? path.resolve('build/Release/vrep.node');
  const worker = new Worker(
    `const { parentPort } = require('node:worker_threads');
     const b = require(${JSON.stringify(addonPath)});
     parentPort.postMessage([b.setDistanceKernel('scalar'), b.distanceCapabilities().selected]);`,
    { eval: true },
  );
  const msg = await new Promise<unknown>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  assert.deepEqual(msg, ['scalar', 'scalar']);
  assert.equal(distanceCapabilities().selected, before);
});

test('wrappers: wrong types and lengths throw TypeError/RangeError naming the argument', () => {
  const q = new Float32Array(4);
  const m = new Float32Array(12);
  const out = new Float32Array(3);
  const idx = new Uint32Array(2);
  const sc = new Float32Array(2);
  const call = (f: () => unknown, type: typeof TypeError | typeof RangeError, re: RegExp) =>
    assert.throws(f, (e: unknown) => e instanceof type && re.test((e as Error).message));
  const anyArgs = distances as unknown as (...a: unknown[]) => number;
  call(() => anyArgs('l2', q, m, 4, out), TypeError, /distances\(metric\)/);
  call(() => anyArgs(3, q, m, 4, out), RangeError, /distances\(metric\)/);
  call(
    () => anyArgs(0, new Float64Array(4), m, 4, out),
    TypeError,
    /distances\(query\): expected a Float32Array/,
  );
  call(() => anyArgs(0, q, [1, 2, 3, 4], 4, out), TypeError, /distances\(matrix\)/);
  call(() => anyArgs(0, q, m, 0, out), RangeError, /distances\(dim\)/);
  call(() => anyArgs(0, q, m, 4.5, out), TypeError, /distances\(dim\)/);
  call(() => anyArgs(0, q, m, 3, out), RangeError, /distances\(query\): length 4/);
  call(() => anyArgs(0, q, new Float32Array(10), 4, out), RangeError, /distances\(matrix\): length 10/);
  call(() => anyArgs(0, q, m, 4, new Float32Array(2)), RangeError, /distances\(out\): length 2 < 3/);
  call(() => anyArgs(0, q, m, 4, new Uint32Array(3)), TypeError, /distances\(out\)/);
  call(() => anyArgs(0, q, m, 4, m.subarray(0, 3)), RangeError, /share memory/);
  call(() => anyArgs(0, q, m, 4, out, { rowIds: [0] }), TypeError, /options\.rowIds/);
  call(() => anyArgs(0, q, m, 4, out, { rowIds: Uint32Array.of(3) }), RangeError, /rowIds\[0\] = 3/);
  call(() => distancesBatch(0, new Float32Array(0), m, 4, out), RangeError, /distancesBatch\(queries\)/);
  call(() => topK(0, q, m, 4, 0, idx, sc), RangeError, /topK\(k\)/);
  call(() => topK(0, q, m, 4, 3, idx, new Float32Array(3)), RangeError, /topK\(outIndices\): length 2 < 3/);
  call(() => topK(0, q, m, 4, 2, new Int32Array(2) as unknown as Uint32Array, sc), TypeError, /outIndices/);
  call(() => topK(0, q, m, 4, 1, idx, new Float32Array(idx.buffer)), RangeError, /share memory/);
  call(
    () => topKBatch(0, new Float32Array(8), m, 4, 2, idx, sc),
    RangeError,
    /topKBatch\(outIndices\): length 2 < 4/,
  );
  call(() => setDistanceKernel(1 as unknown as DistanceKernel), TypeError, /setDistanceKernel/);
});

test('raw binding: wrong arguments throw coded VrepErrors', () => {
  const q = new Float32Array(4);
  const m = new Float32Array(12);
  const raw = binding as unknown as Record<string, (...a: unknown[]) => unknown>;
  const code = (c: string) => (e: unknown) => e instanceof VrepError && e.code === c;
  assert.throws(() => raw['distanceScores']!(), code('ERR_INVALID_ARG'));
  assert.throws(() => raw['distanceScores']!(7, q, m, 4, new Float32Array(3)), code('ERR_INVALID_ARG'));
  assert.throws(() => raw['distanceScores']!(0, q, m, 4, new Float32Array(2)), code('ERR_BUFFER_TOO_SMALL'));
  assert.throws(() => raw['distanceScores']!(0, q, m, 4, m), code('ERR_INVALID_ARG'));
  assert.throws(
    () => raw['distanceScores']!(0, q, m, 4, new Float32Array(3), Uint32Array.of(9)),
    code('ERR_INVALID_ARG'),
  );
  assert.throws(() => raw['distanceScores']!(0, q, m, 1e9, new Float32Array(3)), code('ERR_INVALID_ARG'));
  assert.throws(() => raw['distanceScores']!(0, q, m, NaN, new Float32Array(3)), code('ERR_INVALID_ARG'));
  assert.throws(
    () => raw['distanceTopK']!(0, q, m, 4, 3, new Uint32Array(2), new Float32Array(3)),
    code('ERR_BUFFER_TOO_SMALL'),
  );
  assert.throws(
    () => raw['distanceTopK']!(0, q, m, 4, 2 ** 32, new Uint32Array(2), new Float32Array(2)),
    code('ERR_INVALID_ARG'),
  );
  assert.throws(() => raw['setDistanceKernel']!({}), code('ERR_INVALID_ARG'));
  // An empty matrix is valid: nothing to score, nothing found.
  assert.equal(raw['distanceScores']!(0, q, new Float32Array(0), 4, new Float32Array(0)), 0);
  assert.equal(
    raw['distanceTopK']!(0, q, new Float32Array(0), 4, 2, new Uint32Array(2), new Float32Array(2)),
    0,
  );
});

test('raw binding: random garbage arguments throw or succeed, never crash (fast-check)', () => {
  const detached = () => {
    const view = new Float32Array(4);
    structuredClone(view.buffer, { transfer: [view.buffer] });
    return view;
  };
  const arg = fc.oneof(
    fc.constantFrom(
      undefined,
      null,
      NaN,
      Infinity,
      -1,
      0,
      1,
      2,
      3,
      4,
      2 ** 32,
      1.5,
      'l2',
      'avx2',
      'auto',
      {},
      [],
    ),
    fc.integer({ min: -5, max: 70 }),
    fc.integer({ min: 0, max: 64 }).map((n) => new Float32Array(n).map((_, i) => i - 3)),
    fc.integer({ min: 0, max: 16 }).map((n) => Uint32Array.from({ length: n }, (_, i) => i * 3)),
    fc.integer({ min: 0, max: 16 }).map((n) => new Float64Array(n)),
    fc.integer({ min: 0, max: 16 }).map((n) => new Uint8Array(n)),
    fc.constant(0).map(detached),
  );
  const fns = ['distanceScores', 'distanceTopK', 'setDistanceKernel', 'distanceCapabilities'];
  const raw = binding as unknown as Record<string, (...a: unknown[]) => unknown>;
  fc.assert(
    fc.property(fc.constantFrom(...fns), fc.array(arg, { maxLength: 9 }), (fn, args) => {
      try {
        raw[fn]!(...args);
      } catch (e) {
        assert.ok(e instanceof Error, `${fn} threw a non-Error`);
      }
    }),
    { numRuns: long ? 20000 : 2000, seed: 42 },
  );
  setDistanceKernel('auto');
  // Still working after the barrage.
  const out = new Float32Array(1);
  distances(Metric.Dot, Float32Array.of(2), Float32Array.of(3), 1, out);
  assert.equal(out[0], 6);
});
