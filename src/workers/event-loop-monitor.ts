/**
 * How long the event loop was blocked: a wrapper over
 * perf_hooks.monitorEventLoopDelay, which runs a timer every `resolutionMs`
 * and records the time between its ticks. A reading is therefore never
 * below the period (an idle loop reads about `resolutionMs`), and a block of
 * B ms reads about B ms. The budget is "never blocked for more than 10 ms",
 * so the default period is 1 ms, well under it. The bench and /metrics read
 * max and p99 from here, per window (reset between windows).
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkInt } from '../native/checks.ts';

export interface EventLoopDelay {
  /** Longest delay seen since the last reset, ms (0 when nothing was sampled). */
  maxMs: number;
  p99Ms: number;
  p50Ms: number;
  meanMs: number;
  /** Timer ticks sampled since the last reset. */
  samples: number;
}

export interface EventLoopMonitorOptions {
  /**
   * Sampling period, ms, in [1, 1000]; default 1. Readings are at least
   * this, so it must sit well below the delay one wants to see (prom-client's
   * 10 ms could not tell a 10 ms block from an idle loop).
   */
  resolutionMs?: number;
}

const NS_PER_MS = 1e6;

export class EventLoopMonitor {
  readonly resolutionMs: number;
  readonly #histogram: IntervalHistogram;
  #running = false;

  constructor(options: EventLoopMonitorOptions = {}) {
    const { resolutionMs = 1 } = options;
    checkInt('EventLoopMonitor', 'options.resolutionMs', resolutionMs, 1, 1000);
    this.resolutionMs = resolutionMs;
    this.#histogram = monitorEventLoopDelay({ resolution: resolutionMs });
  }

  /** Starts sampling (the timer does not keep the process alive). */
  start(): this {
    if (!this.#running) {
      this.#histogram.enable();
      this.#running = true;
    }
    return this;
  }

  stop(): void {
    if (this.#running) {
      this.#histogram.disable();
      this.#running = false;
    }
  }

  /**
   * Forgets every sample so far. Node also forgets the time of the last
   * tick, so the period up to the next tick is not measured: a block that
   * starts right after reset() is missed. Use newWindow() where that matters.
   */
  reset(): void {
    this.#histogram.reset();
  }

  /**
   * reset(), then waits until the sampling timer has ticked again, so
   * everything after this resolves is measured. (libuv runs due timers in
   * order of due time, and the sampler is due before this wait ends.)
   */
  async newWindow(): Promise<void> {
    this.reset();
    await sleep(this.resolutionMs + 1);
  }

  /** Delays since the last reset, ms. */
  read(): EventLoopDelay {
    const h = this.#histogram;
    // An empty histogram reports min as 2^63 and NaN means; say zero instead.
    if (h.count === 0) return { maxMs: 0, p99Ms: 0, p50Ms: 0, meanMs: 0, samples: 0 };
    return {
      maxMs: h.max / NS_PER_MS,
      p99Ms: h.percentile(99) / NS_PER_MS,
      p50Ms: h.percentile(50) / NS_PER_MS,
      meanMs: h.mean / NS_PER_MS,
      samples: h.count,
    };
  }

  /** read() then reset(): one window's figures (see reset() for its blind spot). */
  takeWindow(): EventLoopDelay {
    const delay = this.read();
    this.reset();
    return delay;
  }
}
