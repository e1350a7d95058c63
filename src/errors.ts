/**
 * Every error vrep raises on purpose is a VrepError with a stable string code,
 * so callers branch on `err.code`, never on message text. Native errors are
 * built as VrepError by the addon itself (see src/native/addon.ts).
 */
export const ErrorCodes = {
  /** An argument has the wrong type, length or value. */
  InvalidArg: 'ERR_INVALID_ARG',
  /** The LSN asked for was overwritten in the circular log. */
  LsnEvicted: 'ERR_LSN_EVICTED',
  /** The LSN asked for has not been appended yet. */
  LsnNotYetWritten: 'ERR_LSN_NOT_YET_WRITTEN',
  /** The log was truncated under a reader (a deposed leader's or a divergent tail was dropped). */
  LsnTruncated: 'ERR_LSN_TRUNCATED',
  /** A record is larger than the log can ever hold. */
  RecordTooLarge: 'ERR_RECORD_TOO_LARGE',
  /** A caller-owned output buffer cannot hold the result. */
  BufferTooSmall: 'ERR_BUFFER_TOO_SMALL',
  /** A frame failed its checks (magic, version, lengths, checksum, zstd). */
  CorruptFrame: 'ERR_CORRUPT_FRAME',
  /** A frame declares more bytes than the caller allows. */
  FrameTooLarge: 'ERR_FRAME_TOO_LARGE',
  /** A log record failed its checks (length, checksum, version, field limits). */
  CorruptRecord: 'ERR_CORRUPT_RECORD',
  /** The node's metadata file is unreadable; the node will not guess its term. */
  CorruptMeta: 'ERR_CORRUPT_META',
  /** A WAL file is corrupt somewhere other than a torn tail; start-up stops. */
  WalCorrupt: 'ERR_WAL_CORRUPT',
  /** A WAL write or fsync failed; the WAL refuses further appends. */
  WalIo: 'ERR_WAL_IO',
  /** The WAL was closed. */
  WalClosed: 'ERR_WAL_CLOSED',
  /** A snapshot file failed a check (manifest, size, checksum, content). */
  SnapshotCorrupt: 'ERR_SNAPSHOT_CORRUPT',
  /** Input to the node API is wrong; the message names the point and field. Nothing was written. */
  InvalidInput: 'ERR_INVALID_INPUT',
  CollectionNotFound: 'ERR_COLLECTION_NOT_FOUND',
  CollectionExists: 'ERR_COLLECTION_EXISTS',
  /** The node (or store) was stopped. */
  NodeStopped: 'ERR_NODE_STOPPED',
  /** Another process holds the data dir. */
  DataDirLocked: 'ERR_DATA_DIR_LOCKED',
  /** The data dir belongs to another node id. */
  NodeIdMismatch: 'ERR_NODE_ID_MISMATCH',
  /** A write's consistency level was not met in time; the write is indeterminate. */
  ConsistencyTimeout: 'ERR_CONSISTENCY_TIMEOUT',
  /** Too much work waiting; retry later. */
  Overloaded: 'ERR_OVERLOADED',
  /** zstd refused to compress (bad level, out of memory). */
  Compression: 'ERR_COMPRESSION',
  /** The JSON text is not valid JSON. */
  JsonSyntax: 'ERR_JSON_SYNTAX',
  /** A point of a JSON batch is wrong (names the point and the field). */
  JsonPoint: 'ERR_JSON_POINT',
  /** The operation is not available on this CPU or build. */
  Unsupported: 'ERR_UNSUPPORTED',
  /** A peer broke the replication protocol (bad handshake, gap in LSNs, bad payload); the link closes. */
  Protocol: 'ERR_PROTOCOL',
  /** A write reached a replica; the message names the primary. */
  ReadOnly: 'ERR_READ_ONLY',
  /** A write reached a node that is not the primary (any more); the message names the primary when known. */
  NotLeader: 'ERR_NOT_LEADER',
  /** Peer authentication failed (wrong or missing secret, replayed handshake, wrong cluster). */
  Auth: 'ERR_AUTH',
  /** The operation does not apply to this node's role (promote on a primary). */
  Role: 'ERR_ROLE',
  /** A peer's history does not contain this node's position; it is not followed. */
  Diverged: 'ERR_DIVERGED',
  /** A config file, env variable or flag has a bad value or an unknown key; the message names it. */
  Config: 'ERR_CONFIG',
  /** A listener cannot bind its address (another process holds it, or it is not this machine's); the message says which. */
  Listen: 'ERR_LISTEN',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class VrepError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'VrepError';
    this.code = code;
  }
}

/** True when `err` is a VrepError, optionally with the given code. */
export function isVrepError(err: unknown, code?: ErrorCode): err is VrepError {
  return err instanceof VrepError && (code === undefined || err.code === code);
}
