/**
 * Resolves `vrep serve`'s configuration from its layers, later ones winning:
 * defaults < config file < environment < flags. Pure: it takes the file's
 * text, an env object and the flag values, and returns the node's options or
 * throws one VrepError ERR_CONFIG whose message names every bad key, its
 * value, what was expected and where the value came from.
 */
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { VrepError } from '../errors.ts';
import type { ReplicationNodeOptions, ReplicationOptions, StorageOptions, Role } from '../node/types.ts';
import type { ConsistencyLevel } from '../node/consistency.ts';
import { parseHostPort } from '../transport/address.ts';
import { isLoopbackHost } from '../transport/loopback.ts';
import { fileSchema, keysAt, REPLICATION_SYNONYMS, type ConfigLayer, type LogLevel } from './schema.ts';
import { coerce, ENV_SOURCES, FLAG_SOURCES, unknownEnvNames, type TextSource } from './sources.ts';

export interface ConfigInput {
  /** The config file's text and its name (used in messages); null: no file. */
  file?: { text: string; name: string } | null;
  env?: Readonly<Record<string, string | undefined>>;
  /** Flag values as typed, keyed by flag (`'--node-id'`); undefined: not given. */
  flags?: Readonly<Record<string, string | undefined>>;
}

export interface HttpConfig {
  host: string;
  port: number;
  /** Bearer token required on every route but /health; null: none. */
  token: string | null;
  maxBodyBytes: number;
  /** The address clients and peers should use for this node's HTTP; null: host:port as bound. */
  advertiseAddress: string | null;
}

export interface ServeConfig {
  node: ReplicationNodeOptions & {
    nodeId: string;
    replication: ReplicationOptions & { role: Role; bindAddress: string };
    storage: StorageOptions;
  };
  http: HttpConfig;
  logLevel: LogLevel;
  /** Things worth a line in the start-up log (ignored keys, unknown VREP_* variables). */
  warnings: string[];
}

/** Defaults of every key the interface doc lists (docs/config.md). */
export const DEFAULTS = {
  nodeId: 'n1',
  dataDir: './data',
  httpHost: '127.0.0.1',
  httpPort: 15002,
  maxBodyBytes: 64 * 1024 * 1024,
  bindAddress: '127.0.0.1:7001',
  heartbeatIntervalSecs: 5,
  /** Role auto (etcd's default). */
  electionTimeoutMs: 1000,
  replicaTimeoutSecs: 30,
  reconnectIntervalSecs: 5,
  logSize: 1_000_000,
  consistency: 'one',
  compressionEnabled: true,
  compressionLevel: 1,
  fsync: 'everysec',
  logLevel: 'info',
} as const;

type Tree = Record<string, unknown>;

/** One layer: its data (file-shaped), and per dotted key where it came from and the value as written. */
interface Layer {
  data: Tree;
  /** e.g. `from REPLICATION_ROLE`, `from --role`, `in vrep.yaml`. */
  origin(key: string): string;
  /** The value as written, for messages. */
  written(key: string): unknown;
  /** The key as the user spelt it (a synonym). */
  spelling(key: string): string;
  /** Problems found while reading the layer (before the schema), one line each. */
  problems: string[];
  /** Dotted keys those problems are about (left out of `data`). */
  badKeys: string[];
}

/** A layer after the schema: its valid keys, and every problem with the others. */
interface CheckedLayer {
  data: ConfigLayer;
  layer: Layer;
  problems: string[];
  badKeys: string[];
}

function fail(lines: string[]): never {
  throw new VrepError('ERR_CONFIG', lines.join('\n'));
}

/** JSON text of a value, cut short: messages quote what was written. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function message(key: string, expected: string, got: unknown, origin: string): string {
  return `config ${key}: expected ${expected}, got ${show(got)}${origin === '' ? '' : ` (${origin})`}`;
}

function isTree(value: unknown): value is Tree {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function getPath(tree: unknown, path: readonly PropertyKey[]): unknown {
  let node = tree;
  for (const key of path) {
    if (!isTree(node) && !Array.isArray(node)) return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

function setPath(tree: Tree, key: string, value: unknown): void {
  const parts = key.split('.');
  let node = tree;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (isTree(next)) node = next;
    else node = node[part] = {};
  }
  node[parts[parts.length - 1] as string] = value;
}

/** Removes the value at `path` from a tree (a bad key, so the rest of its layer still counts). */
function deletePath(tree: Tree, path: readonly PropertyKey[]): void {
  if (path.length === 0) return;
  const parent = getPath(tree, path.slice(0, -1));
  if (isTree(parent)) delete parent[path[path.length - 1] as string];
}

