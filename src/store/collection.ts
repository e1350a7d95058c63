/**
 * One collection in memory: points stored column-wise. Vectors live in
 * fixed-size Float32Array chunks (no object per point, and growth never
 * over-allocates more than one chunk), ids in an array with an id -> row
 * map, payloads as JSON text (a string costs far less than a byte array per
 * point, and search and filters parse it directly). A delete moves the last row into the hole
 * so the rows stay dense and a search scans contiguous memory.
 */
import crypto, { createHash } from 'node:crypto';
import type { MetricName } from '../log/record.ts';
import { IdIndex, packedCount, type PackedIds } from '../native/id-index.ts';
import { prefaultAsync } from '../native/prefault.ts';
import { copyFloats } from '../native/copy-floats.ts';
import { discardStorage, sharedFloats, trackStorage } from './vector-storage.ts';

/** SHA-256 of `bytes`: one call (`crypto.hash`, Node 20.12+), else a Hash object. */
const sha256: (bytes: Uint8Array) => Buffer =
  typeof crypto.hash === 'function'
    ? (bytes) => crypto.hash('sha256', bytes, 'buffer') as unknown as Buffer
    : (bytes) => createHash('sha256').update(bytes).digest();

/** Rows per vector chunk. A power of two so row -> chunk is a shift. */
export const CHUNK_ROWS = 1 << 14;
const CHUNK_SHIFT = 14;
const CHUNK_MASK = CHUNK_ROWS - 1;

/**
 * Rows go into memory whose pages are already mapped: ahead of the rows
 * written so far, the next pages of storage (up to this many bytes, and no
 * more than the collection holds, so a small one stays small) are mapped in
 * on the thread pool (native/prefault.ts), the next chunk allocated for it
 * before it is needed. Fresh memory is dear here: copying a batch into it
 * faulted it in page by page on the event loop (3 MB at dimension 768: 6-8
 * ms, and a replica applies every batch so; into mapped memory 1 ms), and
 * mapping a chunk alongside the rows going into its start still left the
 * copies faulting.
 */
const MAP_AHEAD_BYTES = 16 * 1024 * 1024;
/** Below this, mapping ahead waits for more rows: the round trip is not worth it. */
const MAP_MIN_BYTES = 1024 * 1024;
/**
 * Prefaults running at once, at most, in this process: the thread pool
 * also does the WAL's writes and fsyncs. A collection that cannot start one
 * asks again at its next write.
 */
const MAX_PREFAULTS_RUNNING = 1;
let prefaultsRunning = 0;

/**
 * Whether `appendVectors` keeps a loaded chunk's vectors (`vectorBytes` of a
 * buffer of `bufferBytes`) as the storage itself: a full chunk, whose buffer
 * holds at most 1/16 besides (else that would stay in memory with them).
 */
export function keepsAsStorage(rows: number, vectorBytes: number, bufferBytes: number): boolean {
  return rows === CHUNK_ROWS && bufferBytes - vectorBytes <= vectorBytes / 16;
}

export interface CollectionInfo {
  name: string;
  dimension: number;
  metric: MetricName;
  count: number;
}

export interface PointView {
  id: string;
  /** A copy: the storage row may move on the next write. */
  vector: Float32Array;
  /** JSON text, or null for no payload. */
  payload: string | null;
}

export interface FrozenCollection {
  readonly name: string;
  readonly dimension: number;
  readonly metric: MetricName;
  readonly count: number;
  /** CHUNK_ROWS x dimension floats each; the last one partly filled. */
  readonly chunks: readonly Float32Array[];
  /** The ids of each chunk's rows, copied at freeze. */
  readonly ids: readonly PackedIds[];
  readonly payloads: readonly (string | null)[];
  release(): void;
}

const textDecoder = new TextDecoder();

/**
 * One payload per point: a record's bytes (empty: none), or text already
 * decoded (a snapshot's; null: none). A missing entry is no payload.
 */
export type PayloadColumn = readonly (Uint8Array | string | null)[];

