/**
 * Snapshots: the whole store at one LSN, as chunked zstd batch frames (one
 * file per CHUNK_ROWS points: shuffled vector block, ids, payloads) plus a
 * manifest listing every file with its size and CRC32C, itself checksummed.
 *
 * Built from frozen (copy-on-write) collections, so writes go on; the CPU
 * work (shuffle + zstd) runs on the libuv thread pool through the native
 * async codec, never on the event loop. Written into a temp directory,
 * fsynced, then renamed into place: a crash leaves the old snapshot or the
 * new one, never half of one. Format: docs/storage.md.
 */
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { isAscii, isUtf8 } from 'node:buffer';
import path from 'node:path';
import { z } from 'zod';
import { compressBatchAsync, decompressBatchAsync, inspectBatchFrame } from '../native/batch-codec.ts';
import { crc32c } from '../native/crc32c.ts';
import { VrepError } from '../errors.ts';
import { fsyncDir } from '../log/atomic-file.ts';
import { RecordLimits } from '../limits.ts';
import { CHUNK_ROWS, keepsAsStorage, type Collection, type FrozenCollection } from './collection.ts';
import type { PackedIds } from '../native/id-index.ts';

export const SNAPSHOT_DIR = 'snapshots';
/** In a snapshot installed by full sync, until the node has taken its history (store.ts adoptFullSync). */
export const FULLSYNC_MARKER = 'fullsync.json';
const MANIFEST = 'manifest.json';
/** Chunk files built at once: enough to keep zstd and the disk busy together. */
const SNAPSHOT_PARALLEL_CHUNKS = 2;
const encoder = new TextEncoder();
/** Ids must be valid UTF-8 (a snapshot that holds one that is not is corrupt); payloads decode as records' do. */
const idDecoder = new TextDecoder('utf-8', { fatal: true });
const payloadDecoder = new TextDecoder();

/** Groups a manifest may list (the writer refuses a group past ConsumerGroupLimits.maxGroups, which is lower). */
const MAX_SNAPSHOT_GROUPS = 4096;

const chunkSchema = z.object({
  file: z.string().regex(/^c\d{4}-\d{6}\.vzb$/),
  rows: z.number().int().min(1).max(CHUNK_ROWS),
  bytes: z.number().int().nonnegative(),
  crc32c: z.number().int().nonnegative(),
});
const epochSchema = z
  .object({
    term: z.number().int().nonnegative(),
    historyId: z.string().regex(/^[0-9a-f]{32}$/),
    leaderId: z.string().min(1).max(255),
    firstLsn: z.number().int().min(1),
  })
  .strict();
const memberSchema = z
  .object({ id: z.string().min(1).max(300).nullable(), address: z.string().min(1).max(300).nullable() })
  .strict();
const manifestBodySchema = z
  .object({
    /** 1: before term histories (read, never written); 2: with the history and the membership. */
    formatVersion: z.union([z.literal(1), z.literal(2)]),
    lsn: z.number().int().nonnegative(),
    term: z.number().int().nonnegative(),
    historyId: z.string(),
    createdAtMs: z.number().int(),
    /** The term history up to `lsn` (version 2). */
    history: z.array(epochSchema).max(4096).optional(),
    /** Config records at or below `lsn`, oldest first (version 2; the last one is in force). */
    configs: z
      .array(z.object({ lsn: z.number().int().min(1), members: z.array(memberSchema).max(64) }).strict())
      .max(64)
      .optional(),
    /** Consumer groups' committed positions at `lsn` (optional: absent in older snapshots means none). */
    groups: z
      .array(
        z
          .object({
            name: z.string().min(1).max(RecordLimits.maxCollectionBytes),
            term: z.number().int().nonnegative(),
            lsn: z.number().int().nonnegative(),
            index: z.number().int().nonnegative().nullable(),
            setAtLsn: z.number().int().min(1),
          })
          .strict(),
      )
      .max(MAX_SNAPSHOT_GROUPS)
      .optional(),
    collections: z.array(
      z.object({
        name: z.string().min(1),
        dimension: z.number().int().min(1).max(RecordLimits.maxDimension),
        metric: z.enum(['l2', 'cosine', 'dot']),
        count: z.number().int().nonnegative(),
        chunks: z.array(chunkSchema),
      }),
    ),
  })
  .strict();
