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
  get(id: string): number;
  removeSwap(row: number): void;
  idAt(row: number): string;
  pack(fromRow: number, count: number): [Uint8Array, Uint8Array];
  upsertPacked(lengths: Uint8Array, bytes: Uint8Array, rows: Int32Array): number;
  readonly size: number;
  readonly memoryBytes: number;
}

export interface IdIndexBinding {
  IdIndex: new () => NativeIdIndex;
}

/** Ids of consecutive rows as a snapshot chunk stores them: u32 little-endian UTF-8 byte lengths, then the bytes. */
export interface PackedIds {
  lengths: Uint8Array;
  bytes: Uint8Array;
}

/** How many ids `ids` packs. */
export function packedCount(ids: PackedIds): number {
  return ids.lengths.length / 4;
}

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
  /** The native size, kept here: collections read it per row, and a native call costs ~100 ns. */
  #size = 0;

  /** Ids held. */
  get size(): number {
    return this.#size;
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
    try {
      this.#native.upsert(ids, rows);
    } finally {
      // A refused id leaves the ones before it in.
      this.#size = this.#native.size;
    }
    return this.#size;
  }

  /**
   * As upsert, for ids packed as `pack` gives them (a snapshot chunk's), so
   * no JS string is made per id. The bytes must be UTF-8 and just the
   * lengths' sum (ERR_INVALID_ARG otherwise, nothing changed).
   */
  upsertPacked(ids: PackedIds, rows: Int32Array): number {
    if (!(ids.lengths instanceof Uint8Array) || !(ids.bytes instanceof Uint8Array)) {
      throw new TypeError(
        `IdIndex.upsertPacked(ids): expected { lengths, bytes } Uint8Arrays, got ${describe(ids)}`,
      );
    }
    if (!(rows instanceof Int32Array)) {
      throw new TypeError(`IdIndex.upsertPacked(rows): expected an Int32Array, got ${describe(rows)}`);
    }
    try {
      this.#native.upsertPacked(ids.lengths, ids.bytes, rows);
    } finally {
      this.#size = this.#native.size;
    }
    return this.#size;
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
    this.#size--;
  }

  /** The id of `row` (a new string each call). */
  idAt(row: number): string {
    return this.#native.idAt(row);
  }

  /** Copies of the ids of rows [fromRow, fromRow + count), packed (see PackedIds). */
  pack(fromRow: number, count: number): PackedIds {
    const [lengths, bytes] = this.#native.pack(fromRow, count);
    return { lengths, bytes };
  }
}
