/**
 * Plain TypeScript reference for the native distance kernels: the tests check
 * the kernels against it, and the bench measures it as the baseline. Sums are
 * in double (JS numbers), so it is also the more exact of the two.
 */
import { Metric } from '../../src/native/distance.ts';

/** Score of query vs row `row` of matrix, with the documented semantics. */
export function referenceScore(
  metric: Metric,
  query: Float32Array,
  matrix: Float32Array,
  dim: number,
  row: number,
): number {
  const base = row * dim;
  if (metric === Metric.L2) {
    let sum = 0;
    for (let i = 0; i < dim; i++) {
      const d = query[i]! - matrix[base + i]!;
      sum += d * d;
    }
    return sum;
  }
  let dot = 0;
  let qq = 0;
  let rr = 0;
  for (let i = 0; i < dim; i++) {
    const q = query[i]!;
    const r = matrix[base + i]!;
    dot += q * r;
    qq += q * q;
    rr += r * r;
  }
  if (metric === Metric.Dot) return dot;
  const denom = Math.sqrt(qq * rr);
  return denom > 0 ? Math.max(-1, Math.min(1, dot / denom)) : 0;
}

/** out[i] = score of row i. */
export function referenceScores(
  metric: Metric,
  query: Float32Array,
  matrix: Float32Array,
  dim: number,
  out: Float64Array | Float32Array,
): void {
  const rows = matrix.length / dim;
  for (let r = 0; r < rows; r++) out[r] = referenceScore(metric, query, matrix, dim, r);
}

/** True when score a ranks before score b (rows ra, rb) under `metric`. */
export function ranksBefore(metric: Metric, a: number, ra: number, b: number, rb: number): boolean {
  if (a === b) return ra < rb;
  return metric === Metric.L2 ? a < b : a > b;
}

/** Top-k from precomputed scores: best first, ties by lower row. */
export function topKFromScores(metric: Metric, scores: ArrayLike<number>, k: number): number[] {
  const rows = Array.from({ length: scores.length }, (_, i) => i);
  rows.sort((ra, rb) => {
    const a = scores[ra]!;
    const b = scores[rb]!;
    if (a === b) return ra - rb;
    return (metric === Metric.L2 ? a < b : a > b) ? -1 : 1;
  });
  return rows.slice(0, Math.min(k, rows.length));
}

/**
 * Plain TS top-k as an application would write it: score each row, keep the
 * k best in a sorted array (insertion), no allocation per row.
 */
export function referenceTopK(
  metric: Metric,
  query: Float32Array,
  matrix: Float32Array,
  dim: number,
  k: number,
  outIndices: Uint32Array,
  outScores: Float64Array | Float32Array,
): number {
  const rows = matrix.length / dim;
  let n = 0;
  for (let r = 0; r < rows; r++) {
    const s = referenceScore(metric, query, matrix, dim, r);
    if (n === k && !ranksBefore(metric, s, r, outScores[n - 1]!, outIndices[n - 1]!)) continue;
    let i = n < k ? n++ : n - 1;
    while (i > 0 && ranksBefore(metric, s, r, outScores[i - 1]!, outIndices[i - 1]!)) {
      outScores[i] = outScores[i - 1]!;
      outIndices[i] = outIndices[i - 1]!;
      i--;
    }
    outScores[i] = s;
    outIndices[i] = r;
  }
  return n;
}
