/**
 * The error registry: every code vrep raises, once, with what it means, the
 * HTTP status it answers a request with, and how its message is worded (the
 * shape of fastify's lib/errors.js). Callers branch on `err.code`, never on
 * message text. Native errors are built as VrepError by the addon itself,
 * their codes checked against this table (src/native/addon.ts).
 *
 * docs/http-api.md (Errors) and docs/architecture.md (Error codes) list these
 * codes; test/docs/error-tables.test.ts holds both to this table.
 */

/** The message is written where the error is raised (no wording shared by several places). */
const detail = (message: string): string => message;

interface ErrorEntry {
  /** The code's key in ErrorCodes. */
  readonly name: string;
  /**
   * The status when this error answers an HTTP request. null: it never
   * reaches one (start-up, peer links, internals); one that does anyway is
   * a bug, answered 500 under its own code and logged.
   */
  readonly status: number | null;
  /** Builds the message; the arguments are what the wording names. */
  readonly message: (...args: never[]) => string;
}

export const errorRegistry = {
  // ------------------------------------------------------------ requests and input
  /** An argument has the wrong type, length or value (mostly raw native calls). */
  ERR_INVALID_ARG: { name: 'InvalidArg', status: 400, message: detail },
  /** Input to the node API is wrong; the message names the point and field. Nothing was written. */
  ERR_INVALID_INPUT: { name: 'InvalidInput', status: 400, message: detail },
  /** The JSON text is not valid JSON; every route words it alike (V8's or simdjson's words inside). */
  ERR_JSON_SYNTAX: {
    name: 'JsonSyntax',
    status: 400,
    message: (why: string) => `body: not valid JSON (${why})`,
  },
  /** A point of a JSON batch is wrong (names the point and the field). */
  ERR_JSON_POINT: { name: 'JsonPoint', status: 400, message: detail },
  /** A request that is not clean HTTP/1.1 (framing, Host, a bad header, a target that is not a path). */
  ERR_BAD_REQUEST: { name: 'BadRequest', status: 400, message: detail },
  /** The token is configured and the request's bearer token is missing or wrong. */
  ERR_UNAUTHORIZED: { name: 'Unauthorized', status: 401, message: detail },
  /** No route has this path. */
  ERR_NOT_FOUND: { name: 'NotFound', status: 404, message: detail },
  ERR_COLLECTION_NOT_FOUND: {
    name: 'CollectionNotFound',
    status: 404,
    message: (collection: string) => `collection "${collection}" does not exist`,
  },
  ERR_POINT_NOT_FOUND: {
    name: 'PointNotFound',
    status: 404,
    message: (id: string, collection: string) =>
      `point ${JSON.stringify(id)} does not exist in collection "${collection}"`,
  },
  /** A known path with another method (the reply's Allow header lists the allowed ones). */
  ERR_METHOD_NOT_ALLOWED: { name: 'MethodNotAllowed', status: 405, message: detail },
  /** Headers or the whole request did not arrive in time. */
  ERR_REQUEST_TIMEOUT: { name: 'RequestTimeout', status: 408, message: detail },
  ERR_COLLECTION_EXISTS: {
    name: 'CollectionExists',
    status: 409,
    message: (collection: string) => `collection "${collection}" already exists`,
  },
  /** The operation does not apply to this node's role (promote on a primary, force-sync on a replica). */
  ERR_ROLE: { name: 'Role', status: 409, message: detail },
  /** A write reached a replica; the error carries `primary`, the primary's HTTP address (null: not known yet). */
  ERR_READ_ONLY: { name: 'ReadOnly', status: 409, message: detail },
  /**
   * A write reached a node that is not the primary (any more: deposed, or
   * demoted while the write waited); the error carries `primary` as
   * ERR_READ_ONLY does.
   */
  ERR_NOT_LEADER: {
    name: 'NotLeader',
    status: 409,
    message: (why: string, primary: string | null) =>
      primary === null ? why : `${why}; write to the primary at http://${primary}`,
  },
  /**
   * A change stream's start position is on a branch this node's log does not
   * hold: the log has that LSN in another term (a failover dropped the branch).
   */
  ERR_POSITION_DIVERGED: { name: 'PositionDiverged', status: 409, message: detail },
  /**
   * A change stream's start position is no longer held (the WAL was removed
   * past it); the message names the earliest position held. Never a silent gap.
   */
  ERR_POSITION_EVICTED: { name: 'PositionEvicted', status: 410, message: detail },
  /** A request body over the listener's limit. */
  ERR_BODY_TOO_LARGE: { name: 'BodyTooLarge', status: 413, message: detail },
  /** A record is larger than the log can ever hold. */
  ERR_RECORD_TOO_LARGE: { name: 'RecordTooLarge', status: 413, message: detail },
  /** A body route got a body that is not application/json. */
  ERR_UNSUPPORTED_MEDIA_TYPE: { name: 'UnsupportedMediaType', status: 415, message: detail },
  /** Too many failed token checks from one address; it waits until its window ends. */
  ERR_TOO_MANY_FAILURES: { name: 'TooManyFailures', status: 429, message: detail },
  /** Request headers over the listener's limit. */
  ERR_HEADERS_TOO_LARGE: { name: 'HeadersTooLarge', status: 431, message: detail },

  // ------------------------------------------------------------ the node cannot serve it
  /** Unexpected: a bug, logged; the reply says no more. */
  ERR_INTERNAL: { name: 'Internal', status: 500, message: detail },
  /** A listener cannot bind its address (another process holds it, or it is not this machine's); the message says which. */
  ERR_LISTEN: { name: 'Listen', status: 500, message: detail },
  /** The operation is not available on this CPU or build. */
  ERR_UNSUPPORTED: { name: 'Unsupported', status: 501, message: detail },
  /** The node is still recovering its data. */
  ERR_STARTING: {
    name: 'Starting',
    status: 503,
    message: () => 'the node is starting (recovering its data); retry shortly',
  },
  /** The node (or store, or pool) was stopped; without words of its own, "the node is stopping". */
  ERR_NODE_STOPPED: {
    name: 'NodeStopped',
    status: 503,
    message: (why?: string) => why ?? 'the node is stopping',
  },
  /** Too much work waiting; retry later. */
  ERR_OVERLOADED: { name: 'Overloaded', status: 503, message: detail },
  /** A write's consistency level was not met in time; the write is indeterminate. */
  ERR_CONSISTENCY_TIMEOUT: { name: 'ConsistencyTimeout', status: 503, message: detail },
  /** Role auto: no primary is known (an election runs); retry shortly (HTTP adds Retry-After). */
  ERR_NO_LEADER: { name: 'NoLeader', status: 503, message: detail },
  /** A leadership transfer runs: the primary takes no writes until the new one does (or it gives up). */
  ERR_TRANSFER_IN_PROGRESS: { name: 'TransferInProgress', status: 503, message: detail },
  /** A WAL write or fsync failed; the node takes no writes until the disk does again. */
  ERR_WAL_IO: { name: 'WalIo', status: 503, message: detail },
  /** The WAL was closed (the node is stopping). */
  ERR_WAL_CLOSED: { name: 'WalClosed', status: 503, message: () => 'WAL is closed' },

  // ------------------------------------------------------------ never an HTTP answer
  /** The native addon is missing or does not load. */
  ERR_ADDON_LOAD: { name: 'AddonLoad', status: null, message: detail },
  /** A config file, env variable or flag has a bad value or an unknown key; the message names it. */
  ERR_CONFIG: { name: 'Config', status: null, message: detail },
  /** Another process holds the data dir. */
  ERR_DATA_DIR_LOCKED: { name: 'DataDirLocked', status: null, message: detail },
  /** The data dir belongs to another node id. */
  ERR_NODE_ID_MISMATCH: { name: 'NodeIdMismatch', status: null, message: detail },
  /** The node's metadata file is unreadable; the node will not guess its term. */
  ERR_CORRUPT_META: { name: 'CorruptMeta', status: null, message: detail },
  /** A WAL file is corrupt somewhere other than a torn tail; start-up stops. */
  ERR_WAL_CORRUPT: { name: 'WalCorrupt', status: null, message: detail },
  /** A snapshot file failed a check (manifest, size, checksum, content). */
  ERR_SNAPSHOT_CORRUPT: { name: 'SnapshotCorrupt', status: null, message: detail },
  /** A log record failed its checks (length, checksum, version, field limits). */
  ERR_CORRUPT_RECORD: { name: 'CorruptRecord', status: null, message: detail },
  /** The LSN asked for was overwritten in the circular log (or dropped from the WAL). */
  ERR_LSN_EVICTED: { name: 'LsnEvicted', status: null, message: detail },
  /** The LSN asked for has not been appended yet. */
  ERR_LSN_NOT_YET_WRITTEN: { name: 'LsnNotYetWritten', status: null, message: detail },
  /** The log was truncated under a reader (a deposed leader's or a divergent tail was dropped). */
  ERR_LSN_TRUNCATED: { name: 'LsnTruncated', status: null, message: detail },
  /** A caller-owned output buffer cannot hold the result. */
  ERR_BUFFER_TOO_SMALL: { name: 'BufferTooSmall', status: null, message: detail },
  /** zstd refused to compress (bad level, out of memory). */
  ERR_COMPRESSION: { name: 'Compression', status: null, message: detail },
  /** A frame failed its checks (magic, version, lengths, checksum, zstd). */
  ERR_CORRUPT_FRAME: { name: 'CorruptFrame', status: null, message: detail },
  /** A frame declares more bytes than the caller allows. */
  ERR_FRAME_TOO_LARGE: { name: 'FrameTooLarge', status: null, message: detail },
  /** A peer broke the replication protocol (bad handshake, gap in LSNs, bad payload); the link closes. */
  ERR_PROTOCOL: { name: 'Protocol', status: null, message: detail },
  /** Peer authentication failed (wrong or missing secret, replayed handshake, wrong cluster). */
  ERR_AUTH: { name: 'Auth', status: null, message: detail },
  /** A peer's history does not contain this node's position (or its term is stale); it is not followed. */
  ERR_DIVERGED: { name: 'Diverged', status: null, message: detail },
  /** A second link to the same peer; one of the two closes (peer ERROR frame). */
  ERR_DUPLICATE: { name: 'Duplicate', status: null, message: detail },
  /** A peer was silent longer than replica_timeout (peer ERROR frame). */
  ERR_TIMEOUT: { name: 'Timeout', status: null, message: detail },
  /**
   * A membership change is still being committed (the consensus core); the
   * runtime answers the write ERR_OVERLOADED, so it never leaves the node.
   */
  ERR_CONFIG_PENDING: { name: 'ConfigPending', status: null, message: detail },
} as const satisfies Record<`ERR_${string}`, ErrorEntry>;

