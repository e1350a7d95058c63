/**
 * Hybrid logical clock (Kulkarni et al.): physical milliseconds plus a
 * logical counter, monotonic even when the wall clock steps back, and
 * advanced past any timestamp received from a peer. The wall clock is passed
 * in, so tests and the simulator drive it.
 */
export interface HlcTimestamp {
  ms: number;
  logical: number;
}

export const HLC_MAX_LOGICAL = 0xffff;

export class HybridClock {
  private lastMs = 0;
  private logical = 0;
  private readonly wallMs: () => number;

  constructor(wallMs: () => number) {
    this.wallMs = wallMs;
  }

  /** A timestamp greater than every one this clock returned or observed. */
  now(): HlcTimestamp {
    const wall = Math.floor(this.wallMs());
    if (wall > this.lastMs) {
      this.lastMs = wall;
      this.logical = 0;
    } else if (this.logical < HLC_MAX_LOGICAL) {
      this.logical++;
    } else {
      // Counter exhausted within one millisecond: borrow the next one.
      this.lastMs++;
      this.logical = 0;
    }
    return { ms: this.lastMs, logical: this.logical };
  }

  /** Moves the clock past a timestamp seen in a record (replay or a peer). */
  observe(ts: HlcTimestamp): void {
    if (ts.ms > this.lastMs || (ts.ms === this.lastMs && ts.logical > this.logical)) {
      this.lastMs = ts.ms;
      this.logical = ts.logical;
    }
  }
}
