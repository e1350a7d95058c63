/**
 * A reader's place in the log: a position (the next LSN to read), a pin that
 * keeps the WAL from that position on, and a bound it never reads past.
 *
 * - `committed` cursors (every reader but the replication feed: change
 *   streams next) read only records held by the write quorum and applied
 *   here. Those are never truncated: what they hand out stays true.
 * - `appended` cursors are the replication feed's: they read what the log
 *   holds, and the core bounds each request to what the leader's own disk
 *   has (src/consensus/core.ts, fillAppends).
 *
 * A named cursor's position survives restarts (`save`, then
 * `Store.openCursor({ name })`): its pin is loaded at start-up, so the WAL
 * keeps what it has not read yet. Named cursors hold disk until dropped.
 */
import { VrepError } from '../errors.ts';
import type { RecordLog } from '../log/record-log.ts';
import type { LogPin } from './log-pins.ts';

export type CursorBound = 'committed' | 'appended';

/** What a cursor needs from the store (one owner per fact: the store holds the log and the watermark). */
export interface CursorHost {
  readonly log: RecordLog;
  /** Highest LSN this bound lets a reader see now. */
  readableThrough(bound: CursorBound): number;
  /** Resolves once `readableThrough(bound)` ≥ `lsn` (rejects when the store closes or `signal` aborts). */
  waitReadable(bound: CursorBound, lsn: number, signal?: AbortSignal): Promise<void>;
  /** Durably records a named cursor's position. */
  savePosition(name: string, lsn: number): Promise<void>;
}

export class LogCursor {
  private positionNow: number;
  private closed = false;
  private waiting = false;

  constructor(
    private readonly host: CursorHost,
    private readonly pin: LogPin,
    readonly bound: CursorBound,
    readonly name: string | null,
  ) {
    this.positionNow = pin.lsn;
  }

  /** The next LSN this cursor reads. */
  get position(): number {
    return this.positionNow;
  }

  /** Highest LSN readable by this cursor now. */
  get readableThrough(): number {
    return this.host.readableThrough(this.bound);
  }

  /** Moves to `lsn` (the WAL keeps records from there on). */
  seek(lsn: number): void {
    this.assertOpen();
    if (!Number.isSafeInteger(lsn) || lsn < 1) {
      throw new VrepError('ERR_INVALID_ARG', `cursor position must be an LSN ≥ 1, got ${lsn}`);
    }
    this.positionNow = lsn;
    this.pin.lsn = lsn;
  }

  /**
   * The readable range from the position, at most up to `maxLsn`; null when
   * nothing is readable yet. For readers that read the log themselves (the
   * feed encodes shared payloads); they call `advanceTo` after consuming.
   */
  range(maxLsn = Infinity): { fromLsn: number; toLsn: number } | null {
    this.assertOpen();
    const to = Math.min(maxLsn, this.readableThrough, this.host.log.lastLsn);
    return to >= this.positionNow ? { fromLsn: this.positionNow, toLsn: to } : null;
  }

  /** The position moves past records read through `range`. */
  advanceTo(lsn: number): void {
    if (lsn > this.positionNow) this.seek(lsn);
  }

  /**
   * Readable records from the position, about `maxBytes` at most (at least
   * one when any is readable), advancing past them; [] when none is
   * readable now. ERR_LSN_EVICTED when the log no longer holds the position
   * (a full sync replaced it).
   */
  async next(maxBytes: number): Promise<Uint8Array[]> {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
      throw new VrepError('ERR_INVALID_ARG', `maxBytes must be a positive integer, got ${maxBytes}`);
    }
    const r = this.range();
    if (r === null) return [];
    if (r.fromLsn < this.host.log.firstLsn) {
      throw new VrepError(
        'ERR_LSN_EVICTED',
        `the log starts at LSN ${this.host.log.firstLsn}; this cursor is at ${r.fromLsn}`,
      );
    }
    const records = await this.host.log.read(r.fromLsn, r.toLsn, maxBytes);
    if (this.closed) return [];
    this.advanceTo(r.fromLsn + records.length);
    return records;
  }

  /** Resolves once a record at the position is readable (one wait at a time). */
  async waitReadable(signal?: AbortSignal): Promise<void> {
    this.assertOpen();
    if (this.waiting) throw new VrepError('ERR_INVALID_ARG', 'this cursor is already waiting');
    this.waiting = true;
    try {
      await this.host.waitReadable(this.bound, this.positionNow, signal);
    } finally {
      this.waiting = false;
    }
  }

  /** Durably records the position of a named cursor: after a restart it resumes here. */
  save(): Promise<void> {
    this.assertOpen();
    if (this.name === null) throw new VrepError('ERR_INVALID_ARG', 'only a named cursor can be saved');
    return this.host.savePosition(this.name, this.positionNow);
  }

  /** Releases the pin held by this handle (a saved position stays until dropped). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pin.release();
  }

  private assertOpen(): void {
    if (this.closed) throw new VrepError('ERR_INVALID_ARG', 'the cursor is closed');
  }
}
