/**
 * Token-bucket bandwidth throttle for one link. Pure: the caller passes the
 * time (ms) in, so tests and the simulator drive it.
 *
 * Two classes of traffic share the bucket: `live` (new records) and `bulk`
 * (catch-up and full-sync). Bulk may only spend tokens above a reserve kept
 * for live traffic, so a full sync throttled to the link's budget never
 * starves the records written meanwhile.
 */
export type TrafficClass = 'live' | 'bulk';

export interface ThrottleOptions {
  /** Sustained rate. */
  bytesPerSec: number;
  /** Bucket size: the most that can go out at once after an idle period. Default: 1/4 s of rate. */
  burstBytes?: number;
  /** Share of the bucket bulk traffic may not use, in [0, 1). Default 0.25. */
  liveReserve?: number;
}

export class TokenBucket {
  readonly bytesPerSec: number;
  readonly burstBytes: number;
  private readonly reserveBytes: number;
  private tokens: number;
  private lastMs: number;

  constructor(opts: ThrottleOptions, nowMs: number) {
    if (!(opts.bytesPerSec > 0) || !Number.isFinite(opts.bytesPerSec)) {
      throw new RangeError(`bytesPerSec: expected a positive number, got ${opts.bytesPerSec}`);
    }
    const reserve = opts.liveReserve ?? 0.25;
    if (!(reserve >= 0 && reserve < 1))
      throw new RangeError(`liveReserve: expected a number in [0, 1), got ${reserve}`);
    this.bytesPerSec = opts.bytesPerSec;
    this.burstBytes = opts.burstBytes ?? Math.max(1, Math.floor(opts.bytesPerSec / 4));
    if (!(this.burstBytes > 0))
      throw new RangeError(`burstBytes: expected a positive number, got ${this.burstBytes}`);
    this.reserveBytes = this.burstBytes * reserve;
    this.tokens = this.burstBytes;
    this.lastMs = nowMs;
  }

  private refill(nowMs: number): void {
    if (nowMs > this.lastMs) {
      this.tokens = Math.min(
        this.burstBytes,
        this.tokens + ((nowMs - this.lastMs) * this.bytesPerSec) / 1000,
      );
      this.lastMs = nowMs;
    }
  }

  /**
   * How long to wait (ms) before `bytes` of this class may be sent; 0 means
   * now. Does not take the tokens: call `take` when the bytes go out.
   * A message larger than the bucket waits for a full bucket and then goes
   * (the debt is paid by the next messages).
   */
  delayMs(bytes: number, cls: TrafficClass, nowMs: number): number {
    this.refill(nowMs);
    const floor = cls === 'bulk' ? this.reserveBytes : 0;
    const need = Math.min(bytes, this.burstBytes - floor) + floor;
    if (this.tokens >= need) return 0;
    return Math.ceil(((need - this.tokens) * 1000) / this.bytesPerSec);
  }

  /** Spends tokens for bytes sent (may go negative: a debt later traffic waits out). */
  take(bytes: number, nowMs: number): void {
    this.refill(nowMs);
    this.tokens -= bytes;
  }
}