/** How many rounds of "drop the bad keys, check again" a layer gets (one is the usual). */
const MAX_CHECK_ROUNDS = 8;

/**
 * Validates one layer with the strict schema: every issue becomes one line,
 * and the keys at fault are dropped so the layer's good keys still count
 * (for the checks across keys, which then run in the same run).
 */
function check(layer: Layer): CheckedLayer {
  const problems = [...layer.problems];
  const badKeys = [...layer.badKeys];
  const pruned = structuredClone(layer.data);
  for (let round = 0; round < MAX_CHECK_ROUNDS; round++) {
    const r = fileSchema.safeParse(pruned);
    if (r.success) return { data: r.data, layer, problems, badKeys };
    for (const issue of r.error.issues) {
      problems.push(describeIssue(issue, layer));
      const paths =
        issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...issue.path, k]) : [issue.path];
      for (const path of paths) {
        badKeys.push(path.map(String).join('.'));
        deletePath(pruned, path);
      }
    }
  }
  return { data: {} as ConfigLayer, layer, problems, badKeys: [...badKeys, ''] };
}

function describeIssue(issue: z.core.$ZodIssue, layer: Layer): string {
  const dotted = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    const allowed = keysAt(issue.path).join(', ');
    return issue.keys
      .map((k) => {
        const key = dotted === '' ? k : `${dotted}.${k}`;
        const where = layer.origin(key);
        const value = show(getPath(layer.data, [...issue.path, k]));
        return `config ${key}: unknown key (value ${value}${where === '' ? '' : `, ${where}`}); expected one of: ${allowed}`;
      })
      .join('\n');
  }
  const key = layer.spelling(dotted === '' ? '(top level)' : dotted);
  const expected =
    issue.code === 'custom'
      ? issue.message
      : issue.code === 'invalid_type' && issue.expected === 'object'
        ? `a mapping of keys (${keysAt(issue.path).join(', ')})`
        : issue.message;
  return message(key, expected, layer.written(dotted), layer.origin(dotted));
}

/**
 * Renames Vectorizer's synonyms in `replication` to the canonical keys. Both
 * spellings at once is a problem: the key is dropped and reported.
 */
function canonicalSynonyms(
  data: Tree,
  origin: string,
): { spelt: Map<string, string>; problems: string[]; badKeys: string[] } {
  const spelt = new Map<string, string>();
  const problems: string[] = [];
  const badKeys: string[] = [];
  const replication = data['replication'];
  if (!isTree(replication)) return { spelt, problems, badKeys };
  for (const [synonym, canonical] of Object.entries(REPLICATION_SYNONYMS)) {
    if (!(synonym in replication)) continue;
    if (canonical in replication) {
      problems.push(
        message(
          `replication.${synonym}`,
          `either ${synonym} or ${canonical}, not both (they are synonyms)`,
          replication[synonym],
          origin,
        ),
      );
      badKeys.push(`replication.${canonical}`);
      delete replication[synonym];
      delete replication[canonical];
      continue;
    }
    replication[canonical] = replication[synonym];
    delete replication[synonym];
    spelt.set(`replication.${canonical}`, `replication.${synonym}`);
  }
  return { spelt, problems, badKeys };
}

function fileLayer(file: { text: string; name: string }): Layer {
  const origin = `in ${file.name}`;
  const doc = parseDocument(file.text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    fail(
      doc.errors.map(
        (e) =>
          `config file ${file.name}: not valid YAML: ${(e.message.split('\n')[0] as string).replace(/:$/, '')}`,
      ),
    );
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    fail([`config file ${file.name}: ${(err as Error).message}`]);
  }
  if (data === null || data === undefined) data = {};
  if (!isTree(data)) {
    fail([message('(top level)', 'a mapping of keys (node_id, data_dir, ...)', data, origin)]);
  }
  const { spelt, problems, badKeys } = canonicalSynonyms(data, origin);
  return {
    data,
    origin: () => origin,
    written: (key) => getPath(data, key === '' ? [] : key.split('.')),
    spelling: (key) => spelt.get(key) ?? key,
    problems,
    badKeys,
  };
}

