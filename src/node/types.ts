/**
 * The public shapes of a node: start options (the YAML keys in camelCase,
 * see the interface doc) and the replication status objects. Status objects
 * use Vectorizer's snake_case field names, the same in the TS API and over
 * HTTP (`/replication/*`), so dashboards and scripts read one shape.
 */
import type { FsyncPolicy } from '../log/wal.ts';
import type { ConsistencyLevel } from './consistency.ts';

export type Role = 'standalone' | 'primary' | 'replica' | 'auto' | 'multi-master';

export interface TlsOptions {
  /** PEM file paths. */
  cert: string;
  key: string;
  /** CA that signs every peer's certificate; peers without one are refused. */
  ca: string;
}

export interface ReplicationOptions {
  role?: Role;
  /** Peer listener, HOST:PORT (port 0 picks a free one; see `ReplicationNode.peerPort`). Default 127.0.0.1:7001. */
  bindAddress?: string;
  /** Replica: the primary's bindAddress. */
  masterAddress?: string | null;
  /** auto / multi-master: every other node's bindAddress. Primary: replicas to dial at start. */
  peers?: string[];
  /** Default 5000. */
  heartbeatIntervalMs?: number;
  /** A peer silent this long is disconnected (and redialed). Default 30000. */
  replicaTimeoutMs?: number;
  /** Longest wait between redials (backoff grows up to it). Default 5000. */
  reconnectIntervalMs?: number;
  /** Operations kept in the in-memory circular log. Default 1000000. */
  logSize?: number;
  /** Default level of writes that do not name one. Default 'one'. */
  consistency?: ConsistencyLevel;
  /** zstd batch compression of replication frames. Default enabled, level 1. */
  compression?: { enabled?: boolean; level?: number };
  /** Per-link throttle, bytes/s; null = unlimited. */
  bandwidthBytesPerSec?: number | null;
  /** A replica this many operations behind is Lagging. Default 10000. */
  lagThresholdOps?: number;
  /** Shared secret for peer authentication (HMAC challenge-response); null = none. */
  secret?: string | null;
  tls?: TlsOptions | null;
  /**
   * With neither a secret nor TLS, peers are accepted from loopback only
   * (protected mode); true accepts them from anywhere. Default false.
   */
  insecureNoAuth?: boolean;
  /** Nodes with different cluster ids refuse each other. Default 'vrep'. */
  clusterId?: string;
  /** This node's HTTP address, told to peers (a replica names it in read-only errors). */
  httpAddress?: string | null;
}

export interface StorageOptions {
  fsync?: FsyncPolicy;
  walSegmentBytes?: number;
  /** Bytes of recent records kept in memory (and the largest batch). */
  logBytes?: number;
  /** Snapshot after this many WAL bytes (0 = only on request). */
  snapshotEveryBytes?: number;
}

/** pino-compatible; a pino logger fits. */
export interface NodeLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ReplicationNodeOptions {
  nodeId?: string;
  /** Where replication logs go; default pino at VREP_LOG_LEVEL (warn) on stdout. */
  logger?: NodeLogger;
  dataDir: string;
  replication?: ReplicationOptions;
  storage?: StorageOptions;
}

export type ReplicaState = 'Connected' | 'Syncing' | 'Lagging' | 'Disconnected';

/** One replica as its primary sees it (GET /replication/replicas). */
export interface ReplicaInfo {
  id: string;
  host: string;
  port: number;
  address: string;
  status: ReplicaState;
  lag_ms: number;
  /** Wall-clock ms of the last frame heard from it; 0 = never. */
  last_heartbeat: number;
  operations_synced: number;
  /** LSN it has durably acknowledged. */
  offset: number;
  lag_operations: number;
  /** Present while a full sync runs. */
  sync?: SyncProgress;
}

export interface SyncProgress {
  bytes_done: number;
  bytes_total: number;
  percent: number;
  /** Estimated ms left; null until measurable. */
  eta_ms: number | null;
  /** First chunk sent in this run (> 0 when a cut-off sync resumed). */
  resumed_from_chunk: number;
}

/** GET /replication/stats. */
export interface ReplicationStats {
  role: Role;
  lag_ms: number;
  bytes_sent: number;
  bytes_received: number;
  /** Wall-clock ms of the last completed sync (full or partial); 0 = never. */
  last_sync: number;
  operations_pending: number;
  snapshot_size: number;
  connected_replicas: number;
  /** Primary: its last LSN. Replica: the primary's last LSN as last heard. */
  master_offset: number;
  /** Replica: its own last LSN. Primary: the lowest acknowledged LSN among replicas. */
  replica_offset: number;
  lag_operations: number;
  total_replicated: number;
  full_syncs: number;
  partial_syncs: number;
  frames_rejected: number;
  slow_peer_disconnects: number;
}

/** GET /replication/status. */
export interface ReplicationStatus {
  role: Role;
  enabled: boolean;
  node_id: string;
  term: number;
  history_id: string;
  last_lsn: number;
  /** Replica: the primary it follows, and the link state. */
  master?: {
    address: string;
    http_address: string | null;
    node_id: string | null;
    status: ReplicaState;
    sync?: SyncProgress;
    /** Why the replica refuses to follow (e.g. a primary with an unknown history); null when following. */
    refused: string | null;
  };
  stats: ReplicationStats;
  replicas: ReplicaInfo[];
}

export type NodeEvent =
  | { type: 'ReplicaConnected'; replica: string; atMs: number }
  | { type: 'ReplicaDisconnected'; replica: string; reason: string; atMs: number }
  | { type: 'FullSyncStarted'; peer: string; snapshotLsn: number; resumeFromChunk: number; atMs: number }
  | { type: 'FullSyncFinished'; peer: string; snapshotLsn: number; bytes: number; atMs: number }
  | { type: 'Synced'; peer: string; lsn: number; mode: 'partial' | 'full'; atMs: number }
  | { type: 'Lagging'; peer: string; lagOperations: number; lagMs: number; atMs: number }
  | { type: 'Refused'; peer: string; reason: string; atMs: number }
  | { type: 'RoleChanged'; role: Role; term: number; atMs: number };