function payloadText(p: Uint8Array | string | null | undefined): string | null {
  if (p === undefined || p === null) return null;
  if (typeof p === 'string') return p === '' ? null : p;
  return p.length === 0 ? null : textDecoder.decode(p);
}

export class Collection {
  readonly name: string;
  readonly dimension: number;
  readonly metric: MetricName;
  /** Shared memory, written only through copyFloats (native/copy-floats.ts says why). */
  private readonly chunks: Float32Array[] = [];
  private readonly rowPayloads: (string | null)[] = [];
  private readonly idToRow = new IdIndex();
  /** Rows of the ids of the batch being written (grown to the largest batch). */
  private batchRows = new Int32Array(0);
  /** Bulk load: rows whose vectors are stored and whose ids have not come yet (appendVectors). */
  private rowsWithoutIds = 0;
  /** Chunks a snapshot in progress still reads: copied before the next write to them. */
  private readonly sharedChunks = new Set<Float32Array>();
  /** Chunks this collection let go of while a frozen snapshot still reads them. */
  private letGoOnRelease: Float32Array[] = [];
  /** The next chunk, allocated early so its pages are mapped before rows go in (MAP_AHEAD_BYTES). */
  private spare: Float32Array | null = null;
  /** Storage rows [0, mappedRows) are mapped in, or being mapped (the rows past the last chunk: in `spare`). */
  private mappedRows = 0;

  constructor(name: string, dimension: number, metric: MetricName) {
    this.name = name;
    this.dimension = dimension;
    this.metric = metric;
  }

  get count(): number {
    return this.idToRow.size;
  }

  info(): CollectionInfo {
    return { name: this.name, dimension: this.dimension, metric: this.metric, count: this.count };
  }

  /**
   * Inserts or replaces points. `vectors` is ids.length x dimension; payload
   * bytes are decoded to text (so the caller's record buffer is not kept alive).
   * `packed`: the same ids as a record stores them, which the index takes
   * as they are (no string per id read back into it).
   */
  upsert(ids: readonly string[], vectors: Float32Array, payloads: PayloadColumn, packed?: PackedIds): void {
    // Rows first, then vectors copied in runs of consecutive rows: a batch of
    // new points becomes one copy per chunk, not one per point.
    let runStart = 0;
    let runRow = -1;
    let nextNew = this.count;
    const rows = this.indexRows(ids, packed);
    for (let i = 0; i < ids.length; i++) {
      const row = rows[i] as number;
      // New ids took the next rows in order, so a new row is the next one expected.
      if (row === nextNew) {
        nextNew++;
        if ((row & CHUNK_MASK) === 0 && row >> CHUNK_SHIFT === this.chunks.length) {
          this.chunks.push(this.takeChunk());
        }
        this.rowPayloads.push(null);
      }
      this.rowPayloads[row] = payloadText(payloads[i]);
      const extends_ = runRow >= 0 && row === runRow + (i - runStart) && (row & CHUNK_MASK) !== 0;
      if (!extends_) {
        if (runRow >= 0) this.copyRun(runRow, vectors, runStart, i);
        runStart = i;
        runRow = row;
      }
    }
    if (runRow >= 0) this.copyRun(runRow, vectors, runStart, ids.length);
    this.mapAhead();
  }

  /** A zeroed chunk for the next rows: the spare, whose pages are mapped or being mapped, or a new one. */
  private takeChunk(): Float32Array {
    const chunk = this.spare ?? sharedFloats(CHUNK_ROWS * this.dimension);
    this.spare = null;
    return chunk;
  }

