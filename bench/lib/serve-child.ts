/**
 * A `vrep serve` node (the same `serve()`: ReplicationNode plus its HTTP API)
 * in its own process, driven over IPC by bench/replication-ingest.bench.ts
 * through bench/lib/ingest-client.ts. It writes the TS API case itself
 * (node.writePacked in this process, the batches made here from a seed) and
 * measures its own event-loop delay while an HTTP client in another process
 * writes to it.
 *
 *   fork('bench/lib/serve-child.ts', [dataDir], { execArgv: ['--import', 'tsx'] })
 *
 * Replies {httpPort} once serving; exits when the parent goes away.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { pino } from 'pino';
import { serve, type RunningServer } from '../../src/server/serve.ts';
import { batchPointIds, tsApiBatches } from './ingest-batches.ts';
import { POOL_BATCHES } from './seeded.ts';
import type {
  LoopDelay,
  ServeChildCommand,
  ServeChildReply,
  TsIngestArgs,
  TsIngestResult,
} from './ingest-client.ts';
import { tuneGcForVrep } from '../../src/server/gc-tuning.ts';

// As `vrep serve` does: the figures are a deployed node's.
tuneGcForVrep();

let server: RunningServer | null = null;

function need(): RunningServer {
  if (!server) throw new Error('server not started');
  return server;
}

let loop: IntervalHistogram | null = null;
let cpuAtStart = process.cpuUsage();

function loopStart(): void {
  loop?.disable();
  loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  cpuAtStart = process.cpuUsage();
}

function loopStop(): LoopDelay {
  if (!loop) throw new Error('loopStart first');
  loop.disable();
  const cpu = process.cpuUsage(cpuAtStart);
  const out = {
    cpuMs: (cpu.user + cpu.system) / 1000,
    p99Ms: loop.percentile(99) / 1e6,
    maxMs: loop.max / 1e6,
    meanMs: loop.mean / 1e6,
  };
  loop = null;
  return out;
}

/** The TS API case's vectors and payloads, made once per shape. */
const tsBatches = new Map<string, ReturnType<typeof tsApiBatches>>();

/** The TS API case: `concurrency` writers in this process, each one batch in flight. */
async function tsIngest(a: TsIngestArgs): Promise<TsIngestResult> {
  const node = need().node;
  const key = `${a.shape.seed}/${a.shape.dim}/${a.shape.batchSize}`;
  let batches = tsBatches.get(key);
  if (!batches) tsBatches.set(key, (batches = tsApiBatches(a.shape)));
  const { vectors, payloads } = batches;
  const opts = { consistency: a.consistency, timeoutMs: 60_000 };
  loopStart();
  const t0 = performance.now();
  let next = 0;
  const writer = async (): Promise<void> => {
    while (next < a.maxBatches && performance.now() - t0 < a.durationMs) {
      const b = next++;
      const ids = batchPointIds(a.shape, b);
      const batch = { ids, vectors: vectors[b % POOL_BATCHES] as Float32Array, payloads };
      await node.writePacked(a.collection, batch, opts);
    }
  };
  await Promise.all(Array.from({ length: a.concurrency }, writer));
  const elapsedMs = performance.now() - t0;
  return { vectors: next * a.shape.batchSize, elapsedMs, loopDelay: loopStop() };
}

/** CPU profiles of single cases (the bench's VREP_INGEST_PROFILE_DIR), through the inspector. */
let profiler: Session | null = null;

async function profileStart(): Promise<void> {
  profiler ??= new Session();
  profiler.connect();
  await profiler.post('Profiler.enable');
  await profiler.post('Profiler.start');
}

async function profileStop(file: string): Promise<void> {
  if (!profiler) throw new Error('profileStart first');
  const { profile } = await profiler.post('Profiler.stop');
  writeFileSync(file, JSON.stringify(profile));
  profiler.disconnect();
}

async function run(cmd: ServeChildCommand): Promise<unknown> {
  switch (cmd.cmd) {
    case 'createCollection':
      return need().node.createCollection(cmd.name, { dimension: cmd.dimension, metric: 'cosine' });
    case 'dropCollection':
      return need().node.dropCollection(cmd.name);
    case 'tsIngest':
      return tsIngest(cmd.args);
    case 'snapshot':
      await need().node.snapshot();
      return null;
    case 'loopStart':
      loopStart();
      return null;
    case 'loopStop':
      return loopStop();
    case 'profileStart':
      return profileStart();
    case 'profileStop':
      return profileStop(cmd.file);
    case 'stop':
      if (server) await server.stop();
      server = null;
      return null;
  }
}

function replyError(id: number, err: unknown): void {
  const e = err as { message?: string; code?: string };
  process.send?.({
    id,
    ok: false,
    error: { message: e.message ?? String(err), code: e.code ?? null },
  } satisfies ServeChildReply);
}

process.on('message', (msg: { id: number; command: ServeChildCommand }) => {
  run(msg.command).then(
    (result) => process.send?.({ id: msg.id, ok: true, result } satisfies ServeChildReply),
    (err: unknown) => replyError(msg.id, err),
  );
});
process.on('disconnect', () => process.exit(0));

const dataDir = process.argv[2];
if (dataDir === undefined) throw new Error('usage: serve-child.ts DATA_DIR');
serve({
  // No automatic snapshot inside a case: the bench takes one between cases (empty state, WAL dropped).
  node: { nodeId: 'ingest', dataDir, storage: { fsync: 'everysec', snapshotEveryBytes: 0 } },
  http: { host: '127.0.0.1', port: 0 },
  logger: pino({ level: 'warn' }),
}).then(
  (running) => {
    server = running;
    process.send?.({ id: 0, ok: true, result: { httpPort: running.httpPort } } satisfies ServeChildReply);
  },
  (err: unknown) => replyError(0, err),
);
