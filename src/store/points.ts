/**
 * Turns API input (points as objects) into the column-shaped batch a record
 * carries, then runs the one validation every write path shares
 * (point-checks.ts). Messages name the point and field; nothing is written
 * unless the whole batch passes.
 */
import { checkBatchSize, checkPackedPoints, checkPointId, invalid } from './point-checks.ts';

export { checkBatchSize, checkPackedPoints, firstNonFiniteRow, invalid } from './point-checks.ts';

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

/** A point id: a non-empty string within the limit, or a non-negative integer (kept as its decimal string). */
export function normalizeId(value: unknown, label: string): string {
  let id: string;
  if (typeof value === 'string') id = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) id = String(value);
  else
    throw invalid(
      `${label}: expected a non-empty string or a non-negative integer, got ${describeValue(value)}`,
    );
  checkPointId(id, label);
  return id;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return String(value);
  return typeof value;
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
  const batch = { ids, vectors, payloads };
  checkPackedPoints(batch, dimension);
  return batch;
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
    // A cycle, a BigInt, or nesting too deep for the stack.
    throw invalid(`${label}: not serializable as JSON (${(err as Error).message})`);
  }
  // Size, depth and shape (a toJSON may return a non-object) are checked with every other payload.
  return encoder.encode(text);
}
