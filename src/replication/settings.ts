/**
 * ReplicationOptions (the public, YAML-shaped options) resolved to the
 * values the replication code runs with: defaults filled in, every number
 * checked with a message naming the option.
 */
import { VrepError } from '../errors.ts';
import type { ReplicationOptions, TlsOptions } from './types.ts';
import type { ConsistencyLevel } from './consistency.ts';
import type { LinkLimits } from '../transport/link.ts';
import { checkSecret } from '../transport/peer-auth.ts';

export interface ResolvedReplication {
  clusterId: string;
  bind: { host: string; port: number };
  masterAddress: string | null;
  peers: string[];
  timing: { heartbeatIntervalMs: number; replicaTimeoutMs: number; reconnectIntervalMs: number };
  /** Role auto: the nodes elect their leader (null: the operator sets the roles). */
  elections: { electionTimeoutMs: number } | null;
  consistency: ConsistencyLevel;
  compression: { enabled: boolean; level: number };
  bandwidthBytesPerSec: number | null;
  lagThresholdOps: number;
  secret: string | null;
  tls: TlsOptions | null;
  /** Protected mode off: peers accepted from any address without a secret or TLS. */
  insecureNoAuth: boolean;
  httpAddress: string | null;
  linkLimits: Partial<LinkLimits>;
}

function bad(option: string, expected: string, got: unknown): VrepError {
  return new VrepError(
    'ERR_INVALID_INPUT',
    `replication.${option}: expected ${expected}, got ${JSON.stringify(got)}`,
  );
}

export function parseAddress(option: string, value: unknown): { host: string; port: number } {
  const m = typeof value === 'string' ? /^(.+):(\d{1,5})$/.exec(value) : null;
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw bad(option, 'HOST:PORT', value);
  return { host: m[1] as string, port };
}

function int(option: string, value: number | undefined, fallback: number, min: number, max: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min || v > max) throw bad(option, `an integer in [${min}, ${max}]`, v);
  return v;
}

export function resolveReplication(o: ReplicationOptions = {}): ResolvedReplication {
  const role = o.role ?? 'standalone';
  const masterAddress = o.masterAddress ?? null;
  if (role === 'replica') {
    if (masterAddress !== null) parseAddress('masterAddress', masterAddress);
  }
  const peers = o.peers ?? [];
  if (!Array.isArray(peers)) throw bad('peers', 'an array of HOST:PORT', peers);
  peers.forEach((p, i) => parseAddress(`peers[${i}]`, p));
  const consistency = o.consistency ?? 'one';
  if (!['one', 'quorum', 'all'].includes(consistency))
    throw bad('consistency', 'one, quorum or all', consistency);
  const bw = o.bandwidthBytesPerSec ?? null;
  if (bw !== null && !(Number.isFinite(bw) && bw >= 1024))
    throw bad('bandwidthBytesPerSec', 'null or a number >= 1024', bw);
  const secret = o.secret ?? null;
  if (secret !== null && (typeof secret !== 'string' || Buffer.byteLength(secret) < 16)) {
    throw bad('secret', 'null or a string of at least 16 bytes', secret === null ? null : '<hidden>');
  }
  if (secret !== null) checkSecret(secret);
  const auto = role === 'auto';
  const electionTimeoutMs = int('electionTimeoutMs', o.electionTimeoutMs, 1000, 10, 600_000);
  const heartbeatIntervalMs = int(
    'heartbeatIntervalMs',
    o.heartbeatIntervalMs,
    auto ? Math.max(10, Math.round(electionTimeoutMs / 10)) : 5000,
    10,
    3_600_000,
  );
  if (auto && electionTimeoutMs < 2 * heartbeatIntervalMs) {
    throw bad(
      'electionTimeoutMs',
      `at least twice heartbeatIntervalMs (${heartbeatIntervalMs})`,
      electionTimeoutMs,
    );
  }
  return {
    clusterId: o.clusterId ?? 'vrep',
    bind: parseAddress('bindAddress', o.bindAddress ?? '127.0.0.1:7001'),
    masterAddress,
    peers,
    timing: {
      heartbeatIntervalMs,
      replicaTimeoutMs: int('replicaTimeoutMs', o.replicaTimeoutMs, 30_000, heartbeatIntervalMs, 86_400_000),
      reconnectIntervalMs: int('reconnectIntervalMs', o.reconnectIntervalMs, 5000, 10, 3_600_000),
    },
    elections: auto ? { electionTimeoutMs } : null,
    consistency,
    compression: {
      enabled: o.compression?.enabled ?? true,
      // 1 to zstd's highest level, as the config file allows (src/config/schema.ts).
      level: int('compression.level', o.compression?.level, 1, 1, 22),
    },
    bandwidthBytesPerSec: bw,
    lagThresholdOps: int('lagThresholdOps', o.lagThresholdOps, 10_000, 1, Number.MAX_SAFE_INTEGER),
    secret,
    tls: o.tls ?? null,
    insecureNoAuth: o.insecureNoAuth === true,
    httpAddress: o.httpAddress ?? null,
    linkLimits: {},
  };
}

/** The peer WebSocket URL of a HOST:PORT address. */
export function peerUrl(address: string, tls: boolean): string {
  return `${tls ? 'wss' : 'ws'}://${address}/peer`;
}
