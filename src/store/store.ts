/**
 * The durable store of one node: its state (the collections), its log
 * (native ring + WAL), its node meta and its snapshots. It decides nothing
 * about replication: the runtime (src/replication/runtime.ts) tells it what
 * to append, truncate, apply, roll back or install, in the order the core
 * decided. The jobs live in their own modules:
 *
 * - recovery.ts: start-up (meta, newest snapshot, WAL replay, all of it or
 *   up to the commit point);
 * - state.ts: the collections and the apply of one record;
 * - schema-view.ts: the collections at the head of the log (checks);
 * - node-meta.ts: hard state and term history on disk;
 * - snapshots.ts / snapshot.ts: builds (one at a time), pins, the format;
 * - log-pins.ts: what the WAL must keep for readers;
 * - log-cursor.ts / cursors.ts: readers' places in the log (named ones saved);
 * - lost-records.ts: the `lost/` file listing what a log cut drops.
 *
 * A full sync installs into the running store (`installReceived`): the
 * snapshot is loaded beside the current state, which serves reads until
 * the switch.
 */
import path from 'node:path';
import { rm } from 'node:fs/promises';
import { VrepError, vrepError } from '../errors.ts';
import type { HybridClock } from '../clock/hlc.ts';
import { decodeRecord, Op } from '../log/record.ts';
import type { RecordLog } from '../log/record-log.ts';
import type { FsyncPolicy } from '../log/wal.ts';
import type { ConfigEntry, HardState } from '../consensus/core.ts';
import type { Entry } from '../consensus/messages.ts';
import type { Epoch } from '../consensus/term-history.ts';
import { Collection, type CollectionInfo, type PointView } from './collection.ts';
import { epochsThrough, saveNodeMeta, type NodeMeta } from './node-meta.ts';
import {
  FULLSYNC_MARKER,
  loadChunk,
  readManifest,
  readSnapshot,
  writeSnapshot,
  type SnapshotInfo,
} from './snapshot.ts';
import { Snapshots, type SnapshotPin } from './snapshots.ts';
import type { SnapshotStaging } from './snapshot-staging.ts';
import { searchCollection, MAX_SEARCH_K, type PayloadFilter, type SearchHit } from './search.ts';
import { invalid } from './point-checks.ts';
import type { DirLock } from './dir-lock.ts';
import { recover, type RecoveryReport, type ReplayThrough } from './recovery.ts';
import { NodeState } from './state.ts';
import { SchemaView } from './schema-view.ts';
import { LogPins, type LogPin } from './log-pins.ts';
import { Cursors, type OpenCursorOptions } from './cursors.ts';
import type { LogCursor } from './log-cursor.ts';
import { LOST_DIR, writeLostFile, type LostRecords } from './lost-records.ts';

export type { RecoveryReport, ReplayThrough } from './recovery.ts';
export type { SnapshotPin } from './snapshots.ts';
export type { LogPin } from './log-pins.ts';
export type { LogCursor, CursorBound } from './log-cursor.ts';
export type { OpenCursorOptions } from './cursors.ts';
export type { LostRecords } from './lost-records.ts';

export interface StoreOptions {
  dataDir: string;
  /** Required on a new data dir; checked against the stored one otherwise. */
  nodeId?: string;
  fsync?: FsyncPolicy;
  walSegmentBytes?: number;
  /** In-memory circular log: bytes and records (the log_size setting). */
  ringCapacityBytes?: number;
  ringCapacityRecords?: number;
  /** Take a snapshot automatically once this many record bytes were applied since the last one (0 = never). */
  snapshotEveryBytes?: number;
  /**
   * WAL bytes change streams and consumer groups may hold back
   * (streams.max_retained_bytes): a snapshot removes the WAL past this even
   * when a stream or a group still needs it (log-pins.ts).
   */
  streamsMaxRetainedBytes?: number;
  /** Wall clock for the HLC (tests pass their own). */
  wallMs?: () => number;
  /**
   * How far start-up applies the WAL (recovery.ts ReplayThrough): `all`
   * (default) every record; `commit` only up to the persisted commit point
   * (or the newest snapshot, if higher), the rest left in the log for the
   * replication core to apply once committed. `appliedLsn` then reports
   * the replay point and `lastLsn` the log's end.
   */
  replayThrough?: ReplayThrough;
  warn?: (fields: Record<string, unknown>, message: string) => void;
}

