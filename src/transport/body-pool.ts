/**
 * Buffers for request bodies, reused from one request to the next. A fresh
 * multi-megabyte buffer costs a page fault per 4 KiB on first touch: copying
 * a 15 MB body into a fresh buffer took 15-27 ms here, into a reused one
 * 4 ms. Buffers come in power-of-two sizes (at least MIN_POOLED_BYTES); at
 * most `maxPooledBytes` wait in the pool, the rest are left to the collector.
 *
 * The listener takes one per body of a known length and gives it back once
 * the handler's answer has settled: a handler must not keep `req.body` (or
 * views of it) past its answer.
 */

/** Smaller bodies are not pooled: node's own allocation pool serves them. */
export const MIN_POOLED_BYTES = 64 * 1024;

function sizeClass(bytes: number): number {
  return Math.max(MIN_POOLED_BYTES, 2 ** Math.ceil(Math.log2(bytes)));
}

export class BodyBufferPool {
  /** Free buffers by size class. */
  readonly #free = new Map<number, Buffer[]>();
  /** Memory handed out by take and not given back: give takes only these, each once. */
  readonly #out = new WeakSet<ArrayBufferLike>();
  #pooledBytes = 0;

  constructor(readonly maxPooledBytes: number) {}

  /** A buffer of exactly `bytes` (a view of a pooled one when `bytes` is large enough to pool). */
  take(bytes: number): Buffer {
    if (bytes < MIN_POOLED_BYTES) return Buffer.allocUnsafe(bytes);
    const size = sizeClass(bytes);
    let buffer = this.#free.get(size)?.pop();
    if (buffer === undefined) buffer = Buffer.allocUnsafe(size);
    else this.#pooledBytes -= size;
    this.#out.add(buffer.buffer);
    return buffer.subarray(0, bytes);
  }

  /** Gives back a buffer from `take` (no view of it may be used from now on); anything else is ignored. */
  give(view: Buffer): void {
    if (!this.#out.delete(view.buffer)) return;
    const size = view.buffer.byteLength;
    if (this.#pooledBytes + size > this.maxPooledBytes) return;
    const whole = Buffer.from(view.buffer, 0, size);
    let list = this.#free.get(size);
    if (list === undefined) this.#free.set(size, (list = []));
    list.push(whole);
    this.#pooledBytes += size;
  }

  /** Bytes waiting in the pool. */
  get pooledBytes(): number {
    return this.#pooledBytes;
  }
}
