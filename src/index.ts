/** vrep: a replication node for vector data. */
export { VrepError, ErrorCodes, isVrepError } from './errors.ts';
export type { ErrorCode } from './errors.ts';
export { ApiLimits } from './limits.ts';
export * from './native/index.ts';
export { ReplicationNode } from './node/replication-node.ts';
export type {
  ReplicationNodeOptions,
  WriteOptions,
  Point,
  SearchResult,
  Role,
  NodeEvent,
  NodeLogger,
  ReplicaInfo,
  ReplicaState,
  ReplicationOptions,
  ReplicationStats,
  ReplicationStatus,
  StorageOptions,
  SyncProgress,
  TlsOptions,
} from './node/replication-node.ts';
export { encodeBinaryBatch, decodeBinaryBatch } from './server/binary-batch.ts';
export { tuneGcForVrep } from './server/gc-tuning.ts';
export { ConsistencyLevel } from './node/consistency.ts';
export type { ChangeStream, ChangeStreamOptions } from './streams/change-stream.ts';
export type { ChangeEvent, ChangeOp, Position, StartFrom } from './streams/change-event.ts';
