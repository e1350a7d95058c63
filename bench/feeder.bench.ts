/**
 * Catch-up encoding, three ways, same records, same run: a feeder sending a
 * replica ~200 MB of dim-768 upserts from the ring in RECORDS frames of
 * FRAME_BYTES, one frame at a time (a real feeder then waits for the link).
 *
 * - event loop: ring read + encodeRecords on the main thread (baseline);
 * - libuv pool: ring read + concat on the main thread, zstd on the libuv
 *   pool (encodeRecordsAsync);
 * - Piscina: FeederPool.encodeFromRing, the worker reads the ring itself.
 *
 * For each: MB/s of raw record bytes, and the event-loop delay (max, p99)
 * while it ran, from EventLoopMonitor (1 ms period: an idle loop reads about
 * 1 ms). The budget: never blocked for more than 10 ms.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  benchTimeMs,
  emit,
  isQuick,
  measureAsync,
  withRatios,
  type Row,
  type Section,
} from './lib/harness.ts';
import { encodeRecord, Op } from '../src/log/record.ts';
import { RingLog } from '../src/native/ring-log.ts';
import {
  encodeRecords,
  encodeRecordsAsync,
  type EncodedRecords,
  type RecordsCompression,
} from '../src/replication/records-payload.ts';
import { FeederPool } from '../src/workers/feeder-pool.ts';
import { EventLoopMonitor, type EventLoopDelay } from '../src/workers/event-loop-monitor.ts';
import { unitVectors } from '../test/native/codec-fixtures.ts';

const quick = isQuick();
const MB = 1e6;
const TOTAL_BYTES = quick ? 20 * MB : 200 * MB;
const DIMENSION = 768;
/** Points per upsert record: ~310 KB records. */
const POINTS = 100;
/** Raw record bytes per catch-up frame. */
const FRAME_BYTES = 4 * 1024 * 1024;
/** Distinct vector blocks; records reuse them (zstd here is per frame, entropy-only on shuffled floats). */
const BLOCKS = 16;
/** Each way runs this many times, interleaved, so a noisy moment on the shared machine hits all of them. */
const ROUNDS = quick ? 1 : 3;

/** Longest GC pause since the last take(), ms: tells a GC pause from a blocking encoder. */
class GcWatch {
  #maxMs = 0;
  readonly #observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) this.#maxMs = Math.max(this.#maxMs, entry.duration);
  });
  constructor() {
    this.#observer.observe({ entryTypes: ['gc'] });
  }
  take(): number {
    const max = this.#maxMs;
    this.#maxMs = 0;
    return max;
  }
  stop(): void {
    this.#observer.disconnect();
  }
}

function buildRing(): { ring: RingLog; lastLsn: number; bytes: number } {
  const blocks = Array.from({ length: BLOCKS }, (_, i) => unitVectors(POINTS, DIMENSION, i + 1));
  const payloads = Array.from({ length: POINTS }, (_, i) =>
    new TextEncoder().encode(JSON.stringify({ title: `document ${i}`, category: ['a', 'b', 'c'][i % 3] })),
  );
  const sample = upsert(1, blocks[0]!, payloads);
  const count = Math.ceil(TOTAL_BYTES / sample.length);
  const ring = new RingLog({
    capacityBytes: Math.ceil((count + 1) * sample.length * 1.01),
    capacityRecords: count + 1,
  });
  let bytes = 0;
  for (let lsn = 1; lsn <= count; lsn++) {
    const record = upsert(lsn, blocks[lsn % BLOCKS]!, payloads);
    ring.append(record);
    bytes += record.length;
  }
  return { ring, lastLsn: count, bytes };
}

function upsert(lsn: number, vectors: Float32Array, payloads: Uint8Array[]): Uint8Array {
  return encodeRecord({
    lsn,
    term: 1,
    hlcMs: 1_700_000_000_000 + lsn,
    hlcLogical: 0,
    origin: 'primary-1',
    collection: 'docs',
    op: Op.Upsert,
    dimension: DIMENSION,
    ids: Array.from({ length: POINTS }, (_, i) => `doc-${lsn}-${i}`),
    vectors,
    payloads,
  });
}

/** As RecordLog.readRing does on the main thread: copy out of the ring, one buffer per record. */
function readFrame(
  ring: RingLog,
  from: number,
  to: number,
  scratch: Uint8Array,
  lengths: Uint32Array,
): Uint8Array[] {
  const n = ring.read(from, to, scratch.subarray(0, FRAME_BYTES), lengths);
  const out: Uint8Array[] = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    out.push(scratch.slice(at, at + lengths[i]!));
    at += lengths[i]!;
  }
  return out;
}

