/**
 * The write path of a node, from the API to the core:
 *
 *   validate (the collection at the head of the log, the points) ->
 *   encode once (LSN and term left open) -> runtime.propose: the core
 *   assigns (term, LSN), the record is sealed -> WAL append and ring (and,
 *   on a leader, its followers' payload made around it) -> durable -> sent
 *   -> applied -> the consistency level is met -> resolved.
 *
 * Levels: One, this node's WAL; Quorum, a majority of the members (this
 * node's WAL counted once it has the record); All, every member.
 */
import { VrepError, vrepError } from '../errors.ts';
import {
  encodeRecordUnsealed,
  Op,
  sealRecord,
  type GroupPosition,
  type LogRecord,
  type MetricName,
  type RecordBody,
} from '../log/record.ts';
import { RecordLimits } from '../limits.ts';
import type { Store, WriteResult } from '../store/store.ts';
import {
  checkBatchSize,
  checkPackedPoints,
  invalid,
  normalizeId,
  packPoints,
  type PointInput,
} from '../store/points.ts';
import type { ReplicationRuntime } from '../replication/runtime.ts';
import { RECORD_FRONT_BYTES, reserveFront } from '../replication/records-payload.ts';
import type { Membership } from '../consensus/membership.ts';
import type { ConsistencyLevel } from '../replication/consistency.ts';

export interface WriteOptions {
  consistency?: ConsistencyLevel;
  timeoutMs?: number;
}

const COLLECTION_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

export interface WriterDeps {
  store: Store;
  runtime: ReplicationRuntime;
  nodeId: string;
  tickMs: number;
  defaultLevel: () => ConsistencyLevel;
  defaultTimeoutMs: number;
  /** Throws the right error when this node takes no writes now (a replica, a full disk). */
  assertWritable(): void;
  /** A write was proposed at these LSNs (for lag measurements). */
  proposed(lastLsn: number): void;
  /** Maps a runtime error (not the leader, timeout, disk) onto the error the caller sees. */
  mapError(err: Error): Error;
}

export class Writer {
  constructor(private readonly d: WriterDeps) {}

  async createCollection(
    name: string,
    spec: { dimension: number; metric: MetricName },
    opts: WriteOptions,
  ): Promise<WriteResult> {
    this.d.assertWritable();
    if (typeof name !== 'string' || !COLLECTION_NAME.test(name)) {
      throw invalid(
        `collection name: expected 1-255 of [A-Za-z0-9_.-] starting with a letter or digit, got ${JSON.stringify(name)}`,
      );
    }
    if (this.d.store.schema.get(name)) throw vrepError('ERR_COLLECTION_EXISTS', name);
    const { dimension, metric } = spec ?? {};
    if (!Number.isInteger(dimension) || dimension < 1 || dimension > RecordLimits.maxDimension) {
      throw invalid(
        `dimension: expected an integer in [1, ${RecordLimits.maxDimension}], got ${String(dimension)}`,
      );
    }
    if (metric !== 'l2' && metric !== 'cosine' && metric !== 'dot') {
      throw invalid(`metric: expected "l2", "cosine" or "dot", got ${JSON.stringify(metric)}`);
    }
    return this.propose(name, { op: Op.CreateCollection, dimension, metric }, 0, opts);
  }

  async dropCollection(name: string, opts: WriteOptions): Promise<WriteResult> {
    this.d.assertWritable();
    this.shape(name);
    return this.propose(name, { op: Op.DropCollection }, 0, opts);
  }

  async upsert(name: string, points: readonly PointInput[], opts: WriteOptions): Promise<WriteResult> {
    this.d.assertWritable();
    const { dimension } = this.shape(name);
    const batch = packPoints(points, dimension);
    return this.propose(name, { op: Op.Upsert, dimension, ...batch }, batch.ids.length, opts);
  }

