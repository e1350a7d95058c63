/**
 * The change event: what a change stream hands out for one mutation
 * (docs/change-streams.md). Events are built from committed log records
 * only, so every field here stays true after any failover.
 *
 * One event per point: an upsert or delete record of n points gives n
 * events, all with the record's position, `index` 0..n-1 and `count` n;
 * a create or drop of a collection gives one event (index 0, count 1).
 * A consumer resumes after a whole record (`from: position`) or after one
 * point of it (`from: { ...position, index }`), so a batch cut by a crash
 * is neither skipped nor delivered twice. Config records (membership) are
 * not changes of data and give no event.
 */
import { VrepError } from '../errors.ts';
import { Op, type GroupPosition, type LogRecord, type MetricName } from '../log/record.ts';

/** A place in the log, valid on every node of the cluster: the record's LSN and the term that wrote it. */
export interface Position {
  term: number;
  lsn: number;
}

/** Where a stream starts: after a position (optionally after one point of its record), or at an end of the log. */
export type StartFrom = 'earliest' | 'latest' | (Position & { index?: number });

export const CHANGE_OPS = ['upsert', 'delete', 'create_collection', 'drop_collection'] as const;
export type ChangeOp = (typeof CHANGE_OPS)[number];

export interface ChangeEvent {
  position: Position;
  /** The same as position.lsn and position.term, at the top level as docs/interface promises. */
  lsn: number;
  term: number;
  /** This event's point within its record (0 for collection ops). */
  index: number;
  /** Events its record gives (points of an upsert or delete; 1 for collection ops). */
  count: number;
  /** The record's hybrid logical clock: Unix ms and a logical counter. */
  hlc: { ms: number; logical: number };
  op: ChangeOp;
  collection: string;
  /** The point's id; null for collection ops. */
  id: string | null;
  /** The point's payload as JSON; null for a delete, a point without payload and collection ops. */
  payload: unknown;
  /** The point's vector (upserts, when the stream asked for vectors). */
  vector?: Float32Array;
  /** create_collection: the collection's shape. */
  dimension?: number;
  metric?: MetricName;
  /** The node that took the write (the record's origin). */
  origin: string;
}

const OP_NAMES: Partial<Record<Op, ChangeOp>> = {
  [Op.Upsert]: 'upsert',
  [Op.Delete]: 'delete',
  [Op.CreateCollection]: 'create_collection',
  [Op.DropCollection]: 'drop_collection',
};

/** The change op of a record; null for records that are not changes of data (config). */
export function changeOpOf(op: Op): ChangeOp | null {
  return OP_NAMES[op] ?? null;
}

/** Events a record gives (0 for config records). */
export function eventCount(record: LogRecord): number {
  switch (record.op) {
    case Op.Upsert:
    case Op.Delete:
      return record.ids.length;
    case Op.CreateCollection:
    case Op.DropCollection:
      return 1;
    default:
      return 0;
  }
}

/** The id of point `index` of a record's events (null for collection ops). */
export function pointIdOf(record: LogRecord, index: number): string | null {
  return record.op === Op.Upsert || record.op === Op.Delete ? (record.ids[index] ?? null) : null;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The event for point `index` of `record` (index < eventCount(record)).
 * The vector is copied, so an event never holds the record's bytes alive.
 */
export function changeEventOf(record: LogRecord, index: number, includeVectors: boolean): ChangeEvent {
  const op = changeOpOf(record.op);
  const count = eventCount(record);
  if (op === null || index < 0 || index >= count) {
    throw new VrepError('ERR_INTERNAL', `no change event ${index} in the record at LSN ${record.lsn}`);
  }
  const event: ChangeEvent = {
    position: { term: record.term, lsn: record.lsn },
    lsn: record.lsn,
    term: record.term,
    index,
    count,
    hlc: { ms: record.hlcMs, logical: record.hlcLogical },
    op,
    collection: record.collection,
    id: null,
    payload: null,
    origin: record.origin,
  };
  switch (record.op) {
    case Op.Upsert: {
      event.id = record.ids[index] as string;
      const bytes = record.payloads[index];
      // Stored payloads were checked as JSON objects when written (point-checks.ts).
      event.payload = bytes === undefined || bytes.length === 0 ? null : JSON.parse(utf8.decode(bytes));
      if (includeVectors) {
        const d = record.dimension;
        event.vector = record.vectors.slice(index * d, (index + 1) * d);
      }
      break;
    }
    case Op.Delete:
      event.id = record.ids[index] as string;
      break;
    case Op.CreateCollection:
      event.dimension = record.dimension;
      event.metric = record.metric;
      break;
    default:
      break;
  }
  return event;
}

/** A position as `from` takes it (index null: after the whole record). */
export function startFromPosition(p: GroupPosition): StartFrom {
  return p.index === null ? { term: p.term, lsn: p.lsn } : { term: p.term, lsn: p.lsn, index: p.index };
}

/** `TERM:LSN` or `TERM:LSN:INDEX` (the query parameter's and the CLI's spelling). */
export function formatPosition(p: Position & { index?: number }): string {
  return p.index === undefined ? `${p.term}:${p.lsn}` : `${p.term}:${p.lsn}:${p.index}`;
}

/** Log order of positions; index null (the whole record) is after every point of it. */
export function comparePositions(a: GroupPosition, b: GroupPosition): number {
  if (a.lsn !== b.lsn) return a.lsn - b.lsn;
  if (a.index === b.index) return 0; // also both null (Infinity - Infinity is NaN)
  return (a.index ?? Infinity) - (b.index ?? Infinity);
}

export function maxPosition(a: GroupPosition, b: GroupPosition): GroupPosition {
  return comparePositions(a, b) >= 0 ? a : b;
}

/** An event's place as a position with an index: its record's last point stands for the whole record. */
export function eventPosition(e: Pick<ChangeEvent, 'term' | 'lsn' | 'index' | 'count'>): GroupPosition {
  return { term: e.term, lsn: e.lsn, index: e.index === e.count - 1 ? null : e.index };
}

export const wholeRecord = (p: Position): GroupPosition => ({ term: p.term, lsn: p.lsn, index: null });

export function formatGroupPosition(p: GroupPosition): string {
  return formatPosition(
    p.index === null ? { term: p.term, lsn: p.lsn } : { term: p.term, lsn: p.lsn, index: p.index },
  );
}
