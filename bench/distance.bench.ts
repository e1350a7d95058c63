/**
 * SIMD distance: one-to-many scores and top-k (k = 10) over a float32 matrix,
 * each native kernel available here (scalar included) against the plain TS
 * reference and usearch's exactSearch (single thread) on the same data.
 * Figures are queries/s; ratios are against the TS reference and usearch.
 */
import { emit, isQuick, measure, withRatios, type Row, type Section } from './lib/harness.ts';
import { loadUsearch } from './lib/peers.ts';
import {
  Metric,
  distanceCapabilities,
  distances,
  setDistanceKernel,
  topK,
  topKBatch,
} from '../src/native/distance.ts';
import { referenceScores, referenceTopK } from '../test/native/distance-reference.ts';

const usearch = loadUsearch();
const K = 10;
const BATCH_QUERIES = 16;
const quick = isQuick();
const datasets = quick
  ? [
      { rows: 10_000, dim: 128 },
      { rows: 2_000, dim: 768 },
    ]
  : [
      { rows: 100_000, dim: 128 },
      { rows: 20_000, dim: 768 },
    ];
const METRIC_NAME = ['l2', 'dot', 'cosine'] as const;
const USEARCH_METRIC = [usearch.MetricKind.L2sq, usearch.MetricKind.IP, usearch.MetricKind.Cos] as const;
const kernels = distanceCapabilities().available;

function random(count: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const v = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    v[i] = a / 2 ** 31 - 1;
  }
  return v;
}

function row(name: string, queriesPerCall: number, rows: number, fn: () => unknown): Row {
  const m = measure(fn);
  const qps = m.opsPerSec * queriesPerCall;
  return { name, value: qps, unit: 'queries/s', note: `${((qps * rows) / 1e6).toFixed(1)} M rows/s` };
}

/** Ratios against the TS reference, plus a second ratio against usearch in the note. */
function withBothRatios(rows: Row[], usearchName: string | undefined): Row[] {
  const base = withRatios(rows, 'TS reference');
  const us = usearchName ? rows.find((r) => r.name === usearchName) : undefined;
  if (!us) return base;
  return base.map((r) =>
    r.name.startsWith('native')
      ? { ...r, note: `${r.note}; ${(r.value / us.value).toFixed(2)}x usearch` }
      : r,
  );
}

const sections: Section[] = [];
for (const { rows, dim } of datasets) {
  const matrix = random(rows * dim, rows + dim);
  const queries = random(BATCH_QUERIES * dim, 7);
  const query = queries.subarray(0, dim);
  const out = new Float32Array(rows);
  const refOut = new Float64Array(rows);
  const idx = new Uint32Array(BATCH_QUERIES * K);
  const scores = new Float32Array(BATCH_QUERIES * K);
  const refScores = new Float64Array(K);
  const shape = `${rows} x ${dim}`;

  for (const metric of [Metric.L2, Metric.Dot, Metric.Cosine]) {
    const name = METRIC_NAME[metric];
    const oneToMany: Row[] = kernels.map((kernel) => {
      setDistanceKernel(kernel);
      return row(`native ${kernel}`, 1, rows, () => distances(metric, query, matrix, dim, out));
    });
    oneToMany.push(row('TS reference', 1, rows, () => referenceScores(metric, query, matrix, dim, refOut)));
    sections.push({ title: `${name} one-to-many, ${shape}`, rows: withRatios(oneToMany, 'TS reference') });

    const usearchName = 'usearch exactSearch (1 thread)';
    const top: Row[] = kernels.map((kernel) => {
      setDistanceKernel(kernel);
      return row(`native ${kernel}`, 1, rows, () => topK(metric, query, matrix, dim, K, idx, scores));
    });
    top.push(
      row('TS reference', 1, rows, () => referenceTopK(metric, query, matrix, dim, K, idx, refScores)),
    );
    top.push(
      row(usearchName, 1, rows, () => usearch.exactSearch(matrix, query, dim, K, USEARCH_METRIC[metric], 1)),
    );
    sections.push({ title: `${name} top-${K}, one query, ${shape}`, rows: withBothRatios(top, usearchName) });
  }

  // Batches: usearch's exact search is built for many queries per call, and
  // topKBatch reads each block of rows once for all queries.
  setDistanceKernel('auto');
  const best = distanceCapabilities().selected;
  const usearchBatch = `usearch exactSearch, ${BATCH_QUERIES} queries (1 thread)`;
  const batch: Row[] = [
    row(`native ${best} topKBatch`, BATCH_QUERIES, rows, () =>
      topKBatch(Metric.L2, queries, matrix, dim, K, idx, scores),
    ),
    row(`native ${best} topK, one call per query`, BATCH_QUERIES, rows, () => {
      for (let q = 0; q < BATCH_QUERIES; q++) {
        const one = queries.subarray(q * dim, (q + 1) * dim);
        topK(
          Metric.L2,
          one,
          matrix,
          dim,
          K,
          idx.subarray(q * K, (q + 1) * K),
          scores.subarray(q * K, (q + 1) * K),
        );
      }
    }),
    row(usearchBatch, BATCH_QUERIES, rows, () =>
      usearch.exactSearch(matrix, queries, dim, K, usearch.MetricKind.L2sq, 1),
    ),
  ];
  sections.push({
    title: `l2 top-${K}, batch of ${BATCH_QUERIES} queries, ${shape}`,
    rows: withRatios(batch, usearchBatch),
  });
}
setDistanceKernel('auto');

emit('distance', sections);
