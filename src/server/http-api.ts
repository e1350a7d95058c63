/**
 * The HTTP data API of a node (docs/http-api.md): routes mapped onto
 * ReplicationNode calls, errors answered with their code's status from the
 * registry (src/errors.ts), and the optional bearer token with a
 * per-address limit on failed attempts.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { httpStatusOf, isVrepError, VrepError, vrepError } from '../errors.ts';
import {
  errorReply,
  type HttpReply,
  type HttpRequest,
  type RequestHead,
  type Route,
} from '../transport/http-server.ts';
import { parseJsonPointsAsync } from '../native/json-points.ts';
import { decodeBinaryBatch } from './binary-batch.ts';
import { jsonSyntaxErrorOf, parseJsonBody } from './json-body.ts';
import { show } from '../config/resolve.ts';
import type { ReplicationNode } from '../node/replication-node.ts';
import { ConsistencyLevel } from '../node/consistency.ts';
import type { ServerMetrics } from './metrics.ts';
import type { PayloadFilter } from '../store/search.ts';

export const BATCH_CONTENT_TYPE = 'application/vnd.vrep.batch';

export interface HttpApiOptions {
  node: ReplicationNode;
  metrics: ServerMetrics;
  logger: Logger;
  /** Largest request body (also the JSON parser's input limit). */
  maxBodyBytes: number;
  /** Bearer token required on every route but /health; null: no auth. */
  token: string | null;
  /** Extra fields of GET /health. */
  health: () => Record<string, unknown>;
}

function invalid(message: string): VrepError {
  return new VrepError('ERR_INVALID_INPUT', message);
}

/** Parses a small JSON control body into an object with only the allowed keys. */
export function jsonObject(req: HttpRequest, allowed: readonly string[]): Record<string, unknown> {
  requireJson(req);
  const value = parseJsonBody(req.body);
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalid('body: expected a JSON object');
  for (const key of Object.keys(value)) {
    if (allowed.includes(key)) continue;
    throw invalid(
      allowed.length === 0
        ? `body: unknown field ${show(key)} (this route takes no fields: send no body, or {})`
        : `body: unknown field ${show(key)} (allowed: ${allowed.map((k) => `"${k}"`).join(', ')})`,
    );
  }
  return value as Record<string, unknown>;
}

/**
 * A query parameter given at most once; a repeated one is refused rather
 * than one of its values silently picked (proxies and clients disagree on which).
 */
export function queryParam(req: HttpRequest, name: string): string | null {
  const values = req.query.getAll(name);
  if (values.length > 1) throw invalid(`${name}: given ${values.length} times; give it once`);
  return values[0] ?? null;
}

function requireJson(req: HttpRequest): void {
  if (req.contentType !== 'application/json') {
    throw new VrepError(
      'ERR_UNSUPPORTED_MEDIA_TYPE',
      `content-type: expected application/json, got ${req.contentType === '' ? 'none' : JSON.stringify(req.contentType)}`,
    );
  }
}

function consistencyOf(req: HttpRequest): ConsistencyLevel | undefined {
  const level = queryParam(req, 'consistency');
  if (level === null) return undefined;
  const levels: readonly string[] = Object.values(ConsistencyLevel);
  if (!levels.includes(level)) throw invalid(`consistency: expected one, quorum or all, got ${show(level)}`);
  return level as ConsistencyLevel;
}

/** `?consistency=` of a read: local (default) or linearizable (a ReadIndex round on the primary). */
function readConsistencyOf(req: HttpRequest): { consistency?: 'local' | 'linearizable' } {
  const level = queryParam(req, 'consistency');
  if (level === null) return {};
  if (level !== 'local' && level !== 'linearizable')
    throw invalid(`consistency: expected local or linearizable, got ${show(level)}`);
  return { consistency: level };
}

/** Which LSN a read reflects: the last record applied on this node when it answered. */
function lsnHeader(node: { lastLsn: number }): Record<string, string> {
  return { 'x-vrep-lsn': String(node.lastLsn) };
}

function param(req: HttpRequest, name: string): string {
  return req.params[name] as string;
}

/**
 * Counts failed token checks per client address in a fixed window; past the
 * limit the address gets 429 until its window ends. The map is bounded: when
 * full, expired entries go first, then the oldest.
 */
export class FailureLimiter {
  readonly #entries = new Map<string, { windowStartMs: number; failures: number }>();
  constructor(
    private readonly maxFailures = 10,
    private readonly windowMs = 10_000,
    private readonly maxEntries = 10_000,
  ) {}