function textLayer(
  sources: readonly TextSource[],
  values: Readonly<Record<string, string | undefined>>,
): Layer {
  const data: Tree = {};
  const from = new Map<string, string>();
  const written = new Map<string, string>();
  const problems: string[] = [];
  const badKeys: string[] = [];
  for (const source of sources) {
    const text = values[source.name];
    if (text === undefined) continue;
    const previous = from.get(source.key);
    if (previous !== undefined && values[previous] !== text) {
      problems.push(
        message(
          source.key,
          `one value (${previous} and ${source.name} are synonyms)`,
          text,
          `from ${source.name}, while ${previous}=${show(values[previous])}`,
        ),
      );
      badKeys.push(source.key);
      setPath(data, source.key, undefined);
      continue;
    }
    if (source.kind === 'address') {
      const address = parseHostPort(text.trim(), 0);
      if (address === undefined) {
        problems.push(
          message(
            source.key,
            'HOST:PORT (port 0-65535; IPv6 hosts in brackets)',
            text,
            `from ${source.name}`,
          ),
        );
        badKeys.push(source.key);
        continue;
      }
      for (const [part, value] of [
        ['host', address.host],
        ['port', address.port],
      ] as const) {
        setPath(data, `${source.key}.${part}`, value);
        from.set(`${source.key}.${part}`, source.name);
        written.set(`${source.key}.${part}`, text);
      }
      continue;
    }
    setPath(data, source.key, coerce(source, text));
    from.set(source.key, source.name);
    written.set(source.key, text);
  }
  return {
    data,
    origin: (key) => {
      // A mapping (replication.tls) comes from the variables of its keys.
      const names = [...from].filter(([k]) => k === key || k.startsWith(`${key}.`)).map(([, n]) => n);
      return names.length === 0 ? '' : `from ${[...new Set(names)].join(', ')}`;
    },
    written: (key) => written.get(key),
    spelling: (key) => key,
    problems,
    badKeys,
  };
}

/** Merges validated layers, later ones winning key by key; records where each leaf came from. */
function merge(layers: readonly CheckedLayer[]): {
  data: Tree;
  originOf: (key: string) => string;
} {
  const data: Tree = {};
  const origins = new Map<string, string>();
  const walk = (from: Tree, into: Tree, prefix: string, layer: Layer): void => {
    for (const [k, value] of Object.entries(from)) {
      if (value === undefined) continue;
      const key = prefix === '' ? k : `${prefix}.${k}`;
      if (isTree(value)) {
        const target = into[k];
        const sub = isTree(target) ? target : (into[k] = {});
        walk(value, sub, key, layer);
        if (!origins.has(key)) origins.set(key, layer.origin(key));
      } else {
        into[k] = value;
        origins.set(key, layer.origin(key));
      }
    }
  };
  for (const { data: d, layer } of layers) walk(d as Tree, data, '', layer);
  return { data, originOf: (key) => origins.get(key) ?? 'default' };
}

