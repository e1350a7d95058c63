/**
 * When recent LSNs were committed on the primary (wall ms), to measure a
 * replica's lag in time: the age of the oldest write it does not have yet.
 * A fixed ring of (lsn, ms) samples; binary search.
 */
export const COMMIT_TIME_SAMPLES = 65_536;

export class CommitTimes {
  private readonly lsns = new Float64Array(COMMIT_TIME_SAMPLES);
  private readonly times = new Float64Array(COMMIT_TIME_SAMPLES);
  private count = 0;
  private head = 0;

  record(lsn: number, wallMs: number): void {
    const i = (this.head + this.count) % COMMIT_TIME_SAMPLES;
    this.lsns[i] = lsn;
    this.times[i] = wallMs;
    if (this.count < COMMIT_TIME_SAMPLES) this.count++;
    else this.head = (this.head + 1) % COMMIT_TIME_SAMPLES;
  }

  /** Commit time of the first sample with an LSN >= `lsn` (the oldest kept if all are newer); null if none. */
  timeOf(lsn: number): number | null {
    if (this.count === 0) return null;
    let lo = 0;
    let hi = this.count - 1;
    const at = (k: number): number => (this.head + k) % COMMIT_TIME_SAMPLES;
    if ((this.lsns[at(hi)] as number) < lsn) return null;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.lsns[at(mid)] as number) >= lsn) hi = mid;
      else lo = mid + 1;
    }
    return this.times[at(lo)] as number;
  }

  /** Lag of a peer that holds everything up to `ackedLsn`, ms at `nowMs`. */
  lagMs(ackedLsn: number, lastLsn: number, nowMs: number): number {
    if (ackedLsn >= lastLsn) return 0;
    const t = this.timeOf(ackedLsn + 1);
    return t === null ? 0 : Math.max(0, nowMs - t);
  }
}