  blocked(address: string, nowMs = Date.now()): boolean {
    const e = this.#entries.get(address);
    return e !== undefined && nowMs - e.windowStartMs < this.windowMs && e.failures > this.maxFailures;
  }

  fail(address: string, nowMs = Date.now()): void {
    const e = this.#entries.get(address);
    if (e && nowMs - e.windowStartMs < this.windowMs) {
      e.failures++;
      return;
    }
    this.#entries.delete(address);
    if (this.#entries.size >= this.maxEntries) this.evict(nowMs);
    this.#entries.set(address, { windowStartMs: nowMs, failures: 1 });
  }

  get size(): number {
    return this.#entries.size;
  }

  private evict(nowMs: number): void {
    for (const [address, e] of this.#entries) {
      if (nowMs - e.windowStartMs >= this.windowMs) this.#entries.delete(address);
    }
    // Map order is insertion order: the first key is the oldest window.
    if (this.#entries.size >= this.maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** The guard run before any body is read: bearer token and the failure limit. */
export function tokenGuard(
  token: string | null,
  limiter = new FailureLimiter(),
): (head: RequestHead) => HttpReply | undefined {
  if (token === null) return () => undefined;
  const expected = sha256(token);
  return (head) => {
    if (head.route === '/health') return undefined;
    if (limiter.blocked(head.remoteAddress))
      return errorReply(
        'ERR_TOO_MANY_FAILURES',
        'too many failed authentications from this address; retry later',
      );
    // RFC 7235: the scheme is case-insensitive.
    const m = /^bearer +(.+)$/i.exec(head.authorization);
    // Compare hashes: equal lengths for timingSafeEqual, and no length leak.
    if (m && timingSafeEqual(sha256(m[1] as string), expected)) return undefined;
    limiter.fail(head.remoteAddress);
    return errorReply(
      'ERR_UNAUTHORIZED',
      m ? 'authorization: wrong bearer token' : 'authorization: missing bearer token',
    );
  };
}

/** Maps anything a handler threw to a reply; never exposes a stack. */
export function errorToReply(err: unknown, logger: Logger): HttpReply {
  if (err instanceof VrepError) {
    const status = httpStatusOf(err.code);
    // No status: the code never answers a request by design, so getting here is a bug to log.
    if (status === null || status === 500) logger.error({ err }, 'request failed');
    const error: Record<string, unknown> = { code: err.code, message: err.message };
    // ERR_READ_ONLY, ERR_NOT_LEADER: the primary's HTTP address (null: not known yet).
    if (err.primary !== undefined) error['primary'] = err.primary;
    // An election or a transfer ends within about an election timeout.
    const retry = err.code === 'ERR_NO_LEADER' || err.code === 'ERR_TRANSFER_IN_PROGRESS';
    return { status: status ?? 500, body: { error }, ...(retry ? { headers: { 'retry-after': '1' } } : {}) };
  }
  logger.error({ err }, 'request failed (unexpected error)');
  return errorReply('ERR_INTERNAL', 'internal error (see the node log)');
}

/**
 * The native points parser, off the event loop (libuv's thread pool), its
 * syntax errors in the wording every JSON route shares.
 */
async function parsePoints(
  body: Uint8Array,
  dimension: number,
  maxInputBytes: number,
): ReturnType<typeof parseJsonPointsAsync> {
  try {
    return await parseJsonPointsAsync(body, { dimension, maxInputBytes });
  } catch (err) {
    if (isVrepError(err, 'ERR_JSON_SYNTAX')) throw jsonSyntaxErrorOf(body, err.message);
    throw err;
  }
}

export function apiRoutes(opts: HttpApiOptions): Route[] {
  const { node, metrics } = opts;
  const infoOf = (name: string): { name: string; dimension: number; metric: string; count: number } => {
    const info = node.collections().find((c) => c.name === name);
    if (!info) throw vrepError('ERR_COLLECTION_NOT_FOUND', name);
    return info;
  };

  return [
    { method: 'GET', pattern: '/health', handler: () => ({ status: 200, body: opts.health() }) },
    {
      method: 'GET',
      pattern: '/metrics',
      handler: async () => {
        const m = await metrics.render();
        return { status: 200, text: m.text, contentType: m.contentType };
      },
    },
    {
      method: 'GET',
      pattern: '/collections',
      handler: () => ({ status: 200, body: { collections: node.collections() } }),
    },
    {
      method: 'PUT',
      pattern: '/collections/:name',
      handler: async (req) => {
        const body = jsonObject(req, ['dimension', 'metric']);
        const name = param(req, 'name');
        const spec = { dimension: body['dimension'] as number, metric: body['metric'] as 'l2' };
        const r = await node.createCollection(name, spec);
        return { status: 201, body: { name, dimension: spec.dimension, metric: spec.metric, lsn: r.lsn } };
      },
    },
    {
      method: 'GET',
      pattern: '/collections/:name',
      handler: (req) => {
        const name = param(req, 'name');
        return { status: 200, body: { ...infoOf(name), digest: node.digest(name) } };
      },
    },
    {
      method: 'DELETE',
      pattern: '/collections/:name',
      handler: async (req) => {
        const name = param(req, 'name');
        const r = await node.dropCollection(name);
        return { status: 200, body: { name, lsn: r.lsn } };
      },
    },
    {
      method: 'POST',
      pattern: '/collections/:name/points',
      handler: async (req) => {
        const binary = req.contentType === BATCH_CONTENT_TYPE;
        if (!binary) requireJson(req);
        const consistency = consistencyOf(req);
        const name = param(req, 'name');
        const shape = node.collectionShape(name);
        if (!shape) throw vrepError('ERR_COLLECTION_NOT_FOUND', name);
        const { dimension } = shape;
        let packed: { ids: string[]; vectors: Float32Array; payloads: Uint8Array[] };
        if (binary) {
          packed = decodeBinaryBatch(req.body, dimension);
        } else {
          const batch = await parsePoints(req.body, dimension, opts.maxBodyBytes);
          const payloads: Uint8Array[] = new Array(batch.count);
          for (let i = 0; i < batch.count; i++) {
            payloads[i] = batch.payloadBytes.subarray(batch.payloadOffsets[i], batch.payloadOffsets[i + 1]);
          }
          packed = { ids: batch.ids, vectors: batch.vectors, payloads };
        }
        const r = await node.writePacked(name, packed, consistency !== undefined ? { consistency } : {});
        metrics.pointsWritten.inc(r.count);
        metrics.writeBatches.inc({ op: 'upsert' });
        return { status: 200, body: { lsn: r.lsn, count: r.count } };
      },
    },
    {
      method: 'DELETE',
      pattern: '/collections/:name/points',
      handler: async (req) => {
        const body = jsonObject(req, ['ids']);
        const consistency = consistencyOf(req);
        const ids = body['ids'];
        if (!Array.isArray(ids)) throw invalid('ids: expected an array of ids');
        const r = await node.delete(
          param(req, 'name'),
          ids as (string | number)[],
          consistency !== undefined ? { consistency } : {},
        );
        metrics.writeBatches.inc({ op: 'delete' });
        return { status: 200, body: { lsn: r.lsn, count: r.count } };
      },
    },
    {
      method: 'GET',
      pattern: '/collections/:name/points/:id',
      handler: async (req) => {
        const id = param(req, 'id');
        const name = param(req, 'name');
        const p = await node.get(name, id, readConsistencyOf(req));
        if (p === null) throw vrepError('ERR_POINT_NOT_FOUND', id, name);
        return {
          status: 200,
          body: { id: p.id, vector: Array.from(p.vector), payload: p.payload },
          headers: lsnHeader(node),
        };
      },
    },
    {
      method: 'POST',
      pattern: '/collections/:name/search',
      handler: async (req) => {
        const body = jsonObject(req, ['vector', 'k', 'filter']);
        const vector = body['vector'];
        if (!Array.isArray(vector) || !vector.every((x) => typeof x === 'number'))
          throw invalid('vector: expected an array of numbers');
        const k = body['k'] ?? 10;
        if (typeof k !== 'number') throw invalid(`k: expected an integer, got ${show(k)}`);
        const filter = body['filter'];
        if (filter !== undefined && (typeof filter !== 'object' || filter === null || Array.isArray(filter)))
          throw invalid('filter: expected an object of top-level payload keys to match');
        const startedMs = performance.now();
        const results = await node.search(param(req, 'name'), vector as number[], {
          k,
          ...(filter !== undefined ? { filter: filter as PayloadFilter } : {}),
          ...readConsistencyOf(req),
        });
        metrics.searchSeconds.observe((performance.now() - startedMs) / 1000);
        return { status: 200, body: { results }, headers: lsnHeader(node) };
      },
    },
  ];
}