  /** Maps in the pages of the rows the next writes will take, on the thread pool (MAP_AHEAD_BYTES). */
  private mapAhead(): void {
    if (prefaultsRunning >= MAX_PREFAULTS_RUNNING) return;
    const rowBytes = this.dimension * Float32Array.BYTES_PER_ELEMENT;
    const count = this.count;
    const from = Math.max(this.mappedRows, count);
    const target = count + Math.min(count, Math.floor(MAP_AHEAD_BYTES / rowBytes));
    // One chunk per request: the one `from` is in.
    const index = from >> CHUNK_SHIFT;
    const to = Math.min(target, (index + 1) << CHUNK_SHIFT);
    if ((to - from) * rowBytes < MAP_MIN_BYTES) return;
    let chunk = this.chunks[index];
    if (chunk === undefined) {
      if (index !== this.chunks.length) return;
      chunk = this.spare ??= sharedFloats(CHUNK_ROWS * this.dimension);
    }
    const base = index << CHUNK_SHIFT;
    this.mappedRows = to;
    prefaultsRunning++;
    void prefaultAsync(chunk.subarray((from - base) * this.dimension, (to - base) * this.dimension)).finally(
      () => prefaultsRunning--,
    );
  }

  /**
   * Bulk load, step one: the vectors of the next `rows` points (at most one
   * chunk's worth), as a snapshot loads them (its chunks hold CHUNK_ROWS
   * points each, the last fewer). A full chunk's `vectors` become the
   * storage itself, not a copy, so the caller gives them up, unless their
   * buffer holds more than 1/16 besides (a decoded chunk's ids and payload
   * bytes share it), which would stay in memory with them. Their ids come
   * next with `appendIds`, in as many calls as suit the caller; until they
   * all came, nothing else may touch the collection. False (nothing done)
   * when the collection does not end on a chunk boundary or ids are still
   * missing: the caller then upserts.
   */
  appendVectors(vectors: Float32Array, rows: number): boolean {
    const dim = this.dimension;
    const first = this.count;
    if (this.rowsWithoutIds > 0 || (first & CHUNK_MASK) !== 0) return false;
    if (!Number.isInteger(rows) || rows < 1 || rows > CHUNK_ROWS || vectors.length !== rows * dim)
      throw new RangeError(`appendVectors: ${vectors.length} floats for ${rows} rows of ${dim}`);
    if (keepsAsStorage(rows, vectors.byteLength, vectors.buffer.byteLength)) {
      trackStorage(vectors);
      this.chunks.push(vectors);
    } else {
      const chunk = this.takeChunk();
      copyFloats(chunk, 0, vectors);
      this.chunks.push(chunk);
    }
    this.rowsWithoutIds = rows;
    return true;
  }

  /**
   * Bulk load, step two: ids (packed as a snapshot chunk stores them: no
   * string per id) and payloads of the next points whose vectors
   * `appendVectors` stored. Throws on an id already present (a snapshot
   * never repeats one) or on more ids than rows waiting for them; the
   * collection is then not to be used.
   */
  appendIds(ids: PackedIds, payloads: PayloadColumn): void {
    const count = packedCount(ids);
    if (count > this.rowsWithoutIds)
      throw new RangeError(`appendIds: ${count} ids for ${this.rowsWithoutIds} rows`);
    const first = this.count;
    const rows = this.rowsFor(count);
    this.idToRow.upsertPacked(ids, rows);
    for (let i = 0; i < count; i++) {
      if (rows[i] !== first + i)
        throw new Error(`id ${JSON.stringify(this.idAt(rows[i] as number))} appears twice`);
      this.rowPayloads.push(payloadText(payloads[i]));
    }
    this.rowsWithoutIds -= count;
  }

  /** The rows of `ids`, new ids indexed at the next rows; on a refusal the index is left as it was. */
  private indexRows(ids: readonly string[], packed?: PackedIds): Int32Array {
    const rows = this.rowsFor(ids.length);
    const before = this.idToRow.size;
    try {
      if (packed) this.idToRow.upsertPacked(packed, rows);
      else this.idToRow.upsert(ids, rows);
    } catch (err) {
      while (this.idToRow.size > before) this.idToRow.removeSwap(this.idToRow.size - 1);
      throw err;
    }
    return rows;
  }

  /** Room for the rows of a batch of `count` ids (one array, grown to the largest batch). */
  private rowsFor(count: number): Int32Array {
    if (this.batchRows.length < count) this.batchRows = new Int32Array(count);
    return this.batchRows;
  }

