/**
 * A change stream: committed log records turned into change events, in log
 * order, pulled by the consumer (docs/change-streams.md).
 *
 * - It reads through a `committed` log cursor (src/store/log-cursor.ts), so
 *   it hands out only records held by the write quorum and applied here:
 *   never one a failover truncates. The cursor's pin keeps the WAL from the
 *   stream's position while the stream is open.
 * - It pulls: records are read from the cursor only when the consumer asks
 *   for events and the previous read is used up. What it holds is at most
 *   one read (ChangeStreamLimits.readBytes, or one record when a record is
 *   larger) and the decoded record being handed out; a consumer that stops
 *   reading stops the reading, nothing queues up behind it.
 * - It ends (the iterator is done, `nextBatch` gives null) when its signal
 *   aborts, when `close()` is called, or when the node stops.
 * - A position the log no longer holds is ERR_POSITION_EVICTED naming the
 *   earliest one it holds; a position whose LSN this log holds in another
 *   term (a branch a failover dropped) is ERR_POSITION_DIVERGED. Neither
 *   is ever a silent gap.
 */
import assert from 'node:assert/strict';
import { isVrepError, VrepError } from '../errors.ts';
import { decodeRecord, peekRecord, type GroupPosition, type LogRecord, type Op } from '../log/record.ts';
import type { LogCursor } from '../store/log-cursor.ts';
import type { OpenCursorOptions } from '../store/cursors.ts';
import { TermHistory, type Epoch } from '../consensus/term-history.ts';
import {
  CHANGE_OPS,
  changeEventOf,
  changeOpOf,
  eventCount,
  formatPosition,
  pointIdOf,
  type ChangeEvent,
  type ChangeOp,
  type Position,
  type StartFrom,
} from './change-event.ts';

export const ChangeStreamLimits = {
  /** Record bytes read from the cursor at once (one record at least, so a larger record is read alone). */
  readBytes: 1024 * 1024,
  /** Events one `nextBatch` call returns at most. */
  maxBatchEvents: 10_000,
  /** Collections one stream may filter on. */
  maxCollections: 1024,
  /** Streams open on one node at once: each holds a log pin and may wait on the watermark. */
  maxOpenStreams: 1024,
} as const;

assert.ok(ChangeStreamLimits.readBytes >= 1 && ChangeStreamLimits.maxBatchEvents >= 1, 'ChangeStreamLimits');

export interface ChangeStreamOptions {
  /** Where to start (default 'latest'): 'earliest', 'latest', or after a position. */
  from?: StartFrom;
  /** Only these collections (default: all). */
  collections?: readonly string[];
  /** Only these ops (default: all). */
  ops?: readonly ChangeOp[];
  /** Give upserts their vector (default false). */
  includeVectors?: boolean;
  /** Aborting ends the stream. */
  signal?: AbortSignal;
  /** Read as a member of this consumer group (src/streams/consumer-groups.ts checks its own options). */
  group?: string;
}

/** What a consumer group adds to its members' streams (not public options). */
export interface StreamAssignment {
  /** The points this member handles: the others are passed over (a collection op has id null). */
  assigned(collection: string, id: string | null): boolean;
}

/** What a stream reads from (the store). */
export interface ChangeSource {
  openCursor(opts: OpenCursorOptions): LogCursor;
  readonly records: {
    readonly firstLsn: number;
    readonly lastLsn: number;
    termAt(lsn: number): Promise<number>;
  };
  /** The log's epochs (which term wrote which LSNs). */
  readonly history: Epoch[];
}

