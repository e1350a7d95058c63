/**
 * A collection's point ids mapped to their rows, held natively
 * (native/id_index.cc): up to 2^31 - 1 ids, where a JS Map stops at 2^24;
 * no JS string is hashed or kept by it, and growing it never rehashes an id
 * on the event loop. Rows are dense, 0..size-1, and follow the collection's:
 * new ids take the next rows in order, and `removeSwap` moves the last row's
 * id into the row it empties, as the collection moves its vectors. Ids are
 * compared as UTF-8 (a lone surrogate reads as U+FFFD, as in a record).
 * Memory is native: freed when the index is garbage-collected.
 */
import { binding } from './addon.ts';
import { describe } from './checks.ts';

interface NativeIdIndex {
  upsert(ids: readonly string[], rows: Int32Array): number;
  lookup(ids: readonly string[], rows: Int32Array): void;
  get(id: string): number;
  removeSwap(row: number): void;
  readonly size: number;
  readonly memoryBytes: number;
}

export interface IdIndexBinding {
  IdIndex: new () => NativeIdIndex;
}

/** Most ids one index holds: rows are returned in Int32Arrays. */
export const ID_INDEX_MAX_IDS = 0x7fff_ffff;

function checkBatch(fn: string, ids: unknown, rows: unknown): void {
  if (!Array.isArray(ids))
    throw new TypeError(`${fn}(ids): expected an array of strings, got ${describe(ids)}`);
  if (!(rows instanceof Int32Array)) {
    throw new TypeError(`${fn}(rows): expected an Int32Array, got ${describe(rows)}`);
  }
  if (rows.length < ids.length) {
    throw new RangeError(`${fn}(rows): room for ${rows.length} rows, ${ids.length} ids`);
  }
}

export class IdIndex {
  readonly #native = new binding.IdIndex();

  /** Ids held. */
  get size(): number {
    return this.#native.size;
  }

  /** Native bytes held (table, id bytes, per-row fields). */
  get memoryBytes(): number {
    return this.#native.memoryBytes;
  }

  /**
   * Sets rows[i] to the row of ids[i]; an id not held yet takes row `size`
   * (so new ids get consecutive rows in batch order, and an id repeated in
   * the batch gets the row of its first occurrence). Returns the new size.
   * A non-string id throws (ERR_INVALID_ARG) and leaves the ids before it in.
   */
  upsert(ids: readonly string[], rows: Int32Array): number {
    checkBatch('IdIndex.upsert', ids, rows);
    return this.#native.upsert(ids, rows);
  }

  /** Sets rows[i] to the row of ids[i], or -1 where it is not held. */
  lookup(ids: readonly string[], rows: Int32Array): void {
    checkBatch('IdIndex.lookup', ids, rows);
    this.#native.lookup(ids, rows);
  }

  /** The row of `id`, or -1. */
  get(id: string): number {
    if (typeof id !== 'string')
      throw new TypeError(`IdIndex.get(id): expected a string, got ${describe(id)}`);
    return this.#native.get(id);
  }

  /** Forgets the id of `row`; the id of the last row, if another, takes `row`. */
  removeSwap(row: number): void {
    this.#native.removeSwap(row);
  }
}
