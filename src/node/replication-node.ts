/**
 * The programmatic face of a vrep node (see the TypeScript API in the
 * interface doc). This build runs the standalone role: a durable store with
 * exact search. Replication roles are refused until they exist, rather than
 * accepted and ignored.
 */
import { VrepError } from '../errors.ts';
import type { MetricName } from '../log/record.ts';
import { pino } from 'pino';
import { Store, type RecoveryReport, type StoreOptions, type WriteResult } from '../store/store.ts';
import { EventHub } from '../replication/events.ts';
import { sumLinkCounters } from '../replication/peer-links.ts';
import { NonceRegistry } from '../transport/peer-auth.ts';
import { Primary } from '../replication/primary.ts';
import { Replica } from '../replication/replica.ts';
import { parseAddress, resolveReplication, type ResolvedReplication } from '../replication/settings.ts';
import type { LocalIdentity } from '../replication/peer-session.ts';
import type { PointInput } from '../store/points.ts';
import type { PayloadFilter } from '../store/search.ts';
import type { CollectionInfo } from '../store/collection.ts';
import type { SnapshotInfo } from '../store/snapshot.ts';
import { ConsistencyLevel } from './consistency.ts';

import type {
  NodeLogger,
  NodeEvent,
  ReplicaInfo,
  ReplicationNodeOptions,
  ReplicationStats,
  ReplicationStatus,
  Role,
} from './types.ts';

export type * from './types.ts';

export interface WriteOptions {
  consistency?: ConsistencyLevel;
  timeoutMs?: number;
}

export interface Point {
  id: string;
  vector: Float32Array;
  payload: Record<string, unknown> | null;
}

export interface SearchResult {
  id: string;
  score: number;
  payload: Record<string, unknown> | null;
}

function parsePayload(text: string | null): Record<string, unknown> | null {
  return text === null ? null : (JSON.parse(text) as Record<string, unknown>);
}

const DEFAULT_WRITE_TIMEOUT_MS = 10_000;
const silentNodeLogger: NodeLogger = { info: () => {}, warn: () => {}, error: () => {} };

export class ReplicationNode {
  private currentRole: Role;
  private store: Store;
  private readonly storeOptions: StoreOptions;
  private settings: ResolvedReplication;
  private logger: NodeLogger = silentNodeLogger;
  /** Role switches (promote, configure) run one at a time. */
  private switching: Promise<void> = Promise.resolve();
  private readonly events_ = new EventHub();
  private primary: Primary | null = null;
  private replica: Replica | null = null;
  private reopening: Promise<Store> | null = null;
  private readonly nonces = new NonceRegistry({ capacity: 100_000, maxAgeMs: 24 * 3600 * 1000 });

  private constructor(role: Role, store: Store, storeOptions: StoreOptions, settings: ResolvedReplication) {
    this.currentRole = role;
    this.store = store;
    this.storeOptions = storeOptions;
    this.settings = settings;
  }

  static async start(opts: ReplicationNodeOptions): Promise<ReplicationNode> {
    if (typeof opts !== 'object' || opts === null)
      throw new TypeError('ReplicationNode.start(opts): expected an object');
    if (typeof opts.dataDir !== 'string' || opts.dataDir.length === 0) {
      throw new TypeError('ReplicationNode.start(opts.dataDir): expected a non-empty path');
    }
    const role = opts.replication?.role ?? 'standalone';
    if (role !== 'standalone' && role !== 'primary' && role !== 'replica') {
      throw new VrepError(
        'ERR_UNSUPPORTED',
        `role "${role}" is not available in this build yet; use "standalone", "primary" or "replica"`,
      );
    }
    const settings = resolveReplication(opts.replication);
    const s = opts.storage ?? {};
    const storeOptions: StoreOptions = {
      dataDir: opts.dataDir,
      ...(opts.nodeId !== undefined ? { nodeId: opts.nodeId } : {}),
      ...(s.fsync !== undefined ? { fsync: s.fsync } : {}),
      ...(s.walSegmentBytes !== undefined ? { walSegmentBytes: s.walSegmentBytes } : {}),
      ...(s.logBytes !== undefined ? { ringCapacityBytes: s.logBytes } : {}),
      ...(opts.replication?.logSize !== undefined ? { ringCapacityRecords: opts.replication.logSize } : {}),
      ...(s.snapshotEveryBytes !== undefined ? { snapshotEveryBytes: s.snapshotEveryBytes } : {}),
    };
    const store = await Store.open(storeOptions);
    const node = new ReplicationNode(role, store, storeOptions, settings);
    node.logger = opts.logger ?? pino({ name: 'vrep', level: process.env['VREP_LOG_LEVEL'] ?? 'warn' });
    try {
      await node.startRole();
    } catch (err) {
      await store.close();
      throw err;
    }
    return node;
  }

