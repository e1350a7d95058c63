/**
 * zstd batch frames: several byte parts, some of them float32 blocks that are
 * byte-shuffled (Blosc-style byte-plane transpose) before zstd, packed into
 * one frame that checks itself (header and content CRC32C) and declares its
 * decoded size up front, so a decoder refuses oversized or damaged frames
 * before allocating. Frame format: docs/native/batch-codec.md.
 */
import { binding } from './addon.ts';
import { checkInt, checkUint8Array, describe } from './checks.ts';

export interface BatchCodecLimits {
  /** Most parts in one frame. */
  readonly maxParts: number;
  /** Most content bytes (sum of the parts) in one frame. */
  readonly maxBatchBytes: number;
  /** zstd compression level range. */
  readonly minLevel: number;
  readonly maxLevel: number;
  /** Most zstd worker threads one call may use. */
  readonly maxWorkers: number;
  /** Decoded parts start at multiples of this within their ArrayBuffer. */
  readonly partAlignBytes: number;
  /** Element size of shuffled parts (float32). */
  readonly shuffleElementBytes: number;
}

export interface BatchFrameInfo {
  partCount: number;
  /** Sum of the part lengths once decoded. */
  totalBytes: number;
  /** The bytes a decoder's output takes: the parts at their aligned offsets. */
  outputBytes: number;
  /** Bytes after the header (zstd frame, or the parts when stored). */
  payloadBytes: number;
  /** False for a stored frame (the parts as they are, no zstd). */
  compressed: boolean;
}

export interface BatchCodecBinding {
  compressBatch(...args: CompressArgs): Uint8Array;
  compressBatchAsync(...args: CompressArgs): Promise<Uint8Array>;
  decompressBatch(frame: Uint8Array, maxBytes: number): Uint8Array[];
  decompressBatchAsync(frame: Uint8Array, maxBytes: number): Promise<Uint8Array[]>;
  /** Into the caller's `output`: resolves [offset, length] of each part in it, flattened. */
  decompressBatchAsync(frame: Uint8Array, maxBytes: number, output: Uint8Array): Promise<number[]>;
  inspectBatchFrame(frame: Uint8Array, maxBytes?: number): BatchFrameInfo;
  shuffleBytes(src: Uint8Array, dst: Uint8Array, elementBytes: number): void;
  unshuffleBytes(src: Uint8Array, dst: Uint8Array, elementBytes: number): void;
  readonly batchCodecLimits: BatchCodecLimits;
}

/** Limits every frame obeys (checked by encoder and decoder). */
export const batchCodecLimits: BatchCodecLimits = Object.freeze({ ...binding.batchCodecLimits });

/** A part of a batch: raw bytes, or a float32 block (shuffled by default). */
export type BatchPart = Uint8Array | Float32Array;

export interface CompressBatchOptions {
  /**
   * zstd compression level of the parts that are not shuffled, in
   * [minLevel, maxLevel]; default 1. Shuffled parts (byte planes) are always
   * entropy-coded only, which is faster and as small (see the doc).
   */
  level?: number;
  /**
   * Which parts to byte-shuffle as float32 before zstd: one flag for all
   * parts or one per part. Default: the parts given as Float32Array. A
   * shuffled part's byte length must be a multiple of 4.
   */
  shuffle?: boolean | readonly boolean[];
  /**
   * Skip zstd and store the parts as they are (for data known not to
   * compress). Without it, a frame is still stored when zstd does not make
   * the payload smaller.
   */
  store?: boolean;
  /**
   * zstd worker threads for this call (ZSTD_c_nbWorkers), 0..maxWorkers;
   * default 0 (compress on the calling thread, or on the one pool thread for
   * the async call). Worth it only for batches of several MB: zstd splits
   * the input into jobs of about 4 windows. The frame format is the same.
   */
  workers?: number;
}

export interface DecompressBatchOptions {
  /** Refuse (ERR_FRAME_TOO_LARGE) frames declaring more content bytes. */
  maxBytes: number;
  /**
   * decompressBatchAsync only: decode into a fresh SharedArrayBuffer instead
   * of an ArrayBuffer, for parts kept as long-lived storage. V8 does not
   * count shared memory as the isolate's external memory, whose growth would
   * start a full GC every few MB (store/collection.ts, `sharedFloats`).
   */
  shared?: boolean;
}

const DEFAULT_LEVEL = 1;

