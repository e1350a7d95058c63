/**
 * The durable store of one node: collections in memory, every mutation a
 * record in the log (ring + WAL), snapshots to bound recovery time.
 *
 * Write path: validate against the current state -> encode with the next LSN
 * -> log append (ring now, WAL per fsync policy) -> apply in memory -> resolve
 * when the WAL has it (per policy). State is always exactly the application
 * of the log in LSN order; a write that fails validation consumes no LSN and
 * changes nothing.
 *
 * Start-up: node meta -> newest snapshot (verified) -> WAL replay after it.
 */
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { VrepError } from '../errors.ts';
import { HybridClock } from '../clock/hlc.ts';
import {
  decodeRecord,
  encodeRecord,
  Op,
  type LogRecord,
  type MetricName,
  type RecordBody,
} from '../log/record.ts';
import { RecordLog } from '../log/record-log.ts';
import { Wal, type FsyncPolicy, type WalRecoveryReport } from '../log/wal.ts';
import { RecordLimits } from '../log/limits.ts';
import { Collection, type CollectionInfo, type PointView } from './collection.ts';
import { loadNodeMeta, newHistoryId, saveNodeMeta, type NodeMeta } from './node-meta.ts';
import {
  FULLSYNC_MARKER,
  listSnapshots,
  readManifest,
  readSnapshot,
  SNAPSHOT_DIR,
  snapshotName,
  writeSnapshot,
  type SnapshotInfo,
  type SnapshotManifest,
} from './snapshot.ts';
import { searchCollection, MAX_SEARCH_K, type PayloadFilter, type SearchHit } from './search.ts';
import {
  checkBatchSize,
  checkPackedPoints,
  invalid,
  normalizeId,
  packPoints,
  type PointInput,
} from './points.ts';
import { acquireDirLock, type DirLock } from './dir-lock.ts';
import { fsyncDir } from '../log/atomic-file.ts';

export interface StoreOptions {
  dataDir: string;
  /** Required on a new data dir; checked against the stored one otherwise. */
  nodeId?: string;
  fsync?: FsyncPolicy;
  walSegmentBytes?: number;
  /** In-memory circular log: bytes and records (the log_size setting). */
  ringCapacityBytes?: number;
  ringCapacityRecords?: number;
  /** Take a snapshot automatically once this many WAL bytes follow the last one (0 = never). */
  snapshotEveryBytes?: number;
  /** Wall clock for the HLC (tests pass their own). */
  wallMs?: () => number;
  warn?: (fields: Record<string, unknown>, message: string) => void;
}

export interface RecoveryReport {
  snapshotLsn: number;
  snapshotPoints: number;
  wal: WalRecoveryReport;
  durationMs: number;
}

export interface WriteResult {
  lsn: number;
  count: number;
}

/** Keeps the WAL from `lsn` on (and a snapshot, for a full sync) while a peer needs it. */
export interface LogPin {
  /** The oldest LSN still needed; raise it as the peer acknowledges. */
  lsn: number;
  release(): void;
}

/** A snapshot held for a full sync: its files stay until released. */
export interface SnapshotPin {
  dir: string;
  manifest: SnapshotManifest;
  /** The manifest file exactly as stored (the receiver verifies and keeps it verbatim). */
  manifestText: string;
  release(): void;
}

const EMPTY = new Uint8Array(0);
const COLLECTION_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;
const DEFAULTS = {
  fsync: 'everysec' as FsyncPolicy,
  // Replication backlog in memory; the WAL serves anything older. Also the
  // largest batch (encoded), 5x a batch of 1000 x 768 floats.
  ringCapacityBytes: 16 * 1024 * 1024,
  ringCapacityRecords: 1_000_000,
  snapshotEveryBytes: 1024 * 1024 * 1024,
};

export class Store {
  readonly dataDir: string;
  private meta: NodeMeta;
  private readonly log: RecordLog;
  private readonly collections = new Map<string, Collection>();
  private readonly clock: HybridClock;
  private readonly lock: DirLock;
  private readonly snapshotEveryBytes: number;
  private bytesSinceSnapshot = 0;
  private snapshotting: Promise<SnapshotInfo> | null = null;
  private lastSnapshotLsn: number;
  private closed = false;
  private readonly logPins = new Set<LogPin>();
  private readonly pinnedSnapshots = new Map<string, number>();
  private readonly commitListeners = new Set<(lastLsn: number) => void>();
  readonly recovery: RecoveryReport;

