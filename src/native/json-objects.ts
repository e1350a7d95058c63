/**
 * Checks JSON texts that must each be one JSON object, with simdjson
 * (native/json_objects.cc): valid UTF-8, valid JSON, an object at the top,
 * nested at most `maxDepth` levels. The store runs it over every payload a
 * client writes. See docs/native/json-points.md.
 */
import { binding } from './addon.ts';
import { checkInt, checkUint32Array, checkUint8Array } from './checks.ts';

/** Why text `index` is not acceptable. */
export interface JsonObjectProblem {
  readonly index: number;
  /** e.g. "nested deeper than 64 levels", "not valid UTF-8", "expected a JSON object, got array". */
  readonly reason: string;
}

interface NativeJsonObjectChecker {
  firstInvalid(bytes: Uint8Array, offsets: Uint32Array, maxDepth: number): JsonObjectProblem | null;
}

export interface JsonObjectsBinding {
  /** One simdjson parser plus reusable padded buffer per instance. */
  JsonObjectChecker: new () => NativeJsonObjectChecker;
  /** Deepest nesting any native JSON parser accepts (kJsonMaxDepth); a JSON points batch as a whole too. */
  jsonMaxDepth: number;
}

/** Deepest nesting any native JSON parser accepts, the whole document of a JSON points batch included. */
export const JSON_MAX_DEPTH: number = binding.jsonMaxDepth;

let sharedChecker: NativeJsonObjectChecker | undefined;

/**
 * The first text of `bytes` split at `offsets` (text i is
 * bytes[offsets[i], offsets[i+1])) that is not one JSON object nested at most
 * `maxDepth` levels, or null when all are. Every value of a text may sit
 * inside at most `maxDepth` objects and arrays, the outermost included. Empty
 * texts are skipped (no payload). Wraps native JsonObjectChecker.firstInvalid,
 * with one checker per thread.
 */
export function firstInvalidJsonObject(
  bytes: Uint8Array,
  offsets: Uint32Array,
  maxDepth: number,
): JsonObjectProblem | null {
  const fn = 'firstInvalidJsonObject';
  checkUint8Array(fn, 'bytes', bytes);
  checkUint32Array(fn, 'offsets', offsets);
  checkInt(fn, 'maxDepth', maxDepth, 1, JSON_MAX_DEPTH);
  if (offsets.length === 0) throw new RangeError(`${fn}(offsets): expected at least 1 offset`);
  for (let i = 1; i < offsets.length; i++) {
    if ((offsets[i] as number) < (offsets[i - 1] as number))
      throw new RangeError(`${fn}(offsets): offsets[${i}] is smaller than offsets[${i - 1}]`);
  }
  if ((offsets[offsets.length - 1] as number) > bytes.length)
    throw new RangeError(`${fn}(offsets): the last offset is past the end of bytes`);
  sharedChecker ??= new binding.JsonObjectChecker();
  return sharedChecker.firstInvalid(bytes, offsets, maxDepth);
}