  /** This node's role now (promote and configure change it). */
  get role(): Role {
    return this.currentRole;
  }

  private async startRole(): Promise<void> {
    if (this.currentRole === 'primary') {
      this.primary = await Primary.start(
        this.store,
        this.identity('primary'),
        this.settings,
        this.logger,
        this.events_,
      );
    } else if (this.currentRole === 'replica') {
      this.replica = await Replica.start(
        () => this.store,
        () => this.reopenStore(),
        this.identity('replica'),
        this.settings,
        this.logger,
        this.events_,
      );
    }
  }

  private async stopRole(): Promise<void> {
    await this.primary?.stop();
    this.primary = null;
    await this.replica?.stop();
    this.replica = null;
  }

  /** Runs role switches one after another. */
  private exclusive(fn: () => Promise<void>): Promise<void> {
    const run = this.switching.then(fn, fn);
    this.switching = run.catch(() => undefined);
    return run;
  }

  private identity(role: 'primary' | 'replica'): LocalIdentity {
    return {
      clusterId: this.settings.clusterId,
      nodeId: this.store.nodeId,
      role,
      secret: this.settings.secret,
      nonces: this.nonces,
      httpAddress: this.settings.httpAddress,
      term: () => this.store.currentTerm,
      historyId: () => this.store.historyId,
      lastLsn: () => this.store.lastLsn,
    };
  }

  /** Replica after a full sync: the store reopens and adopts the installed snapshot. */
  private reopenStore(): Promise<Store> {
    this.reopening ??= (async () => {
      try {
        await this.store.close();
        this.store = await Store.open(this.storeOptions);
        return this.store;
      } finally {
        this.reopening = null;
      }
    })();
    return this.reopening;
  }

  get nodeId(): string {
    return this.store.nodeId;
  }

  /** What start-up recovered (snapshot LSN, WAL records replayed, a cut tail). */
  get recovery(): RecoveryReport {
    return this.store.recovery;
  }

  get lastLsn(): number {
    return this.store.lastLsn;
  }

  /** Recent WAL fsync durations (bounded), for metrics. */
  get walFsyncLatenciesMs(): readonly number[] {
    return this.store.records.wal.fsyncLatenciesMs;
  }

  get historyId(): string {
    return this.store.historyId;
  }

  get term(): number {
    return this.store.currentTerm;
  }

  /** Refuses writes on a replica, naming its primary. */
  private assertWritable(): void {
    if (this.role !== 'replica') return;
    const http = this.replica?.primaryHttpAddress ?? null;
    const peer = this.replica?.masterAddress ?? null;
    throw Object.assign(
      new VrepError(
        'ERR_READ_ONLY',
        `this node is a read-only replica; write to the primary${http ? ` at http://${http}` : peer ? ` (peer address ${peer})` : ''}`,
      ),
      { primary: http },
    );
  }

  /** Waits for the write's consistency level (the store already resolved: this node's WAL has it). */
  private async settle(result: WriteResult, opts: WriteOptions): Promise<WriteResult> {
    const primary = this.primary;
    if (!primary) return result;
    primary.durable(result.lsn);
    const level = opts.consistency ?? this.settings.consistency;
    if (level !== ConsistencyLevel.One) {
      await primary.waitFor(result.lsn, level, opts.timeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS);
    }
    return result;
  }

  async createCollection(
    name: string,
    spec: { dimension: number; metric: MetricName },
    opts: WriteOptions = {},
  ): Promise<WriteResult> {
    this.assertWritable();
    checkConsistency(opts);
    return this.settle(await this.store.createCollection(name, spec), opts);
  }

  async dropCollection(name: string, opts: WriteOptions = {}): Promise<WriteResult> {
    this.assertWritable();
    checkConsistency(opts);
    return this.settle(await this.store.dropCollection(name), opts);
  }

  collections(): CollectionInfo[] {
    return this.store.listCollections();
  }

  /**
   * Upserts a batch, all or nothing. Resolves once the consistency level is
   * met (One: this node's WAL per its fsync policy; Quorum: a majority of
   * the cluster's WALs, this node included; All: every node's). Rejects with
   * ERR_CONSISTENCY_TIMEOUT when the level is not met within timeoutMs: the
   * write is then indeterminate (in this node's log, maybe not elsewhere).
   */
  async write(
    collection: string,
    points: readonly PointInput[],
    opts: WriteOptions = {},
  ): Promise<WriteResult> {
    this.assertWritable();
    checkConsistency(opts);
    return this.settle(await this.store.upsert(collection, points), opts);
  }

