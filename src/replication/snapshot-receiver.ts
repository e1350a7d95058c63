/**
 * Replica side of a full sync: the primary's snapshot lands in a staging
 * directory (`snapshots/incoming/`) chunk file by chunk file, each checked
 * against the manifest (size, CRC32C) before it counts. A sync cut off
 * midway resumes after the last verified chunk: the staging directory and
 * its manifest survive restarts, and `inspectIncoming` tells the next
 * offer's answer which chunks are already here.
 *
 * Install: every file fsynced, a marker with the primary's term history
 * written, then one rename to `snapshots/snap-<lsn>` (the commit point).
 * The running store then loads it beside its state and switches
 * (Store.installReceived); a crash after the rename is finished at the next
 * start (recovery.ts adoptFullSync).
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
    if (!/^c\d{4}-\d{6}\.vzb$/.test(k.file) || !Number.isSafeInteger(k.bytes) || k.bytes < 0) {
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

async function verifiedFile(dir: string, chunk: ChunkEntry): Promise<boolean> {
  try {
    const data = await readFile(path.join(dir, chunk.file));
    return data.length === chunk.bytes && crc32c(data) === chunk.crc32c;
  } catch {
    return false;
  }
}

/** What a cut-off full sync left: its snapshot and the chunk files verified in order. */
export async function inspectIncoming(
  dataDir: string,
): Promise<{ historyId: string; snapshotLsn: number; chunksDone: number } | null> {
  const dir = incomingDir(dataDir);
  let text: string;
  try {
    text = await readFile(path.join(dir, MANIFEST), 'utf8');
  } catch {
    return null;
  }
  let manifest: ParsedManifest;
  try {
    manifest = parseManifestText(text);
  } catch {
    return null;
  }
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
  private readonly dir: string;
  private readonly dataDir: string;
  private readonly offer: OfferedSnapshot;
  /** Next chunk expected, and the byte offset within it. */
  private chunk: number;
  private offset = 0;
  private handle: FileHandle | null = null;
  private received = 0;
  private doneBytes: number;

  private constructor(dataDir: string, offer: OfferedSnapshot, manifest: ParsedManifest, fromChunk: number) {
    this.dataDir = dataDir;
    this.dir = incomingDir(dataDir);
    this.offer = offer;
    this.snapshotLsn = offer.snapshotLsn;
    this.chunks = manifest.chunks;
    this.totalBytes = totalBytes(manifest.chunks);
    this.chunk = fromChunk;
    this.fromChunk = fromChunk;
    this.doneBytes = totalBytes(manifest.chunks.slice(0, fromChunk));
  }

  /**
   * Prepares the staging directory for the offered snapshot: when it already
   * holds the same snapshot (a sync cut off midway), its verified chunks are
   * kept and the transfer resumes after them (`fromChunk`); else it is emptied.
   */
  static async start(dataDir: string, offer: OfferedSnapshot): Promise<SnapshotReceiver> {
    const manifest = parseManifestText(offer.manifestText);
    if (manifest.lsn !== offer.snapshotLsn)
      throw protocolError('SNAPSHOT_OFFER: manifest disagrees with the message');
    const dir = incomingDir(dataDir);
    const have = await inspectIncoming(dataDir);
    const fromChunk =
      have !== null && have.historyId === manifest.historyId && have.snapshotLsn === manifest.lsn
        ? Math.min(have.chunksDone, manifest.chunks.length)
        : 0;
    if (fromChunk === 0) {
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, MANIFEST), offer.manifestText);
    } else {
      // Files after the resume point are from the cut-off run: start them over.
      const names = new Set(manifest.chunks.slice(fromChunk).map((c) => c.file));
      for (const n of await readdir(dir)) if (names.has(n)) await rm(path.join(dir, n));
    }
    return new SnapshotReceiver(dataDir, offer, manifest, fromChunk);
  }

  get progress(): { bytesDone: number; bytesTotal: number } {
    return { bytesDone: this.doneBytes + this.offset, bytesTotal: this.totalBytes };
  }

  get chunksDone(): number {
    return this.chunk;
  }

  /** One piece of a chunk file, in order. A finished chunk is verified before the next may start. */
  async piece(index: number, offset: number, bytes: Uint8Array): Promise<void> {
    const entry = this.chunks[index];
    if (index !== this.chunk || entry === undefined || offset !== this.offset) {
      throw protocolError(
        `SNAPSHOT_CHUNK: got chunk ${index} at ${offset}, expected chunk ${this.chunk} at ${this.offset}`,
      );
    }
    if (offset + bytes.length > entry.bytes) {
      throw protocolError(`SNAPSHOT_CHUNK: chunk ${index} runs past its ${entry.bytes} bytes`);
    }
    if (this.handle === null) this.handle = await open(path.join(this.dir, entry.file), 'w');
    await this.handle.write(bytes, 0, bytes.length, offset);
    this.offset += bytes.length;
    this.received += bytes.length;
    if (this.offset === entry.bytes) {
      await this.handle.close();
      this.handle = null;
      if (!(await verifiedFile(this.dir, entry))) {
        await rm(path.join(this.dir, entry.file), { force: true });
        throw protocolError(`SNAPSHOT_CHUNK: chunk ${index} (${entry.file}) fails its checksum`);
      }
      this.doneBytes += entry.bytes;
      this.chunk++;
      this.offset = 0;
    }
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
    for (const c of this.chunks) {
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
    if (this.handle) await this.handle.close().catch(() => undefined);
    this.handle = null;
  }
}