type EncodeFrame = (from: number) => Promise<EncodedRecords>;

interface Pass {
  mbPerSec: number;
  delay: EventLoopDelay;
  frames: number;
  payloadBytes: number;
  /** Slowest single frame, wall ms (how long one frame took end to end). */
  slowestFrameMs: number;
  /** Longest GC pause during the pass, ms. */
  gcMaxMs: number;
  /** Time the event loop was busy (not waiting in epoll) per frame, ms: its share of the work. */
  loopBusyPerFrameMs: number;
}

async function catchUp(
  monitor: EventLoopMonitor,
  gc: GcWatch,
  lastLsn: number,
  rawBytes: number,
  encodeFrame: EncodeFrame,
): Promise<Pass> {
  await monitor.newWindow();
  // GC entries are delivered asynchronously; drop what belongs to earlier work.
  await sleep(1);
  gc.take();
  const elu = performance.eventLoopUtilization();
  let frames = 0;
  let payloadBytes = 0;
  let slowestFrameMs = 0;
  const start = performance.now();
  for (let lsn = 1; lsn <= lastLsn;) {
    const t0 = performance.now();
    const encoded = await encodeFrame(lsn);
    slowestFrameMs = Math.max(slowestFrameMs, performance.now() - t0);
    frames++;
    payloadBytes += encoded.payload.length;
    lsn += encoded.count;
    // A feeder hands the frame to the link and comes back on a later tick.
    await yieldToLoop();
  }
  const elapsedMs = performance.now() - start;
  const delay = monitor.read();
  const busyMs = performance.eventLoopUtilization(elu).active;
  await sleep(1);
  return {
    gcMaxMs: gc.take(),
    loopBusyPerFrameMs: busyMs / frames,
    mbPerSec: rawBytes / MB / (elapsedMs / 1000),
    delay,
    frames,
    payloadBytes,
    slowestFrameMs,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** The same window with nothing encoding: the delay the shared machine causes by itself. */
async function idle(monitor: EventLoopMonitor, gc: GcWatch, ms: number): Promise<Pass> {
  await monitor.newWindow();
  await sleep(1);
  gc.take();
  const end = performance.now() + ms;
  while (performance.now() < end) await sleep(5);
  const delay = monitor.read();
  await sleep(1);
  return {
    mbPerSec: 0,
    delay,
    frames: 0,
    payloadBytes: 0,
    slowestFrameMs: 0,
    gcMaxMs: gc.take(),
    loopBusyPerFrameMs: 0,
  };
}

/**
 * The other end of the scale: a live frame of one small record (under the
 * codec's compression threshold, so a plain copy), where the thread hop is
 * all the pool adds.
 */
async function liveRecord(ring: RingLog, pool: FeederPool): Promise<Section> {
  const record = encodeRecord({
    lsn: ring.lastLsn() + 1,
    term: 1,
    hlcMs: 1_700_000_000_000,
    hlcLogical: 0,
    origin: 'primary-1',
    collection: 'docs',
    op: Op.Upsert,
    dimension: DIMENSION,
    ids: ['doc-live'],
    vectors: unitVectors(1, DIMENSION, 99),
    payloads: [new Uint8Array(0)],
  });
  const compression = { enabled: true, level: 1 };
  const minTimeMs = quick ? 100 : Math.min(benchTimeMs(), 500);
  const onLoop = await measureAsync(async () => encodeRecords([record], compression), { minTimeMs });
  const viaPool = await measureAsync(() => pool.encodeRecords([record], compression), { minTimeMs });
  const name = `one ${record.length}-byte record`;
  return {
    title: `live frame: ${name}, encode latency`,
    rows: withRatios(
      [
        { name: 'event loop (encodeRecords), per frame', value: onLoop.meanMs * 1000, unit: 'µs' },
        { name: 'Piscina (FeederPool.encodeRecords), per frame', value: viaPool.meanMs * 1000, unit: 'µs' },
      ],
      'event loop (encodeRecords), per frame',
    ),
  };
}

async function main(): Promise<void> {
  const { ring, lastLsn, bytes } = buildRing();
  const monitor = new EventLoopMonitor({ resolutionMs: 1 }).start();
  const gc = new GcWatch();
  const pool = new FeederPool(ring.handle, { threads: 1 });
  const scratch = new Uint8Array(FRAME_BYTES);
  const lengths = new Uint32Array(4096);
  const sections: Section[] = [];
  try {
    for (const compression of [
      { enabled: true, level: 1 },
      { enabled: false, level: 1 },
    ] satisfies RecordsCompression[]) {
      const ways: [string, EncodeFrame][] = [
        [
          'event loop (encodeRecords)',
          async (from) => encodeRecords(readFrame(ring, from, lastLsn, scratch, lengths), compression),
        ],
        [
          'libuv pool (encodeRecordsAsync)',
          (from) => encodeRecordsAsync(readFrame(ring, from, lastLsn, scratch, lengths), compression),
        ],
        [
          'Piscina (FeederPool.encodeFromRing, 1 thread)',
          async (from) => {
            const encoded = await pool.encodeFromRing(from, lastLsn, FRAME_BYTES, compression);
            if (encoded === null)
              throw new Error(`LSN ${from} evicted: the ring was sized to hold everything`);
            return encoded;
          },
        ],
      ];
      // Warm-up: JIT, zstd contexts, the pool's thread and its scratch buffer.
      for (const [, encodeFrame] of ways) await catchUp(monitor, gc, Math.min(lastLsn, 40), 1, encodeFrame);
      const runs = new Map<string, Pass[]>(ways.map(([name]) => [name, []]));
      for (let round = 0; round < ROUNDS; round++) {
        for (const [name, encodeFrame] of ways) {
          runs.get(name)!.push(await catchUp(monitor, gc, lastLsn, bytes, encodeFrame));
        }
      }
      // The three ways must produce the same frames.
      const sizes = new Set([...runs.values()].flat().map((p) => `${p.frames}/${p.payloadBytes}`));
      if (sizes.size !== 1) throw new Error(`the ways disagree on frames/bytes: ${[...sizes].join(', ')}`);
      const quiet = await idle(monitor, gc, 500);
      const base = ways[0]![0];
      const first = runs.get(base)![0]!;
      const label = compression.enabled ? `zstd level ${compression.level}, shuffled` : 'uncompressed';
      const note = `${first.frames} frames of ≤${FRAME_BYTES / 2 ** 20} MiB, payload ${(first.payloadBytes / bytes).toFixed(3)} of raw; median of ${ROUNDS}`;
      // Throughput and p99: median over rounds; max: the worst round (the budget is a maximum).
      const group = (
        suffix: string,
        unit: string,
        value: (p: Pass) => number,
        pick: (v: number[]) => number,
      ): Row[] =>
        withRatios(
          [...runs].map(([name, passes]) => ({
            name: `${name}, ${suffix}`,
            value: pick(passes.map(value)),
            unit,
          })),
          `${base}, ${suffix}`,
        );
      const worst = (v: number[]): number => Math.max(...v);
      sections.push({
        title: `catch-up encode of ${(bytes / MB).toFixed(0)} MB dim-${DIMENSION} upserts (${label}): throughput`,
        rows: group('MB/s', 'MB/s', (p) => p.mbPerSec, median).map((r, i) => (i === 0 ? { ...r, note } : r)),
      });
      sections.push({
        title: `catch-up encode (${label}): event-loop delay while it runs (budget 10 ms; 1 ms sampling, so idle reads ~1 ms)`,
        rows: [
          ...group('delay max (worst round)', 'ms', (p) => p.delay.maxMs, worst),
          ...group('delay p99', 'ms', (p) => p.delay.p99Ms, median),
          ...group('event loop busy per frame', 'ms', (p) => p.loopBusyPerFrameMs, median),
          ...group('longest GC pause (worst round)', 'ms', (p) => p.gcMaxMs, worst),
          ...group('slowest frame, wall (worst round)', 'ms', (p) => p.slowestFrameMs, worst),
          {
            name: 'nothing encoding (500 ms), delay max',
            value: quiet.delay.maxMs,
            unit: 'ms',
            note: `the machine's own noise; p99 ${quiet.delay.p99Ms.toFixed(2)} ms, longest GC ${quiet.gcMaxMs.toFixed(2)} ms`,
          },
        ],
      });
    }
    sections.push(await liveRecord(ring, pool));
  } finally {
    monitor.stop();
    gc.stop();
    await pool.close();
  }
  emit('feeder', sections);
}

await main();
