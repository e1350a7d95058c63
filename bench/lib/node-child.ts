/**
 * One vrep node in its own process, driven over the IPC channel by
 * bench/replication.bench.ts and bench/failover.bench.ts (through
 * bench/lib/node-client.ts). Vectors are
 * generated here from a seed, so IPC carries commands and figures only.
 *
 *   fork('bench/lib/node-child.ts', [optionsJson?], { execArgv: ['--import', 'tsx'] })
 *
 * With an options argument the node starts at once; without one the child
 * waits for a `start` command (so a start can be timed without process boot).
 * A second argument `--http` serves the node's HTTP API too (`serve()`, as
 * `vrep serve` does, on a free port of 127.0.0.1), for clients in other
 * processes. Exits when the parent goes away.
 */
import { createWriteStream, mkdirSync, writeFileSync, type WriteStream } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { fsync as fsyncCb, open as openCb, close as closeCb } from 'node:fs';
import { promisify } from 'node:util';
import net from 'node:net';
import path from 'node:path';
import {
  constants,
  monitorEventLoopDelay,
  PerformanceObserver,
  type IntervalHistogram,
  type PerformanceEntry,
} from 'node:perf_hooks';
import { pino } from 'pino';
import { ReplicationNode } from '../../src/node/replication-node.ts';
import { serve, type RunningServer } from '../../src/server/serve.ts';
import type { ReplicationNodeOptions } from '../../src/node/types.ts';
import { batchIds, POOL_BATCHES, vectorPool } from './seeded.ts';
import { wallMs } from './processes.ts';
import type {
  ChildCommand,
  ChildReply,
  IngestArgs,
  IngestResult,
  LoopStats,
  GcPauses,
  TcpCopyHeader,
  Watched,
  WriteArgs,
} from './node-client.ts';
import { tuneGcForVrep } from '../../src/server/gc-tuning.ts';

// As `vrep serve` does: the figures are a deployed node's.
tuneGcForVrep();

const fsync = promisify(fsyncCb);
const openFile = promisify(openCb);
const closeFile = promisify(closeCb);

let node: ReplicationNode | null = null;
let server: RunningServer | null = null;
const withHttp = process.argv[3] === '--http';

function need(): ReplicationNode {
  if (!node) throw new Error('node not started');
  return node;
}

async function start(options: ReplicationNodeOptions): Promise<unknown> {
  if (node) throw new Error('node already started');
  if (withHttp) {
    server = await serve({
      node: options,
      http: { host: '127.0.0.1', port: 0 },
      logger: pino({ level: 'warn' }),
    });
    node = server.node;
  } else {
    node = await ReplicationNode.start(options);
  }
  return {
    nodeId: node.nodeId,
    peerPort: node.peerPort,
    lastLsn: node.lastLsn,
    httpPort: server?.httpPort ?? null,
  };
}

// ---- event-loop delay, GC pauses and CPU of this process, between loopStart and loopStop ---

