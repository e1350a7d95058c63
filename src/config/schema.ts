/**
 * The YAML config file's schema (docs/config.md): Vectorizer's keys, every
 * mapping strict so a misspelt key stops start-up. Every key is optional
 * here; defaults are applied after the layers (file, env, flags) are merged.
 *
 * Each leaf is a `field`: on failure it yields one issue whose message is the
 * human expectation ("a positive integer"), so errors read the same whichever
 * layer the value came from.
 */
import { z } from 'zod';
import { isHost, parseHostPort } from '../transport/address.ts';

/** Largest request body the HTTP layer can take (a uWS body is read into one buffer). */
export const MAX_BODY_BYTES_LIMIT = 0xffff_ffff - 32;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const ROLES = ['standalone', 'primary', 'replica', 'auto', 'multi-master'] as const;

/** A leaf: any input, checked by `inner`; a failure is one issue whose message is `expected`. */
function field<T>(inner: z.ZodType<T>, expected: string): z.ZodType<T | undefined, unknown> {
  // optional(): an absent key is fine here; defaults come after the merge.
  return z
    .unknown()
    .transform((value, ctx): T => {
      const r = inner.safeParse(value);
      if (r.success) return r.data;
      ctx.issues.push({ code: 'custom', message: expected, input: value });
      return z.NEVER;
    })
    .optional();
}

const int = (min: number, max: number): z.ZodNumber => z.number().int().min(min).max(max);

/** Seconds as written (fractions allowed, to the millisecond), kept in seconds. */
const seconds = (maxSecs: number): z.ZodType<number | undefined, unknown> =>
  field(
    z
      .number()
      .positive()
      .max(maxSecs)
      .refine((s) => Math.round(s * 1000) >= 1),
    `a positive number of seconds (0.001 to ${maxSecs})`,
  );

const hostPort = (minPort: number): z.ZodType<string> =>
  z.string().refine((s) => parseHostPort(s, minPort) !== undefined);

const dialAddress = hostPort(1);
const DIAL = 'HOST:PORT (port 1-65535; IPv6 hosts in brackets)';
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const NAME = '1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit';

const roleSchema = z
  .enum([...ROLES, 'master'])
  .transform((r): (typeof ROLES)[number] => (r === 'master' ? 'primary' : r));

export const httpSchema = z.strictObject({
  host: field(z.string().refine(isHost), 'a host name or IP address (e.g. 127.0.0.1 or 0.0.0.0)'),
  port: field(int(0, 65535), 'a port number from 0 to 65535 (0 picks a free one)'),
  token: field(z.string().min(1).nullable(), 'a non-empty token string, or null for no token'),
  max_body_bytes: field(int(1, MAX_BODY_BYTES_LIMIT), `a byte count from 1 to ${MAX_BODY_BYTES_LIMIT}`),
  advertise_address: field(dialAddress.nullable(), `${DIAL}, or null for host:port`),
});

