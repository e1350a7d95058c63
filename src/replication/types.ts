/**
 * The shapes replication speaks: its options (the YAML keys in camelCase),
 * status objects and events. Status objects use Vectorizer's snake_case
 * field names, the same in the TS API and over HTTP (`/replication/*`), so
 * dashboards and scripts read one shape. The node's API re-exports them
 * (src/node/types.ts).
 */
import type { ConsistencyLevel } from './consistency.ts';

export type Role = 'standalone' | 'primary' | 'replica' | 'auto' | 'multi-master';

/** What a node is now: its configured role, or with role auto what the election made it. */
export type RoleNow = Exclude<Role, 'auto'> | 'candidate';

/** Role auto, in the status: the election settings and what happened. */
export interface ElectionStatus {
  election_timeout_ms: number;
  /** Campaigns this node stood in (real ones, after a pre-vote) since it started. */
  campaigns: number;
  /** Times this node stepped down as primary (a newer term, or it lost the majority). */
  step_downs: number;
  /** When this node last saw a primary elected (ISO 8601), null: not since it started. */
  last_election: string | null;
}

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
  /** Default 5000 (role auto: a tenth of electionTimeoutMs). */
  heartbeatIntervalMs?: number;
  /** Role auto: a voter that hears no leader this long campaigns (drawn in [1x, 2x)). Default 1000. */
  electionTimeoutMs?: number;
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
  /** Counts toward Quorum and All (a member of the cluster); false: an observer, fed but not counted. */
  member: boolean;
  /** Why it refuses to follow this primary, when it does. */
  refused: string | null;
}

/** A member of the cluster (GET /replication/status `members`). */
export interface MemberInfo {
  /** Node id; null until the node at `address` has answered once. */
  id: string | null;
  address: string | null;
  /** This node. */
  self: boolean;
  /** A voter (counted by Quorum and All, votes with role auto), or a learner (fed, never counted). */
  kind: 'voter' | 'learner';
  /** On the primary: the highest LSN it holds durably, as acknowledged (itself: its durable LSN); null elsewhere. */
  match_lsn: number | null;
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
  role: RoleNow;
  lag_ms: number;
  bytes_sent: number;
  bytes_received: number;
  /** Wall-clock ms of the last completed sync (full or partial); 0 = never. */
  last_sync: number;
  operations_pending: number;
  /** Bytes of this node's newest snapshot on disk (0 with none). */
  snapshot_size: number;
  /** Snapshots this node built since it started (automatic, on request, for full syncs). */
  snapshots_taken: number;
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
  /** Records this node dropped from its log since it started (divergent tails), each listed in a `lost/` file. */
  truncated_records: number;
  /** Files this node wrote to `<data_dir>/lost/` since it started (one per truncation that dropped records). */
  lost_files: number;
  /** Primary: share of the bytes compression saved on the payloads it was tried on, recently (null: none tried yet). */
  compression_saving: number | null;
  /** Primary: RECORDS payloads sent uncompressed because compression did not pay (replication.md). */
  compression_skipped: number;
}

/** GET /replication/status. */
export interface ReplicationStatus {
  role: RoleNow;
  /** Role auto only. */
  election?: ElectionStatus;
  /** What the node does now: leads, follows, or was deposed (a primary that learned of a newer term). */
  state: 'leader' | 'follower' | 'candidate' | 'fenced';
  enabled: boolean;
  node_id: string;
  term: number;
  /** Id of the newest epoch of this node's term history (PSYNC2's replication id); it may have written nothing yet. */
  history_id: string;
  /**
   * The log's epochs, oldest first: which primary wrote its records from which LSN (an operator
   * choosing whom to promote compares how far each node's log reaches in the epochs of the
   * primaries it announced).
   */
  history: { term: number; history_id: string; leader: string; first_lsn: number }[];
  last_lsn: number;
  /** Held by a majority of the members (never dropped by a follower). */
  commit_lsn: number;
  /** Applied to the state (what reads see). */
  applied_lsn: number;
  /** Whether this node takes writes now, and why not. */
  writable: { ok: boolean; reason: string | null };
  /** The primary this node follows (or is), when known. */
  leader: { node_id: string; http_address: string | null } | null;
  members: MemberInfo[];
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
  /**
   * The last divergent tail this node dropped since it started (null: none): the records
   * (from_lsn..to_lsn) and the `lost/` file that lists them; `at` in Unix ms.
   */
  last_truncation: { file: string; from_lsn: number; to_lsn: number; records: number; at: number } | null;
  /**
   * The last full sync this node installed as a replica since it started (null: none): the
   * snapshot's LSN, and the records written meanwhile that came alongside it (in its log at the
   * switch); `at` in Unix ms.
   */
  last_full_sync: { snapshot_lsn: number; alongside: number; at: number } | null;
  /**
   * The retention window: the earliest position this node's log still holds (a change stream from
   * before it is refused with ERR_POSITION_EVICTED; a replica lacking records from before it gets
   * a full sync). `first_term` 0 while the log holds no record.
   */
  retention: { first_lsn: number; first_term: number; max_retained_bytes: number };
  /**
   * Change-stream consumer groups: the committed position (replicated; index null: the whole
   * record), members reading on this node, and whether the position fell out of the retention
   * window (resuming it is ERR_POSITION_EVICTED).
   */
  groups: {
    name: string;
    position: { term: number; lsn: number; index: number | null } | null;
    members: number;
    lagged_out: boolean;
  }[];
}

export type NodeEvent =
  | { type: 'ReplicaConnected'; replica: string; atMs: number }
  | { type: 'ReplicaDisconnected'; replica: string; reason: string; atMs: number }
  | { type: 'FullSyncStarted'; peer: string; snapshotLsn: number; resumeFromChunk: number; atMs: number }
  | { type: 'FullSyncFinished'; peer: string; snapshotLsn: number; bytes: number; atMs: number }
  /**
   * A sync with `peer` took place from `lsn`. On a replica after a full sync, `alongside`
   * records written meanwhile came with the snapshot and are in its log already (else 0).
   */
  | { type: 'Synced'; peer: string; lsn: number; mode: 'partial' | 'full'; alongside: number; atMs: number }
  | { type: 'Lagging'; peer: string; lagOperations: number; lagMs: number; atMs: number }
  | { type: 'Refused'; peer: string; reason: string; atMs: number }
  | { type: 'RoleChanged'; role: Role | RoleNow; term: number; atMs: number }
  /** Role auto: `leader` leads `term` (this node or another). */
  | { type: 'LeaderElected'; leader: string; term: number; atMs: number }
  /**
   * This node dropped records fromLsn..toLsn (all above `afterLsn`) from its log: the leader
   * it follows never had them. `file` lists them (docs/storage.md, "Lost records").
   */
  | {
      type: 'Truncated';
      afterLsn: number;
      fromLsn: number;
      toLsn: number;
      records: number;
      file: string;
      atMs: number;
    }
  /** This primary learned of a newer term and takes no writes. */
  | { type: 'Fenced'; by: string; term: number; atMs: number };