  /**
   * Upserts an already packed batch (the HTTP JSON fast path): ids, a
   * count x dimension Float32Array and each payload's raw JSON bytes (empty:
   * none). Same guarantees as write().
   */
  async writePacked(
    collection: string,
    batch: { ids: string[]; vectors: Float32Array; payloads: Uint8Array[] },
    opts: WriteOptions = {},
  ): Promise<WriteResult> {
    this.assertWritable();
    checkConsistency(opts);
    return this.settle(
      await this.store.upsertPacked(collection, batch.ids, batch.vectors, batch.payloads),
      opts,
    );
  }

  async delete(
    collection: string,
    ids: readonly (string | number)[],
    opts: WriteOptions = {},
  ): Promise<WriteResult> {
    this.assertWritable();
    checkConsistency(opts);
    return this.settle(await this.store.delete(collection, ids), opts);
  }

  async get(collection: string, id: string): Promise<Point | null> {
    const p = this.store.get(collection, id);
    return p === null ? null : { id: p.id, vector: p.vector, payload: parsePayload(p.payload) };
  }

  async search(
    collection: string,
    vector: Float32Array | readonly number[],
    opts: { k?: number; filter?: PayloadFilter } = {},
  ): Promise<SearchResult[]> {
    const hits = this.store.search(collection, vector, {
      k: opts.k ?? 10,
      ...(opts.filter !== undefined ? { filter: opts.filter } : {}),
    });
    return hits.map((h) => ({ id: h.id, score: h.score, payload: parsePayload(h.payload) }));
  }

  /** Order-independent content digest of a collection, equal on nodes holding the same data. */
  digest(collection: string): string {
    return this.store.digest(collection);
  }

  /** Takes a snapshot now (writes continue meanwhile). */
  async snapshot(): Promise<SnapshotInfo> {
    return this.store.snapshot();
  }

  /** Port of the peer listener (null: standalone, which does not listen for peers). */
  get peerPort(): number | null {
    return this.primary?.peerPort ?? this.replica?.peerPort ?? null;
  }

  /** GET /replication/status. */
  replicationStatus(): ReplicationStatus {
    // One look at the replicas serves the stats and the list alike.
    const replicas = this.replicas();
    const status: ReplicationStatus = {
      role: this.role,
      enabled: this.role !== 'standalone',
      node_id: this.nodeId,
      term: this.store.currentTerm,
      history_id: this.store.historyId,
      last_lsn: this.lastLsn,
      stats: this.statsOf(replicas),
      replicas,
    };
    if (this.replica) status.master = this.replica.masterStatus();
    return status;
  }

  /** GET /replication/stats. */
  replicationStats(): ReplicationStats {
    return this.statsOf(this.replicas());
  }

  private statsOf(replicas: readonly ReplicaInfo[]): ReplicationStats {
    const last = this.lastLsn;
    const link = this.primary?.linkCounters ?? this.replica?.linkCounters ?? sumLinkCounters([]);
    const counters = this.primary?.counters ??
      this.replica?.counters ?? { fullSyncs: 0, partialSyncs: 0, lastSyncMs: 0 };
    const lag = this.lagOf(replicas);
    return {
      role: this.role,
      lag_ms: lag.lag_ms,
      bytes_sent: link.bytesSent,
      bytes_received: link.bytesReceived,
      last_sync: counters.lastSyncMs,
      operations_pending: lag.lag_operations,
      snapshot_size: 0,
      connected_replicas: replicas.filter((r) => r.status !== 'Disconnected').length,
      master_offset: this.replica ? this.replica.masterLastLsn : last,
      replica_offset: this.primary
        ? replicas.reduce((min, r) => Math.min(min, r.offset), replicas.length > 0 ? Infinity : last)
        : last,
      lag_operations: lag.lag_operations,
      total_replicated: replicas.reduce((sum, r) => sum + r.operations_synced, 0),
      full_syncs: counters.fullSyncs,
      partial_syncs: counters.partialSyncs,
      frames_rejected: link.framesRejected,
      slow_peer_disconnects: link.slowPeerDisconnects,
    };
  }

  /** GET /replication/replicas: the replicas this primary knows, connected or not. */
  replicas(): ReplicaInfo[] {
    return this.primary?.replicaInfos() ?? [];
  }

  /** Replica: how far behind its primary it is. Primary: the largest lag among its replicas. */
  lag(): { lag_ms: number; lag_operations: number } {
    return this.lagOf(this.replicas());
  }