export interface WriteResult {
  lsn: number;
  count: number;
}

export const STORE_DEFAULTS = {
  fsync: 'everysec' as FsyncPolicy,
  // Replication backlog in memory; the WAL serves anything older. Also the
  // largest batch (encoded), 5x a batch of 1000 x 768 floats.
  ringCapacityBytes: 16 * 1024 * 1024,
  ringCapacityRecords: 1_000_000,
  snapshotEveryBytes: 1024 * 1024 * 1024,
  streamsMaxRetainedBytes: 4 * 1024 * 1024 * 1024,
};

export class Store {
  readonly dataDir: string;
  readonly recovery: RecoveryReport;
  readonly clock: HybridClock;
  readonly schema: SchemaView;
  private stateNow: NodeState;
  private meta: NodeMeta;
  private readonly log: RecordLog;
  private readonly lock: DirLock;
  private readonly snapshots: Snapshots;
  private readonly pins: LogPins;
  private readonly cursors: Cursors;
  private readonly snapshotEveryBytes: number;
  private readonly streamsMaxRetainedBytes: number;
  /** Each consumer group's committed position pins the WAL after it (a stream pin). */
  private readonly groupPins = new Map<string, LogPin>();
  private bytesSinceSnapshot: number;
  /** Config records recovered at start-up (the core keeps them current afterwards). */
  readonly recoveredConfigs: ConfigEntry[];
  private closed = false;
  private readonly warn: (fields: Record<string, unknown>, message: string) => void;

  private constructor(init: {
    dataDir: string;
    meta: NodeMeta;
    state: NodeState;
    log: RecordLog;
    clock: HybridClock;
    lock: DirLock;
    snapshots: Snapshots;
    pins: LogPins;
    cursors: Cursors;
    snapshotEveryBytes: number;
    streamsMaxRetainedBytes: number;
    bytesSinceSnapshot: number;
    configs: ConfigEntry[];
    unappliedSchema: { lsn: number; bytes: Uint8Array }[];
    recovery: RecoveryReport;
    warn: (fields: Record<string, unknown>, message: string) => void;
  }) {
    this.dataDir = init.dataDir;
    this.meta = init.meta;
    this.stateNow = init.state;
    this.log = init.log;
    this.clock = init.clock;
    this.lock = init.lock;
    this.snapshots = init.snapshots;
    this.pins = init.pins;
    this.cursors = init.cursors;
    this.snapshotEveryBytes = init.snapshotEveryBytes;
    this.streamsMaxRetainedBytes = init.streamsMaxRetainedBytes;
    this.bytesSinceSnapshot = init.bytesSinceSnapshot;
    this.recoveredConfigs = init.configs;
    this.recovery = init.recovery;
    this.warn = init.warn;
    this.schema = new SchemaView(() => this.stateNow);
    // Records left unapplied at start-up are in the log: a new write is
    // checked against the collections they create or drop.
    this.schema.appended(init.unappliedSchema);
    this.syncGroupPins();
  }

  static async open(opts: StoreOptions): Promise<Store> {
    const warn = opts.warn ?? ((): void => {});
    const r = await recover({
      dataDir: opts.dataDir,
      ...(opts.nodeId !== undefined ? { nodeId: opts.nodeId } : {}),
      fsync: opts.fsync ?? STORE_DEFAULTS.fsync,
      ...(opts.walSegmentBytes !== undefined ? { walSegmentBytes: opts.walSegmentBytes } : {}),
      ringCapacityBytes: opts.ringCapacityBytes ?? STORE_DEFAULTS.ringCapacityBytes,
      ringCapacityRecords: opts.ringCapacityRecords ?? STORE_DEFAULTS.ringCapacityRecords,
      wallMs: opts.wallMs ?? Date.now,
      ...(opts.replayThrough !== undefined ? { replayThrough: opts.replayThrough } : {}),
      warn,
    });
    try {
      const snapshots = await Snapshots.open(r.dataDir);
      const pins = new LogPins();
      const cursors = await Cursors.open({
        dataDir: r.dataDir,
        log: r.log,
        pins,
        committedLsn: Math.min(r.meta.hardState.commit, r.state.appliedLsn),
      });
      return new Store({
        dataDir: r.dataDir,
        meta: r.meta,
        state: r.state,
        log: r.log,
        clock: r.clock,
        lock: r.lock,
        snapshots,
        pins,
        cursors,
        snapshotEveryBytes: opts.snapshotEveryBytes ?? STORE_DEFAULTS.snapshotEveryBytes,
        streamsMaxRetainedBytes: opts.streamsMaxRetainedBytes ?? STORE_DEFAULTS.streamsMaxRetainedBytes,
        bytesSinceSnapshot: r.bytesSinceSnapshot,
        configs: r.configs,
        unappliedSchema: r.unappliedSchema,
        recovery: r.report,
        warn,
      });
    } catch (err) {
      await r.log.close();
      await r.lock.release();
      throw err;
    }
  }

