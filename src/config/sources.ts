/**
 * Environment variables and `vrep serve` flags, each mapped onto one config
 * key (docs/config.md lists them). Values arrive as text; `coerce` turns the
 * text into the key's type where it plainly is one and leaves it as text
 * otherwise, so the schema reports the value exactly as it was written.
 */

/** How a text value is read before the schema checks it. */
export type TextKind = 'string' | 'number' | 'bool' | 'list' | 'address';

export interface TextSource {
  /** Env variable name or flag (with its dashes). */
  name: string;
  /** Dotted config key (`replication.log_size`). */
  key: string;
  kind: TextKind;
  /** "" and "null" mean null (the key is nullable). */
  nullable?: boolean;
}

/** Vectorizer's names first, then vrep's own. */
export const ENV_SOURCES: readonly TextSource[] = [
  { name: 'REPLICATION_ROLE', key: 'replication.role', kind: 'string' },
  { name: 'REPLICATION_BIND_ADDRESS', key: 'replication.bind_address', kind: 'string' },
  {
    name: 'REPLICATION_MASTER_ADDRESS',
    key: 'replication.master_address',
    kind: 'string',
    nullable: true,
  },
  {
    name: 'REPLICATION_PRIMARY_ADDRESS',
    key: 'replication.master_address',
    kind: 'string',
    nullable: true,
  },
  { name: 'REPLICATION_HEARTBEAT_INTERVAL', key: 'replication.heartbeat_interval_secs', kind: 'number' },
  { name: 'VREP_HEARTBEAT_INTERVAL_MS', key: 'replication.heartbeat_interval_ms', kind: 'number' },
  { name: 'VREP_ELECTION_TIMEOUT_MS', key: 'replication.election_timeout_ms', kind: 'number' },
  { name: 'REPLICATION_LOG_SIZE', key: 'replication.log_size', kind: 'number' },
  { name: 'REPLICATION_RECONNECT_INTERVAL', key: 'replication.reconnect_interval_secs', kind: 'number' },
  { name: 'VREP_NODE_ID', key: 'node_id', kind: 'string' },
  { name: 'VREP_DATA_DIR', key: 'data_dir', kind: 'string' },
  { name: 'VREP_HTTP_HOST', key: 'http.host', kind: 'string' },
  { name: 'VREP_HTTP_PORT', key: 'http.port', kind: 'number' },
  { name: 'VREP_HTTP_TOKEN', key: 'http.token', kind: 'string', nullable: true },
  { name: 'VREP_HTTP_MAX_BODY_BYTES', key: 'http.max_body_bytes', kind: 'number' },
  { name: 'VREP_HTTP_ADVERTISE_ADDRESS', key: 'http.advertise_address', kind: 'string', nullable: true },
  { name: 'VREP_REPLICATION_ENABLED', key: 'replication.enabled', kind: 'bool' },
  { name: 'VREP_PEERS', key: 'replication.peers', kind: 'list' },
  { name: 'VREP_REPLICA_TIMEOUT', key: 'replication.replica_timeout_secs', kind: 'number' },
  { name: 'VREP_CONSISTENCY', key: 'replication.consistency', kind: 'string' },
  { name: 'VREP_COMPRESSION', key: 'replication.compression.enabled', kind: 'bool' },
  { name: 'VREP_COMPRESSION_LEVEL', key: 'replication.compression.level', kind: 'number' },
  {
    name: 'VREP_BANDWIDTH_BYTES_PER_SEC',
    key: 'replication.bandwidth_bytes_per_sec',
    kind: 'number',
    nullable: true,
  },
  { name: 'VREP_LAG_THRESHOLD_OPS', key: 'replication.lag_threshold_ops', kind: 'number' },
  { name: 'VREP_SECRET', key: 'replication.secret', kind: 'string', nullable: true },
  { name: 'VREP_INSECURE_NO_AUTH', key: 'replication.insecure_no_auth', kind: 'bool' },
  { name: 'REPLICATION_INSECURE_NO_AUTH', key: 'replication.insecure_no_auth', kind: 'bool' },
  { name: 'VREP_TLS_CERT', key: 'replication.tls.cert', kind: 'string' },
  { name: 'VREP_TLS_KEY', key: 'replication.tls.key', kind: 'string' },
  { name: 'VREP_TLS_CA', key: 'replication.tls.ca', kind: 'string' },
  { name: 'VREP_CLUSTER_ID', key: 'replication.cluster_id', kind: 'string' },
  { name: 'VREP_FSYNC', key: 'storage.fsync', kind: 'string' },
  { name: 'VREP_WAL_SEGMENT_BYTES', key: 'storage.wal_segment_bytes', kind: 'number' },
  { name: 'VREP_LOG_BYTES', key: 'storage.log_bytes', kind: 'number' },
  { name: 'VREP_SNAPSHOT_EVERY_BYTES', key: 'storage.snapshot_every_bytes', kind: 'number' },
  { name: 'VREP_STREAMS_MAX_RETAINED_BYTES', key: 'streams.max_retained_bytes', kind: 'number' },
  { name: 'VREP_LOG_LEVEL', key: 'logging.level', kind: 'string' },
];

