/**
 * SIMD vector distance over float32 rows (native/distance.cc): one query (or
 * a batch) against a contiguous row-major matrix, either every score or the
 * top k. The kernel (AVX-512, AVX2+FMA, NEON or portable scalar) is chosen
 * at load from the CPU; VREP_FORCE_SCALAR=1 forces scalar.
 *
 * Score semantics (see docs/native/distance.md):
 * - `Metric.L2`: squared Euclidean distance; smaller is closer.
 * - `Metric.Dot`: inner product; larger is closer.
 * - `Metric.Cosine`: cosine similarity in [-1, 1]; larger is closer; 0 when
 *   either vector has zero norm (never NaN for finite input).
 * Top-k is best first, ties broken by the lower row index; NaN scores rank
 * after every number. Calls are synchronous: offload big scans to a worker.
 */
import { binding } from './addon.ts';
import { checkFloat32Array, checkInt, checkUint32Array } from './checks.ts';

/** Metric ids as the native side takes them. */
export const Metric = { L2: 0, Dot: 1, Cosine: 2 } as const;
export type Metric = (typeof Metric)[keyof typeof Metric];

export type DistanceKernel = 'scalar' | 'avx2' | 'avx512' | 'neon';

/** Largest vector dimension accepted (a limit on every call). */
export const MAX_DIM = 65536;
/** Rows are numbered with uint32, so a matrix holds at most this many. */
export const MAX_ROWS = 0xffffffff;
/** Index written to top-k slots past the number of results found. */
export const NO_ROW = 0xffffffff;

export interface DistanceCapabilities {
  /** Kernel used by this addon instance (this thread) now. */
  selected: DistanceKernel;
  /** Kernels this build and CPU can run, best first; always ends with 'scalar'. */
  available: DistanceKernel[];
  /** CPU features usable here (the CPU has them and the OS saves their registers). */
  cpu: { avx2: boolean; fma: boolean; avx512f: boolean; avx512bw: boolean; avx512vl: boolean; neon: boolean };
  /** True when VREP_FORCE_SCALAR was set when the addon loaded. */
  forcedScalar: boolean;
}

export interface DistanceOptions {
  /**
   * Score only these rows (indices into the matrix), in this order: scores
   * come out in rowIds order, and top-k returns matrix row indices.
   */
  rowIds?: Uint32Array;
}

/** Raw native functions (native/distance.cc); only the wrappers below call them. */
export interface DistanceBinding {
  /** out[q * n + j] = score(query q, row j or rowIds[j]); returns n, the rows per query. */
  distanceScores(
    metric: number,
    queries: Float32Array,
    matrix: Float32Array,
    dim: number,
    out: Float32Array,
    rowIds?: Uint32Array | null,
  ): number;
  /** Query q's best are at [q * k, q * k + found); returns found = min(k, rows per query). */
  distanceTopK(
    metric: number,
    queries: Float32Array,
    matrix: Float32Array,
    dim: number,
    k: number,
    outIndices: Uint32Array,
    outScores: Float32Array,
    rowIds?: Uint32Array | null,
  ): number;
  distanceCapabilities(): DistanceCapabilities;
  /** Returns the kernel now selected. */
  setDistanceKernel(name: string): string;
}

function sharesMemory(a: ArrayBufferView, b: ArrayBufferView | undefined): boolean {
  if (b === undefined || a.buffer !== b.buffer || a.byteLength === 0 || b.byteLength === 0) return false;
  return a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

interface Checked {
  /** Rows scored per query. */
  candidates: number;
  queryCount: number;
  rowIds: Uint32Array | undefined;
}

/** The checks shared by every search call; throws TypeError/RangeError naming `fn`. */
function checkSearch(
  fn: string,
  single: boolean,
  metric: unknown,
  queries: unknown,
  matrix: unknown,
  dim: unknown,
  options: DistanceOptions | undefined,
): Checked {
  const queryName = single ? 'query' : 'queries';
  checkInt(fn, 'metric', metric, 0, 2);
  checkFloat32Array(fn, queryName, queries);
  checkFloat32Array(fn, 'matrix', matrix);
  checkInt(fn, 'dim', dim, 1, MAX_DIM);
  if (single ? queries.length !== dim : queries.length === 0 || queries.length % dim !== 0) {
    const want = single ? `dim (${dim})` : `a positive multiple of dim (${dim})`;
    throw new RangeError(`${fn}(${queryName}): length ${queries.length} is not ${want}`);
  }
  if (matrix.length % dim !== 0) {
    throw new RangeError(`${fn}(matrix): length ${matrix.length} is not a multiple of dim (${dim})`);
  }
  const rows = matrix.length / dim;
  if (rows > MAX_ROWS) throw new RangeError(`${fn}(matrix): ${rows} rows, more than ${MAX_ROWS}`);
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TypeError(`${fn}(options): expected an object`);
  }
  const rowIds = options?.rowIds;
  if (rowIds !== undefined) {
    checkUint32Array(fn, 'options.rowIds', rowIds);
    for (let j = 0; j < rowIds.length; j++) {
      if (rowIds[j]! >= rows) {
        throw new RangeError(
          `${fn}(options.rowIds): rowIds[${j}] = ${rowIds[j]} is not a row (matrix has ${rows})`,
        );
      }
    }
  }
  return { candidates: rowIds?.length ?? rows, queryCount: queries.length / dim, rowIds };
}