type Registry = typeof errorRegistry;

export type ErrorCode = keyof Registry;

/** A set of codes checked against the registry: `ErrorCodeSubset<'ERR_A' | 'ERR_B'>` fails to compile on a typo. */
export type ErrorCodeSubset<C extends ErrorCode> = C;

/** The codes an HTTP request can be answered with (a status in the registry). */
export type HttpErrorCode = { [C in ErrorCode]: Registry[C]['status'] extends number ? C : never }[ErrorCode];

/** Each code under a name, `ErrorCodes.NotLeader === 'ERR_NOT_LEADER'` (the public constants). */
export const ErrorCodes = Object.freeze(
  Object.fromEntries(Object.entries(errorRegistry).map(([code, e]) => [e.name, code])),
) as { readonly [C in ErrorCode as Registry[C]['name']]: C };

// Two codes under one name would silently lose one of them from ErrorCodes.
if (Object.keys(ErrorCodes).length !== Object.keys(errorRegistry).length)
  throw new Error('src/errors.ts: two codes share a name');

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(errorRegistry, value);
}

/** The HTTP status of a code; null when it never answers a request. */
export function httpStatusOf(code: ErrorCode): number | null {
  return errorRegistry[code].status;
}

/** The registry's wording for `code`. */
export function messageOf<C extends ErrorCode>(code: C, ...args: Parameters<Registry[C]['message']>): string {
  return (errorRegistry[code].message as (...a: unknown[]) => string)(...args);
}

export interface VrepErrorOptions extends ErrorOptions {
  /** ERR_READ_ONLY, ERR_NOT_LEADER: the primary's HTTP address, null while unknown (HTTP `error.primary`). */
  primary?: string | null;
}

export class VrepError extends Error {
  readonly code: ErrorCode;
  /** Set only on errors that name the primary (declare: absent, not undefined, on the others). */
  declare readonly primary?: string | null;

  constructor(code: ErrorCode, message: string, options?: VrepErrorOptions) {
    const { primary, ...errorOptions } = options ?? {};
    super(message, errorOptions);
    this.name = 'VrepError';
    this.code = code;
    if (primary !== undefined) this.primary = primary;
  }
}

/** A VrepError worded by the registry: `vrepError('ERR_COLLECTION_NOT_FOUND', name)`. */
export function vrepError<C extends ErrorCode>(
  code: C,
  ...args: Parameters<Registry[C]['message']>
): VrepError {
  return new VrepError(code, messageOf(code, ...args));
}

/** True when `err` is a VrepError, optionally with the given code. */
export function isVrepError(err: unknown, code?: ErrorCode): err is VrepError {
  return err instanceof VrepError && (code === undefined || err.code === code);
}
