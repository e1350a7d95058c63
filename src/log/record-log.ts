/**
 * The node's log: the native circular log holds the recent records in
 * memory for fast reads (by feeders, in any thread); the WAL holds
 * everything since the last snapshot. A read that fell out of memory is
 * served from disk, not refused. Both hold the same encoded bytes.
 *
 * The log can shrink as well as grow: `truncateAfter` drops a divergent
 * tail from both (ring readers see the truncation, never the dropped bytes
 * as current), `resetAt` empties both to continue after an installed
 * snapshot.
 */
import { RingLog } from '../native/ring-log.ts';
import { isVrepError, VrepError } from '../errors.ts';
import { recordLsn, RECORD_TERM_OFFSET } from './record.ts';
import type { Wal } from './wal.ts';

export interface RecordLogOptions {
  /** Bytes of recent records kept in memory; also the largest record accepted. */
  ringCapacityBytes: number;
  /** Records kept in memory at most (Vectorizer's log_size). */
  ringCapacityRecords: number;
}

export class RecordLog {
  readonly ring: RingLog;
  readonly wal: Wal;
  private scratch: Uint8Array;
  private scratchLengths = new Uint32Array(1024);

  /**
   * `recent`: the newest records already in the WAL (ending at its last
   * LSN), put back in memory after a restart.
   */
  constructor(wal: Wal, opts: RecordLogOptions, recent: readonly Uint8Array[] = []) {
    this.wal = wal;
    const first = recent[0];
    this.ring = new RingLog({
      capacityBytes: opts.ringCapacityBytes,
      capacityRecords: opts.ringCapacityRecords,
      startLsn: first ? recordLsn(first) : wal.lastLsn + 1,
    });
    for (const r of recent) this.ring.append(r);
    if (this.ring.lastLsn() !== wal.lastLsn) {
      throw new Error(`recovered records end at ${this.ring.lastLsn()}, the WAL at ${wal.lastLsn}`);
    }
    this.scratch = new Uint8Array(Math.min(opts.ringCapacityBytes, 16 * 1024 * 1024));
  }

  /** The largest record the log accepts (it must fit in the ring). */
  get maxRecordBytes(): number {
    return this.ring.capacityBytes;
  }

  get lastLsn(): number {
    return this.wal.lastLsn;
  }

  /** Oldest LSN readable (from memory or disk). */
  get firstLsn(): number {
    return Math.min(this.wal.firstLsn, this.ring.firstLsn());
  }

  /**
   * Appends records with consecutive LSNs after lastLsn: in memory at once,
   * on disk per the fsync policy (the promise). Throws, changing nothing,
   * when the records cannot be appended (too large, wrong LSN, WAL failed or
   * closed).
   */
  append(records: Uint8Array[]): Promise<void> {
    // Everything is checked first and a refusal throws, so the caller knows
    // synchronously that neither log (nor its own state) may change.
    for (const r of records) {
      if (r.length > this.ring.capacityBytes) {
        throw new VrepError(
          'ERR_RECORD_TOO_LARGE',
          `record of ${r.length} bytes exceeds the log's ${this.ring.capacityBytes}`,
        );
      }
    }
    this.wal.checkAppend(records);
    const durable = this.wal.append(records);
    for (const r of records) {
      const lsn = this.ring.append(r);
      if (lsn !== recordLsn(r)) throw new Error(`ring LSN ${lsn} disagrees with record LSN ${recordLsn(r)}`);
    }
    return durable;
  }

  /**
   * Records [fromLsn, toLsn] (clipped to lastLsn), at most about `maxBytes`
   * (always at least one record when any is in range): from memory when
   * held there, else from the WAL. ERR_LSN_EVICTED when neither has it.
   */
  async read(fromLsn: number, toLsn: number, maxBytes: number): Promise<Uint8Array[]> {
    const to = Math.min(toLsn, this.ring.lastLsn());
    if (fromLsn > to) return [];
    if (fromLsn >= this.ring.firstLsn()) {
      try {
        return this.readRing(fromLsn, to, maxBytes);
      } catch (err) {
        if (!isVrepError(err, 'ERR_LSN_EVICTED')) throw err;
        // Overwritten while we read: the WAL has it.
      }
    }
    return this.wal.read(fromLsn, to, maxBytes);
  }

  private readRing(from: number, to: number, maxBytes: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let total = 0;
    let lsn = from;
    while (lsn <= to && total < maxBytes) {
      let n: number;
      try {
        n = this.ring.read(lsn, to, this.scratch, this.scratchLengths);
      } catch (err) {
        if (!isVrepError(err, 'ERR_BUFFER_TOO_SMALL')) throw err;
        this.scratch = new Uint8Array(this.ring.capacityBytes);
        continue;
      }
      let at = 0;
      for (let i = 0; i < n; i++) {
        const len = this.scratchLengths[i] as number;
        // The batch read may hold more than asked for: stop at the byte budget (one record at least).
        if (out.length > 0 && total + len > maxBytes) return out;
        out.push(this.scratch.slice(at, at + len));
        at += len;
        total += len;
      }
      lsn += n;
    }
    return out;
  }

  /**
   * How many times the log was cut (truncated or reset). While it stays the
   * same, the record at an LSN stays the same bytes; after a cut the LSN may
   * hold another record. It moves before and after each cut, so whatever
   * read the log meanwhile is counted as before the cut.
   */
  get cuts(): number {
    return this.cutCount;
  }

  private cutCount = 0;

  /** Drops every record above `lsn`, from the WAL (waiting for appends in flight) and the ring. */
  async truncateAfter(lsn: number): Promise<number> {
    this.cutCount++;
    try {
      const dropped = await this.wal.truncateAfter(lsn);
      this.ring.truncateAfter(lsn);
      return dropped;
    } finally {
      this.cutCount++;
    }
  }

  /** Empties the log; the next record is `nextLsn`. */
  async resetAt(nextLsn: number): Promise<void> {
    this.cutCount++;
    try {
      await this.wal.resetAt(nextLsn);
      this.ring.resetTo(nextLsn);
    } finally {
      this.cutCount++;
    }
  }

  /** Bytes of the record at `lsn` when the circular log holds it (null when it does not). */
  bytesInRing(lsn: number): number | null {
    if (lsn < this.ring.firstLsn() || lsn > this.ring.lastLsn()) return null;
    try {
      this.ring.peek(lsn, 0, this.lengthField);
    } catch (err) {
      if (isVrepError(err, 'ERR_LSN_EVICTED') || isVrepError(err, 'ERR_LSN_TRUNCATED')) return null;
      throw err;
    }
    return new DataView(this.lengthField.buffer).getUint32(0, true);
  }

  private readonly lengthField = new Uint8Array(4);

  /** Term of the record at `lsn`: from its header in memory, else on disk. */
  async termAt(lsn: number): Promise<number> {
    if (lsn >= this.ring.firstLsn() && lsn <= this.ring.lastLsn()) {
      try {
        this.ring.peek(lsn, RECORD_TERM_OFFSET, this.termField);
        return Number(new DataView(this.termField.buffer).getBigUint64(0, true));
      } catch (err) {
        if (!isVrepError(err, 'ERR_LSN_EVICTED') && !isVrepError(err, 'ERR_LSN_TRUNCATED')) throw err;
      }
    }
    return this.wal.termAt(lsn);
  }

  private readonly termField = new Uint8Array(8);

  async close(): Promise<void> {
    await this.wal.close();
  }
}