  private lagOf(replicas: readonly ReplicaInfo[]): { lag_ms: number; lag_operations: number } {
    if (this.replica) return this.replica.lag();
    let lagMs = 0;
    let lagOps = 0;
    for (const r of replicas) {
      lagMs = Math.max(lagMs, r.lag_ms);
      lagOps = Math.max(lagOps, r.lag_operations);
    }
    return { lag_ms: lagMs, lag_operations: lagOps };
  }

  /** Replication events as they happen, from the moment of the call (bounded buffer per reader). */
  events(): AsyncIterableIterator<NodeEvent> {
    return this.events_.subscribe();
  }

  private requirePrimary(what: string): Primary {
    if (!this.primary)
      throw new VrepError('ERR_UNSUPPORTED', `${what}: this node is ${this.role}, not a primary`);
    return this.primary;
  }

  /** Primary: dial a replica's peer listener and feed it. */
  async addReplica(address: string): Promise<void> {
    return this.requirePrimary('addReplica').addReplica(address);
  }

  /** Primary: stop feeding a replica and drop it from the cluster's membership. */
  async removeReplica(id: string): Promise<void> {
    return this.requirePrimary('removeReplica').removeReplica(id);
  }

  /** Primary: make a replica start over with a full sync (even one that refuses our history). */
  async forceSync(id: string): Promise<void> {
    return this.requirePrimary('forceSync').forceSync(id);
  }

  /**
   * Replica: stop following and become a primary (manual failover). The
   * node takes a new term (persisted first), so replicas that have seen it
   * refuse the old primary, and a new history that continues its log, so
   * the other replicas, pointed here with configure(), resync partially.
   */
  async promote(): Promise<void> {
    return this.exclusive(async () => {
      if (this.currentRole !== 'replica') {
        throw new VrepError('ERR_ROLE', `promote(): this node is ${this.currentRole}, not a replica`);
      }
      await this.stopRole();
      await this.store.setTerm(this.store.currentTerm + 1, this.store.nodeId);
      await this.store.startNewHistory();
      this.currentRole = 'primary';
      await this.startRole();
      this.logger.warn(
        { term: this.store.currentTerm, historyId: this.store.historyId },
        'replication: promoted to primary',
      );
      this.events_.emit({
        type: 'RoleChanged',
        role: 'primary',
        term: this.store.currentTerm,
        atMs: Date.now(),
      });
    });
  }

  /** Primary: hand the role to a caught-up replica. */
  async transfer(to: string): Promise<void> {
    throw new VrepError(
      'ERR_UNSUPPORTED',
      `transfer(${to}): arrives with leader election; meanwhile stop writes, promote ${to} and configure this node as its replica`,
    );
  }

  /**
   * Changes role and/or the primary followed, at run time
   * (POST /replication/configure): `{role: 'primary'}` on a replica is
   * promote(); `{role: 'replica', masterAddress}` demotes a primary or
   * points a replica elsewhere. Peer links restart; the data stays.
   */
  async configure(change: { role?: Role; masterAddress?: string | null }): Promise<void> {
    const role = change.role ?? this.currentRole;
    if (role !== 'standalone' && role !== 'primary' && role !== 'replica') {
      throw new VrepError('ERR_UNSUPPORTED', `configure(): role "${role}" is not available in this build`);
    }
    const masterAddress =
      change.masterAddress !== undefined ? change.masterAddress : this.settings.masterAddress;
    if (masterAddress !== null) parseAddress('masterAddress', masterAddress);
    if (role === 'primary' && this.currentRole === 'replica') return this.promote();
    return this.exclusive(async () => {
      await this.stopRole();
      this.settings = { ...this.settings, masterAddress };
      this.currentRole = role;
      await this.startRole();
      this.logger.warn({ role, masterAddress }, 'replication: reconfigured');
      this.events_.emit({ type: 'RoleChanged', role, term: this.store.currentTerm, atMs: Date.now() });
    });
  }

  /** Finishes in-flight writes, flushes the WAL and releases the data dir. */
  async stop(): Promise<void> {
    await this.switching;
    await this.stopRole();
    this.events_.close();
    if (this.reopening) await this.reopening.catch(() => undefined);
    return this.store.close();
  }
}

function checkConsistency(opts: WriteOptions): void {
  const level = opts.consistency;
  if (level !== undefined && !Object.values(ConsistencyLevel).includes(level)) {
    throw new VrepError(
      'ERR_INVALID_INPUT',
      `consistency: expected one of one, quorum, all, got ${JSON.stringify(level)}`,
    );
  }
  if (opts.timeoutMs !== undefined && (!Number.isInteger(opts.timeoutMs) || opts.timeoutMs < 0)) {
    throw new VrepError(
      'ERR_INVALID_INPUT',
      `timeoutMs: expected a non-negative integer, got ${String(opts.timeoutMs)}`,
    );
  }
}