  async upsertPacked(
    name: string,
    batch: { ids: string[]; vectors: Float32Array; payloads: Uint8Array[] },
    opts: WriteOptions,
  ): Promise<WriteResult> {
    this.d.assertWritable();
    const { dimension } = this.shape(name);
    checkPackedPoints(batch, dimension);
    return this.propose(
      name,
      { op: Op.Upsert, dimension, ids: batch.ids, vectors: batch.vectors, payloads: batch.payloads },
      batch.ids.length,
      opts,
    );
  }

  async delete(name: string, ids: readonly (string | number)[], opts: WriteOptions): Promise<WriteResult> {
    this.d.assertWritable();
    this.shape(name);
    if (!Array.isArray(ids)) throw invalid('ids: expected an array');
    checkBatchSize(ids.length, 'ids');
    const normalized = ids.map((id, i) => normalizeId(id, `ids[${i}]`));
    return this.propose(name, { op: Op.Delete, ids: normalized }, normalized.length, opts);
  }

  /**
   * A consumer group's committed position (null: the group is deleted): one
   * record, so replicas hold it and it fails over with the leader. The
   * caller (src/streams/consumer-groups.ts) checks the name and position.
   */
  async setGroupPosition(
    group: string,
    position: GroupPosition | null,
    opts: WriteOptions,
  ): Promise<WriteResult> {
    this.d.assertWritable();
    return this.propose(group, { op: Op.GroupPosition, position }, 0, opts);
  }

  /** A membership change: one config record, durable on this node before it resolves. */
  proposeConfig(membership: Membership): Promise<WriteResult> {
    return this.propose(
      '',
      { op: Op.Config, members: membership.members.map((m) => ({ ...m })) },
      0,
      { consistency: 'one' },
      membership,
    );
  }

  private shape(name: string): { dimension: number } {
    const shape = this.d.store.schema.get(name);
    if (!shape) throw vrepError('ERR_COLLECTION_NOT_FOUND', name);
    return shape;
  }

  private propose(
    collection: string,
    body: RecordBody,
    count: number,
    opts: WriteOptions,
    config: Membership | null = null,
  ): Promise<WriteResult> {
    checkOptions(opts);
    const ts = this.d.store.clock.now();
    const record = {
      lsn: 0,
      term: 0,
      hlcMs: ts.ms,
      hlcLogical: ts.logical,
      origin: this.d.nodeId,
      collection,
      ...body,
    } as LogRecord;
    // Room in front: its followers' payload is made in place (records-payload.ts encodeInPlace).
    const bytes = reserveFront(encodeRecordUnsealed(record, RECORD_FRONT_BYTES));
    const limit = this.d.store.records.maxRecordBytes;
    if (bytes.length > limit) {
      throw new VrepError(
        'ERR_RECORD_TOO_LARGE',
        `batch: ${bytes.length} bytes encoded, limit ${limit}; split it`,
      );
    }
    const level = opts.consistency ?? this.d.defaultLevel();
    const timeoutMs = opts.timeoutMs ?? this.d.defaultTimeoutMs;
    return new Promise((resolve, reject) => {
      this.d.runtime.propose(
        1,
        (lsn, term) => sealRecord(bytes, lsn, term),
        { level, timeoutTicks: Math.max(1, Math.ceil(timeoutMs / this.d.tickMs)), config },
        (err, out) => {
          if (err !== null || out === undefined) reject(this.d.mapError(err ?? new Error('no result')));
          else resolve({ lsn: out.lastLsn, count });
        },
      );
      // The record is in the log now (or the propose failed at once).
      this.d.proposed(this.d.runtime.core.log.lastLsn);
    });
  }
}

export function checkOptions(opts: WriteOptions): void {
  const level = opts.consistency;
  if (level !== undefined && level !== 'one' && level !== 'quorum' && level !== 'all') {
    throw new VrepError(
      'ERR_INVALID_INPUT',
      `consistency: expected one of one, quorum, all, got ${JSON.stringify(level)}`,
    );
  }
  if (opts.timeoutMs !== undefined && (!Number.isInteger(opts.timeoutMs) || opts.timeoutMs < 0)) {
    throw new VrepError(
      'ERR_INVALID_INPUT',
      `timeoutMs: expected a non-negative integer, got ${String(opts.timeoutMs)}`,
    );
  }
}
