/**
 * Simulated time: a queue of events ordered by virtual milliseconds (and by
 * insertion among equals), run one at a time. Nothing in the simulation
 * waits on the real clock.
 */
interface Event {
  atMs: number;
  seq: number;
  run: () => void;
}

export class Scheduler {
  nowMs = 0;
  private seq = 0;
  private readonly heap: Event[] = [];
  /** Events run so far (a bound on runaway simulations). */
  steps = 0;

  at(atMs: number, run: () => void): void {
    this.push({ atMs: Math.max(atMs, this.nowMs), seq: this.seq++, run });
  }

  after(delayMs: number, run: () => void): void {
    this.at(this.nowMs + delayMs, run);
  }

  get pending(): number {
    return this.heap.length;
  }

  /** Runs events until `untilMs` (or none left); returns false when the step budget ran out. */
  runUntil(untilMs: number, maxSteps: number): boolean {
    while (this.heap.length > 0 && (this.heap[0] as Event).atMs <= untilMs) {
      if (this.steps++ > maxSteps) return false;
      const e = this.pop();
      this.nowMs = e.atMs;
      e.run();
    }
    this.nowMs = Math.max(this.nowMs, untilMs);
    return true;
  }

  private push(e: Event): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(e, h[parent] as Event)) break;
      h[i] = h[parent] as Event;
      i = parent;
    }
    h[i] = e;
  }

  private pop(): Event {
    const h = this.heap;
    const top = h[0] as Event;
    const last = h.pop() as Event;
    if (h.length === 0) return top;
    h[0] = last;
    for (let i = 0; ;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l] as Event, h[m] as Event)) m = l;
      if (r < h.length && before(h[r] as Event, h[m] as Event)) m = r;
      if (m === i) break;
      const t = h[i] as Event;
      h[i] = h[m] as Event;
      h[m] = t;
      i = m;
    }
    return top;
  }
}

function before(a: Event, b: Event): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
}