  get nodeId(): string {
    return this.meta.nodeId;
  }

  get hardState(): HardState {
    return { ...this.meta.hardState };
  }

  get history(): Epoch[] {
    return this.meta.history.map((e) => ({ ...e }));
  }

  /** The applied state (collections). */
  get state(): NodeState {
    return this.stateNow;
  }

  /** The log's end (what the WAL holds). */
  get lastLsn(): number {
    return this.log.lastLsn;
  }

  /** The state's LSN: at most `lastLsn` (below it after a `replayThrough: 'commit'` start, or on a follower). */
  get appliedLsn(): number {
    return this.stateNow.appliedLsn;
  }

  /** The log, for feeders and change streams. */
  get records(): RecordLog {
    return this.log;
  }

  /** Why the WAL refuses appends (a full disk, an I/O error), or null. */
  get walFailure(): VrepError | null {
    return this.log.wal.failure;
  }

  private assertOpen(): void {
    if (this.closed) throw new VrepError('ERR_NODE_STOPPED', 'the store is closed');
  }

  // ------------------------------------------------------------------ log

  /** Appends encoded records (consecutive LSNs after lastLsn); resolves once durable per the fsync policy. */
  append(records: Uint8Array[]): Promise<void> {
    this.assertOpen();
    const durable = this.log.append(records);
    this.cursors.wake();
    return durable;
  }

  /**
   * Drops log records above `lsn`, and returns what went (null: nothing did).
   * In this order, so that a failure at any step leaves a log that is still
   * whole or already cut, never a tail dropped without a trace:
   *
   * 1. appends in flight finish (or are refused): what the WAL then holds
   *    above the cut is what goes; records the disk refused are not in it;
   * 2. those records are listed in a `lost/` file (lost-records.ts), with
   *    the log pinned so a snapshot finishing meanwhile cannot remove them.
   *    When that fails (a full disk), this rejects and nothing is dropped;
   * 3. snapshots above the cut go: they hold records the log drops, and
   *    start-up would load them back (a deposed primary may have
   *    snapshotted its divergent tail);
   * 4. the WAL and the ring drop the records.
   */
  async truncateAfter(lsn: number): Promise<LostRecords | null> {
    this.assertOpen();
    await this.log.wal.whenDurable(this.log.lastLsn);
    const last = this.log.lastLsn;
    let lost: LostRecords | null = null;
    if (last > lsn) {
      const pin = this.pins.pin(lsn + 1);
      try {
        lost = await writeLostFile({
          dataDir: this.dataDir,
          nodeId: this.meta.nodeId,
          afterLsn: lsn,
          toLsn: last,
          firstReadableLsn: this.log.firstLsn,
          history: this.meta.history,
          read: (from, to, maxBytes) => this.log.read(from, to, maxBytes),
        });
      } catch (err) {
        throw new Error(
          `truncating the log after LSN ${lsn}: could not list the ${last - lsn} records it drops in ${path.join(this.dataDir, LOST_DIR)} (${(err as Error).message}); nothing was dropped`,
          { cause: err },
        );
      } finally {
        pin.release();
      }
    }
    const removed = await this.snapshots.removeAbove(lsn);
    if (removed.length > 0)
      this.warn({ afterLsn: lsn, snapshots: removed }, 'log: removed snapshots above the cut');
    const dropped = await this.log.truncateAfter(lsn);
    if (lost !== null) {
      this.warn(
        {
          afterLsn: lsn,
          fromLsn: lost.fromLsn,
          toLsn: lost.toLsn,
          records: dropped,
          ...(lost.unlisted > 0 ? { unlisted: lost.unlisted } : {}),
          file: lost.file,
        },
        `log: dropped ${dropped} records above LSN ${lsn} (a divergent tail), listed in ${lost.file}`,
      );
    }
    return lost;
  }

