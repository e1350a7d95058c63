/**
 * Tiny benchmark harness. Each bench file runs in its own process (started by
 * bench/run.ts), measures a few cases, and calls `emit` once with its
 * sections. Figures are always given next to a baseline measured in the same
 * run, as a ratio: the machines are shared and noisy, bare numbers mislead.
 */
import { performance } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';

export interface Measurement {
  /** Operations per second (an operation is one call of the measured fn). */
  opsPerSec: number;
  /** Mean wall time of one operation, ms. */
  meanMs: number;
  iterations: number;
}

/**
 * Calls `fn` repeatedly for at least `minTimeMs` (after `warmupMs` of
 * warm-up) and returns the rate. Keep the per-call work large enough that the
 * loop overhead does not matter (batch inside `fn`).
 */
export function measure(
  fn: () => unknown,
  opts: { minTimeMs?: number; warmupMs?: number } = {},
): Measurement {
  const minTimeMs = opts.minTimeMs ?? benchTimeMs();
  const warmupMs = opts.warmupMs ?? Math.min(200, minTimeMs / 4);
  let sink: unknown;
  const warmEnd = performance.now() + warmupMs;
  while (performance.now() < warmEnd) sink = fn();
  let iterations = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    sink = fn();
    iterations++;
    elapsed = performance.now() - start;
  } while (elapsed < minTimeMs || iterations < 3);
  keep(sink);
  return { opsPerSec: (iterations * 1000) / elapsed, meanMs: elapsed / iterations, iterations };
}

/** Same as `measure` for async operations, awaited one at a time. */
export async function measureAsync(
  fn: () => Promise<unknown>,
  opts: { minTimeMs?: number } = {},
): Promise<Measurement> {
  const minTimeMs = opts.minTimeMs ?? benchTimeMs();
  for (let i = 0; i < 3; i++) await fn();
  let iterations = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    keep(await fn());
    iterations++;
    elapsed = performance.now() - start;
  } while (elapsed < minTimeMs || iterations < 3);
  return { opsPerSec: (iterations * 1000) / elapsed, meanMs: elapsed / iterations, iterations };
}

let sinkHole: unknown;
/** Keeps a result alive so the JIT cannot drop the work that made it. */
export function keep(value: unknown): void {
  sinkHole = value;
}
export function sunk(): unknown {
  return sinkHole;
}

/** Time per case: short in `npm test` smoke runs, longer in `npm run bench`. */
export function benchTimeMs(): number {
  const v = Number(process.env['VREP_BENCH_TIME_MS']);
  return Number.isFinite(v) && v > 0 ? v : 1000;
}

/** True when the bench runs as a quick smoke check (small data, short times). */
export function isQuick(): boolean {
  return process.env['VREP_BENCH_QUICK'] === '1';
}

export interface Row {
  /** What was measured, e.g. "l2 one-to-many, native (avx2)". */
  name: string;
  value: number;
  /** Unit last, e.g. "MB/s", "vectors/s", "ratio". */
  unit: string;
  /** value / baseline value, when the row has a baseline in the section. */
  ratio?: number;
  /** Name of the row the ratio is against. */
  vs?: string;
  note?: string;
}

export interface Section {
  title: string;
  rows: Row[];
}

/** Adds `ratio`/`vs` to every row against the named baseline row. */
export function withRatios(rows: Row[], baselineName: string): Row[] {
  const base = rows.find((r) => r.name === baselineName);
  if (!base || base.value === 0) return rows;
  return rows.map((r) => (r === base ? r : { ...r, ratio: r.value / base.value, vs: baselineName }));
}

export const RESULT_PREFIX = 'VREP_BENCH_RESULT ';

/** Hands this bench file's sections to bench/run.ts (one JSON line). */
export function emit(bench: string, sections: Section[]): void {
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify({ bench, sections })}\n`);
}

/** A latency histogram in microseconds, up to 600 s, 3 significant digits. */
export function latencyHistogram(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600_000_000,
    numberOfSignificantValueDigits: 3,
  });
}
