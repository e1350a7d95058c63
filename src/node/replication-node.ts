/**
 * The programmatic face of a vrep node (see the TypeScript API in the
 * interface doc). This build runs the standalone role: a durable store with
 * exact search. Replication roles are refused until they exist, rather than
 * accepted and ignored.
 */
import { VrepError } from '../errors.ts';
import type { MetricName } from '../log/record.ts';
import { Store, type RecoveryReport, type WriteResult } from '../store/store.ts';
import type { PointInput } from '../store/points.ts';
import type { PayloadFilter } from '../store/search.ts';
import type { CollectionInfo } from '../store/collection.ts';
import type { SnapshotInfo } from '../store/snapshot.ts';
import { ConsistencyLevel } from './consistency.ts';

import type {
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

export class ReplicationNode {
  readonly role: Role;
  private readonly store: Store;

  private constructor(role: Role, store: Store) {
    this.role = role;
    this.store = store;
  }

  static async start(opts: ReplicationNodeOptions): Promise<ReplicationNode> {
    if (typeof opts !== 'object' || opts === null)
      throw new TypeError('ReplicationNode.start(opts): expected an object');
    if (typeof opts.dataDir !== 'string' || opts.dataDir.length === 0) {
      throw new TypeError('ReplicationNode.start(opts.dataDir): expected a non-empty path');
    }
    const role = opts.replication?.role ?? 'standalone';
    if (role !== 'standalone') {
      throw new VrepError(
        'ERR_UNSUPPORTED',
        `role "${role}" is not available in this build yet; use "standalone"`,
      );
    }
    const s = opts.storage ?? {};
    const store = await Store.open({
      dataDir: opts.dataDir,
      ...(opts.nodeId !== undefined ? { nodeId: opts.nodeId } : {}),
      ...(s.fsync !== undefined ? { fsync: s.fsync } : {}),
      ...(s.walSegmentBytes !== undefined ? { walSegmentBytes: s.walSegmentBytes } : {}),
      ...(s.logBytes !== undefined ? { ringCapacityBytes: s.logBytes } : {}),
      ...(opts.replication?.logSize !== undefined ? { ringCapacityRecords: opts.replication.logSize } : {}),
      ...(s.snapshotEveryBytes !== undefined ? { snapshotEveryBytes: s.snapshotEveryBytes } : {}),
    });
    return new ReplicationNode(role, store);
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

  async createCollection(
    name: string,
    spec: { dimension: number; metric: MetricName },
  ): Promise<WriteResult> {
    return this.store.createCollection(name, spec);
  }

  async dropCollection(name: string): Promise<WriteResult> {
    return this.store.dropCollection(name);
  }

  collections(): CollectionInfo[] {
    return this.store.listCollections();
  }

  /**
   * Upserts a batch, all or nothing. Resolves once the consistency level is
   * met: on a standalone node every level means this node's WAL (per the
   * fsync policy), since it is the whole cluster.
   */
  async write(
    collection: string,
    points: readonly PointInput[],
    opts: WriteOptions = {},
  ): Promise<WriteResult> {
    checkConsistency(opts);
    return this.store.upsert(collection, points);
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
    checkConsistency(opts);
    return this.store.upsertPacked(collection, batch.ids, batch.vectors, batch.payloads);
  }

  async delete(
    collection: string,
    ids: readonly (string | number)[],
    opts: WriteOptions = {},
  ): Promise<WriteResult> {
    checkConsistency(opts);
    return this.store.delete(collection, ids);
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

  /** Port of the peer listener (null: this node does not listen for peers). */
  get peerPort(): number | null {
    return null;
  }

  /** GET /replication/status. */
  replicationStatus(): ReplicationStatus {
    return {
      role: this.role,
      enabled: false,
      node_id: this.nodeId,
      term: this.store.currentTerm,
      history_id: this.store.historyId,
      last_lsn: this.lastLsn,
      stats: this.replicationStats(),
      replicas: this.replicas(),
    };
  }

  /** GET /replication/stats. */
  replicationStats(): ReplicationStats {
    return {
      role: this.role,
      lag_ms: 0,
      bytes_sent: 0,
      bytes_received: 0,
      last_sync: 0,
      operations_pending: 0,
      snapshot_size: 0,
      connected_replicas: 0,
      master_offset: this.lastLsn,
      replica_offset: this.lastLsn,
      lag_operations: 0,
      total_replicated: 0,
      full_syncs: 0,
      partial_syncs: 0,
      frames_rejected: 0,
      slow_peer_disconnects: 0,
    };
  }

  /** GET /replication/replicas: the replicas this primary knows, connected or not. */
  replicas(): ReplicaInfo[] {
    return [];
  }

  /** Replica: how far behind its primary it is. Primary: the largest lag among its replicas. */
  lag(): { lag_ms: number; lag_operations: number } {
    const s = this.replicationStats();
    return { lag_ms: s.lag_ms, lag_operations: s.lag_operations };
  }

  /** Replication events as they happen, from the moment of the call (bounded buffer per reader). */
  events(): AsyncIterableIterator<NodeEvent> {
    throw new VrepError('ERR_UNSUPPORTED', 'events() arrives with replication');
  }

  /** Primary: dial a replica's peer listener and feed it. */
  async addReplica(address: string): Promise<void> {
    throw new VrepError('ERR_UNSUPPORTED', `addReplica(${address}): not a primary`);
  }

  /** Primary: stop feeding a replica and drop it from the cluster's membership. */
  async removeReplica(id: string): Promise<void> {
    throw new VrepError('ERR_UNSUPPORTED', `removeReplica(${id}): not a primary`);
  }

  /** Primary: make a replica start over with a full sync. */
  async forceSync(id: string): Promise<void> {
    throw new VrepError('ERR_UNSUPPORTED', `forceSync(${id}): not a primary`);
  }

  /** Replica: stop following and become a primary (manual failover). */
  async promote(): Promise<void> {
    throw new VrepError('ERR_UNSUPPORTED', 'promote(): this node is not a replica');
  }

  /** Primary: hand the role to a caught-up replica. */
  async transfer(to: string): Promise<void> {
    throw new VrepError('ERR_UNSUPPORTED', `transfer(${to}): not available in this build`);
  }

  /** Changes role / addresses at run time (POST /replication/configure). */
  async configure(change: { role?: Role; masterAddress?: string | null }): Promise<void> {
    throw new VrepError(
      'ERR_UNSUPPORTED',
      `configure(${JSON.stringify(change)}): not available in this build`,
    );
  }

  /** Finishes in-flight writes, flushes the WAL and releases the data dir. */
  async stop(): Promise<void> {
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
