/**
 * JSON vector batches parsed natively (simdjson 0.9.1, native/json_points.cc):
 *
 *   {"points":[{"id":"a","vector":[0.1,0.2],"payload":{"k":"v"}}, ...]}
 *
 * becomes one contiguous Float32Array, the ids as strings and every payload's
 * raw JSON bytes, without creating a JS object per point. Errors are
 * VrepErrors: ERR_JSON_SYNTAX (not JSON) or ERR_JSON_POINT (names the point
 * and field, e.g. `points[3].vector[17]: expected a number, got string`).
 * See docs/native/json-points.md.
 */
import assert from 'node:assert/strict';
import { ApiLimits } from '../limits.ts';
import { binding } from './addon.ts';
import { checkInt, checkUint8Array, describe } from './checks.ts';
import { JSON_MAX_DEPTH } from './json-objects.ts';

/** A parsed batch. Point i's vector is vectors[i*dimension .. (i+1)*dimension). */
export interface JsonPointsBatch {
  /** Number of points. */
  readonly count: number;
  /** Floats per vector (the expected one, or the first point's when none was given; 0 for an empty batch without one). */
  readonly dimension: number;
  /** count x dimension float32 values, contiguous. */
  readonly vectors: Float32Array;
  /** Point ids: JSON strings as written (unescaped), integer ids as their decimal text. */
  readonly ids: string[];
  /** Every payload's JSON source text (UTF-8), concatenated in point order. */
  readonly payloadBytes: Uint8Array;
  /**
   * count + 1 offsets into payloadBytes: point i's payload is
   * payloadBytes[payloadOffsets[i] .. payloadOffsets[i+1]). An empty slice
   * means no payload (absent or null); an object is never empty ("{}").
   */
  readonly payloadOffsets: Uint32Array;
}

interface NativeJsonPointsParser {
  parse(
    bytes: Uint8Array,
    expectedDimension: number,
    maxPoints: number,
    maxPayloadBytes: number,
    maxIdBytes: number,
    maxInputBytes: number,
  ): JsonPointsBatch;
}

export interface JsonPointsBinding {
  /** One simdjson parser plus reusable padded input buffer per instance. */
  JsonPointsParser: new () => NativeJsonPointsParser;
  /** The same parse on libuv's thread pool (decoders pooled natively); the arguments as parse's. */
  parseJsonPointsAsync: NativeJsonPointsParser['parse'] extends (...args: infer A) => unknown
    ? (...args: A) => Promise<JsonPointsBatch>
    : never;
}

/** Largest vector dimension accepted (kJsonMaxDimension). */
export const JSON_POINTS_MAX_DIMENSION = 65_536;
/** Largest maxPoints accepted (kJsonMaxPointsCap). */
export const JSON_POINTS_MAX_POINTS_CAP = 10_000_000;
/** Largest maxInputBytes accepted: simdjson 0.9.1 documents stay below 4 GiB (kJsonMaxInputBytesCap). */
export const JSON_POINTS_MAX_INPUT_BYTES_CAP = 0xffff_ffff - 32;

export interface JsonPointsOptions {
  /** Required vector dimension; 0 or absent: the first point's, and every point must match it. */
  dimension?: number;
  /** Most points in one batch (default ApiLimits.maxBatchPoints). */
  maxPoints?: number;
  /** Most bytes of one payload's JSON text (default ApiLimits.maxPayloadBytes). */
  maxPayloadBytes?: number;
  /** Most UTF-8 bytes of one id (default ApiLimits.maxIdBytes). */
  maxIdBytes?: number;
  /** Most bytes of the whole batch (default 256 MiB). */
  maxInputBytes?: number;
}

/** The API's limits (src/limits.ts), so a batch the parser takes is one the store takes. */
export const DEFAULT_JSON_POINTS_LIMITS = {
  maxPoints: ApiLimits.maxBatchPoints,
  maxPayloadBytes: ApiLimits.maxPayloadBytes,
  maxIdBytes: ApiLimits.maxIdBytes,
  maxInputBytes: 256 * 1024 * 1024,
} as const;

// A payload sits 3 levels down in a batch ({"points": [{"payload": ...}]}),
// and the whole batch must stay within the parser's nesting limit, so the
// deepest payload the store takes can be sent as JSON.
export const JSON_POINTS_PAYLOAD_LEVEL = 3;
assert.ok(
  ApiLimits.maxPayloadDepth + JSON_POINTS_PAYLOAD_LEVEL <= JSON_MAX_DEPTH,
  'ApiLimits.maxPayloadDepth must fit in a JSON batch',
);
assert.ok(ApiLimits.maxBatchPoints <= JSON_POINTS_MAX_POINTS_CAP, 'ApiLimits.maxBatchPoints');

const optionKeys = new Set(['dimension', 'maxPoints', 'maxPayloadBytes', 'maxIdBytes', 'maxInputBytes']);

