/**
 * A snapshot being received by full sync, applied chunk by chunk as the
 * chunks arrive, into collections beside the running state (which serves
 * reads until the install switches to these). The install then has nothing
 * left to load: it used to read every chunk back from disk and decode it
 * after the last byte arrived, which doubled the time of a full sync.
 *
 * Each chunk is decoded on the libuv thread pool (zstd, unshuffle:
 * decodeChunk) as soon as it is verified, while the next ones arrive; only
 * the copy into the collection runs on the event loop, in manifest order.
 * At most MAX_CHUNKS_DECODING chunks are held decoding or waiting to be
 * applied: `add` waits for the oldest beyond that, and so holds back the
 * link (the session handles frames one at a time).
 */
import { VrepError } from '../errors.ts';
import { Collection } from './collection.ts';
import {
  decodeChunk,
  loadChunk,
  parseManifest,
  type LoadedChunk,
  type SnapshotManifest,
} from './snapshot.ts';

/** Chunks (16k points each) decoding or waiting to be applied at once, at most. */
export const MAX_CHUNKS_DECODING = 4;

type CollectionMeta = SnapshotManifest['collections'][number];
type ChunkMeta = CollectionMeta['chunks'][number];

export class SnapshotStaging {
  readonly manifest: SnapshotManifest;
  /** The collections as received so far (complete once `finish` resolves). */
  private readonly collections = new Map<string, Collection>();
  /** Every chunk of the manifest in order, with its collection. */
  private readonly order: { c: CollectionMeta; chunk: ChunkMeta }[] = [];
  private next = 0;
  /** One promise per chunk added and not yet applied, oldest first (at most MAX_CHUNKS_DECODING). */
  private readonly applying: Promise<void>[] = [];
  /** The applies, chained so chunks go into the collections in manifest order. */
  private chain: Promise<void> = Promise.resolve();
  private failure: Error | null = null;
  private aborted = false;

  /** `manifestText`: the manifest file's text as the leader sent it (checked here: CRC, schema). */
  constructor(manifestText: string) {
    this.manifest = parseManifest(manifestText, 'the offered snapshot');
    for (const c of this.manifest.collections) {
      this.collections.set(c.name, new Collection(c.name, c.dimension, c.metric));
      for (const chunk of c.chunks) this.order.push({ c, chunk });
    }
  }

  get snapshotLsn(): number {
    return this.manifest.lsn;
  }

  /** Chunks handed to `add` so far. */
  get chunksAdded(): number {
    return this.next;
  }

  /**
   * Chunk `index` (the manifest's order, all collections' chunks in a row),
   * its bytes already checked against the manifest's size and CRC32C. Resolves
   * once its decode is under way and at most MAX_CHUNKS_DECODING chunks are
   * held; rejects with the first decode failure (ERR_SNAPSHOT_CORRUPT).
   * Do not write to `frame` until `onFrameRead` is called (its decode no
   * longer reads it, whether it succeeded or not).
   */
  async add(index: number, frame: Uint8Array, onFrameRead?: () => void): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.aborted) throw new VrepError('ERR_PROTOCOL', 'full sync: the staging was abandoned');
    const entry = this.order[index];
    if (index !== this.next || entry === undefined)
      throw new VrepError('ERR_PROTOCOL', `full sync: chunk ${index} staged, expected ${this.next}`);
    this.next++;
    while (this.applying.length >= MAX_CHUNKS_DECODING) await this.applying[0];
    if (this.failure) throw this.failure;
    const decoded = decodeChunk(frame, entry.c, entry.chunk, `chunk ${entry.chunk.file}`);
    // Rejections reach `chain` below; this only keeps an early one from being reported unhandled.
    decoded.then(onFrameRead, onFrameRead).catch(() => undefined);
    const applied = this.chain.then(async () => {
      const chunk = await decoded;
      if (!this.aborted) this.load(chunk);
    });
    this.chain = applied.catch((err: unknown) => {
      this.failure ??= err as Error;
    });
    const done = this.chain.then(() => {
      this.applying.shift();
    });
    this.applying.push(done);
  }

  /**
   * One decoded chunk into its collection, in one go (loadChunk): its ids go
   * into the native index packed, 1-4 ms for a chunk of 16k here (12 ms
   * when the index doubles), where the JS Map took 20-35 ms and had to be
   * fed in slices with the event loop free between them.
   */
  private load(chunk: LoadedChunk): void {
    try {
      loadChunk(this.collections.get(chunk.collection) as Collection, chunk);
    } catch (err) {
      throw new VrepError(
        'ERR_SNAPSHOT_CORRUPT',
        `the offered snapshot: ${chunk.collection}: ${(err as Error).message}`,
      );
    }
  }

  /**
   * Waits for every chunk to be applied and checks the result against the
   * manifest (every chunk staged, each collection's count); the collections
   * are then the snapshot's, ready to be switched to.
   */
  async finish(): Promise<Map<string, Collection>> {
    await this.chain;
    if (this.failure) throw this.failure;
    if (this.next !== this.order.length)
      throw new VrepError(
        'ERR_PROTOCOL',
        `full sync: ${this.next} of ${this.order.length} chunks staged at the install`,
      );
    for (const c of this.manifest.collections) {
      const count = (this.collections.get(c.name) as Collection).count;
      if (count !== c.count)
        throw new VrepError(
          'ERR_SNAPSHOT_CORRUPT',
          `the offered snapshot: collection ${c.name} has ${count} points, the manifest says ${c.count}`,
        );
    }
    return this.collections;
  }

  /** Drops what was staged (a sync cut off or replaced); chunks still decoding are not applied. */
  abort(): void {
    this.aborted = true;
    for (const c of this.collections.values()) c.drop();
    this.collections.clear();
  }
}