  private constructor(init: {
    dataDir: string;
    meta: NodeMeta;
    log: RecordLog;
    clock: HybridClock;
    lock: DirLock;
    snapshotEveryBytes: number;
    snapshotLsn: number;
    recovery: RecoveryReport;
  }) {
    this.dataDir = init.dataDir;
    this.meta = init.meta;
    this.log = init.log;
    this.clock = init.clock;
    this.lock = init.lock;
    this.snapshotEveryBytes = init.snapshotEveryBytes;
    this.lastSnapshotLsn = init.snapshotLsn;
    this.recovery = init.recovery;
  }

  static async open(opts: StoreOptions): Promise<Store> {
    const t0 = performance.now();
    const dataDir = path.resolve(opts.dataDir);
    await mkdir(dataDir, { recursive: true });
    const lock = await acquireDirLock(dataDir);
    try {
      await adoptFullSync(dataDir);
      let meta = await loadNodeMeta(dataDir);
      if (meta === null) {
        const nodeId = opts.nodeId ?? 'n1';
        meta = {
          formatVersion: 1,
          nodeId,
          historyId: newHistoryId(),
          previousHistoryId: null,
          previousHistoryEndLsn: null,
          currentTerm: 0,
          votedFor: null,
        };
        await saveNodeMeta(dataDir, meta);
      } else if (opts.nodeId !== undefined && opts.nodeId !== meta.nodeId) {
        throw new VrepError(
          'ERR_NODE_ID_MISMATCH',
          `${dataDir} belongs to node "${meta.nodeId}", not "${opts.nodeId}"`,
        );
      }
      const clock = new HybridClock(opts.wallMs ?? Date.now);
      const collections = new Map<string, Collection>();

      // Newest snapshot, if any. A damaged one stops start-up: the WAL before
      // it is gone, so nothing older could be completed.
      let snapshotLsn = 0;
      let snapshotPoints = 0;
      const [newest] = await listSnapshots(dataDir);
      if (newest !== undefined) {
        const manifest = await readManifest(newest);
        if (manifest.historyId !== meta.historyId) {
          throw new VrepError(
            'ERR_SNAPSHOT_CORRUPT',
            `${newest}: snapshot of history ${manifest.historyId}, node is on ${meta.historyId}`,
          );
        }
        for (const c of manifest.collections)
          collections.set(c.name, new Collection(c.name, c.dimension, c.metric));
        await readSnapshot(newest, manifest, (chunk) => {
          (collections.get(chunk.collection) as Collection).upsert(chunk.ids, chunk.vectors, chunk.payloads);
          snapshotPoints += chunk.ids.length;
        });
        snapshotLsn = manifest.lsn;
      }

      // The newest replayed records go back into the in-memory log, at most
      // what it can hold (bytes and count), so feeders read them from memory.
      const ringCapacityBytes = opts.ringCapacityBytes ?? DEFAULTS.ringCapacityBytes;
      const ringCapacityRecords = opts.ringCapacityRecords ?? DEFAULTS.ringCapacityRecords;
      const recent: Uint8Array[] = [];
      let recentHead = 0;
      let recentBytes = 0;
      let replayedBytes = 0;
      const walOpts = {
        fsync: opts.fsync ?? DEFAULTS.fsync,
        ...(opts.walSegmentBytes !== undefined ? { segmentBytes: opts.walSegmentBytes } : {}),
        ...(opts.warn ? { warn: opts.warn } : {}),
      };
      const { wal, report } = await Wal.open(
        path.join(dataDir, 'wal'),
        walOpts,
        snapshotLsn + 1,
        snapshotLsn,
        (bytes) => {
          const record = decodeRecord(bytes);
          applyRecord(collections, record);
          clock.observe({ ms: record.hlcMs, logical: record.hlcLogical });
          replayedBytes += bytes.length;
          // A view for now (it keeps its segment buffer alive); copied below
          // only if it is still among the newest when replay ends.
          recent.push(bytes);
          recentBytes += bytes.length;
          while (recentBytes > ringCapacityBytes || recent.length - recentHead > ringCapacityRecords) {
            recentBytes -= (recent[recentHead] as Uint8Array).length;
            recent[recentHead++] = EMPTY;
          }
          if (recentHead > 4096 && recentHead * 2 > recent.length) {
            recent.splice(0, recentHead);
            recentHead = 0;
          }
        },
      );
      const log = new RecordLog(
        wal,
        { ringCapacityBytes, ringCapacityRecords },
        recent.slice(recentHead).map((r) => r.slice()),
      );
      const store = new Store({
        dataDir,
        meta,
        log,
        clock,
        lock,
        snapshotEveryBytes: opts.snapshotEveryBytes ?? DEFAULTS.snapshotEveryBytes,
        snapshotLsn,
        recovery: { snapshotLsn, snapshotPoints, wal: report, durationMs: performance.now() - t0 },
      });
      for (const [name, c] of collections) store.collections.set(name, c);
      store.bytesSinceSnapshot = replayedBytes;
      return store;
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  get nodeId(): string {
    return this.meta.nodeId;
  }

  get historyId(): string {
    return this.meta.historyId;
  }

  get currentTerm(): number {
    return this.meta.currentTerm;
  }

  get lastLsn(): number {
    return this.log.lastLsn;
  }

  /** The log, for feeders and change streams. */
  get records(): RecordLog {
    return this.log;
  }

  private assertOpen(): void {
    if (this.closed) throw new VrepError('ERR_NODE_STOPPED', 'the store is closed');
  }

  private collection(name: string): Collection {
    const c = this.collections.get(name);
    if (!c) throw new VrepError('ERR_COLLECTION_NOT_FOUND', `collection "${name}" does not exist`);
    return c;
  }

  /** Appends a mutation the caller has validated against the current state. */
  private commit(collection: string, body: RecordBody, count: number): Promise<WriteResult> {
    const ts = this.clock.now();
    const record = {
      lsn: this.log.lastLsn + 1,
      term: this.meta.currentTerm,
      hlcMs: ts.ms,
      hlcLogical: ts.logical,
      origin: this.meta.nodeId,
      collection,
      ...body,
    } as LogRecord;
    const bytes = encodeRecord(record);
    if (bytes.length > this.log.maxRecordBytes) {
      throw new VrepError(
        'ERR_RECORD_TOO_LARGE',
        `batch: ${bytes.length} bytes encoded, limit ${this.log.maxRecordBytes}; split it`,
      );
    }
    const durable = this.log.append([bytes]);
    applyRecord(this.collections, record);
    this.bytesSinceSnapshot += bytes.length;
    this.maybeSnapshot();
    this.notifyCommit();
    return durable.then(() => ({ lsn: record.lsn, count }));
  }

  private notifyCommit(): void {
    const last = this.log.lastLsn;
    for (const listener of this.commitListeners) listener(last);
  }

  /** Called after every append (local write or replicated), with the new last LSN. */
  onCommit(listener: (lastLsn: number) => void): () => void {
    this.commitListeners.add(listener);
    return () => this.commitListeners.delete(listener);
  }

  /**
   * Appends records received from the primary, verbatim (same LSNs, same
   * bytes), and applies them. All or nothing: every record is decoded and
   * checked against the state first; a refusal throws and changes nothing.
   * Resolves when the WAL holds them (per the fsync policy).
   */
  applyReplicated(records: readonly Uint8Array[]): Promise<void> {
    this.assertOpen();
    const decoded = records.map((r) => decodeRecord(r));
    checkApplicable(this.collections, decoded);
    const durable = this.log.append(records as Uint8Array[]);
    for (let i = 0; i < decoded.length; i++) {
      const record = decoded[i] as LogRecord;
      applyRecord(this.collections, record);
      this.clock.observe({ ms: record.hlcMs, logical: record.hlcLogical });
      this.bytesSinceSnapshot += (records[i] as Uint8Array).length;
    }
    this.maybeSnapshot();
    this.notifyCommit();
    return durable;
  }

  /** Keeps WAL records from `lsn` on until released (a feeder's position). */
  pinLog(lsn: number): LogPin {
    const pins = this.logPins;
    const pin: LogPin = {
      lsn,
      release: () => {
        pins.delete(pin);
      },
    };
    pins.add(pin);
    return pin;
  }

  /** Oldest LSN a pin still needs (Infinity: none). */
  private pinnedFloor(): number {
    let floor = Infinity;
    for (const p of this.logPins) floor = Math.min(floor, p.lsn);
    return floor;
  }

  /**
   * The newest snapshot, held for a full sync (taken now if there is none
   * or if `fresh`), with a log pin at its LSN so the records after it stay
   * readable until released.
   */
  async pinSnapshot(opts: { fresh?: boolean } = {}): Promise<SnapshotPin> {
    this.assertOpen();
    let [dir] = await listSnapshots(this.dataDir);
    if (dir === undefined || opts.fresh) dir = (await this.snapshot()).dir;
    // Pin before any await can let a newer snapshot delete it.
    const name = path.basename(dir);
    this.pinnedSnapshots.set(name, (this.pinnedSnapshots.get(name) ?? 0) + 1);
    let manifest: SnapshotManifest;
    let manifestText: string;
    try {
      manifestText = await readFile(path.join(dir, 'manifest.json'), 'utf8');
      manifest = await readManifest(dir);
    } catch (err) {
      this.unpinSnapshot(name);
      throw err;
    }
    const logPin = this.pinLog(manifest.lsn + 1);
    let released = false;
    return {
      dir,
      manifest,
      manifestText,
      release: () => {
        if (released) return;
        released = true;
        logPin.release();
        this.unpinSnapshot(name);
      },
    };
  }

  private unpinSnapshot(name: string): void {
    const n = (this.pinnedSnapshots.get(name) ?? 1) - 1;
    if (n > 0) {
      this.pinnedSnapshots.set(name, n);
      return;
    }
    this.pinnedSnapshots.delete(name);
    // Superseded while pinned: remove it now, unless it is still the newest.
    const dir = path.join(this.dataDir, SNAPSHOT_DIR, name);
    if (name !== snapshotName(this.lastSnapshotLsn)) {
      rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** Starts a new history continuing this one (promotion): PSYNC2's replid/replid2. */
  async startNewHistory(): Promise<void> {
    const next: NodeMeta = {
      ...this.meta,
      historyId: newHistoryId(),
      previousHistoryId: this.meta.historyId,
      previousHistoryEndLsn: this.log.lastLsn,
    };
    await saveNodeMeta(this.dataDir, next);
    this.meta = next;
  }

  /** Replica: follows the primary onto its newer history (same log, continued). */
  async adoptHistory(
    historyId: string,
    previousHistoryId: string | null,
    previousHistoryEndLsn: number | null,
  ): Promise<void> {
    const next: NodeMeta = { ...this.meta, historyId, previousHistoryId, previousHistoryEndLsn };
    await saveNodeMeta(this.dataDir, next);
    this.meta = next;
  }

  get previousHistory(): { historyId: string; endLsn: number } | null {
    const { previousHistoryId, previousHistoryEndLsn } = this.meta;
    return previousHistoryId !== null && previousHistoryEndLsn !== null
      ? { historyId: previousHistoryId, endLsn: previousHistoryEndLsn }
      : null;
  }

  async createCollection(
    name: string,
    spec: { dimension: number; metric: MetricName },
  ): Promise<WriteResult> {
    this.assertOpen();
    if (typeof name !== 'string' || !COLLECTION_NAME.test(name)) {
      throw invalid(
        `collection name: expected 1-255 of [A-Za-z0-9_.-] starting with a letter or digit, got ${JSON.stringify(name)}`,
      );
    }
    if (this.collections.has(name))
      throw new VrepError('ERR_COLLECTION_EXISTS', `collection "${name}" already exists`);
    const { dimension, metric } = spec ?? {};
    if (!Number.isInteger(dimension) || dimension < 1 || dimension > RecordLimits.maxDimension) {
      throw invalid(
        `dimension: expected an integer in [1, ${RecordLimits.maxDimension}], got ${String(dimension)}`,
      );
    }
    if (metric !== 'l2' && metric !== 'cosine' && metric !== 'dot') {
      throw invalid(`metric: expected "l2", "cosine" or "dot", got ${JSON.stringify(metric)}`);
    }
    return this.commit(name, { op: Op.CreateCollection, dimension, metric }, 0);
  }

  async dropCollection(name: string): Promise<WriteResult> {
    this.assertOpen();
    this.collection(name);
    return this.commit(name, { op: Op.DropCollection }, 0);
  }

  /** Upserts points (all or nothing). */
  async upsert(name: string, points: readonly PointInput[]): Promise<WriteResult> {
    this.assertOpen();
    const c = this.collection(name);
    const batch = packPoints(points, c.dimension);
    return this.commit(name, { op: Op.Upsert, dimension: c.dimension, ...batch }, batch.ids.length);
  }

  /** Upserts an already packed batch (the JSON fast path and replication use this). */
  async upsertPacked(
    name: string,
    ids: string[],
    vectors: Float32Array,
    payloads: Uint8Array[],
  ): Promise<WriteResult> {
    this.assertOpen();
    const c = this.collection(name);
    checkPackedPoints({ ids, vectors, payloads }, c.dimension);
    return this.commit(name, { op: Op.Upsert, dimension: c.dimension, ids, vectors, payloads }, ids.length);
  }

  async delete(name: string, ids: readonly (string | number)[]): Promise<WriteResult> {
    this.assertOpen();
    this.collection(name);
    if (!Array.isArray(ids)) throw invalid('ids: expected an array');
    checkBatchSize(ids.length, 'ids');
    const normalized = ids.map((id, i) => normalizeId(id, `ids[${i}]`));
    return this.commit(name, { op: Op.Delete, ids: normalized }, normalized.length);
  }

  get(name: string, id: string): PointView | null {
    this.assertOpen();
    return this.collection(name).get(id);
  }

  search(
    name: string,
    query: Float32Array | readonly number[],
    opts: { k: number; filter?: PayloadFilter },
  ): SearchHit[] {
    this.assertOpen();
    const c = this.collection(name);
    const q = query instanceof Float32Array ? query : Float32Array.from(query as number[]);
    if (q.length !== c.dimension) throw invalid(`vector: expected ${c.dimension} numbers, got ${q.length}`);
    for (let i = 0; i < q.length; i++)
      if (!Number.isFinite(q[i])) throw invalid(`vector[${i}]: ${q[i]} is not allowed`);
    const k = opts?.k;
    if (!Number.isInteger(k) || k < 1 || k > MAX_SEARCH_K)
      throw invalid(`k: expected an integer in [1, ${MAX_SEARCH_K}], got ${String(k)}`);
    if (
      opts.filter !== undefined &&
      (typeof opts.filter !== 'object' || opts.filter === null || Array.isArray(opts.filter))
    ) {
      throw invalid('filter: expected an object of top-level payload keys to match');
    }
    return searchCollection(c, q, k, opts.filter);
  }

  listCollections(): CollectionInfo[] {
    return [...this.collections.values()].map((c) => c.info()).sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** Order-independent digest of one collection (see Collection.digest). */
  digest(name: string): string {
    return this.collection(name).digest();
  }

  private maybeSnapshot(): void {
    if (
      this.snapshotEveryBytes > 0 &&
      this.bytesSinceSnapshot >= this.snapshotEveryBytes &&
      this.snapshotting === null
    ) {
      this.snapshot().catch((err: unknown) => this.warnSnapshot(err));
    }
  }

  private warnSnapshot(err: unknown): void {
    process.emitWarning(`vrep: snapshot failed: ${(err as Error).message}`);
  }

  /**
   * Takes a snapshot at the current LSN while writes go on, installs it, and
   * removes the WAL segments it covers. Only one runs at a time; a second
   * call waits for the running one.
   */
  snapshot(): Promise<SnapshotInfo> {
    this.assertOpen();
    if (this.snapshotting) return this.snapshotting;
    const lsn = this.log.lastLsn;
    const frozen = [...this.collections.values()].map((c) => c.freeze());
    this.bytesSinceSnapshot = 0;
    const run = (async () => {
      // The WAL must hold everything up to the snapshot's LSN before older
      // segments can go; the snapshot itself is fsynced by writeSnapshot.
      const info = await writeSnapshot(
        this.dataDir,
        frozen,
        { lsn, term: this.meta.currentTerm, historyId: this.meta.historyId },
        new Set(this.pinnedSnapshots.keys()),
      );
      this.lastSnapshotLsn = lsn;
      // Records a connected peer still needs stay (its feeder's pin).
      await this.log.wal.removeBefore(Math.min(lsn + 1, this.pinnedFloor()));
      return info;
    })();
    this.snapshotting = run.finally(() => {
      this.snapshotting = null;
    });
    return this.snapshotting;
  }

  get snapshotLsn(): number {
    return this.lastSnapshotLsn;
  }

  /** Durably records a new term (and vote) before anyone is told. */
  async setTerm(term: number, votedFor: string | null): Promise<void> {
    const next = { ...this.meta, currentTerm: term, votedFor };
    await saveNodeMeta(this.dataDir, next);
    this.meta = next;
  }

  /** Flushes the WAL and closes; waits for a running snapshot. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.snapshotting) await this.snapshotting.catch(() => undefined);
    await this.log.close();
    await this.lock.release();
  }
}

/**
 * Throws ERR_CORRUPT_RECORD unless every record applies in order to the
 * current collections (checked on a shadow of names and dimensions, so a
 * refused batch changes nothing).
 */
function checkApplicable(collections: Map<string, Collection>, records: readonly LogRecord[]): void {
  const dims = new Map<string, number>();
  for (const [name, c] of collections) dims.set(name, c.dimension);
  for (const record of records) {
    const dim = dims.get(record.collection);
    const fail = (why: string): never => {
      throw new VrepError('ERR_CORRUPT_RECORD', `record ${record.lsn}: ${why}`);
    };
    switch (record.op) {
      case Op.CreateCollection:
        if (dim !== undefined) fail(`collection ${record.collection} already exists`);
        dims.set(record.collection, record.dimension);
        break;
      case Op.DropCollection:
        if (dim === undefined) fail(`drop of missing collection ${record.collection}`);
        dims.delete(record.collection);
        break;
      case Op.Upsert:
        if (dim === undefined) fail(`upsert into missing collection ${record.collection}`);
        if (dim !== record.dimension) fail(`dimension ${record.dimension}, collection has ${dim}`);
        break;
      case Op.Delete:
        if (dim === undefined) fail(`delete in missing collection ${record.collection}`);
        break;
    }
  }
}

/**
 * Finishes installing a snapshot received by full sync (see
 * replication/snapshot-receiver.ts). Its directory carries FULLSYNC_MARKER
 * with the primary's history: the node takes that history, and everything
 * of its own older history (other snapshots, every WAL segment) goes.
 * Idempotent, so a crash at any step is finished by the next start.
 */
async function adoptFullSync(dataDir: string): Promise<void> {
  const root = path.join(dataDir, SNAPSHOT_DIR);
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return;
  }
  for (const name of names.filter((n) => /^snap-\d{20}$/.test(n))) {
    const markerFile = path.join(root, name, FULLSYNC_MARKER);
    let text: string;
    try {
      text = await readFile(markerFile, 'utf8');
    } catch {
      continue;
    }
    const marker = JSON.parse(text) as {
      historyId: string;
      previousHistoryId: string | null;
      previousHistoryEndLsn: number | null;
      term: number;
    };
    for (const other of names) {
      if (other !== name && (other.startsWith('snap-') || other.startsWith('tmp-'))) {
        await rm(path.join(root, other), { recursive: true, force: true });
      }
    }
    await rm(path.join(dataDir, 'wal'), { recursive: true, force: true });
    const meta = await loadNodeMeta(dataDir);
    if (meta === null)
      throw new VrepError('ERR_CORRUPT_META', `${dataDir}: a received snapshot but no node meta`);
    await saveNodeMeta(dataDir, {
      ...meta,
      historyId: marker.historyId,
      previousHistoryId: marker.previousHistoryId,
      previousHistoryEndLsn: marker.previousHistoryEndLsn,
      currentTerm: Math.max(meta.currentTerm, marker.term),
    });
    await rm(markerFile);
    await fsyncDir(path.join(root, name));
    return;
  }
}

/** Applies one record to the collections (replay and live writes share this). */
export function applyRecord(collections: Map<string, Collection>, record: LogRecord): void {
  switch (record.op) {
    case Op.CreateCollection:
      collections.set(record.collection, new Collection(record.collection, record.dimension, record.metric));
      return;
    case Op.DropCollection:
      collections.delete(record.collection);
      return;
    case Op.Upsert: {
      const c = collections.get(record.collection);
      if (!c)
        throw new VrepError(
          'ERR_CORRUPT_RECORD',
          `record ${record.lsn}: upsert into missing collection ${record.collection}`,
        );
      c.upsert(record.ids, record.vectors, record.payloads);
      return;
    }
    case Op.Delete: {
      const c = collections.get(record.collection);
      if (!c)
        throw new VrepError(
          'ERR_CORRUPT_RECORD',
          `record ${record.lsn}: delete in missing collection ${record.collection}`,
        );
      c.delete(record.ids);
      return;
    }
  }
}