/** The config file's path, when no --config flag names one. */
export const CONFIG_FILE_ENV = 'VREP_CONFIG';

/**
 * Variables with vrep's prefixes that are not config (tests, benchmarks,
 * native switches): not reported as unknown.
 */
const NOT_CONFIG_ENV = new Set([CONFIG_FILE_ENV, 'VREP_FORCE_SCALAR', 'VREP_TEST_SCALE', 'VREP_CRASH_KILLS']);

/** `vrep serve` flags (commander's camelCase name → source). `--http` sets http.host and http.port. */
export const FLAG_SOURCES: readonly TextSource[] = [
  { name: '--node-id', key: 'node_id', kind: 'string' },
  { name: '--data-dir', key: 'data_dir', kind: 'string' },
  { name: '--http', key: 'http', kind: 'address' },
  { name: '--token', key: 'http.token', kind: 'string' },
  { name: '--max-body-bytes', key: 'http.max_body_bytes', kind: 'number' },
  { name: '--bind', key: 'replication.bind_address', kind: 'string' },
  { name: '--role', key: 'replication.role', kind: 'string' },
  { name: '--primary', key: 'replication.master_address', kind: 'string' },
  { name: '--peers', key: 'replication.peers', kind: 'list' },
  { name: '--election-timeout-ms', key: 'replication.election_timeout_ms', kind: 'number' },
  { name: '--heartbeat-interval-ms', key: 'replication.heartbeat_interval_ms', kind: 'number' },
  // A switch: commander gives true, passed on as the text "true".
  { name: '--insecure-no-auth', key: 'replication.insecure_no_auth', kind: 'bool' },
  { name: '--fsync', key: 'storage.fsync', kind: 'string' },
  { name: '--log-level', key: 'logging.level', kind: 'string' },
];

const NUMBER_TEXT = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;
const TRUE_TEXT = new Set(['true', '1', 'yes', 'on']);
const FALSE_TEXT = new Set(['false', '0', 'no', 'off']);

/** Reads a text value as its kind; text that is plainly not of the kind is returned unchanged. */
export function coerce(source: TextSource, text: string): unknown {
  const trimmed = text.trim();
  if (source.nullable === true && (trimmed === '' || trimmed === 'null')) return null;
  switch (source.kind) {
    case 'number':
      return NUMBER_TEXT.test(trimmed) ? Number(trimmed) : text;
    case 'bool': {
      const lower = trimmed.toLowerCase();
      return TRUE_TEXT.has(lower) ? true : FALSE_TEXT.has(lower) ? false : text;
    }
    case 'list':
      return trimmed === '' ? [] : trimmed.split(',').map((s) => s.trim());
    default:
      return text;
  }
}

/** Env variables with vrep's prefixes that map to nothing (likely typos). */
export function unknownEnvNames(env: Readonly<Record<string, string | undefined>>): string[] {
  const known = new Set(ENV_SOURCES.map((s) => s.name));
  return Object.keys(env)
    .filter((name) => /^(VREP|REPLICATION)_/.test(name) && !known.has(name) && !NOT_CONFIG_ENV.has(name))
    .sort();
}

/** Commander's attribute name of a flag (`--node-id` → `nodeId`). */
export function flagAttribute(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}