  /** Copies input rows [from, to) to storage rows starting at `row` (all in one chunk). */
  private copyRun(row: number, vectors: Float32Array, from: number, to: number): void {
    const dim = this.dimension;
    const chunk = this.ownedChunk(row >> CHUNK_SHIFT);
    copyFloats(chunk, (row & CHUNK_MASK) * dim, vectors.subarray(from * dim, to * dim));
  }

  /** Deletes points; ids not present are ignored. Returns how many were deleted. */
  delete(ids: readonly string[]): number {
    let deleted = 0;
    const dim = this.dimension;
    for (const id of ids) {
      const row = this.idToRow.get(id);
      if (row < 0) continue;
      const last = this.count - 1;
      if (row !== last) {
        const from = this.chunks[last >> CHUNK_SHIFT] as Float32Array;
        const to = this.ownedChunk(row >> CHUNK_SHIFT);
        copyFloats(
          to,
          (row & CHUNK_MASK) * dim,
          from.subarray((last & CHUNK_MASK) * dim, ((last & CHUNK_MASK) + 1) * dim),
        );
        this.rowPayloads[row] = this.rowPayloads[last] ?? null;
      }
      // The index moves the last row's id into `row` as well.
      this.idToRow.removeSwap(row);
      this.rowPayloads.pop();
      // Free a chunk once no row uses it, so memory follows deletes.
      if ((last & CHUNK_MASK) === 0) {
        this.letGo(this.chunks.pop() as Float32Array);
        // The spare's pages may be mapped already; mapping them again costs little.
        this.mappedRows = Math.min(this.mappedRows, this.chunks.length << CHUNK_SHIFT);
      }
      deleted++;
    }
    return deleted;
  }

  private ownedChunk(index: number): Float32Array {
    let chunk = this.chunks[index] as Float32Array;
    if (this.sharedChunks.size > 0 && this.sharedChunks.has(chunk)) {
      this.sharedChunks.delete(chunk);
      // The frozen snapshot still reads the original: discarded when it is released.
      this.letGoOnRelease.push(chunk);
      // The copy maps all of its pages; the spare, if it becomes the copy, is mapped no more.
      const copy = this.takeChunk();
      copyFloats(copy, 0, chunk);
      chunk = copy;
      this.chunks[index] = chunk;
      this.mappedRows = Math.min(this.mappedRows, this.chunks.length << CHUNK_SHIFT);
    }
    return chunk;
  }

  /**
   * A read-only view of the collection as it is now, for a snapshot built
   * while writes go on. Vector chunks are shared copy-on-write (a write to a
   * shared chunk copies it first); ids and payloads are copied as arrays of
   * references (strings are immutable). Call `release`
   * when the snapshot is written.
   */
  freeze(): FrozenCollection {
    for (const c of this.chunks) this.sharedChunks.add(c);
    return {
      name: this.name,
      dimension: this.dimension,
      metric: this.metric,
      count: this.count,
      chunks: [...this.chunks],
      ids: this.packIds(),
      payloads: [...this.rowPayloads],
      release: () => {
        this.sharedChunks.clear();
        for (const c of this.letGoOnRelease) discardStorage(c);
        this.letGoOnRelease = [];
      },
    };
  }

  /**
   * The collection is gone (dropped, or its state replaced): its storage is
   * reported to V8 as garbage (vector-storage.ts), now or, for chunks a
   * frozen snapshot still reads, when that is released. Nothing else changes.
   */
  drop(): void {
    for (const c of this.chunks) this.letGo(c);
    if (this.spare) discardStorage(this.spare);
    this.spare = null;
  }

  private letGo(chunk: Float32Array): void {
    if (this.sharedChunks.has(chunk)) this.letGoOnRelease.push(chunk);
    else discardStorage(chunk);
  }

  has(id: string): boolean {
    return this.idToRow.get(id) >= 0;
  }

  get(id: string): PointView | null {
    const row = this.idToRow.get(id);
    return row < 0 ? null : this.pointAt(row);
  }

