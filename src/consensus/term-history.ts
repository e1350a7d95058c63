/**
 * The log's identity: which epoch wrote each LSN. An epoch is one leader's
 * term of office: a term number, the leader, a random history id and the
 * first LSN it wrote (Kafka's leader-epoch cache, KIP-101; Redis PSYNC2's
 * replication ids are the history ids). A record's identity is (epoch, LSN);
 * its header carries the epoch's term.
 *
 * Two logs hold the same record at an LSN exactly when they hold it in the
 * same epoch (same history id): an epoch's records are written by one
 * leader, at consecutive LSNs, and never rewritten. History ids, not term
 * numbers, decide equality, because with manual roles two nodes can claim
 * the same term (an old primary restarted after a failover), and a wiped
 * node can repeat a term it no longer remembers.
 *
 * Pure and small: one entry per epoch that wrote records (kept at most
 * MAX_EPOCHS; older ones are folded, since nothing below a snapshot is ever
 * compared).
 */
import { assert } from './assert.ts';

export interface Epoch {
  term: number;
  /** 32 lowercase hex digits, fresh per epoch. */
  historyId: string;
  leaderId: string;
  /** First LSN written in this epoch. */
  firstLsn: number;
}

/** Epochs kept; beyond this the oldest are folded into their successor. */
export const MAX_EPOCHS = 1024;

export class TermHistory {
  /** Ascending by firstLsn (and by term); never empty once a record exists. */
  private readonly epochs: Epoch[];

  constructor(epochs: readonly Epoch[] = []) {
    this.epochs = epochs.map((e) => ({ ...e }));
    for (let i = 1; i < this.epochs.length; i++) {
      const prev = this.epochs[i - 1] as Epoch;
      const e = this.epochs[i] as Epoch;
      assert(e.firstLsn >= prev.firstLsn, `epoch ${e.historyId} starts before its predecessor`);
    }
  }

  get length(): number {
    return this.epochs.length;
  }

  list(): Epoch[] {
    return this.epochs.map((e) => ({ ...e }));
  }

  get last(): Epoch | undefined {
    return this.epochs.at(-1);
  }

  /** The epoch that wrote `lsn` (undefined for lsn < 1 or before the first epoch). */
  epochAt(lsn: number): Epoch | undefined {
    if (lsn < 1) return undefined;
    // Epochs with no records (firstLsn equal to the next one's) are skipped:
    // the last epoch starting at or before lsn wrote it.
    let lo = 0;
    let hi = this.epochs.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((this.epochs[mid] as Epoch).firstLsn <= lsn) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? undefined : this.epochs[found];
  }

  /** Term of the record at `lsn`; 0 for lsn 0 (the empty log). */
  termAt(lsn: number): number {
    return this.epochAt(lsn)?.term ?? 0;
  }

  /**
   * Starts an epoch at `firstLsn` (the next LSN to write). An epoch that
   * never wrote anything (same firstLsn as the last one) is replaced.
   */
  begin(epoch: Epoch): void {
    const last = this.epochs.at(-1);
    if (last) {
      assert(
        epoch.firstLsn >= last.firstLsn,
        `epoch ${epoch.historyId} would start before ${last.historyId}`,
      );
      assert(epoch.term >= last.term, `epoch term ${epoch.term} below ${last.term}`);
      if (last.firstLsn === epoch.firstLsn) this.epochs.pop();
    }
    this.epochs.push({ ...epoch });
    this.fold();
  }

  /** Forgets epochs that start above `lsn` (the records above it are being dropped). */
  truncateAfter(lsn: number): void {
    while (this.epochs.length > 0 && (this.epochs.at(-1) as Epoch).firstLsn > lsn) this.epochs.pop();
  }

  /**
   * The highest LSN at which this log (ending at `lastLsn`) and `other`
   * (ending at `otherLastLsn`) hold the same record: the end of their last
   * common epoch, capped by both lengths. 0 when they share none.
   */
  matchPoint(lastLsn: number, other: TermHistory, otherLastLsn: number): number {
    const limit = Math.min(lastLsn, otherLastLsn);
    let match = 0;
    // The epochs' records are contiguous, so the logs agree on a prefix made
    // of whole common epochs and a common part of the next one.
    for (let i = 0; i < this.epochs.length; i++) {
      const e = this.epochs[i] as Epoch;
      if (e.firstLsn > limit) break;
      const myEnd = this.endOf(i, lastLsn);
      if (myEnd < e.firstLsn) continue; // an epoch that wrote nothing
      const theirs = other.epochAt(e.firstLsn);
      if (theirs === undefined || theirs.historyId !== e.historyId) break;
      const end = Math.min(myEnd, other.endOfEpochAt(e.firstLsn, otherLastLsn), limit);
      match = end;
      if (end < myEnd) break; // one side left this epoch (or ends) before the other
    }
    return match;
  }

  /** Last LSN written by epoch `index` in a log ending at `lastLsn`. */
  private endOf(index: number, lastLsn: number): number {
    const next = this.epochs[index + 1];
    return next === undefined ? lastLsn : Math.min(lastLsn, next.firstLsn - 1);
  }

  private endOfEpochAt(lsn: number, lastLsn: number): number {
    let index = -1;
    for (let i = 0; i < this.epochs.length; i++) if ((this.epochs[i] as Epoch).firstLsn <= lsn) index = i;
    return index < 0 ? 0 : this.endOf(index, lastLsn);
  }

  /** Epochs that cover LSNs up to `lsn` (for a snapshot's manifest). */
  upTo(lsn: number): Epoch[] {
    return this.epochs.filter((e) => e.firstLsn <= Math.max(lsn, 1)).map((e) => ({ ...e }));
  }

  /** Equal epoch lists (same ids, terms and starts). */
  equals(other: TermHistory): boolean {
    if (other.epochs.length !== this.epochs.length) return false;
    return this.epochs.every((e, i) => {
      const o = other.epochs[i] as Epoch;
      return o.historyId === e.historyId && o.firstLsn === e.firstLsn && o.term === e.term;
    });
  }

  private fold(): void {
    // The oldest epochs only matter for comparisons far below any snapshot.
    while (this.epochs.length > MAX_EPOCHS) this.epochs.shift();
  }
}