function invalid(message: string): VrepError {
  return new VrepError('ERR_INVALID_INPUT', message);
}

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** Checks the options' shape (no I/O); throws ERR_INVALID_INPUT naming the option. */
export function checkStreamOptions(opts: ChangeStreamOptions): void {
  if (typeof opts !== 'object' || opts === null) throw invalid('changes: options must be an object');
  const from = opts.from;
  if (from !== undefined && from !== 'earliest' && from !== 'latest') {
    if (typeof from !== 'object' || from === null || !isCount(from.term) || !isCount(from.lsn))
      throw invalid('from: expected "earliest", "latest" or a position {term, lsn} of integers ≥ 0');
    if (from.index !== undefined && !isCount(from.index))
      throw invalid('from.index: expected an integer ≥ 0 (a point within the record)');
    if (from.lsn === 0 && (from.term !== 0 || from.index !== undefined))
      throw invalid('from: the position before the log is {term: 0, lsn: 0}');
  }
  if (opts.collections !== undefined) {
    if (!Array.isArray(opts.collections) || opts.collections.some((c) => typeof c !== 'string' || c === ''))
      throw invalid('collections: expected an array of collection names');
    if (opts.collections.length > ChangeStreamLimits.maxCollections)
      throw invalid(`collections: at most ${ChangeStreamLimits.maxCollections}`);
  }
  if (opts.ops !== undefined) {
    const known: readonly string[] = CHANGE_OPS;
    if (!Array.isArray(opts.ops) || opts.ops.some((o) => !known.includes(o)))
      throw invalid(`ops: expected an array of ${CHANGE_OPS.join(', ')}`);
  }
  if (opts.includeVectors !== undefined && typeof opts.includeVectors !== 'boolean')
    throw invalid('includeVectors: expected a boolean');
}

export class ChangeStream implements AsyncIterable<ChangeEvent> {
  private cursor: LogCursor | null = null;
  private started: Promise<void> | null = null;
  private closed = false;
  private pulling = false;
  /** Stops a wait for the watermark when the stream closes. */
  private readonly stop = new AbortController();
  /** Records of the last cursor read not handed out yet. */
  private records: Uint8Array[] = [];
  private recordsBytes = 0;
  /** The next of `records` to hand out (an index, not shift(): a read may hold thousands of small records). */
  private recordsAt = 0;
  /** The record being handed out and the next point of it. */
  private current: LogRecord | null = null;
  private nextIndex = 0;
  /** The first record read must be the start position's, in its term (checked, then its events skipped). */
  private expect: (Position & { skipThrough: number }) | null = null;
  private readonly collections: ReadonlySet<string> | null;
  private readonly ops: ReadonlySet<ChangeOp> | null;
  private readonly includeVectors: boolean;
  private readonly onAbort = (): void => this.close();
  private markEnded: () => void = () => {};
  /** Resolves once the stream ended, however (a WebSocket waiting for credit hears of it). */
  readonly ended = new Promise<void>((resolve) => (this.markEnded = resolve));
  /** The position the stream starts after (known once started). */
  private startedAfterNow: (Position & { index?: number }) | null = null;
  /** The last record of data this stream has gone past: all its events this stream hands out are handed out. */
  private passedNow: Position | null = null;
  /** The last event handed out (set with passedNow, in one synchronous step: a reader sees them agree). */
  private lastHandedOutNow: GroupPosition | null = null;

