/**
 * How long the event loop was blocked: a wrapper over
 * perf_hooks.monitorEventLoopDelay (a libuv timer every `resolutionMs`; the
 * lateness of each tick is recorded in a histogram, in nanoseconds). The
 * issue's budget is "never blocked for more than 10 ms"; the bench and
 * /metrics read max and p99 from here, per window (reset between windows).
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
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
   * Sampling period, ms, in [1, 1000]; default 10 (as prom-client). A block
   * of any length shows in `maxMs` whatever the period; a shorter period
   * only gives the percentiles more samples.
   */
  resolutionMs?: number;
}

const NS_PER_MS = 1e6;

export class EventLoopMonitor {
  readonly resolutionMs: number;
  readonly #histogram: IntervalHistogram;
  #running = false;

  constructor(options: EventLoopMonitorOptions = {}) {
    const { resolutionMs = 10 } = options;
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

  /** Forgets every sample so far: the next read covers only what follows. */
  reset(): void {
    this.#histogram.reset();
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

  /** read() then reset(): one window's figures. */
  takeWindow(): EventLoopDelay {
    const delay = this.read();
    this.reset();
    return delay;
  }
}