function checkOutput(
  fn: string,
  name: string,
  out: ArrayBufferView,
  need: number,
  inputs: ArrayBufferView[],
): void {
  const length = (out as Float32Array | Uint32Array).length;
  if (length < need) throw new RangeError(`${fn}(${name}): length ${length} < ${need} needed`);
  if (inputs.some((input) => sharesMemory(out, input))) {
    throw new RangeError(`${fn}(${name}): must not share memory with the inputs`);
  }
}

function scores(
  fn: string,
  single: boolean,
  metric: Metric,
  queries: Float32Array,
  matrix: Float32Array,
  dim: number,
  out: Float32Array,
  options: DistanceOptions | undefined,
): number {
  const c = checkSearch(fn, single, metric, queries, matrix, dim, options);
  checkFloat32Array(fn, 'out', out);
  const inputs = c.rowIds ? [queries, matrix, c.rowIds] : [queries, matrix];
  checkOutput(fn, 'out', out, c.queryCount * c.candidates, inputs);
  return binding.distanceScores(metric, queries, matrix, dim, out, c.rowIds ?? null);
}

function best(
  fn: string,
  single: boolean,
  metric: Metric,
  queries: Float32Array,
  matrix: Float32Array,
  dim: number,
  k: number,
  outIndices: Uint32Array,
  outScores: Float32Array,
  options: DistanceOptions | undefined,
): number {
  const c = checkSearch(fn, single, metric, queries, matrix, dim, options);
  checkInt(fn, 'k', k, 1, MAX_ROWS);
  checkUint32Array(fn, 'outIndices', outIndices);
  checkFloat32Array(fn, 'outScores', outScores);
  const inputs = c.rowIds ? [queries, matrix, c.rowIds] : [queries, matrix];
  checkOutput(fn, 'outIndices', outIndices, c.queryCount * k, inputs);
  checkOutput(fn, 'outScores', outScores, c.queryCount * k, [...inputs, outIndices]);
  return binding.distanceTopK(metric, queries, matrix, dim, k, outIndices, outScores, c.rowIds ?? null);
}

/**
 * Scores one query against every row of `matrix` (rows x dim, row-major):
 * out[i] = score of row i (or of rowIds[i]). Wraps native `distanceScores`.
 * @returns the number of scores written (rows, or rowIds.length).
 */
export function distances(
  metric: Metric,
  query: Float32Array,
  matrix: Float32Array,
  dim: number,
  out: Float32Array,
  options?: DistanceOptions,
): number {
  return scores('distances', true, metric, query, matrix, dim, out, options);
}

/**
 * `distances` for many queries back to back in `queries` (q x dim):
 * out[q * n + i] = score of query q against row i, with n the returned count.
 * Wraps native `distanceScores`.
 */
export function distancesBatch(
  metric: Metric,
  queries: Float32Array,
  matrix: Float32Array,
  dim: number,
  out: Float32Array,
  options?: DistanceOptions,
): number {
  return scores('distancesBatch', false, metric, queries, matrix, dim, out, options);
}

/**
 * The `k` rows closest to `query`, best first (ties: lower row index first).
 * Fills outIndices/outScores[0, found); slots [found, k) get NO_ROW and NaN.
 * Wraps native `distanceTopK`.
 * @returns found = min(k, rows scored).
 */
export function topK(
  metric: Metric,
  query: Float32Array,
  matrix: Float32Array,
  dim: number,
  k: number,
  outIndices: Uint32Array,
  outScores: Float32Array,
  options?: DistanceOptions,
): number {
  return best('topK', true, metric, query, matrix, dim, k, outIndices, outScores, options);
}

/**
 * `topK` for many queries: query q's results are at [q * k, q * k + found)
 * of outIndices/outScores (each at least queries x k long).
 * Wraps native `distanceTopK`.
 * @returns found per query = min(k, rows scored).
 */
export function topKBatch(
  metric: Metric,
  queries: Float32Array,
  matrix: Float32Array,
  dim: number,
  k: number,
  outIndices: Uint32Array,
  outScores: Float32Array,
  options?: DistanceOptions,
): number {
  return best('topKBatch', false, metric, queries, matrix, dim, k, outIndices, outScores, options);
}

/** Which kernel this thread's addon instance uses and what else it could use. Wraps `distanceCapabilities`. */
export function distanceCapabilities(): DistanceCapabilities {
  return binding.distanceCapabilities();
}

/**
 * Selects the kernel for this thread's addon instance (tests, benchmarks).
 * 'auto' restores the load-time choice. Throws a VrepError ERR_UNSUPPORTED
 * for a kernel this CPU or build lacks. Wraps native `setDistanceKernel`.
 * @returns the kernel now selected.
 */
export function setDistanceKernel(name: DistanceKernel | 'auto'): DistanceKernel {
  if (typeof name !== 'string') throw new TypeError(`setDistanceKernel(name): expected a string`);
  return binding.setDistanceKernel(name) as DistanceKernel;
}