function readOptions(fn: string, options: unknown): Required<JsonPointsOptions> {
  if (options === undefined) return { dimension: 0, ...DEFAULT_JSON_POINTS_LIMITS };
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`${fn}(options): expected an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!optionKeys.has(key)) throw new TypeError(`${fn}(options): unknown option "${key}"`);
  }
  const o = options as JsonPointsOptions;
  const read = (name: keyof JsonPointsOptions, fallback: number, min: number, max: number): number => {
    const value = o[name] ?? fallback;
    checkInt(fn, `options.${name}`, value, min, max);
    return value;
  };
  return {
    dimension: read('dimension', 0, 0, JSON_POINTS_MAX_DIMENSION),
    maxPoints: read('maxPoints', DEFAULT_JSON_POINTS_LIMITS.maxPoints, 0, JSON_POINTS_MAX_POINTS_CAP),
    maxPayloadBytes: read(
      'maxPayloadBytes',
      DEFAULT_JSON_POINTS_LIMITS.maxPayloadBytes,
      0,
      JSON_POINTS_MAX_INPUT_BYTES_CAP,
    ),
    maxIdBytes: read('maxIdBytes', DEFAULT_JSON_POINTS_LIMITS.maxIdBytes, 1, JSON_POINTS_MAX_INPUT_BYTES_CAP),
    maxInputBytes: read(
      'maxInputBytes',
      DEFAULT_JSON_POINTS_LIMITS.maxInputBytes,
      0,
      JSON_POINTS_MAX_INPUT_BYTES_CAP,
    ),
  };
}

/**
 * A reusable parser: keeps its simdjson buffers between calls (buffers over
 * 64 MiB are released after use). Not shared between threads: each worker
 * makes its own.
 */
export class JsonPointsParser {
  readonly #native = new binding.JsonPointsParser();

  /**
   * Parses a JSON batch (wraps native JsonPointsParser.parse). All or
   * nothing: on any problem it throws and returns nothing.
   * @throws VrepError ERR_JSON_SYNTAX, ERR_JSON_POINT; TypeError/RangeError for bad arguments.
   */
  parse(bytes: Uint8Array, options?: JsonPointsOptions): JsonPointsBatch {
    checkUint8Array('JsonPointsParser.parse', 'bytes', bytes);
    const o = readOptions('JsonPointsParser.parse', options);
    return this.#native.parse(
      bytes,
      o.dimension,
      o.maxPoints,
      o.maxPayloadBytes,
      o.maxIdBytes,
      o.maxInputBytes,
    );
  }
}

let sharedParser: JsonPointsParser | undefined;

/** `new JsonPointsParser().parse(...)` with one parser per thread, made on first use. */
export function parseJsonPoints(bytes: Uint8Array, options?: JsonPointsOptions): JsonPointsBatch {
  sharedParser ??= new JsonPointsParser();
  return sharedParser.parse(bytes, options);
}

/**
 * Parses running on libuv's thread pool at once. The pool (4 threads) also
 * does the node's file I/O, the WAL's writes among them: two parses leave it
 * threads, and keep both cores of a small machine busy.
 */
export const MAX_PARALLEL_PARSES = 2;
let parsesRunning = 0;
/** Callers waiting for a parse slot, oldest first (bounded by the requests the HTTP listener admits). */
const waitingForSlot: (() => void)[] = [];

/**
 * parseJsonPoints off the event loop: the parse (simdjson, the walk, the
 * float conversion) runs on libuv's thread pool, at most MAX_PARALLEL_PARSES
 * at once; the result's buffers are handed over without a copy. `bytes` must
 * not change until the promise settles. Rejects as parse throws.
 */
export async function parseJsonPointsAsync(
  bytes: Uint8Array,
  options?: JsonPointsOptions,
): Promise<JsonPointsBatch> {
  checkUint8Array('parseJsonPointsAsync', 'bytes', bytes);
  const o = readOptions('parseJsonPointsAsync', options);
  // A finishing parse hands its slot straight to the oldest waiter.
  if (parsesRunning >= MAX_PARALLEL_PARSES)
    await new Promise<void>((resolve) => waitingForSlot.push(resolve));
  else parsesRunning++;
  try {
    return await binding.parseJsonPointsAsync(
      bytes,
      o.dimension,
      o.maxPoints,
      o.maxPayloadBytes,
      o.maxIdBytes,
      o.maxInputBytes,
    );
  } finally {
    const next = waitingForSlot.shift();
    if (next) next();
    else parsesRunning--;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function checkIndex(fn: string, batch: JsonPointsBatch, index: number): void {
  checkInt(fn, 'index', index, 0, Math.max(0, batch.count - 1));
  if (batch.count === 0) throw new RangeError(`${fn}(index): the batch has no points`);
}

/** Point `index`'s vector, a view into batch.vectors (no copy). */
export function pointVector(batch: JsonPointsBatch, index: number): Float32Array {
  checkIndex('pointVector', batch, index);
  return batch.vectors.subarray(index * batch.dimension, (index + 1) * batch.dimension);
}

/** Point `index`'s payload bytes (a view, no copy); empty when it has none. */
export function pointPayloadBytes(batch: JsonPointsBatch, index: number): Uint8Array {
  checkIndex('pointPayloadBytes', batch, index);
  return batch.payloadBytes.subarray(batch.payloadOffsets[index], batch.payloadOffsets[index + 1]);
}

/** Point `index`'s payload JSON text, or undefined when it has none. */
export function pointPayloadText(batch: JsonPointsBatch, index: number): string | undefined {
  const bytes = pointPayloadBytes(batch, index);
  return bytes.length === 0 ? undefined : utf8.decode(bytes);
}

export interface DecodedJsonPoints {
  ids: string[];
  dimension: number;
  /** count x dimension, contiguous. */
  vectors: Float32Array;
  /** JSON.parse of each payload; undefined when absent or null. */
  payloads: (Record<string, unknown> | undefined)[];
}

/**
 * Convenience over parseJsonPoints that also JSON.parses every payload (one
 * object per point: use the raw form on hot paths).
 */
export function decodeJsonPoints(bytes: Uint8Array, options?: JsonPointsOptions): DecodedJsonPoints {
  const batch = parseJsonPoints(bytes, options);
  const payloads: (Record<string, unknown> | undefined)[] = new Array(batch.count);
  for (let i = 0; i < batch.count; i++) {
    const text = pointPayloadText(batch, i);
    payloads[i] = text === undefined ? undefined : (JSON.parse(text) as Record<string, unknown>);
  }
  return { ids: batch.ids, dimension: batch.dimension, vectors: batch.vectors, payloads };
}
