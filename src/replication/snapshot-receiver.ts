/**
 * Replica side of a full sync: the primary's snapshot lands in a staging
 * directory (`snapshots/incoming/`) chunk file by chunk file, each checked
 * against the manifest (size, CRC32C) before it counts. A sync cut off
 * midway resumes after the last verified chunk: the staging directory and
 * its manifest survive restarts, and `inspectIncoming` tells the next
 * offer's answer which chunks are already here.
 *
 * Each chunk is also applied as it arrives: once verified (in memory, no
 * read back) it goes to a SnapshotStaging, which decodes it on the thread
 * pool and fills collections beside the running state; a resumed sync
 * stages the chunks already on disk first. The files stay the durable
 * copy (resume, and a crash before the store took the snapshot).
 *
 * Install: every file fsynced (each as soon as it is complete), a marker
 * with the primary's term history written, then one rename to
 * `snapshots/snap-<lsn>` (the commit point). The running store then
 * switches to the staged collections (Store.installReceived); a crash after
 * the rename is finished at the next start from the files (recovery.ts
 * adoptFullSync).
 */
import {
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import path from 'node:path';
import { crc32c } from '../native/crc32c.ts';
import { fsyncDir } from '../log/atomic-file.ts';
import { FULLSYNC_MARKER, SNAPSHOT_DIR, snapshotName } from '../store/snapshot.ts';
import { MAX_CHUNKS_DECODING, SnapshotStaging } from '../store/snapshot-staging.ts';
import { protocolError } from './wire.ts';
import type { Epoch } from '../consensus/term-history.ts';

/** What a snapshot offer carries that the receiver needs. */
export interface OfferedSnapshot {
  snapshotLsn: number;
  term: number;
  history: Epoch[];
  manifestText: string;
}

const INCOMING = 'incoming';
const MANIFEST = 'manifest.json';
/**
 * A chunk file's size, at most: a chunk is held whole in memory while it
 * arrives (16k points: 8 MiB of floats at dimension 128, 256 MiB at the
 * largest dimension with ids and payloads bounded by the manifest's own
 * check of its rows).
 */
const MAX_CHUNK_BYTES = 1024 * 1024 * 1024;
/** Complete chunk files whose fsync may still be running at once, at most. */
const MAX_CHUNKS_SYNCING = 2;
/** Chunk buffers kept for reuse, at most (each about one chunk's size). */
const MAX_SPARE_BUFFERS = MAX_CHUNKS_DECODING + 2;

export interface ChunkEntry {
  file: string;
  bytes: number;
  crc32c: number;
}

interface ParsedManifest {
  historyId: string;
  lsn: number;
  chunks: ChunkEntry[];
}

/** Reads the chunk list out of a manifest file's text (outer CRC checked). */
export function parseManifestText(text: string): ParsedManifest {
  let outer: { body?: unknown; crc32c?: unknown };
  try {
    outer = JSON.parse(text) as typeof outer;
  } catch {
    throw protocolError('SNAPSHOT_OFFER: manifest is not JSON');
  }
  if (typeof outer.body !== 'string' || outer.crc32c !== crc32c(new TextEncoder().encode(outer.body))) {
    throw protocolError('SNAPSHOT_OFFER: manifest checksum mismatch');
  }
  const body = JSON.parse(outer.body) as {
    historyId: string;
    lsn: number;
    collections: { chunks: ChunkEntry[] }[];
  };
  const chunks: ChunkEntry[] = [];
  for (const c of body.collections ?? []) for (const k of c.chunks ?? []) chunks.push(k);
  for (const k of chunks) {
    if (
      !/^c\d{4}-\d{6}\.vzb$/.test(k.file) ||
      !Number.isSafeInteger(k.bytes) ||
      k.bytes < 0 ||
      k.bytes > MAX_CHUNK_BYTES
    ) {
      throw protocolError(`SNAPSHOT_OFFER: bad chunk entry ${JSON.stringify(k)}`);
    }
  }
  return { historyId: body.historyId, lsn: body.lsn, chunks };
}

export function totalBytes(chunks: readonly ChunkEntry[]): number {
  return chunks.reduce((sum, c) => sum + c.bytes, 0);
}

function incomingDir(dataDir: string): string {
  return path.join(dataDir, SNAPSHOT_DIR, INCOMING);
}

/** The chunk file's bytes when they are the manifest's (size, CRC32C); else null. */
async function verifiedFile(dir: string, chunk: ChunkEntry): Promise<Uint8Array | null> {
  try {
    const data = new Uint8Array(await readFile(path.join(dir, chunk.file)));
    return data.length === chunk.bytes && crc32c(data) === chunk.crc32c ? data : null;
  } catch {
    return null;
  }
}

/** The manifest a cut-off full sync left in the staging directory, or null. */
async function incomingManifest(dir: string): Promise<ParsedManifest | null> {
  try {
    return parseManifestText(await readFile(path.join(dir, MANIFEST), 'utf8'));
  } catch {
    return null;
  }
}

/** What a cut-off full sync left: its snapshot and the chunk files verified in order. */
export async function inspectIncoming(
  dataDir: string,
): Promise<{ historyId: string; snapshotLsn: number; chunksDone: number } | null> {
  const dir = incomingDir(dataDir);
  const manifest = await incomingManifest(dir);
  if (manifest === null) return null;
  let done = 0;
  while (done < manifest.chunks.length && (await verifiedFile(dir, manifest.chunks[done] as ChunkEntry)))
    done++;
  return { historyId: manifest.historyId, snapshotLsn: manifest.lsn, chunksDone: done };
}

export class SnapshotReceiver {
  readonly snapshotLsn: number;
  readonly chunks: readonly ChunkEntry[];
  readonly totalBytes: number;
  /** First chunk of this run (> 0: a resumed sync). */
  readonly fromChunk: number;
  readonly startedAtMs = Date.now();
  /** The snapshot applied as it arrives; the store switches to it at the install. */
  readonly staged: SnapshotStaging;
  private readonly dir: string;
  private readonly dataDir: string;
  private readonly offer: OfferedSnapshot;
  /** Next chunk expected, and the byte offset within it. */
  private chunk: number;
  private offset = 0;
  /** The chunk arriving: its file, its bytes so far (whole chunk allocated), their CRC32C. */
  private handle: FileHandle | null = null;
  private buffer: Uint8Array | null = null;
  private crc = 0;
  /** The arriving chunk's writes, in order (not awaited piece by piece: the next piece is read meanwhile). */
  private writes: Promise<void> = Promise.resolve();
  /** Complete chunk files being fsynced and closed, oldest first (at most MAX_CHUNKS_SYNCING). */
  private readonly syncing: Promise<void>[] = [];
  /** The first write or fsync this disk refused (its errno code makes it ERR_WAL_IO in peers.ts). */
  private ioError: Error | null = null;
  /**
   * Chunk buffers whose writes and decode are done, for the next chunks: a
   * fresh 8 MiB buffer per chunk was zero-filled, faulted in and collected
   * each time.
   */
  private readonly spare: Uint8Array[] = [];
  private received = 0;
  private doneBytes: number;

  private constructor(
    dataDir: string,
    offer: OfferedSnapshot,
    manifest: ParsedManifest,
    fromChunk: number,
    staged: SnapshotStaging,
  ) {
    this.dataDir = dataDir;
    this.dir = incomingDir(dataDir);
    this.offer = offer;
    this.snapshotLsn = offer.snapshotLsn;
    this.chunks = manifest.chunks;
    this.totalBytes = totalBytes(manifest.chunks);
    this.chunk = fromChunk;
    this.fromChunk = fromChunk;
    this.doneBytes = totalBytes(manifest.chunks.slice(0, fromChunk));
    this.staged = staged;
  }

  /**
   * Prepares the staging directory for the offered snapshot: when it already
   * holds the same snapshot (a sync cut off midway), the chunk files that
   * match the offer's manifest, in order, are kept (and staged) and the
   * transfer resumes after them (`fromChunk`); else it is emptied.
   */
  static async start(dataDir: string, offer: OfferedSnapshot): Promise<SnapshotReceiver> {
    const manifest = parseManifestText(offer.manifestText);
    if (manifest.lsn !== offer.snapshotLsn)
      throw protocolError('SNAPSHOT_OFFER: manifest disagrees with the message');
    const staged = new SnapshotStaging(offer.manifestText);
    const dir = incomingDir(dataDir);
    const have = await incomingManifest(dir);
    let fromChunk = 0;
    if (have !== null && have.historyId === manifest.historyId && have.lsn === manifest.lsn) {
      for (; fromChunk < manifest.chunks.length; fromChunk++) {
        const data = await verifiedFile(dir, manifest.chunks[fromChunk] as ChunkEntry);
        if (data === null) break;
        await staged.add(fromChunk, data);
      }
    }
    if (fromChunk === 0) {
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, MANIFEST), offer.manifestText);
    } else {
      // Files after the resume point are from the cut-off run: start them over.
      const names = new Set(manifest.chunks.slice(fromChunk).map((c) => c.file));
      for (const n of await readdir(dir)) if (names.has(n)) await rm(path.join(dir, n));
    }
    return new SnapshotReceiver(dataDir, offer, manifest, fromChunk, staged);
  }

  get progress(): { bytesDone: number; bytesTotal: number } {
    return { bytesDone: this.doneBytes + this.offset, bytesTotal: this.totalBytes };
  }

  get chunksDone(): number {
    return this.chunk;
  }

  /**
   * One piece of a chunk file, in order. A finished chunk is verified (its
   * bytes in memory against the manifest's CRC32C) before the next may
   * start, then staged; its file is fsynced in the background. Rejects with
   * a disk error (errno code) from any earlier write or fsync.
   */
  async piece(index: number, offset: number, bytes: Uint8Array): Promise<void> {
    if (this.ioError) throw this.ioError;
    const entry = this.chunks[index];
    if (index !== this.chunk || entry === undefined || offset !== this.offset) {
      throw protocolError(
        `SNAPSHOT_CHUNK: got chunk ${index} at ${offset}, expected chunk ${this.chunk} at ${this.offset}`,
      );
    }
    if (offset + bytes.length > entry.bytes) {
      throw protocolError(`SNAPSHOT_CHUNK: chunk ${index} runs past its ${entry.bytes} bytes`);
    }
    const file = path.join(this.dir, entry.file);
    if (this.handle === null || this.buffer === null) {
      this.handle = await open(file, 'w');
      this.buffer = this.chunkBuffer(entry.bytes);
      this.crc = 0;
      this.writes = Promise.resolve();
    }
    const handle = this.handle;
    const view = this.buffer.subarray(offset, offset + bytes.length);
    view.set(bytes);
    this.crc = crc32c(view, this.crc);
    this.writes = this.writes.then(async () => {
      await handle.write(view, 0, view.length, offset);
    });
    // A failed write (a full disk) fails the next piece, or this chunk's end.
    this.writes.catch((err: unknown) => {
      this.ioError ??= err as Error;
    });
    this.offset += bytes.length;
    this.received += bytes.length;
    if (this.offset < entry.bytes) return;

    const frame = this.buffer;
    const writes = this.writes;
    this.handle = null;
    this.buffer = null;
    this.writes = Promise.resolve();
    if (this.crc !== entry.crc32c) {
      await writes.catch(() => undefined);
      await handle.close().catch(() => undefined);
      await rm(file, { force: true });
      throw protocolError(`SNAPSHOT_CHUNK: chunk ${index} (${entry.file}) fails its checksum`);
    }
    const synced = writes.then(() => handle.sync()).finally(() => handle.close().catch(() => undefined));
    // Awaited below or by install too; the catch records the first failure for the next piece.
    synced.catch((err: unknown) => {
      this.ioError ??= err as Error;
    });
    this.syncing.push(synced);
    while (this.syncing.length > MAX_CHUNKS_SYNCING) await this.syncing.shift();
    this.doneBytes += entry.bytes;
    this.chunk++;
    this.offset = 0;
    let decoded!: () => void;
    const read = new Promise<void>((resolve) => (decoded = resolve));
    void Promise.allSettled([writes, read]).then(() => {
      if (this.spare.length < MAX_SPARE_BUFFERS) this.spare.push(new Uint8Array(frame.buffer));
    });
    await this.staged.add(index, frame, decoded);
  }

  /** A buffer of `bytes` for the next chunk: a spare one when one is large enough. */
  private chunkBuffer(bytes: number): Uint8Array {
    const i = this.spare.findIndex((b) => b.length >= bytes);
    if (i < 0) return new Uint8Array(bytes);
    const [b] = this.spare.splice(i, 1) as [Uint8Array];
    return b.subarray(0, bytes);
  }

  /** Bytes that crossed the link in this run (resumed chunks excluded). */
  get bytesReceived(): number {
    return this.received;
  }

  /** All chunks verified: fsync, mark with the primary's history, rename into place. */
  async install(): Promise<string> {
    if (this.chunk !== this.chunks.length) {
      throw protocolError(`SNAPSHOT_END after ${this.chunk} of ${this.chunks.length} chunks`);
    }
    // Every chunk applied (a chunk that fails to decode fails this sync, not the install).
    await this.staged.finish();
    await Promise.all(this.syncing.splice(0));
    // Chunks kept from a cut-off run were written by it: fsync them too.
    for (const c of this.chunks.slice(0, this.fromChunk)) {
      const h = await open(path.join(this.dir, c.file), 'r+');
      await h.sync();
      await h.close();
    }
    const marker = { history: this.offer.history, term: this.offer.term };
    const markerFile = path.join(this.dir, FULLSYNC_MARKER);
    await writeFile(markerFile, JSON.stringify(marker));
    const h = await open(markerFile, 'r+');
    await h.sync();
    await h.close();
    await fsyncDir(this.dir);
    const root = path.join(this.dataDir, SNAPSHOT_DIR);
    const finalDir = path.join(root, snapshotName(this.snapshotLsn));
    if (await stat(finalDir).catch(() => null)) await rm(finalDir, { recursive: true });
    await rename(this.dir, finalDir);
    await fsyncDir(root);
    return finalDir;
  }

  async abort(): Promise<void> {
    this.staged.abort();
    this.spare.length = 0;
    const handle = this.handle;
    this.handle = null;
    this.buffer = null;
    if (handle) {
      await this.writes.catch(() => undefined);
      await handle.close().catch(() => undefined);
    }
    await Promise.allSettled(this.syncing.splice(0));
  }
}
