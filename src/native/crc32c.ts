/**
 * CRC32C (Castagnoli): the checksum of records, WAL entries and batch frames.
 * Uses the CPU's CRC instruction (SSE4.2 on x64, ARMv8 CRC when the build
 * targets it) and a slice-by-8 table fallback elsewhere.
 */
import { binding } from './addon.ts';
import { checkInt, checkUint8Array } from './checks.ts';

/** Which path `crc32c` takes on this CPU. */
export type Crc32cImplementation = 'sse4.2' | 'armv8-crc' | 'software';

export interface Crc32cBinding {
  crc32c(data: Uint8Array, previous?: number): number;
  crc32cSoftware(data: Uint8Array, previous?: number): number;
  crc32cCombine(crcA: number, crcB: number, lengthB: number): number;
  crc32cImplementation(): Crc32cImplementation;
}

const MAX_UINT32 = 0xffffffff;

/**
 * CRC32C of `data` as an unsigned 32-bit number. Chains: pass the CRC of the
 * preceding bytes as `previous`, and `crc32c(b, crc32c(a))` equals the CRC of
 * `a` followed by `b`. Wraps native `crc32c` (Crc32c in native/crc32c.cc).
 */
export function crc32c(data: Uint8Array, previous = 0): number {
  checkUint8Array('crc32c', 'data', data);
  checkInt('crc32c', 'previous', previous, 0, MAX_UINT32);
  return binding.crc32c(data, previous);
}

/**
 * Same as `crc32c` but always through the table-driven fallback, for tests
 * and benchmarks that compare the two paths. Wraps native `crc32cSoftware`.
 */
export function crc32cSoftware(data: Uint8Array, previous = 0): number {
  checkUint8Array('crc32cSoftware', 'data', data);
  checkInt('crc32cSoftware', 'previous', previous, 0, MAX_UINT32);
  return binding.crc32cSoftware(data, previous);
}

/**
 * The CRC32C of `a` followed by `b`, from `crc32c(a)`, `crc32c(b)` and
 * `b.length`, without the bytes: a payload's CRC, taken once, serves every
 * frame it is sent in. Wraps native `crc32cCombine`.
 */
export function crc32cCombine(crcA: number, crcB: number, lengthB: number): number {
  checkInt('crc32cCombine', 'crcA', crcA, 0, MAX_UINT32);
  checkInt('crc32cCombine', 'crcB', crcB, 0, MAX_UINT32);
  checkInt('crc32cCombine', 'lengthB', lengthB, 0, Number.MAX_SAFE_INTEGER);
  return binding.crc32cCombine(crcA, crcB, lengthB);
}

/** The path `crc32c` uses here. Wraps native `crc32cImplementation`. */
export function crc32cImplementation(): Crc32cImplementation {
  return binding.crc32cImplementation();
}