  /**
   * Persists the hard state, and the term history when given (fsync +
   * rename). Saves run one after another, each writing the latest meta.
   * A save that changes nothing is skipped (no write: a node whose disk is
   * full goes on). The commit point is a floor persisted lazily (late is
   * safe): a save that only moves it and fails is logged and skipped, and
   * a later one carries it; any other failed save rejects.
   */
  saveHardState(hs: HardState, history: Epoch[] | null): Promise<void> {
    this.assertOpen();
    const run = this.metaWrites.then(async () => {
      const next: NodeMeta = { ...this.meta, hardState: { ...hs }, history: history ?? this.meta.history };
      const sameHistory = sameEpochs(next.history, this.meta.history);
      const was = this.meta.hardState;
      const sameVote = hs.term === was.term && hs.votedFor === was.votedFor;
      if (sameHistory && sameVote && hs.commit === was.commit) return;
      try {
        await saveNodeMeta(this.dataDir, next);
      } catch (err) {
        if (!sameHistory || !sameVote) throw err;
        this.warn(
          { err: (err as Error).message, commit: hs.commit, persistedCommit: was.commit },
          'node meta: could not persist the commit point; a later save will',
        );
        return;
      }
      this.meta = next;
    });
    this.metaWrites = run.catch(() => undefined);
    return run;
  }

  private metaWrites: Promise<void> = Promise.resolve();

  /** A reader's place in the log (see log-cursor.ts); close it when done. */
  openCursor(opts?: OpenCursorOptions): LogCursor {
    this.assertOpen();
    return this.cursors.open(opts);
  }

  /** Saved named cursors and their positions. */
  savedCursors(): { name: string; lsn: number }[] {
    return this.cursors.list();
  }

  /** Forgets a named cursor's saved position (false: there was none). */
  dropCursor(name: string): Promise<boolean> {
    this.assertOpen();
    return this.cursors.drop(name);
  }

  /**
   * The lowest LSN change streams and groups may hold the WAL at: older
   * records go at the next snapshot even if a stream or group still needs
   * them (streams.max_retained_bytes).
   */
  get retentionFloor(): number {
    return this.log.wal.retainedFrom(this.streamsMaxRetainedBytes);
  }

  /** The streams' retention limit, bytes. */
  get retainedBytesLimit(): number {
    return this.streamsMaxRetainedBytes;
  }

  /** Keeps one stream pin per group, after its committed position (the state holds the positions). */
  private syncGroupPins(): void {
    const groups = this.stateNow.groups;
    for (const [name, pin] of this.groupPins) {
      if (!groups.has(name)) {
        pin.release();
        this.groupPins.delete(name);
      }
    }
    for (const [name, g] of groups) {
      // The next record a group reads: the position's own when only part of it was handled.
      const lsn = Math.max(1, g.position.index === null ? g.position.lsn + 1 : g.position.lsn);
      const pin = this.groupPins.get(name);
      if (pin) pin.lsn = lsn;
      else this.groupPins.set(name, this.pins.pin(lsn, 'stream'));
    }
  }

  /**
   * Records up to `lsn` are held by the write quorum and applied here:
   * committed cursors may read them (the node reports it after each Ready).
   */
  setCommitted(lsn: number): void {
    this.cursors.setCommitted(lsn);
  }

  // ------------------------------------------------------------------ state

  /**
   * Applies records in LSN order (they follow the applied state with no gap).
   * Every entry's checksum was checked on its way in (sealed here, checked
   * in the RECORDS frame it came in, or by the WAL read), so it is not
   * checked a second time.
   */
  apply(entries: readonly Entry[]): void {
    this.assertOpen();
    const state = this.stateNow;
    let groupsMoved = false;
    for (const e of entries) {
      const record = decodeRecord(e.bytes, { checksumVerified: true });
      state.apply(record);
      if (record.op === Op.GroupPosition) groupsMoved = true;
      this.clock.observe({ ms: record.hlcMs, logical: record.hlcLogical });
      this.bytesSinceSnapshot += e.bytes.length;
    }
    if (groupsMoved) this.syncGroupPins();
    const last = entries.at(-1);
    if (last) this.schema.applied(last.lsn);
    this.maybeSnapshot();
  }