export const replicationSchema = z.strictObject({
  enabled: field(z.boolean(), 'true or false'),
  role: field(roleSchema, `one of ${ROLES.join(', ')} (master = primary)`),
  bind_address: field(hostPort(0), 'HOST:PORT (port 0-65535; IPv6 hosts in brackets)'),
  master_address: field(dialAddress.nullable(), `${DIAL}, or null`),
  peers: field(z.array(dialAddress).max(64), `a list of at most 64 addresses, each ${DIAL}`),
  heartbeat_interval_secs: seconds(3600),
  heartbeat_interval_ms: field(int(10, 3_600_000), 'an integer from 10 to 3600000 (milliseconds)'),
  election_timeout_ms: field(int(10, 600_000), 'an integer from 10 to 600000 (milliseconds)'),
  replica_timeout_secs: seconds(86_400),
  reconnect_interval_secs: seconds(3600),
  log_size: field(int(1, 1_000_000_000), 'a positive integer (operations), at most 1000000000'),
  consistency: field(z.enum(['one', 'quorum', 'all']), 'one of one, quorum, all'),
  compression: z
    .strictObject({
      enabled: field(z.boolean(), 'true or false'),
      level: field(int(1, 22), 'an integer zstd level from 1 to 22'),
    })
    .optional(),
  bandwidth_bytes_per_sec: field(
    int(1, Number.MAX_SAFE_INTEGER).nullable(),
    'a positive integer (bytes per second), or null for unlimited',
  ),
  lag_threshold_ops: field(int(1, 1_000_000_000), 'a positive integer (operations)'),
  secret: field(z.string().min(16).max(1024).nullable(), 'a string of 16 to 1024 characters, or null'),
  tls: z
    .strictObject({
      cert: field(z.string().min(1), 'a PEM certificate file path'),
      key: field(z.string().min(1), 'a PEM private key file path'),
      ca: field(z.string().min(1), 'a PEM CA certificate file path'),
    })
    .nullable()
    .optional(),
  cluster_id: field(z.string().regex(NAME_RE), `a cluster id: ${NAME}`),
  insecure_no_auth: field(z.boolean(), 'true or false'),
});

export const storageSchema = z.strictObject({
  fsync: field(z.enum(['always', 'everysec', 'no']), 'one of always, everysec, no'),
  wal_segment_bytes: field(int(65_536, 2 ** 32), 'a byte count from 65536 to 4294967296'),
  log_bytes: field(int(65_536, 2 ** 32), 'a byte count from 65536 to 4294967296'),
  snapshot_every_bytes: field(
    int(0, Number.MAX_SAFE_INTEGER),
    'a byte count, or 0 to snapshot only on request',
  ),
});

export const streamsSchema = z.strictObject({
  max_retained_bytes: field(int(1024 * 1024, Number.MAX_SAFE_INTEGER), 'a byte count of at least 1048576'),
});

export const loggingSchema = z.strictObject({
  level: field(z.enum(LOG_LEVELS), `one of ${LOG_LEVELS.join(', ')}`),
});

export const fileSchema = z.strictObject({
  node_id: field(z.string().regex(NAME_RE), `a node id: ${NAME}`),
  data_dir: field(z.string().min(1), 'a non-empty directory path'),
  http: httpSchema.optional(),
  replication: replicationSchema.optional(),
  storage: storageSchema.optional(),
  streams: streamsSchema.optional(),
  logging: loggingSchema.optional(),
});

/** One layer of configuration (file, env or flags) after validation: every key optional. */
export type ConfigLayer = z.output<typeof fileSchema>;

/**
 * Vectorizer's spellings accepted as synonyms in the `replication` mapping
 * (`heartbeat_interval` is in seconds, as `heartbeat_interval_secs`).
 */
export const REPLICATION_SYNONYMS: Readonly<Record<string, string>> = {
  primary_address: 'master_address',
  heartbeat_interval: 'heartbeat_interval_secs',
  replica_timeout: 'replica_timeout_secs',
  reconnect_interval: 'reconnect_interval_secs',
};

/** The keys allowed in the mapping at `path` (for "unknown key" messages); [] when not a mapping. */
export function keysAt(path: readonly PropertyKey[]): string[] {
  let schema: z.ZodType = fileSchema;
  for (const key of path) {
    while (schema instanceof z.ZodOptional || schema instanceof z.ZodNullable)
      schema = schema.unwrap() as z.ZodType;
    if (!(schema instanceof z.ZodObject)) return [];
    const next = (schema.shape as Record<string, z.ZodType>)[String(key)];
    if (next === undefined) return [];
    schema = next;
  }
  while (schema instanceof z.ZodOptional || schema instanceof z.ZodNullable)
    schema = schema.unwrap() as z.ZodType;
  if (!(schema instanceof z.ZodObject)) return [];
  const keys = Object.keys(schema.shape as object);
  if (path.length === 1 && path[0] === 'replication') keys.push(...Object.keys(REPLICATION_SYNONYMS));
  return keys;
}
