/**
 * Flow control of One writes (as MongoDB's): a leader acknowledges a One
 * write only while every follower that is streaming holds the log up to
 * FLOW_WINDOW_BYTES before it, for at most FLOW_MAX_HOLD_TICKS after the
 * write's level held. Without it an unthrottled primary outruns replicas
 * that need as much CPU per record as it does, and they hold the last write
 * seconds after its acknowledgement. Pure: the runtime tells it what was
 * appended and asks about each waiting write.
 */
import type { Entry } from '../consensus/messages.ts';

/** Bytes of log a streaming follower may lack before a One write (the write's own record always fits). */
export const FLOW_WINDOW_BYTES = 8 * 1024 * 1024;
/** A One write is held back this many ticks at most: a stalled follower slows One writes, never stops them. */
export const FLOW_MAX_HOLD_TICKS = 100;
/** Appended records whose sizes are remembered (records before them are not counted). */
export const FLOW_TRACKED_RECORDS = 65_536;

export class FlowControl {
  /** LSNs of recent appends, consecutive, oldest first, and bytes appended through each. */
  private readonly lsns: number[] = [];
  private readonly totals: number[] = [];
  private total = 0;
  /** Bytes appended before the first tracked record. */
  private base = 0;

  /** Records appended to the log (a run that starts at or below the last tracked one replaces the tail). */
  appended(entries: readonly Pick<Entry, 'lsn' | 'bytes'>[]): void {
    if (entries.length === 0) return;
    const first = (entries[0] as Entry).lsn;
    // A log cut and appended again: sizes above the cut are void.
    while (this.lsns.length > 0 && (this.lsns.at(-1) as number) >= first) {
      this.lsns.pop();
      this.totals.pop();
      this.total = this.totals.at(-1) ?? this.base;
    }
    if (this.lsns.length === 0) this.base = this.total;
    for (const e of entries) {
      this.total += e.bytes.length;
      this.lsns.push(e.lsn);
      this.totals.push(this.total);
    }
    if (this.lsns.length > FLOW_TRACKED_RECORDS * 2) {
      const drop = this.lsns.length - FLOW_TRACKED_RECORDS;
      this.base = this.totals[drop - 1] as number;
      this.lsns.splice(0, drop);
      this.totals.splice(0, drop);
    }
  }

  /**
   * Bytes appended after `match` and before `lsn`. Records before the first
   * one tracked (appended before this process started) are not counted:
   * that undercounts, so it never holds a write longer than it should.
   */
  bytesBehind(match: number, lsn: number): number {
    const end = this.indexOf(lsn - 1);
    if (end < 0 || match >= lsn - 1) return 0;
    const from = this.indexOf(match);
    return (this.totals[end] as number) - (from >= 0 ? (this.totals[from] as number) : this.base);
  }

  /**
   * Whether One write `lsn`, whose level first held at `heldSinceTick`,
   * waits at `nowTick` for the slowest streaming follower (at `slowest`;
   * Infinity when none streams).
   */
  holds(lsn: number, slowest: number, heldSinceTick: number, nowTick: number): boolean {
    if (slowest >= lsn || nowTick - heldSinceTick >= FLOW_MAX_HOLD_TICKS) return false;
    return this.bytesBehind(slowest, lsn) > FLOW_WINDOW_BYTES;
  }

  private indexOf(lsn: number): number {
    const lsns = this.lsns;
    let lo = 0;
    let hi = lsns.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = lsns[mid] as number;
      if (v === lsn) return mid;
      if (v < lsn) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }
}
