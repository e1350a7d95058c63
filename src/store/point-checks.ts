/**
 * The one validation of points a client writes, whichever way they came (HTTP
 * JSON batch, HTTP binary batch, TS API `write` and `writePacked`): batch
 * size, ids, vectors and payloads against ApiLimits (src/limits.ts).
 * Messages name the point and field; a batch that fails writes nothing.
 * A payload that passes can always be parsed and serialized again.
 */
import assert from 'node:assert/strict';
import { ApiLimits } from '../limits.ts';
import { VrepError } from '../errors.ts';
import { distances, Metric } from '../native/distance.ts';
import { firstInvalidJsonObject } from '../native/json-objects.ts';

/** A batch in the shape a record carries: payloads are raw JSON bytes, empty for none. */
export interface PackedPoints {
  ids: readonly string[];
  /** ids.length x dimension, row after row. */
  vectors: Float32Array;
  payloads: readonly Uint8Array[];
}

export function invalid(message: string): VrepError {
  return new VrepError('ERR_INVALID_INPUT', message);
}

export function checkBatchSize(count: number, label = 'points'): void {
  if (count === 0) throw invalid(`${label}: a batch needs at least one point`);
  if (count > ApiLimits.maxBatchPoints) {
    throw invalid(`${label}: ${count} points, limit ${ApiLimits.maxBatchPoints} per batch`);
  }
}

// String.prototype.isWellFormed is in Node 20 but in TS's ES2024 lib.
const isWellFormed = (text: string): boolean => (text as { isWellFormed(): boolean } & string).isWellFormed();

/** Why `id` is not a valid point id (empty, not well-formed Unicode, over the limit), or null. */
function pointIdProblem(id: string): string | null {
  if (id.length === 0) return 'must not be empty';
  // A lone surrogate has no UTF-8 form: the stored id would differ from the one sent.
  if (!isWellFormed(id)) return 'not valid Unicode (a lone surrogate cannot be UTF-8)';
  // Only a long id can be over the limit (a UTF-16 unit is at most 3 UTF-8 bytes).
  const bytes = id.length * 3 > ApiLimits.maxIdBytes ? Buffer.byteLength(id, 'utf8') : id.length;
  return bytes > ApiLimits.maxIdBytes ? `${bytes} bytes, limit ${ApiLimits.maxIdBytes}` : null;
}

/** A point id: non-empty, well-formed Unicode, within the limit. */
export function checkPointId(id: string, label: string): void {
  const problem = pointIdProblem(id);
  if (problem !== null) throw invalid(`${label}: ${problem}`);
}

/**
 * Index of the first row of `vectors` (rows x dimension) holding a NaN or an
 * infinity, or -1. Uses the SIMD dot kernel against a zero query: 0 * x is
 * exactly 0 for every finite x and NaN for NaN and +-Infinity, so a row's
 * score is NaN exactly when the row holds a non-finite value.
 */
export function firstNonFiniteRow(vectors: Float32Array, dimension: number): number {
  const rows = vectors.length / dimension;
  const scores = new Float32Array(rows);
  distances(Metric.Dot, new Float32Array(dimension), vectors, dimension, scores);
  for (let r = 0; r < rows; r++) if (Number.isNaN(scores[r])) return r;
  return -1;
}

function checkVectors(vectors: Float32Array, count: number, dimension: number): void {
  if (vectors.length !== count * dimension) {
    throw invalid(`vectors: expected ${count} x ${dimension} floats, got ${vectors.length}`);
  }
  const bad = firstNonFiniteRow(vectors, dimension);
  if (bad >= 0) {
    const row = vectors.subarray(bad * dimension, (bad + 1) * dimension);
    const j = row.findIndex((x) => !Number.isFinite(x));
    throw invalid(`points[${bad}].vector[${j}]: ${row[j]} is not allowed`);
  }
}

// Payloads are copied into a scratch buffer a chunk at a time and checked
// with one native call per chunk: far fewer calls than one per payload, and
// bounded memory. (Telling whether views already lie back to back in one
// buffer costs more than copying: reading a view's .buffer is slow.)
const SCRATCH_BYTES = 1024 * 1024;
assert.ok(SCRATCH_BYTES >= ApiLimits.maxPayloadBytes, 'a payload must fit in the scratch buffer');
let scratch: Uint8Array | undefined;

function checkPayloads(payloads: readonly Uint8Array[]): void {
  for (let i = 0; i < payloads.length; i++) {
    const p = payloads[i];
    if (!(p instanceof Uint8Array))
      throw invalid(`points[${i}].payload: expected the JSON bytes (a Uint8Array)`);
    if (p.length > ApiLimits.maxPayloadBytes) {
      throw invalid(`points[${i}].payload: ${p.length} bytes, limit ${ApiLimits.maxPayloadBytes}`);
    }
  }
  scratch ??= new Uint8Array(SCRATCH_BYTES);
  const offsets = new Uint32Array(payloads.length + 1);
  let first = 0;
  while (first < payloads.length) {
    let end = first;
    let at = 0;
    for (; end < payloads.length; end++) {
      const p = payloads[end] as Uint8Array;
      if (at + p.length > SCRATCH_BYTES) break;
      scratch.set(p, at);
      at += p.length;
      offsets[end - first + 1] = at;
    }
    const problem = firstInvalidJsonObject(
      scratch.subarray(0, at),
      offsets.subarray(0, end - first + 1),
      ApiLimits.maxPayloadDepth,
    );
    if (problem !== null) throw invalid(`points[${first + problem.index}].payload: ${problem.reason}`);
    first = end;
  }
}

/** Checks a whole batch for a collection of `dimension`; throws ERR_INVALID_INPUT naming the point and field. */
export function checkPackedPoints(batch: PackedPoints, dimension: number): void {
  const { ids, vectors, payloads } = batch;
  if (!Array.isArray(ids)) throw invalid('ids: expected an array of strings');
  checkBatchSize(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const id: unknown = ids[i];
    if (typeof id !== 'string') throw invalid(`points[${i}].id: expected a string, got ${typeof id}`);
    const problem = pointIdProblem(id);
    if (problem !== null) throw invalid(`points[${i}].id: ${problem}`);
  }
  if (!(vectors instanceof Float32Array)) throw invalid('vectors: expected a Float32Array');
  checkVectors(vectors, ids.length, dimension);
  if (!Array.isArray(payloads) || payloads.length !== ids.length) {
    throw invalid(`payloads: expected ${ids.length} byte arrays, one per point`);
  }
  checkPayloads(payloads);
}