type CompressArgs = [
  parts: Uint8Array[],
  elementBytes: Uint8Array,
  level: number,
  store: boolean,
  workers: number,
];

function prepareCompress(fn: string, parts: readonly BatchPart[], opts: CompressBatchOptions): CompressArgs {
  if (!Array.isArray(parts)) throw new TypeError(`${fn}(parts): expected an array, got ${describe(parts)}`);
  if (typeof opts !== 'object' || opts === null)
    throw new TypeError(`${fn}(opts): expected an object, got ${describe(opts)}`);
  const limits = batchCodecLimits;
  if (parts.length > limits.maxParts) {
    throw new RangeError(`${fn}(parts): ${parts.length} parts, over the limit of ${limits.maxParts}`);
  }
  const level = opts.level ?? DEFAULT_LEVEL;
  checkInt(fn, 'opts.level', level, limits.minLevel, limits.maxLevel);
  const workers = opts.workers ?? 0;
  checkInt(fn, 'opts.workers', workers, 0, limits.maxWorkers);
  const store = opts.store ?? false;
  if (typeof store !== 'boolean')
    throw new TypeError(`${fn}(opts.store): expected a boolean, got ${describe(store)}`);
  const shuffle = opts.shuffle;
  if (Array.isArray(shuffle)) {
    if (shuffle.length !== parts.length) {
      throw new RangeError(`${fn}(opts.shuffle): ${shuffle.length} flags for ${parts.length} parts`);
    }
  } else if (shuffle !== undefined && typeof shuffle !== 'boolean') {
    throw new TypeError(
      `${fn}(opts.shuffle): expected a boolean or an array of booleans, got ${describe(shuffle)}`,
    );
  }
  const bytes: Uint8Array[] = new Array<Uint8Array>(parts.length);
  const elementBytes = new Uint8Array(parts.length);
  let totalBytes = 0;
  for (let i = 0; i < parts.length; i++) {
    const part: unknown = parts[i];
    let view: Uint8Array;
    if (part instanceof Uint8Array) view = part;
    else if (part instanceof Float32Array)
      view = new Uint8Array(part.buffer, part.byteOffset, part.byteLength);
    else
      throw new TypeError(`${fn}(parts[${i}]): expected a Uint8Array or Float32Array, got ${describe(part)}`);
    const flag: unknown = Array.isArray(shuffle) ? shuffle[i] : (shuffle ?? part instanceof Float32Array);
    if (typeof flag !== 'boolean') {
      throw new TypeError(`${fn}(opts.shuffle[${i}]): expected a boolean, got ${describe(flag)}`);
    }
    if (flag) {
      if (view.byteLength % limits.shuffleElementBytes !== 0) {
        throw new RangeError(
          `${fn}(parts[${i}]): ${view.byteLength} bytes cannot be shuffled as float32 (not a multiple of 4)`,
        );
      }
      elementBytes[i] = limits.shuffleElementBytes;
    }
    totalBytes += view.byteLength;
    bytes[i] = view;
  }
  if (totalBytes > limits.maxBatchBytes) {
    throw new RangeError(`${fn}(parts): ${totalBytes} bytes, over the limit of ${limits.maxBatchBytes}`);
  }
  return [bytes, elementBytes, level, store, workers];
}

function prepareDecompress(fn: string, frame: Uint8Array, opts: DecompressBatchOptions): number {
  checkUint8Array(fn, 'frame', frame);
  if (typeof opts !== 'object' || opts === null)
    throw new TypeError(`${fn}(opts): expected an object, got ${describe(opts)}`);
  checkInt(fn, 'opts.maxBytes', opts.maxBytes, 0);
  return opts.maxBytes;
}

/**
 * Packs `parts` into one frame: float32 parts byte-shuffled and entropy-coded
 * by zstd, the other parts compressed by zstd at `opts.level` (or all stored
 * as is, see `opts.store`). The frame carries CRC32C
 * of its header and of the content. Wraps native `compressBatch`
 * (EncodeBatch in native/batch_codec.cc), which reuses this thread's zstd
 * context. Throws RangeError/TypeError on bad arguments.
 */
export function compressBatch(parts: readonly BatchPart[], opts: CompressBatchOptions = {}): Uint8Array {
  return binding.compressBatch(...prepareCompress('compressBatch', parts, opts));
}

/**
 * `compressBatch` on the libuv thread pool. The parts are read while the
 * promise is pending: do not write to them (or transfer their buffers) until
 * it settles. Wraps native `compressBatchAsync`.
 */