/** Resolves the configuration; throws VrepError ERR_CONFIG naming every bad key. */
export function resolveConfig(input: ConfigInput): ServeConfig {
  const env = input.env ?? {};
  const file = input.file;
  const layers: (() => Layer)[] = [
    ...(file ? [() => fileLayer(file)] : []),
    () => textLayer(ENV_SOURCES, env),
    () => textLayer(FLAG_SOURCES, input.flags ?? {}),
  ];
  // Read and check every layer, then the checks across keys, before failing: one run reports every problem.
  const checked: CheckedLayer[] = [];
  const errors: string[] = [];
  let unreadable = false;
  for (const read of layers) {
    try {
      checked.push(check(read()));
    } catch (err) {
      // Only a file that is not YAML (or not a mapping) cannot be read at all.
      if (!(err instanceof VrepError)) throw err;
      errors.push(err.message);
      unreadable = true;
    }
  }
  for (const c of checked) errors.push(...c.problems);
  const badKeys = checked.flatMap((c) => c.badKeys);
  const { data, originOf } = merge(checked);
  const c = data as ConfigLayer;
  const warnings = unknownEnvNames(env).map(
    (name) => `environment variable ${name} is not a vrep setting (see docs/config.md); ignored`,
  );
  const r: Partial<NonNullable<ConfigLayer['replication']>> = c.replication ?? {};
  const at = (key: string): string => originOf(key);
  const crossErrors: string[] = [];
  // A check across keys runs only when none of its keys was bad (it would compare against a
  // default the user did not choose), and not at all when a file could not be read.
  const checkable = (...keys: string[]): boolean =>
    !unreadable &&
    keys.every((key) =>
      badKeys.every((bad) => bad !== key && !key.startsWith(`${bad}.`) && !bad.startsWith(`${key}.`)),
    );

  let role: Role = r.role ?? 'standalone';
  if (r.enabled === false && role !== 'standalone') {
    warnings.push(
      `replication.enabled is false (${at('replication.enabled')}): role "${role}" (${at('replication.role')}) ignored, running standalone`,
    );
    role = 'standalone';
  }
  const bindAddress = r.bind_address ?? DEFAULTS.bindAddress;
  const masterAddress = r.master_address ?? null;
  const peers = r.peers ?? [];

  const roleKeys = ['replication.role', 'replication.enabled'];
  if (checkable(...roleKeys, 'replication.master_address') && role === 'replica' && masterAddress === null) {
    crossErrors.push(
      message(
        'replication.master_address',
        `the primary's HOST:PORT, required when replication.role is replica (${at('replication.role')})`,
        masterAddress,
        at('replication.master_address'),
      ),
    );
  }
  if (
    checkable(...roleKeys, 'replication.master_address', 'replication.bind_address') &&
    role === 'replica' &&
    masterAddress !== null &&
    masterAddress === bindAddress
  ) {
    crossErrors.push(
      message(
        'replication.master_address',
        `another node's address, not this node's bind_address`,
        masterAddress,
        at('replication.master_address'),
      ),
    );
  }
  const seen = new Set<string>();
  for (const peer of checkable('replication.peers', 'replication.bind_address') ? peers : []) {
    if (peer === bindAddress || seen.has(peer)) {
      crossErrors.push(
        message(
          'replication.peers',
          `the other nodes' addresses, each once (${peer} is ${seen.has(peer) ? 'listed twice' : "this node's bind_address"})`,
          peers,
          at('replication.peers'),
        ),
      );
      break;
    }
    seen.add(peer);
  }
  const electionTimeoutMs = r.election_timeout_ms ?? DEFAULTS.electionTimeoutMs;
  // In ms when given so; with role auto a tenth of the election timeout by default (etcd's ratio).
  const heartbeatSecs =
    r.heartbeat_interval_ms !== undefined
      ? r.heartbeat_interval_ms / 1000
      : (r.heartbeat_interval_secs ??
        (role === 'auto' ? electionTimeoutMs / 10000 : DEFAULTS.heartbeatIntervalSecs));
  if (
    role === 'auto' &&
    checkable('replication.election_timeout_ms', 'replication.heartbeat_interval_ms') &&
    electionTimeoutMs < 2 * heartbeatSecs * 1000
  ) {
    crossErrors.push(
      message(
        'replication.election_timeout_ms',
        `at least twice the heartbeat interval (${heartbeatSecs * 1000} ms; ten times is usual)`,
        electionTimeoutMs,
        at('replication.election_timeout_ms'),
      ),
    );
  }
  const replicaTimeoutSecs = r.replica_timeout_secs ?? DEFAULTS.replicaTimeoutSecs;
  if (
    checkable('replication.replica_timeout_secs', 'replication.heartbeat_interval_secs') &&
    replicaTimeoutSecs <= heartbeatSecs
  ) {
    crossErrors.push(
      message(
        'replication.replica_timeout_secs',
        `more than replication.heartbeat_interval_secs (${heartbeatSecs}, ${at('replication.heartbeat_interval_secs')})`,
        replicaTimeoutSecs,
        at('replication.replica_timeout_secs'),
      ),
    );
  }
  const tls = r.tls ?? null;
  if (tls !== null && checkable('replication.tls')) {
    const missing = (['cert', 'key', 'ca'] as const).filter((k) => tls[k] === undefined);
    if (missing.length > 0) {
      crossErrors.push(
        message(
          'replication.tls',
          `cert, key and ca together (missing: ${missing.join(', ')})`,
          tls,
          at('replication.tls'),
        ),
      );
    }
  }
  const insecureNoAuth = r.insecure_no_auth ?? false;
  const secret = r.secret ?? null;
  const bindHost = parseHostPort(bindAddress, 0)?.host ?? bindAddress;
  // Protected mode (as Redis's): an open peer port with nothing to check who connects is refused.
  const protectedKeys = ['replication.bind_address', 'replication.secret', 'replication.tls'];
  if (role !== 'standalone' && secret === null && tls === null && !isLoopbackHost(bindHost)) {
    if (insecureNoAuth) {
      warnings.push(
        `replication.insecure_no_auth is true (${at('replication.insecure_no_auth')}): peers connecting to ${bindAddress} are accepted from any address without authentication`,
      );
    } else if (checkable(...roleKeys, ...protectedKeys, 'replication.insecure_no_auth')) {
      crossErrors.push(
        message(
          'replication.bind_address',
          'a loopback address (127.0.0.1, ::1, localhost) while no replication.secret (or tls) authenticates peers; set replication.secret, or replication.insecure_no_auth: true to accept unauthenticated peers from anywhere',
          bindAddress,
          at('replication.bind_address'),
        ),
      );
    }
  }
  errors.push(...crossErrors);
  if (errors.length > 0) fail(errors);

  if (role === 'standalone') {
    const ignored = ['master_address', 'peers'].filter((k) => r[k as keyof typeof r] != null);
    if (ignored.length > 0) {
      warnings.push(
        `replication.${ignored.join(' and replication.')} set but the role is standalone: ignored (set replication.role)`,
      );
    }
  }

  const ms = (secs: number): number => Math.round(secs * 1000);
  const s: Partial<NonNullable<ConfigLayer['storage']>> = c.storage ?? {};
  const replication: ServeConfig['node']['replication'] = {
    role,
    bindAddress,
    masterAddress,
    peers,
    heartbeatIntervalMs: ms(heartbeatSecs),
    ...(role === 'auto' ? { electionTimeoutMs } : {}),
    replicaTimeoutMs: ms(replicaTimeoutSecs),
    reconnectIntervalMs: ms(r.reconnect_interval_secs ?? DEFAULTS.reconnectIntervalSecs),
    logSize: r.log_size ?? DEFAULTS.logSize,
    consistency: (r.consistency ?? DEFAULTS.consistency) as ConsistencyLevel,
    compression: {
      enabled: r.compression?.enabled ?? DEFAULTS.compressionEnabled,
      level: r.compression?.level ?? DEFAULTS.compressionLevel,
    },
    bandwidthBytesPerSec: r.bandwidth_bytes_per_sec ?? null,
    secret,
    tls: tls === null ? null : { cert: tls.cert as string, key: tls.key as string, ca: tls.ca as string },
    ...(insecureNoAuth ? { insecureNoAuth } : {}),
    httpAddress: c.http?.advertise_address ?? null,
    ...(r.lag_threshold_ops !== undefined ? { lagThresholdOps: r.lag_threshold_ops } : {}),
    ...(r.cluster_id !== undefined ? { clusterId: r.cluster_id } : {}),
  };
  const storage: StorageOptions = {
    fsync: s.fsync ?? DEFAULTS.fsync,
    ...(s.wal_segment_bytes !== undefined ? { walSegmentBytes: s.wal_segment_bytes } : {}),
    ...(s.log_bytes !== undefined ? { logBytes: s.log_bytes } : {}),
    ...(s.snapshot_every_bytes !== undefined ? { snapshotEveryBytes: s.snapshot_every_bytes } : {}),
  };
  return {
    node: {
      nodeId: c.node_id ?? DEFAULTS.nodeId,
      dataDir: c.data_dir ?? DEFAULTS.dataDir,
      replication,
      storage,
      ...(c.streams?.max_retained_bytes !== undefined
        ? { streams: { maxRetainedBytes: c.streams.max_retained_bytes } }
        : {}),
    },
    http: {
      host: c.http?.host ?? DEFAULTS.httpHost,
      port: c.http?.port ?? DEFAULTS.httpPort,
      token: c.http?.token ?? null,
      maxBodyBytes: c.http?.max_body_bytes ?? DEFAULTS.maxBodyBytes,
      advertiseAddress: c.http?.advertise_address ?? null,
    },
    logLevel: c.logging?.level ?? DEFAULTS.logLevel,
    warnings,
  };
}

/** The config file to read: `--config` wins over VREP_CONFIG; null: none. */
export function configFilePath(
  env: Readonly<Record<string, string | undefined>>,
  flags: Readonly<Record<string, string | undefined>>,
): string | null {
  const path = flags['--config'] ?? env['VREP_CONFIG'];
  return path === undefined || path === '' ? null : path;
}