export type SnapshotManifest = z.infer<typeof manifestBodySchema>;

export interface SnapshotInfo {
  dir: string;
  manifest: SnapshotManifest;
  /** Sum of chunk file sizes. */
  bytes: number;
}

export function snapshotName(lsn: number): string {
  return `snap-${String(lsn).padStart(20, '0')}`;
}

function snapshotError(message: string): VrepError {
  return new VrepError('ERR_SNAPSHOT_CORRUPT', message);
}

/**
 * Encodes one chunk's ids or payloads as two parts: u32 UTF-8 byte lengths
 * (0 for null) and all the bytes back to back.
 */
function packTexts(items: readonly (string | null)[]): [Uint8Array, Uint8Array] {
  const lengths = new Uint32Array(items.length);
  let total = 0;
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    const n = item ? Buffer.byteLength(item) : 0;
    lengths[i] = n;
    total += n;
  }
  const bytes = Buffer.allocUnsafe(total);
  let at = 0;
  for (const item of items) if (item) at += bytes.write(item, at);
  return [new Uint8Array(lengths.buffer), new Uint8Array(bytes.buffer, bytes.byteOffset, total)];
}

async function writeFileSynced(file: string, data: Uint8Array): Promise<void> {
  const handle = await open(file, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes a snapshot of `collections` (frozen at `lsn`) under
 * `<dataDir>/snapshots/` and installs it atomically (older ones are the
 * caller's to remove: it knows which are pinned). Releases the frozen
 * views when done (even on failure).
 */
export async function writeSnapshot(
  dataDir: string,
  frozen: readonly FrozenCollection[],
  meta: {
    lsn: number;
    term: number;
    historyId: string;
    history: SnapshotManifest['history'];
    configs: SnapshotManifest['configs'];
    groups?: SnapshotManifest['groups'];
    level?: number;
    /**
     * Resolves once the log durably holds every record up to `lsn` (the
     * state may run ahead of the WAL on a follower); false abandons the
     * snapshot (ERR_LSN_TRUNCATED) before it is put in place.
     */
    logHolds?: () => Promise<boolean>;
  },
): Promise<SnapshotInfo> {
  const root = path.join(dataDir, SNAPSHOT_DIR);
  const tmp = path.join(root, `tmp-${snapshotName(meta.lsn)}-${process.pid}`);
  const finalDir = path.join(root, snapshotName(meta.lsn));
  try {
    await mkdir(root, { recursive: true });
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp);
    const body: SnapshotManifest = {
      formatVersion: 2,
      lsn: meta.lsn,
      term: meta.term,
      historyId: meta.historyId,
      createdAtMs: Date.now(),
      history: meta.history ?? [],
      configs: meta.configs ?? [],
      groups: meta.groups ?? [],
      collections: [],
    };
    // One task per chunk file. SNAPSHOT_PARALLEL_CHUNKS run at once (zstd
    // on the thread pool for one while another is written). Each file is
    // fsynced as soon as it is written: fsyncing them all at the end queued
    // one fsync per file on libuv's four threads at once, and the WAL's
    // writes waited behind them (write stalls of 1.8-2.7 s against 0.4-0.7 s
    // with three nodes snapshotting 700k x 128 on one disk; `npm run bench --
    // store` measures it).
    const tasks: { ci: number; k: number; entry: SnapshotManifest['collections'][number] }[] = [];
    for (let ci = 0; ci < frozen.length; ci++) {
      const c = frozen[ci] as FrozenCollection;
      const entry: SnapshotManifest['collections'][number] = {
        name: c.name,
        dimension: c.dimension,
        metric: c.metric,
        count: c.count,
        chunks: [],
      };
      body.collections.push(entry);
      for (let k = 0; k * CHUNK_ROWS < c.count; k++) tasks.push({ ci, k, entry });
    }
    let bytes = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let t = next++; t < tasks.length; t = next++) {
        const { ci, k, entry } = tasks[t] as (typeof tasks)[number];
        const c = frozen[ci] as FrozenCollection;
        const first = k * CHUNK_ROWS;
        const rows = Math.min(CHUNK_ROWS, c.count - first);
        const vectors = (c.chunks[k] as Float32Array).subarray(0, rows * c.dimension);
        const { lengths: idLengths, bytes: idBytes } = c.ids[k] as PackedIds;
        const [payloadLengths, payloadBytes] = packTexts(c.payloads.slice(first, first + rows));
        const frame = await compressBatchAsync([vectors, idLengths, idBytes, payloadLengths, payloadBytes], {
          level: meta.level ?? 1,
          shuffle: [true, false, false, false, false],
        });
        const file = `c${String(ci).padStart(4, '0')}-${String(k).padStart(6, '0')}.vzb`;
        await writeFileSynced(path.join(tmp, file), frame);
        entry.chunks[k] = { file, rows, bytes: frame.length, crc32c: crc32c(frame) };
        bytes += frame.length;
      }
    };
    await Promise.all(Array.from({ length: SNAPSHOT_PARALLEL_CHUNKS }, worker));
    const text = JSON.stringify(body);
    await writeFileSynced(
      path.join(tmp, MANIFEST),
      encoder.encode(JSON.stringify({ body: text, crc32c: crc32c(encoder.encode(text)) })),
    );
    await fsyncDir(tmp);
    if (meta.logHolds && !(await meta.logHolds())) {
      throw new VrepError(
        'ERR_LSN_TRUNCATED',
        `snapshot at LSN ${meta.lsn} abandoned: the log dropped records it covers before its disk held them`,
      );
    }
    await rm(finalDir, { recursive: true, force: true });
    await rename(tmp, finalDir);
    await fsyncDir(root);
    return { dir: finalDir, manifest: body, bytes };
  } finally {
    for (const c of frozen) c.release();
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * Removes temporary directories a crashed snapshot build left. Only at
 * start-up: while the node runs, a temporary directory may be a build in
 * progress.
 */
export async function removeTemporarySnapshots(dataDir: string): Promise<void> {
  const root = path.join(dataDir, SNAPSHOT_DIR);
  let names: string[];
  try {
    names = await readdir(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const n of names)
    if (n.startsWith('tmp-')) await rm(path.join(root, n), { recursive: true, force: true });
}

/** The installed snapshot directories, newest first. */
export async function listSnapshots(dataDir: string): Promise<string[]> {
  const root = path.join(dataDir, SNAPSHOT_DIR);
  let names: string[];
  try {
    names = await readdir(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .filter((n) => /^snap-\d{20}$/.test(n))
    .sort()
    .reverse()
    .map((n) => path.join(root, n));
}

/** Sum of a snapshot's chunk file sizes, from its manifest. */
export function manifestBytes(manifest: SnapshotManifest): number {
  return manifest.collections.reduce((n, c) => n + c.chunks.reduce((m, k) => m + k.bytes, 0), 0);
}

/** Reads and verifies a manifest (its own CRC, its schema). */
export async function readManifest(dir: string): Promise<SnapshotManifest> {
  const file = path.join(dir, MANIFEST);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw snapshotError(`${file}: unreadable manifest (${(err as Error).message})`);
  }
  return parseManifest(text, file);
}

/** A manifest file's text checked (its own CRC, its schema); `where` names it in errors. */
export function parseManifest(text: string, where: string): SnapshotManifest {
  let outer: { body?: unknown; crc32c?: unknown };
  try {
    outer = JSON.parse(text) as typeof outer;
  } catch (err) {
    throw snapshotError(`${where}: unreadable manifest (${(err as Error).message})`);
  }
  if (typeof outer.body !== 'string' || outer.crc32c !== crc32c(encoder.encode(outer.body))) {
    throw snapshotError(`${where}: manifest checksum mismatch`);
  }
  const parsed = manifestBodySchema.safeParse(JSON.parse(outer.body));
  if (!parsed.success) throw snapshotError(`${where}: ${parsed.error.issues[0]?.message ?? 'bad manifest'}`);
  return parsed.data;
}

export interface LoadedChunk {
  collection: string;
  rows: number;
  /** As stored (checked: the lengths add up, the bytes are UTF-8); no string per id. */
  ids: PackedIds;
  vectors: Float32Array;
  /** One per row (null: none); empty when no row of the chunk has a payload. */
  payloads: (string | null)[];
}

/**
 * The texts packed by packTexts (u32 byte lengths, then the bytes), a
 * zero length as `empty`. All-ASCII bytes (the usual case) are decoded
 * once and sliced: a TextDecoder call and a Uint8Array view per row cost
 * about 0.5 us together, which at 1M points was half a second of a full sync's
 * event loop. Otherwise each row is decoded with `decode`. Slices of 13
 * characters or more share the run's string (V8 sliced strings): a run
 * stays in memory while any of its texts does, so points overwritten after
 * a load can keep at most the snapshot's text bytes alive once more.
 */
function unpackTexts<E extends string | null>(
  lengthsPart: Uint8Array,
  bytes: Uint8Array,
  rows: number,
  what: string,
  empty: E,
  decode: { decode(bytes: Uint8Array): string },
): (string | E)[] {
  if (lengthsPart.length !== rows * 4)
    throw new Error(`${what} lengths: ${lengthsPart.length} bytes for ${rows} rows`);
  const lengths = new DataView(lengthsPart.buffer, lengthsPart.byteOffset, lengthsPart.byteLength);
  const ascii = isAscii(bytes);
  const all = ascii ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1') : '';
  const out: (string | E)[] = new Array(rows);
  let at = 0;
  for (let i = 0; i < rows; i++) {
    const n = lengths.getUint32(i * 4, true);
    if (at + n > bytes.length) throw new Error(`${what}[${i}] runs past the end`);
    out[i] = n === 0 ? empty : ascii ? all.slice(at, at + n) : decode.decode(bytes.subarray(at, at + n));
    at += n;
  }
  if (at !== bytes.length) throw new Error(`${what}: ${bytes.length - at} unexplained bytes`);
  return out;
}

/** `ids` unchanged when it packs `rows` ids whose lengths add up to its UTF-8 bytes; throws otherwise. */
function checkPackedIds(ids: PackedIds, rows: number): PackedIds {
  if (ids.lengths.length !== rows * 4)
    throw new Error(`ids lengths: ${ids.lengths.length} bytes for ${rows} rows`);
  const lengths = new DataView(ids.lengths.buffer, ids.lengths.byteOffset, ids.lengths.byteLength);
  let total = 0;
  for (let i = 0; i < rows; i++) total += lengths.getUint32(i * 4, true);
  if (total !== ids.bytes.length)
    throw new Error(`ids: lengths add up to ${total} bytes, ${ids.bytes.length} there`);
  if (!isAscii(ids.bytes) && !isUtf8(ids.bytes)) throw new Error('ids: not UTF-8');
  return ids;
}

/** A loaded chunk's ids as strings (for an upsert). */
export function idStrings(chunk: LoadedChunk): string[] {
  return unpackTexts(chunk.ids.lengths, chunk.ids.bytes, chunk.rows, 'ids', '', idDecoder);
}

/**
 * Puts a loaded chunk's points into `c`: appended when `c` ends on a chunk
 * boundary (the vectors become its storage, the ids go in packed), else
 * upserted.
 */
export function loadChunk(c: Collection, chunk: LoadedChunk): void {
  if (c.appendVectors(chunk.vectors, chunk.rows)) c.appendIds(chunk.ids, chunk.payloads);
  else c.upsert(idStrings(chunk), chunk.vectors, chunk.payloads);
}

type ChunkMeta = SnapshotManifest['collections'][number]['chunks'][number];
type CollectionMeta = SnapshotManifest['collections'][number];

/**
 * Decodes one chunk file's bytes (already checked against its size and
 * CRC32C) into its points. zstd and the unshuffle run on the libuv thread
 * pool; only the ids' and payloads' strings are made here. Throws ERR_SNAPSHOT_CORRUPT
 * naming `where`.
 */
export async function decodeChunk(
  frame: Uint8Array,
  c: CollectionMeta,
  chunk: ChunkMeta,
  where: string,
): Promise<LoadedChunk> {
  const maxBytes =
    chunk.rows * (c.dimension * 4 + 8 + RecordLimits.maxIdBytes + RecordLimits.maxPayloadBytes);
  try {
    // Vectors that become the collection's storage are decoded into shared
    // memory, as its own chunks are (collection.ts, `sharedFloats`).
    const vectorBytesExpected = chunk.rows * c.dimension * 4;
    const shared = keepsAsStorage(chunk.rows, vectorBytesExpected, inspectBatchFrame(frame).outputBytes);
    const parts = await decompressBatchAsync(frame, { maxBytes, shared });
    if (parts.length !== 5) throw new Error(`${parts.length} parts, expected 5`);
    const [vectorBytes, idLengths, idBytes, payloadLengths, payloadBytes] = parts as [
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
    ];
    if (vectorBytes.length !== vectorBytesExpected)
      throw new Error('vector block size disagrees with the manifest');
    const vectors = new Float32Array(vectorBytes.buffer, vectorBytes.byteOffset, chunk.rows * c.dimension);
    const ids = checkPackedIds({ lengths: idLengths, bytes: idBytes }, chunk.rows);
    // No payload bytes at all: every row's payload is empty (no view per row).
    const payloads =
      payloadBytes.length === 0 &&
      payloadLengths.length === chunk.rows * 4 &&
      !payloadLengths.some((b) => b !== 0)
        ? []
        : unpackTexts(payloadLengths, payloadBytes, chunk.rows, 'payloads', null, payloadDecoder);
    return { collection: c.name, rows: chunk.rows, ids, vectors, payloads };
  } catch (err) {
    throw snapshotError(`${where}: ${(err as Error).message}`);
  }
}

/** Checks a chunk file's bytes against the manifest's size and CRC32C; `where` names it. */
export function checkChunkBytes(frame: Uint8Array, chunk: ChunkMeta, where: string): void {
  if (frame.length !== chunk.bytes) {
    throw snapshotError(
      `${where}: ${frame.length} bytes, the manifest says ${chunk.bytes} (truncated at offset ${Math.min(frame.length, chunk.bytes)})`,
    );
  }
  if (crc32c(frame) !== chunk.crc32c) throw snapshotError(`${where}: checksum mismatch`);
}

/**
 * Verifies and reads every chunk of the snapshot in `dir`, handing each to
 * `onChunk` in order. Any failed check throws ERR_SNAPSHOT_CORRUPT naming the
 * file and the check.
 */
export async function readSnapshot(
  dir: string,
  manifest: SnapshotManifest,
  onChunk: (chunk: LoadedChunk) => void,
): Promise<void> {
  for (const c of manifest.collections) {
    let rowsSeen = 0;
    for (const chunk of c.chunks) {
      const file = path.join(dir, chunk.file);
      let frame: Uint8Array;
      try {
        frame = new Uint8Array(await readFile(file));
      } catch (err) {
        throw snapshotError(`${file}: ${(err as Error).message}`);
      }
      checkChunkBytes(frame, chunk, file);
      onChunk(await decodeChunk(frame, c, chunk, file));
      rowsSeen += chunk.rows;
    }
    if (rowsSeen !== c.count)
      throw snapshotError(`${dir}: collection ${c.name} has ${rowsSeen} rows, the manifest says ${c.count}`);
  }
}
