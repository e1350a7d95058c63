/**
 * Argument checks for the native boundary. Each throws a TypeError or
 * RangeError whose message names the function and the argument, so a caller
 * sees "crc32c(data): expected a Uint8Array, got string" and never a crash.
 */

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `Array(${value.length})`;
  if (ArrayBuffer.isView(value))
    return `${value.constructor.name}(${(value as ArrayBufferView).byteLength} bytes)`;
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  if (typeof value === 'string') return `string`;
  return `${typeof value} ${String(value)}`;
}

export function checkUint8Array(fn: string, name: string, value: unknown): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${fn}(${name}): expected a Uint8Array (or Buffer), got ${describe(value)}`);
  }
}

export function checkFloat32Array(fn: string, name: string, value: unknown): asserts value is Float32Array {
  if (!(value instanceof Float32Array)) {
    throw new TypeError(`${fn}(${name}): expected a Float32Array, got ${describe(value)}`);
  }
}

export function checkUint32Array(fn: string, name: string, value: unknown): asserts value is Uint32Array {
  if (!(value instanceof Uint32Array)) {
    throw new TypeError(`${fn}(${name}): expected a Uint32Array, got ${describe(value)}`);
  }
}

/** An integer in [min, max]; `max` defaults to Number.MAX_SAFE_INTEGER. */
export function checkInt(
  fn: string,
  name: string,
  value: unknown,
  min: number,
  max: number = Number.MAX_SAFE_INTEGER,
): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${fn}(${name}): expected an integer, got ${describe(value)}`);
  }
  if (value < min || value > max) {
    throw new RangeError(`${fn}(${name}): ${value} is out of range [${min}, ${max}]`);
  }
}
