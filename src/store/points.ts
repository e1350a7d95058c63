/**
 * Turns API input (points as objects) into the column-shaped batch a record
 * carries, checking everything with messages that name the point and field.
 * Nothing is written unless the whole batch passes.
 */
import { VrepError } from '../errors.ts';
import { RecordLimits } from '../log/limits.ts';
import { distances, Metric } from '../native/distance.ts';

export interface PointInput {
  id: string | number;
  vector: Float32Array | readonly number[];
  payload?: Record<string, unknown> | null;
}

export interface PointBatch {
  ids: string[];
  vectors: Float32Array;
  payloads: Uint8Array[];
}

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);

export function invalid(message: string): VrepError {
  return new VrepError('ERR_INVALID_INPUT', message);
}

/** A point id: a non-empty string within the limit, or a non-negative integer (kept as its decimal string). */
export function normalizeId(value: unknown, label: string): string {
  let id: string;
  if (typeof value === 'string') id = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) id = String(value);
  else
    throw invalid(
      `${label}: expected a non-empty string or a non-negative integer, got ${describeValue(value)}`,
    );
  if (id.length === 0) throw invalid(`${label}: must not be empty`);
  const bytes = encoder.encode(id).length;
  if (bytes > RecordLimits.maxIdBytes)
    throw invalid(`${label}: ${bytes} bytes, limit ${RecordLimits.maxIdBytes}`);
  return id;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return String(value);
  return typeof value;
}

export function checkBatchSize(count: number, label = 'points'): void {
  if (count === 0) throw invalid(`${label}: a batch needs at least one point`);
  if (count > RecordLimits.maxBatchPoints) {
    throw invalid(`${label}: ${count} points, limit ${RecordLimits.maxBatchPoints} per batch`);
  }
}

/** Checks and packs points for a collection of `dimension`. */
export function packPoints(points: unknown, dimension: number): PointBatch {
  if (!Array.isArray(points)) throw invalid(`points: expected an array, got ${describeValue(points)}`);
  checkBatchSize(points.length);
  const n = points.length;
  const ids: string[] = new Array(n);
  const vectors = new Float32Array(n * dimension);
  const payloads: Uint8Array[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const p: unknown = points[i];
    if (typeof p !== 'object' || p === null || Array.isArray(p)) {
      throw invalid(`points[${i}]: expected an object, got ${describeValue(p)}`);
    }
    const point = p as Record<string, unknown>;
    for (const key of Object.keys(point)) {
      if (key !== 'id' && key !== 'vector' && key !== 'payload')
        throw invalid(`points[${i}]: unknown field "${key}"`);
    }
    if (!('id' in point)) throw invalid(`points[${i}].id: missing`);
    ids[i] = normalizeId(point['id'], `points[${i}].id`);
    copyVector(point['vector'], vectors, i, dimension);
    payloads[i] = encodePayload(point['payload'], `points[${i}].payload`);
  }
  return { ids, vectors, payloads };
}

function copyVector(value: unknown, out: Float32Array, row: number, dimension: number): void {
  const label = `points[${row}].vector`;
  if (value === undefined) throw invalid(`${label}: missing`);
  if (!(value instanceof Float32Array) && !Array.isArray(value)) {
    throw invalid(`${label}: expected a Float32Array or an array of numbers, got ${describeValue(value)}`);
  }
  const v = value as ArrayLike<unknown>;
  if (v.length !== dimension) throw invalid(`${label}: expected ${dimension} numbers, got ${v.length}`);
  const base = row * dimension;
  for (let j = 0; j < dimension; j++) {
    const x = v[j];
    if (typeof x !== 'number') throw invalid(`${label}[${j}]: expected a number, got ${describeValue(x)}`);
    const f = Math.fround(x);
    if (!Number.isFinite(f)) {
      throw invalid(
        `${label}[${j}]: ${Number.isNaN(x) ? 'NaN' : Number.isFinite(x) ? `${x} is out of float32 range` : String(x)} is not allowed`,
      );
    }
    out[base + j] = f;
  }
}

function encodePayload(value: unknown, label: string): Uint8Array {
  if (value === undefined || value === null) return EMPTY;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(`${label}: expected an object or null, got ${describeValue(value)}`);
  }
  let text: string;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw invalid(`${label}: not serializable as JSON (${(err as Error).message})`);
  }
  const bytes = encoder.encode(text);
  if (bytes.length > RecordLimits.maxPayloadBytes) {
    throw invalid(`${label}: ${bytes.length} bytes, limit ${RecordLimits.maxPayloadBytes}`);
  }
  return bytes;
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