  /**
   * Rebuilds the state as of `lsn` (records above it were dropped from the
   * log): the newest snapshot at or below it, then the WAL up to it.
   * ERR_SNAPSHOT_CORRUPT-free failure modes: ERR_LSN_EVICTED when the WAL no
   * longer holds what the rebuild needs (a full sync is the way then).
   */
  async rollback(lsn: number): Promise<void> {
    this.assertOpen();
    const base = this.snapshots.atOrBelow(lsn);
    const state = new NodeState();
    if (base !== null) {
      const manifest = await readManifest(base.dir);
      for (const c of manifest.collections)
        state.collections.set(c.name, new Collection(c.name, c.dimension, c.metric));
      await readSnapshot(base.dir, manifest, (chunk) =>
        loadChunk(state.collections.get(chunk.collection) as Collection, chunk),
      );
      state.restoreFrom(manifest);
    }
    for (let from = state.appliedLsn + 1; from <= lsn;) {
      const records = await this.log.read(from, lsn, 16 * 1024 * 1024);
      if (records.length === 0) {
        throw new VrepError(
          'ERR_LSN_EVICTED',
          `rebuilding the state up to LSN ${lsn}: records from ${from} are gone (no snapshot at or below it, and the WAL before the newer ones was removed); remove this node's data and let it resync`,
        );
      }
      for (const bytes of records) state.apply(decodeRecord(bytes));
      from += records.length;
    }
    this.stateNow.drop();
    this.stateNow = state;
    this.schema.reset();
    this.syncGroupPins();
  }

  /**
   * Installs a snapshot that a full sync put in place as
   * `snapshots/snap-<lsn>` (with its FULLSYNC_MARKER): loads it beside the
   * current state (which serves reads meanwhile), switches, then empties the
   * log to continue after it and takes the primary's history. A crash in
   * between is finished at the next start (recovery.ts adoptFullSync).
   * With `staged` (the same snapshot, applied as its chunks arrived) there
   * is nothing to load: the switch is immediate.
   */
  async installReceived(
    snapshotLsn: number,
    dir: string,
    staged?: SnapshotStaging,
  ): Promise<{ history: Epoch[]; configs: ConfigEntry[] }> {
    this.assertOpen();
    const manifest = await readManifest(dir);
    const state = new NodeState();
    if (staged && staged.snapshotLsn === snapshotLsn && staged.manifest.historyId === manifest.historyId) {
      // Applied as the chunks arrived (snapshot-staging.ts): nothing left to load.
      for (const [name, c] of await staged.finish()) state.collections.set(name, c);
    } else {
      for (const c of manifest.collections)
        state.collections.set(c.name, new Collection(c.name, c.dimension, c.metric));
      await readSnapshot(dir, manifest, (chunk) =>
        loadChunk(state.collections.get(chunk.collection) as Collection, chunk),
      );
    }
    state.restoreFrom({ ...manifest, lsn: snapshotLsn });
    const history = manifest.history ?? [];
    const configs: ConfigEntry[] = (manifest.configs ?? []).map((c) => ({
      lsn: c.lsn,
      membership: { members: c.members },
    }));
    await this.log.resetAt(snapshotLsn + 1);
    this.stateNow.drop();
    this.stateNow = state;
    this.schema.reset();
    this.syncGroupPins();
    this.bytesSinceSnapshot = 0;
    await this.saveHardState(
      { ...this.meta.hardState, commit: Math.min(this.meta.hardState.commit, snapshotLsn) },
      history,
    );
    await rm(path.join(dir, FULLSYNC_MARKER), { force: true });
    this.snapshots.installed(dir, manifest);
    return { history, configs };
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
    return this.stateNow.listCollections();
  }

  /** Order-independent digest of one collection (see Collection.digest). */
  digest(name: string): string {
    return this.collection(name).digest();
  }

  private collection(name: string): Collection {
    const c = this.stateNow.collections.get(name);
    if (!c) throw vrepError('ERR_COLLECTION_NOT_FOUND', name);
    return c;
  }

  // ------------------------------------------------------------------ snapshots