/** Counts the main thread's GC pauses from now until the returned stop() (which detaches). */
function watchGc(): () => GcPauses {
  const pauses: GcPauses = { count: 0, totalMs: 0, maxMs: 0, majorCount: 0, majorMs: 0 };
  const add = (list: PerformanceEntry[]): void => {
    for (const e of list) {
      pauses.count++;
      pauses.totalMs += e.duration;
      pauses.maxMs = Math.max(pauses.maxMs, e.duration);
      if (
        (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ===
        constants.NODE_PERFORMANCE_GC_MAJOR
      ) {
        pauses.majorCount++;
        pauses.majorMs += e.duration;
      }
    }
  };
  const observer = new PerformanceObserver((list) => add(list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  return () => {
    // Entries are delivered asynchronously: take the ones not delivered yet.
    add(observer.takeRecords());
    observer.disconnect();
    return pauses;
  };
}

/**
 * VREP_BENCH_HEAP_PROFILE_DIR=dir: a sampling heap profile of this process
 * per loopStart..loopStop window, written there as
 * `<nodeId>-<n>.heapprofile` (Chrome DevTools format). It keeps the samples
 * of objects the GC already collected too, so it shows what a window
 * allocated, garbage included, not only what is still live.
 */
const HEAP_PROFILE_DIR = process.env['VREP_BENCH_HEAP_PROFILE_DIR'];
let heapSession: Session | null = null;
let heapProfiles = 0;

async function heapSampleStart(): Promise<void> {
  if (!HEAP_PROFILE_DIR) return;
  if (!heapSession) {
    heapSession = new Session();
    heapSession.connect();
  }
  await heapSession.post('HeapProfiler.startSampling', {
    samplingInterval: 64 * 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
}

async function heapSampleStop(): Promise<void> {
  if (!HEAP_PROFILE_DIR || !heapSession) return;
  const { profile } = await heapSession.post('HeapProfiler.stopSampling');
  mkdirSync(HEAP_PROFILE_DIR, { recursive: true });
  const name = `${node?.nodeId ?? process.pid}-${++heapProfiles}.heapprofile`;
  writeFileSync(path.join(HEAP_PROFILE_DIR, name), JSON.stringify(profile));
}

let loop: IntervalHistogram | null = null;
let gcStop: (() => GcPauses) | null = null;
let cpuAtStart = process.cpuUsage();

function loopStart(): void {
  loop?.disable();
  gcStop?.();
  loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  gcStop = watchGc();
  cpuAtStart = process.cpuUsage();
}

function loopStop(): LoopStats {
  if (!loop || !gcStop) throw new Error('loopStart first');
  loop.disable();
  const cpu = process.cpuUsage(cpuAtStart);
  const out = {
    p99Ms: loop.percentile(99) / 1e6,
    maxMs: loop.max / 1e6,
    meanMs: loop.mean / 1e6,
    cpuMs: (cpu.user + cpu.system) / 1000,
    gc: gcStop(),
  };
  loop = null;
  gcStop = null;
  return out;
}

// ---- ingest -----------------------------------------------------------------

async function ingest(a: IngestArgs): Promise<IngestResult> {
  const n = need();
  const pool = vectorPool(a.seed, a.dim, a.batchSize);
  const payloads = Array.from({ length: a.batchSize }, () => new Uint8Array(0));
  const commits: [number, number, number][] = [];
  const loop = monitorEventLoopDelay({ resolution: 1 });
  const opts = { consistency: a.consistency, timeoutMs: 60_000 };
  loop.enable();
  const stopGc = watchGc();
  const startWallMs = wallMs();
  const t0 = performance.now();
  let batches = 0;
  let lastLsn = 0;
  while (batches < a.maxBatches && performance.now() - t0 < a.durationMs) {
    if (a.ratePerSec !== undefined) {
      const dueMs = t0 + (batches * a.batchSize * 1000) / a.ratePerSec;
      const waitMs = dueMs - performance.now();
      if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
    }
    const vectors = pool[batches % POOL_BATCHES] as Float32Array;
    const ids = batchIds(a.idPrefix, batches, a.batchSize);
    const calledMs = a.recordCommits ? wallMs() : 0;
    const result = await n.writePacked(a.collection, { ids, vectors, payloads }, opts);
    lastLsn = result.lsn;
    if (a.recordCommits) commits.push([result.lsn, calledMs, wallMs()]);
    batches++;
  }
  const elapsedMs = performance.now() - t0;
  loop.disable();
  const gc = stopGc();
  return {
    vectors: batches * a.batchSize,
    batches,
    elapsedMs,
    vectorsPerSec: (batches * a.batchSize * 1000) / elapsedMs,
    startWallMs,
    endWallMs: startWallMs + elapsedMs,
    lastLsn,
    loopDelay: {
      maxMs: loop.max / 1e6,
      p99Ms: loop.percentile(99) / 1e6,
      meanMs: loop.mean / 1e6,
      gc,
    },
    commits,
  };
}

// ---- one batch (a client outside the node drives the pace) ------------------

/** One batch of seeded vectors, written by the parent's call (the client lives in the parent). */

/** Pools by seed/dim/batch size, built on the first write that needs one. */
const pools = new Map<string, Float32Array[]>();

async function write(a: WriteArgs): Promise<{ lsn: number }> {
  const key = `${a.seed}/${a.dim}/${a.batchSize}`;
  let pool = pools.get(key);
  if (!pool) pools.set(key, (pool = vectorPool(a.seed, a.dim, a.batchSize)));
  const vectors = pool[a.batch % POOL_BATCHES] as Float32Array;
  const ids = batchIds(a.idPrefix, a.batch, a.batchSize);
  const payloads = Array.from({ length: a.batchSize }, () => new Uint8Array(0));
  const result = await need().writePacked(
    a.collection,
    { ids, vectors, payloads },
    { consistency: a.consistency, timeoutMs: a.timeoutMs },
  );
  return { lsn: result.lsn };
}

// ---- when records became durable and applied here -----------------------------

/** Polled every 1 ms: [LSN, wall ms] each time the applied (lastLsn) or the durable LSN changed. */
let watched: Watched = { applied: [], durable: [] };
let watchTimer: NodeJS.Timeout | null = null;
const MAX_WATCH_ENTRIES = 1_000_000;

function watch(): void {
  const n = need();
  watched = { applied: [], durable: [] };
  let applied = n.lastLsn;
  let durable = n.durableLsn;
  watchTimer = setInterval(() => {
    const a = n.lastLsn;
    const d = n.durableLsn;
    if (a === applied && d === durable) return;
    const now = wallMs();
    if (a !== applied && watched.applied.length < MAX_WATCH_ENTRIES) watched.applied.push([a, now]);
    if (d !== durable && watched.durable.length < MAX_WATCH_ENTRIES) watched.durable.push([d, now]);
    applied = a;
    durable = d;
  }, 1);
}

function unwatch(): Watched {
  if (watchTimer) clearInterval(watchTimer);
  watchTimer = null;
  const out = watched;
  watched = { applied: [], durable: [] };
  return out;
}

// ---- raw TCP receiver (the full-sync bound) -----------------------------------

/**
 * Receives files sent as [u32 header length][header JSON][bytes] and writes
 * each into `dir`, fsyncing it, like a replica storing a snapshot.
 */
let received: Promise<{ bytes: number; files: number }> | null = null;

async function tcpReceive(dir: string): Promise<{ port: number }> {
  mkdirSync(dir, { recursive: true });
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  received = new Promise((resolve, reject) => {
    server.once('connection', (socket) => {
      server.close();
      let buf: Buffer = Buffer.alloc(0);
      let current: { out: WriteStream; left: number; name: string } | null = null;
      let bytes = 0;
      let files = 0;
      const finishFile = async (name: string, out: WriteStream): Promise<void> => {
        await new Promise<void>((r, j) => out.end((err?: Error | null) => (err ? j(err) : r())));
        const fd = await openFile(path.join(dir, name), 'r');
        await fsync(fd);
        await closeFile(fd);
      };
      const flushes: Promise<void>[] = [];
      socket.on('data', (chunk: Buffer) => {
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
        for (;;) {
          if (!current) {
            if (buf.length < 4) break;
            const headerLen = buf.readUInt32LE(0);
            if (buf.length < 4 + headerLen) break;
            const header = JSON.parse(buf.toString('utf8', 4, 4 + headerLen)) as TcpCopyHeader;
            buf = buf.subarray(4 + headerLen);
            if (header.end) {
              socket.end();
              Promise.all(flushes).then(() => resolve({ bytes, files }), reject);
              return;
            }
            current = {
              out: createWriteStream(path.join(dir, header.name)),
              left: header.bytes,
              name: header.name,
            };
          }
          const take = Math.min(current.left, buf.length);
          if (take > 0) {
            // Disk slower than the socket: stop reading until the file catches up.
            // (A stream being ended emits no 'drain': 'finish' resumes then.)
            const out = current.out;
            if (!out.write(buf.subarray(0, take))) {
              socket.pause();
              const resume = (): void => {
                out.off('drain', resume);
                out.off('finish', resume);
                socket.resume();
              };
              out.on('drain', resume);
              out.on('finish', resume);
            }
            buf = buf.subarray(take);
            current.left -= take;
            bytes += take;
          }
          if (current.left > 0) break;
          flushes.push(finishFile(current.name, current.out));
          files++;
          current = null;
        }
      });
      socket.on('error', reject);
    });
  });
  return { port };
}

// ---- command loop -------------------------------------------------------------

async function run(cmd: ChildCommand): Promise<unknown> {
  switch (cmd.cmd) {
    case 'start':
      return start(cmd.options);
    case 'createCollection':
      return need().createCollection(cmd.name, { dimension: cmd.dimension, metric: cmd.metric });
    case 'dropCollection':
      return need().dropCollection(cmd.name);
    case 'ingest':
      return ingest(cmd.args);
    case 'write':
      return write(cmd.args);
    case 'status': {
      const n = need();
      return { lastLsn: n.lastLsn, durableLsn: n.durableLsn, status: n.replicationStatus() };
    }
    case 'digest':
      return need().digest(cmd.collection);
    case 'snapshot': {
      const info = await need().snapshot();
      return { dir: info.dir, bytes: info.bytes, lsn: info.manifest.lsn };
    }
    case 'watch':
      watch();
      return null;
    case 'unwatch':
      return unwatch();
    case 'loopStart':
      loopStart();
      await heapSampleStart();
      return null;
    case 'loopStop': {
      const stats = loopStop();
      await heapSampleStop();
      return stats;
    }
    case 'tcpReceive':
      return tcpReceive(cmd.dir);
    case 'tcpReceived':
      if (!received) throw new Error('tcpReceive first');
      return received;
    case 'stop':
      if (server) await server.stop();
      else if (node) await node.stop();
      node = null;
      server = null;
      return null;
  }
}

process.on('message', (msg: { id: number; command: ChildCommand }) => {
  run(msg.command).then(
    (result) => process.send?.({ id: msg.id, ok: true, result } satisfies ChildReply),
    (err: unknown) => {
      const e = err as { message?: string; code?: string };
      process.send?.({
        id: msg.id,
        ok: false,
        error: { message: e.message ?? String(err), code: e.code ?? null },
      } satisfies ChildReply);
    },
  );
});
// The parent is gone (or done with us): nothing left to do.
process.on('disconnect', () => process.exit(0));

const optionsArg = process.argv[2];
if (optionsArg) {
  start(JSON.parse(optionsArg) as ReplicationNodeOptions).then(
    (result) => process.send?.({ id: 0, ok: true, result } satisfies ChildReply),
    (err: unknown) => {
      const e = err as { message?: string; code?: string };
      process.send?.({
        id: 0,
        ok: false,
        error: { message: e.message ?? String(err), code: e.code ?? null },
      } satisfies ChildReply);
    },
  );
} else {
  process.send?.({ id: 0, ok: true, result: null } satisfies ChildReply);
}