export async function compressBatchAsync(
  parts: readonly BatchPart[],
  opts: CompressBatchOptions = {},
): Promise<Uint8Array> {
  return binding.compressBatchAsync(...prepareCompress('compressBatchAsync', parts, opts));
}

/**
 * Unpacks a frame made by `compressBatch` into its parts: Uint8Array views
 * into one fresh ArrayBuffer, each starting at a multiple of 8 bytes (see
 * `partAsFloat32`). Everything is validated, the declared size against
 * `opts.maxBytes` before any allocation. Throws VrepError ERR_CORRUPT_FRAME
 * (bad magic, version, lengths, checksums, zstd data) or ERR_FRAME_TOO_LARGE.
 * Wraps native `decompressBatch` (ParseHeader + DecodeBatch).
 */
export function decompressBatch(frame: Uint8Array, opts: DecompressBatchOptions): Uint8Array[] {
  return binding.decompressBatch(frame, prepareDecompress('decompressBatch', frame, opts));
}

/**
 * `decompressBatch` on the libuv thread pool; the header is checked (and the
 * output allocated) before the promise is returned, the rest off-thread. Do
 * not write to `frame` while the promise is pending. With `opts.shared` the
 * parts are views into a SharedArrayBuffer. Wraps native
 * `decompressBatchAsync` (and `inspectBatchFrame`, to size a shared output).
 */
export async function decompressBatchAsync(
  frame: Uint8Array,
  opts: DecompressBatchOptions,
): Promise<Uint8Array[]> {
  const maxBytes = prepareDecompress('decompressBatchAsync', frame, opts);
  if (opts.shared !== true) return binding.decompressBatchAsync(frame, maxBytes);
  // The header (and the size limit) is checked before the output is allocated.
  const output = new Uint8Array(
    new SharedArrayBuffer(binding.inspectBatchFrame(frame, maxBytes).outputBytes),
  );
  const at = await binding.decompressBatchAsync(frame, maxBytes, output);
  const parts: Uint8Array[] = [];
  for (let i = 0; i < at.length; i += 2)
    parts.push(output.subarray(at[i], (at[i] as number) + (at[i + 1] as number)));
  return parts;
}

/**
 * Reads and checks a frame's header (magic, version, header CRC, lengths,
 * limits) without decoding its content. Wraps native `inspectBatchFrame`.
 */
export function inspectBatchFrame(frame: Uint8Array): BatchFrameInfo {
  checkUint8Array('inspectBatchFrame', 'frame', frame);
  return binding.inspectBatchFrame(frame);
}

/** A Float32Array over a decoded part (no copy; parts are 8-byte aligned). */
export function partAsFloat32(part: Uint8Array): Float32Array {
  checkUint8Array('partAsFloat32', 'part', part);
  if (part.byteOffset % 4 !== 0 || part.byteLength % 4 !== 0) {
    throw new RangeError(
      `partAsFloat32(part): offset ${part.byteOffset} / length ${part.byteLength} are not multiples of 4`,
    );
  }
  return new Float32Array(part.buffer, part.byteOffset, part.byteLength / 4);
}

function checkShuffleArgs(fn: string, src: Uint8Array, dst: Uint8Array, elementBytes: number): void {
  checkUint8Array(fn, 'src', src);
  checkUint8Array(fn, 'dst', dst);
  checkInt(fn, 'elementBytes', elementBytes, 1, 255);
  if (src.byteLength !== dst.byteLength) {
    throw new RangeError(`${fn}(dst): ${dst.byteLength} bytes, src has ${src.byteLength}`);
  }
}

/**
 * Byte-plane transpose: with n = floor(len / elementBytes),
 * dst[k * n + i] = src[i * elementBytes + k]; trailing bytes copied as is.
 * src and dst must not overlap. Wraps native `shuffleBytes` (SSE2 for 4-byte
 * elements on x64).
 */
export function shuffleBytes(src: Uint8Array, dst: Uint8Array, elementBytes: number): void {
  checkShuffleArgs('shuffleBytes', src, dst, elementBytes);
  binding.shuffleBytes(src, dst, elementBytes);
}

/** The inverse of `shuffleBytes`. Wraps native `unshuffleBytes`. */
export function unshuffleBytes(src: Uint8Array, dst: Uint8Array, elementBytes: number): void {
  checkShuffleArgs('unshuffleBytes', src, dst, elementBytes);
  binding.unshuffleBytes(src, dst, elementBytes);
}