  constructor(
    private readonly source: ChangeSource,
    private readonly opts: ChangeStreamOptions,
    private readonly onClose: (s: ChangeStream) => void = () => {},
    private readonly assignment: StreamAssignment | null = null,
  ) {
    checkStreamOptions(opts);
    this.collections = opts.collections ? new Set(opts.collections) : null;
    this.ops = opts.ops ? new Set(opts.ops) : null;
    this.includeVectors = opts.includeVectors === true;
    if (opts.signal?.aborted) this.close();
    else opts.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /**
   * Opens the cursor and checks the start position (idempotent; `nextBatch`
   * calls it). Rejects with ERR_POSITION_EVICTED or ERR_POSITION_DIVERGED;
   * the HTTP route awaits it so those are answered before the upgrade.
   */
  start(): Promise<void> {
    this.started ??= this.open();
    return this.started;
  }

  /** The position this stream starts after (null until started): every event it hands out is later. */
  get startedAfter(): (Position & { index?: number }) | null {
    return this.startedAfterNow;
  }

  /**
   * The last record of data the stream has gone past (null: none yet; then
   * startedAfter): every event of it and before it that this stream hands
   * out has been handed out. A group member that handled what it was handed
   * has handled the group's share up to here.
   */
  get passed(): Position | null {
    if (this.passedNow !== null) return this.passedNow;
    // A start within a record has not gone past that record yet.
    const start = this.startedAfterNow;
    return start === null || start.index !== undefined ? null : { term: start.term, lsn: start.lsn };
  }

  /** The position of the last event handed out (index null: the last point of its record); null: none yet. */
  get lastHandedOut(): GroupPosition | null {
    return this.lastHandedOutNow;
  }

  /** The stream's place: the next LSN its cursor reads (for tests and status). */
  get readLsn(): number | null {
    return this.cursor?.position ?? null;
  }

  /** What the stream holds now: records read but not handed out, and their bytes (bounded by one read). */
  get buffered(): { records: number; bytes: number } {
    return {
      records: this.records.length - this.recordsAt + (this.current ? 1 : 0),
      bytes: this.recordsBytes,
    };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Up to `maxEvents` events (at least one), waiting until one is committed;
   * null once the stream has ended. One call at a time.
   */
  async nextBatch(maxEvents: number = ChangeStreamLimits.maxBatchEvents): Promise<ChangeEvent[] | null> {
    if (!Number.isSafeInteger(maxEvents) || maxEvents < 1 || maxEvents > ChangeStreamLimits.maxBatchEvents)
      throw new VrepError(
        'ERR_INVALID_ARG',
        `maxEvents: expected an integer in [1, ${ChangeStreamLimits.maxBatchEvents}], got ${maxEvents}`,
      );
    if (this.pulling) throw new VrepError('ERR_INVALID_ARG', 'this change stream is already being read');
    this.pulling = true;
    try {
      await this.start();
      const out: ChangeEvent[] = [];
      while (!this.closed) {
        this.take(out, maxEvents);
        if (out.length > 0) return out;
        if (!(await this.read())) return null;
      }
      return null;
    } catch (err) {
      // The node stopping under a read or a wait ends the stream; it is not the consumer's error.
      if (this.closed || isVrepError(err, 'ERR_NODE_STOPPED') || isVrepError(err, 'ERR_WAL_CLOSED')) {
        this.close();
        return null;
      }
      this.close();
      throw err;
    } finally {
      this.pulling = false;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ChangeEvent, void, undefined> {
    try {
      for (;;) {
        const batch = await this.nextBatch();
        if (batch === null) return;
        yield* batch;
      }
    } finally {
      // A consumer that breaks out of its loop releases the cursor.
      this.close();
    }
  }

  /** Ends the stream and releases its cursor (its pin on the WAL). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.opts.signal?.removeEventListener('abort', this.onAbort);
    this.stop.abort();
    this.cursor?.close();
    this.records = [];
    this.recordsAt = 0;
    this.recordsBytes = 0;
    this.current = null;
    this.onClose(this);
    this.markEnded();
  }

  // ------------------------------------------------------------------ internals

  private async open(): Promise<void> {
    const from = this.opts.from ?? 'latest';
    const log = this.source.records;
    let startLsn: number;
    if (from === 'earliest') {
      startLsn = Math.max(1, log.firstLsn);
    } else if (from === 'latest') {
      startLsn = 0; // set below, from the cursor's watermark
    } else if (from.lsn === 0) {
      startLsn = 1;
      if (log.firstLsn > 1) throw await this.evicted(from);
    } else if (from.lsn >= log.firstLsn) {
      // Read the position's own record first: its term proves the position is on this log's branch.
      startLsn = from.lsn;
      this.expect = { term: from.term, lsn: from.lsn, skipThrough: from.index ?? Infinity };
    } else if (from.lsn === log.firstLsn - 1) {
      // The record itself is gone (a snapshot or a full sync replaced it); the term history still says which term wrote it.
      const epoch = new TermHistory(this.source.history).epochAt(from.lsn);
      if (epoch !== undefined && epoch.term !== from.term) throw this.diverged(from, epoch.term);
      if (from.index !== undefined) throw await this.evicted(from);
      startLsn = from.lsn + 1;
    } else {
      throw await this.evicted(from);
    }
    if (this.closed) return;
    const cursor = this.source.openCursor(
      from === 'latest'
        ? { bound: 'committed', retention: 'stream' }
        : { from: startLsn, bound: 'committed', retention: 'stream' },
    );
    // 'latest': after the last record committed now, so nothing committed later is missed.
    if (from === 'latest') cursor.seek(cursor.readableThrough + 1);
    this.cursor = cursor;
    this.startedAfterNow =
      typeof from === 'object'
        ? { term: from.term, lsn: from.lsn, ...(from.index !== undefined ? { index: from.index } : {}) }
        : await this.positionBefore(cursor.position);
    if (this.closed) return;
    if (this.expect !== null && cursor.readableThrough >= this.expect.lsn) {
      // Checked now, so an HTTP client hears it before the upgrade.
      await this.read();
    }
  }

  /** The position of the record before `lsn` ({0, 0} before the first). */
  private async positionBefore(lsn: number): Promise<Position> {
    const before = lsn - 1;
    if (before < 1) return { term: 0, lsn: 0 };
    const log = this.source.records;
    const fromHistory = (): number => new TermHistory(this.source.history).termAt(before);
    const term =
      before >= log.firstLsn && before <= log.lastLsn
        ? await log.termAt(before).catch(fromHistory)
        : fromHistory();
    return { term, lsn: before };
  }

  /** Reads the next records into the buffer, waiting for one; false when the stream ended meanwhile. */
  private async read(): Promise<boolean> {
    const cursor = this.cursor as LogCursor;
    for (;;) {
      if (this.closed) return false;
      let records: Uint8Array[];
      try {
        records = await cursor.next(ChangeStreamLimits.readBytes);
      } catch (err) {
        if (isVrepError(err, 'ERR_LSN_EVICTED')) throw await this.evictedAt(cursor.position);
        throw err;
      }
      if (this.closed) return false;
      if (records.length > 0) {
        this.records = records;
        this.recordsAt = 0;
        this.recordsBytes = records.reduce((n, r) => n + r.length, 0);
        if (this.expect !== null) this.checkStart();
        return true;
      }
      try {
        await cursor.waitReadable(this.stop.signal);
      } catch (err) {
        if (this.closed) return false;
        throw err;
      }
    }
  }

  /** The first record read is the start position's: its term must match; its events up to the index are skipped. */
  private checkStart(): void {
    const expect = this.expect as Position & { skipThrough: number };
    this.expect = null;
    const first = decodeRecord(this.records[this.recordsAt] as Uint8Array);
    if (first.lsn !== expect.lsn) {
      throw new VrepError('ERR_INTERNAL', `change stream: read LSN ${first.lsn}, expected ${expect.lsn}`);
    }
    if (first.term !== expect.term) throw this.diverged(expect, first.term);
    this.dropFirstRecord();
    if (expect.skipThrough < eventCount(first) - 1 && this.accepts(first)) {
      this.current = first;
      this.nextIndex = expect.skipThrough + 1;
    } else if (changeOpOf(first.op) !== null) {
      this.passedNow = { term: first.term, lsn: first.lsn };
    }
  }

  /** The stream's filters: a change of data, of an op and a collection asked for. */
  private accepts(record: { op: number; collection: string }): boolean {
    const op = changeOpOf(record.op as Op);
    if (op === null) return false;
    if (this.ops !== null && !this.ops.has(op)) return false;
    return this.collections === null || this.collections.has(record.collection);
  }

  private dropFirstRecord(): void {
    const r = this.records[this.recordsAt++] as Uint8Array;
    this.recordsBytes -= r.length;
  }

  /** Moves events from the buffered records into `out`, up to `max`, applying the filters. */
  private take(out: ChangeEvent[], max: number): void {
    while (out.length < max) {
      const record = this.current;
      if (record !== null) {
        const count = eventCount(record);
        const assignment = this.assignment;
        let handed = -1;
        while (this.nextIndex < count && out.length < max) {
          const index = this.nextIndex++;
          if (assignment === null || assignment.assigned(record.collection, pointIdOf(record, index))) {
            out.push(changeEventOf(record, index, this.includeVectors));
            handed = index;
          }
        }
        // Once per record's run of events, not per event (still in the same synchronous step as passedNow).
        if (handed >= 0)
          this.lastHandedOutNow = {
            term: record.term,
            lsn: record.lsn,
            index: handed === count - 1 ? null : handed,
          };
        if (this.nextIndex < count) return;
        this.current = null;
        this.passedNow = { term: record.term, lsn: record.lsn };
      }
      if (this.recordsAt === this.records.length) return;
      const bytes = this.records[this.recordsAt] as Uint8Array;
      this.dropFirstRecord();
      // Filtered on the header, so a record nobody asked for is never decoded.
      const head = peekRecord(bytes);
      if (!this.accepts(head)) {
        if (changeOpOf(head.op as Op) !== null) this.passedNow = { term: head.term, lsn: head.lsn };
        continue;
      }
      this.current = decodeRecord(bytes);
      this.nextIndex = 0;
    }
  }

  private diverged(p: Position, termHere: number): VrepError {
    return new VrepError(
      'ERR_POSITION_DIVERGED',
      `position ${formatPosition(p)} is not in this node's log: LSN ${p.lsn} was written in term ${termHere} here, so that position is on a branch a failover dropped; events after it on that branch were never committed, restart from a position this cluster handed out or from "earliest"`,
    );
  }

  private async evicted(p: Position): Promise<VrepError> {
    return this.evictedAt(p.lsn + 1, `position ${formatPosition(p)}`);
  }

  /** ERR_POSITION_EVICTED naming the earliest position this node holds. */
  private async evictedAt(nextLsn: number, what = `LSN ${nextLsn}`): Promise<VrepError> {
    const log = this.source.records;
    const first = log.firstLsn;
    let earliest: string;
    if (first <= log.lastLsn) {
      const term = await log.termAt(first).catch(() => new TermHistory(this.source.history).termAt(first));
      earliest = `the earliest position held is ${formatPosition({ term, lsn: first })}`;
    } else {
      earliest = `the log holds no records now (the next is LSN ${first})`;
    }
    return new VrepError(
      'ERR_POSITION_EVICTED',
      `${what} is no longer held by this node (its WAL was removed past it); ${earliest}; resume from "earliest" and accept the gap, or from a node that still holds it`,
    );
  }
}

/** The node's open streams: bounded, and all ended when the node stops. */
export class ChangeStreams {
  private readonly open = new Set<ChangeStream>();
  private stopped = false;

  constructor(private readonly source: ChangeSource) {}

  /** A new stream (see ChangeStream); throws ERR_INVALID_INPUT on bad options, ERR_OVERLOADED past the limit. */
  stream(opts: ChangeStreamOptions = {}, assignment: StreamAssignment | null = null): ChangeStream {
    if (this.stopped) throw new VrepError('ERR_NODE_STOPPED', 'the node is stopping');
    checkStreamOptions(opts);
    if (this.open.size >= ChangeStreamLimits.maxOpenStreams) {
      throw new VrepError(
        'ERR_OVERLOADED',
        `${ChangeStreamLimits.maxOpenStreams} change streams are open on this node; close one first`,
      );
    }
    const s = new ChangeStream(this.source, opts, (closed) => this.open.delete(closed), assignment);
    if (!s.isClosed) this.open.add(s);
    return s;
  }

  get size(): number {
    return this.open.size;
  }

  /** Ends every stream (the node stops): their iterators finish, nextBatch gives null. */
  closeAll(): void {
    this.stopped = true;
    for (const s of [...this.open]) s.close();
  }
}
