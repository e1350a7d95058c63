/**
 * The public shapes of a node: start options (the YAML keys in camelCase,
 * see the interface doc). Replication's own shapes (its options, the status
 * objects, the events) live with it, in src/replication/types.ts, and are
 * re-exported here.
 */
import type { FsyncPolicy } from '../log/wal.ts';
import type { ReplicationOptions } from '../replication/types.ts';

export type * from '../replication/types.ts';

export interface StorageOptions {
  fsync?: FsyncPolicy;
  walSegmentBytes?: number;
  /** Bytes of recent records kept in memory (and the largest batch). */
  logBytes?: number;
  /** Snapshot after this many WAL bytes (0 = only on request). */
  snapshotEveryBytes?: number;
}

export interface StreamsOptions {
  /**
   * WAL bytes change streams and consumer groups may hold back
   * (streams.max_retained_bytes, default 4 GiB): past it a snapshot removes
   * the WAL they still need, and they find their position evicted.
   */
  maxRetainedBytes?: number;
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
  streams?: StreamsOptions;
}