  private maybeSnapshot(): void {
    if (
      this.snapshotEveryBytes > 0 &&
      this.bytesSinceSnapshot >= this.snapshotEveryBytes &&
      !this.snapshots.isBuilding
    ) {
      this.snapshot().catch((err: unknown) =>
        this.warn(
          { err: (err as Error).message },
          'snapshot failed; the WAL keeps everything until one succeeds',
        ),
      );
    }
  }

  /**
   * Takes a snapshot of the applied state while writes go on, installs it,
   * and removes the WAL segments it covers (except what a pin still needs).
   * One runs at a time: a second call shares the running one.
   */
  snapshot(): Promise<SnapshotInfo> {
    this.assertOpen();
    return this.snapshots.take(
      this.snapshotTarget(),
      () => this.buildSnapshot(),
      async (info) => {
        await this.log.wal.removeBefore(
          Math.min(info.manifest.lsn + 1, this.pins.floor(this.retentionFloor)),
        );
      },
    );
  }

  /** The epoch that wrote the applied state's last record (a snapshot of it carries its term and history id). */
  private snapshotEpoch(lsn: number): { history: Epoch[]; term: number; historyId: string } {
    const history = epochsThrough(this.meta.history, lsn);
    const epoch = history.at(-1);
    return {
      history,
      term: epoch?.term ?? this.meta.hardState.term,
      historyId: epoch?.historyId ?? '0'.repeat(32),
    };
  }

  private snapshotTarget(): { lsn: number; historyId: string } {
    const lsn = this.stateNow.appliedLsn;
    return { lsn, historyId: this.snapshotEpoch(lsn).historyId };
  }

  private buildSnapshot(): Promise<SnapshotInfo> {
    const state = this.stateNow;
    const lsn = state.appliedLsn;
    const frozen = [...state.collections.values()].map((c) => c.freeze());
    this.bytesSinceSnapshot = 0;
    const { history, term, historyId } = this.snapshotEpoch(lsn);
    return writeSnapshot(this.dataDir, frozen, {
      lsn,
      term,
      historyId,
      history,
      configs: this.configsAt(lsn),
      groups: [...state.groups].map(([name, g]) => ({ name, ...g.position, setAtLsn: g.setAtLsn })),
      logHolds: () => this.log.wal.whenDurable(lsn),
    });
  }

  /** Config records at or below `lsn` in the applied state (for a snapshot's manifest). */
  private configsAt(
    lsn: number,
  ): { lsn: number; members: { id: string | null; address: string | null }[] }[] {
    return this.stateNow.configs.filter((c) => c.lsn <= lsn).map((c) => ({ lsn: c.lsn, members: c.members }));
  }

  /**
   * The newest snapshot, pinned for a full sync (taken now if there is none
   * or if `fresh`), with a log pin at its LSN so the records after it stay
   * readable until released.
   */
  async pinSnapshot(opts: { fresh?: boolean } = {}): Promise<SnapshotPin> {
    this.assertOpen();
    return this.snapshots.pinNewest(
      opts,
      () => this.snapshotTarget(),
      () => this.buildSnapshot(),
      // Taken in the same turn as the snapshot's own pin: no snapshot
      // finishing meanwhile can remove the WAL records after it.
      (lsn) => {
        const logPin = this.pins.pin(lsn + 1);
        return () => logPin.release();
      },
    );
  }

  get snapshotLsn(): number {
    return this.snapshots.newest?.lsn ?? 0;
  }

  /** Snapshots this store built since it opened (automatic, operator's, for full syncs). */
  get snapshotsBuilt(): number {
    return this.snapshots.built;
  }

  /** Bytes of the newest snapshot's files (0 with none). */
  get snapshotBytes(): number {
    return this.snapshots.newest?.bytes ?? 0;
  }

  /** Flushes the WAL and closes; waits for a running snapshot. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cursors.close();
    await this.snapshots.settle();
    await this.log.close();
    await this.lock.release();
  }
}

function sameEpochs(a: readonly Epoch[], b: readonly Epoch[]): boolean {
  return (
    a.length === b.length &&
    a.every((e, i) => {
      const o = b[i] as Epoch;
      return (
        e.term === o.term &&
        e.historyId === o.historyId &&
        e.leaderId === o.leaderId &&
        e.firstLsn === o.firstLsn
      );
    })
  );
}