  pointAt(row: number): PointView {
    const dim = this.dimension;
    const chunk = this.chunks[row >> CHUNK_SHIFT] as Float32Array;
    const start = (row & CHUNK_MASK) * dim;
    return {
      id: this.idToRow.idAt(row),
      vector: chunk.slice(start, start + dim),
      payload: this.rowPayloads[row] ?? null,
    };
  }

  idAt(row: number): string {
    return this.idToRow.idAt(row);
  }

  /** Copies of the ids of every snapshot chunk (CHUNK_ROWS rows each), packed as a snapshot stores them. */
  private packIds(): PackedIds[] {
    const out: PackedIds[] = [];
    for (let first = 0; first < this.count; first += CHUNK_ROWS) {
      out.push(this.idToRow.pack(first, Math.min(CHUNK_ROWS, this.count - first)));
    }
    return out;
  }

  payloadAt(row: number): string | null {
    return this.rowPayloads[row] ?? null;
  }

  /**
   * The filled part of each vector chunk, as views (no copy), with the row
   * number of each view's first row. Valid until the next write.
   */
  vectorBlocks(): { firstRow: number; rows: number; vectors: Float32Array }[] {
    const out: { firstRow: number; rows: number; vectors: Float32Array }[] = [];
    const total = this.count;
    for (let c = 0; c < this.chunks.length; c++) {
      const firstRow = c << CHUNK_SHIFT;
      const rows = Math.min(CHUNK_ROWS, total - firstRow);
      if (rows <= 0) break;
      out.push({
        firstRow,
        rows,
        vectors: (this.chunks[c] as Float32Array).subarray(0, rows * this.dimension),
      });
    }
    return out;
  }

  /**
   * Order-independent digest of the collection's content: the sum, modulo
   * 2^128, of a SHA-256-derived hash of each point (id, vector bytes, payload
   * bytes), plus name, dimension and metric. Two nodes holding the same
   * points get the same digest whatever order they applied them in.
   */
  digest(): string {
    let lo = 0n;
    let hi = 0n;
    const mask = (1n << 64n) - 1n;
    const dim = this.dimension;
    const vectorBytes = dim * 4;
    let scratch = Buffer.allocUnsafe(256 + vectorBytes);
    for (let row = 0; row < this.count; row++) {
      const chunk = this.chunks[row >> CHUNK_SHIFT] as Float32Array;
      const start = (row & CHUNK_MASK) * dim;
      const id = this.idToRow.idAt(row);
      const p = this.rowPayloads[row];
      const idPart = `${id.length}:${id}`;
      const payloadBytes = p ? Buffer.byteLength(p) : 0;
      const payloadHead = p === null || p === undefined ? 'none:' : `${payloadBytes}:`;
      // The bytes a sequence of Hash.update calls would see, hashed in one call: a
      // Hash object per point is a native object with a weak handle, and a
      // million of them cost the next GCs 35-60 ms each in weak callbacks.
      const need = Buffer.byteLength(idPart) + vectorBytes + payloadHead.length + payloadBytes;
      if (need > scratch.length) scratch = Buffer.allocUnsafe(need * 2);
      let at = scratch.write(idPart, 0, 'utf8');
      scratch.set(new Uint8Array(chunk.buffer, chunk.byteOffset + start * 4, vectorBytes), at);
      at += vectorBytes;
      at += scratch.write(payloadHead, at, 'latin1');
      if (p) at += scratch.write(p, at, 'utf8');
      const d = sha256(scratch.subarray(0, at));
      lo += d.readBigUInt64LE(0);
      hi += d.readBigUInt64LE(8) + (lo >> 64n);
      lo &= mask;
      hi &= mask;
    }
    const head = createHash('sha256')
      .update(`${this.name}\0${dim}\0${this.metric}\0${this.count}`)
      .digest('hex');
    return createHash('sha256')
      .update(head)
      .update(hi.toString(16).padStart(16, '0') + lo.toString(16).padStart(16, '0'))
      .digest('hex');
  }
}
