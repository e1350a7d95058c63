/**
 * Ingest with the client in another process (issue 12), on one standalone
 * `vrep serve` node (bench/lib/serve-child.ts: `serve()`, fsync everysec,
 * consistency One), batches of 1000, dim 768 and 128, each case in the same
 * run and interleaved over rounds so the shared machine's load hits all alike:
 *  a. TS API: node.writePacked inside the node's process, CONNECTIONS
 *     writers with one batch in flight each: the reference;
 *  b. HTTP binary batches (application/vnd.vrep.batch) from a client process
 *     (bench/lib/http-ingest-child.ts) over CONNECTIONS keep-alive
 *     connections, one request in flight on each; goal >= 0.8x (a);
 *  c. HTTP JSON bodies of the same points from the same client; goal >= 3x
 *     JSON.parse + Float32Array.from of the same bodies (MB/s of JSON, that
 *     baseline measured in this process between the rounds, the node idle);
 *  d. the node's event-loop delay during each case (goal p99 <= 10 ms).
 * Ids are unique over a case (every batch inserts); each case writes into a
 * fresh collection, dropped after it and followed by a snapshot (untimed;
 * automatic snapshots are off), so memory and disk stay bounded and no case
 * pays for a snapshot of another's data.
 *
 *   VREP_BENCH_CHILD_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npm run bench -- replication-ingest
 *   VREP_INGEST_CASES=binary,json   only these HTTP cases (the TS API reference always runs)
 *   VREP_INGEST_DIMS=768,128        only these dimensions
 *   VREP_INGEST_PROFILE_DIR=dir     a CPU profile of the node per counted case, named after it
 */
import path from 'node:path';
import { processBench } from './lib/process-bench.ts';
import { isQuick, measure, type Row, type Section } from './lib/harness.ts';
import { ConsistencyLevel } from '../src/node/consistency.ts';
import { bodyTemplates, type BatchShape, type BodyKind } from './lib/ingest-batches.ts';
import {
  IpcChild,
  type HttpClientCommand,
  type HttpIngestResult,
  type LoopDelay,
  type ServeChildCommand,
  type TsIngestResult,
} from './lib/ingest-client.ts';

const quick = isQuick();
const DIMS = (process.env['VREP_INGEST_DIMS'] ?? '768,128').split(',').map(Number);
const BATCH = 1000;
const SEED = 7;
const CONNECTIONS = 4;
const ROUNDS = quick ? 1 : 3;
const CASE_MS = quick ? 1500 : 3000;
/** Vector bytes one case may write (the node holds them until the case drops its collection). */
const CASE_MAX_BYTES = (quick ? 128 : 768) * 1024 * 1024;
const caseMaxBatches = (dim: number): number => Math.max(1, Math.floor(CASE_MAX_BYTES / (BATCH * dim * 4)));
const CALL_MS = 120_000;
const HTTP_KINDS: BodyKind[] = (process.env['VREP_INGEST_CASES'] ?? 'binary,json')
  .split(',')
  .filter((k): k is BodyKind => k === 'binary' || k === 'json');

const PROFILE_DIR = process.env['VREP_INGEST_PROFILE_DIR'];

const bench = processBench('replication-ingest', quick ? 240_000 : 900_000);

const decoder = new TextDecoder();
/** The plain-JS way to read a JSON batch: decode, JSON.parse, copy every vector into one Float32Array. */
function jsonParseBaseline(bytes: Uint8Array): Float32Array {
  const parsed = JSON.parse(decoder.decode(bytes)) as { points: { id: string; vector: number[] }[] };
  const dimension = parsed.points[0]?.vector.length ?? 0;
  const vectors = new Float32Array(parsed.points.length * dimension);
  parsed.points.forEach((p, i) => vectors.set(Float32Array.from(p.vector), i * dimension));
  return vectors;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const fmtRatios = (xs: number[]): string => xs.map((x) => x.toFixed(2)).join(', ');

interface DimFigures {
  ts: TsIngestResult[];
  http: Map<BodyKind, { result: HttpIngestResult; loopDelay: LoopDelay }[]>;
  /** MB/s of JSON.parse + Float32Array.from, one per round. */
  baselineMBps: number[];
  jsonBodyBytes: number;
}

async function main(): Promise<Section[]> {
  const { child: node, started } = await IpcChild.fork<ServeChildCommand, { httpPort: number }>(
    'node',
    'serve-child.ts',
    [path.join(bench.tmpRoot, 'node')],
    { timeoutMs: 60_000, childArgs: true },
  );
  const { child: client } = await IpcChild.fork<HttpClientCommand, null>(
    'client',
    'http-ingest-child.ts',
    [],
    {
      timeoutMs: 60_000,
      childArgs: false,
    },
  );
  const figures = new Map<number, DimFigures>();
  let caseNo = 0;
  try {
    for (const dim of DIMS) {
      const f: DimFigures = { ts: [], http: new Map(), baselineMBps: [], jsonBodyBytes: 0 };
      figures.set(dim, f);
      const shapeOf = (prefix: string): BatchShape => ({
        seed: SEED,
        dim,
        batchSize: BATCH,
        idPrefix: prefix,
      });
      for (const kind of HTTP_KINDS) {
        const prepared = await client.call<{ bodyBytes: number }>(
          { cmd: 'prepare', shape: shapeOf('p'), kind },
          CALL_MS,
        );
        if (kind === 'json') f.jsonBodyBytes = prepared.bodyBytes;
        f.http.set(kind, []);
      }
      const jsonBodies = HTTP_KINDS.includes('json') ? bodyTemplates(shapeOf('p'), 'json').bodies : [];
      const maxBatches = caseMaxBatches(dim);
      const inCollection = async <T>(label: string, run: (name: string) => Promise<T>): Promise<T> => {
        const name = `c${caseNo++}`;
        await node.call({ cmd: 'createCollection', name, dimension: dim }, CALL_MS);
        if (PROFILE_DIR !== undefined) await node.call({ cmd: 'profileStart' }, CALL_MS);
        try {
          return await run(name);
        } finally {
          if (PROFILE_DIR !== undefined) {
            const file = path.join(PROFILE_DIR, `${name}-${label}-${dim}.cpuprofile`);
            await node.call({ cmd: 'profileStop', file }, CALL_MS);
          }
          await node.call({ cmd: 'dropCollection', name }, CALL_MS);
          // Outside the timed part: the WAL the case wrote goes, so no case pays for another's snapshot.
          await node.call({ cmd: 'snapshot' }, CALL_MS);
        }
      };
      // Round 0 warms up both paths (JIT, buffers, connections) and is not counted.
      for (let round = 0; round <= ROUNDS; round++) {
        const counted = round > 0;
        const durationMs = counted ? CASE_MS : CASE_MS / 3;
        const ts = await inCollection('ts', (collection) =>
          node.call<TsIngestResult>(
            {
              cmd: 'tsIngest',
              args: {
                collection,
                shape: shapeOf('p'),
                consistency: ConsistencyLevel.One,
                concurrency: CONNECTIONS,
                durationMs,
                maxBatches,
              },
            },
            CALL_MS,
          ),
        );
        if (counted) f.ts.push(ts);
        for (const kind of HTTP_KINDS) {
          const r = await inCollection(kind, async (collection) => {
            await node.call({ cmd: 'loopStart' }, CALL_MS);
            const result = await client.call<HttpIngestResult>(
              {
                cmd: 'run',
                args: {
                  port: started.httpPort,
                  collection,
                  shape: shapeOf('p'),
                  kind,
                  consistency: ConsistencyLevel.One,
                  connections: CONNECTIONS,
                  durationMs,
                  maxBatches,
                },
              },
              CALL_MS,
            );
            const loopDelay = await node.call<LoopDelay>({ cmd: 'loopStop' }, CALL_MS);
            return { result, loopDelay };
          });
          if (counted) f.http.get(kind)?.push(r);
        }
        if (counted && jsonBodies.length > 0) {
          let i = 0;
          const m = measure(() => jsonParseBaseline(jsonBodies[i++ % jsonBodies.length] as Uint8Array), {
            minTimeMs: Math.min(CASE_MS, 2000),
          });
          f.baselineMBps.push((m.opsPerSec * f.jsonBodyBytes) / 1e6);
        }
      }
    }
  } finally {
    await node.call({ cmd: 'stop' }, CALL_MS).catch((err: unknown) => bench.problems.push(String(err)));
    await node.close();
    await client.close();
  }
  return report(figures);
}

function report(figures: Map<number, DimFigures>): Section[] {
  const sections: Section[] = [];
  const tsName = (dim: number): string => `TS API node.writePacked in the node's process (dim ${dim})`;
  const goals: Row[] = [];
  const loops: Row[] = [];
  for (const [dim, f] of figures) {
    const tsRates = f.ts.map((r) => (r.vectors * 1000) / r.elapsedMs);
    const cpuPerBatch = (cpuMs: number, vectors: number): number => (cpuMs * BATCH) / vectors;
    const rows: Row[] = [
      {
        name: tsName(dim),
        value: median(tsRates),
        unit: 'vectors/s',
        note: `node CPU ${median(f.ts.map((r) => cpuPerBatch(r.loopDelay.cpuMs, r.vectors))).toFixed(2)} ms per batch; rounds: ${tsRates.map((x) => x.toFixed(0)).join(', ')}`,
      },
    ];
    loops.push({
      name: `TS API, dim ${dim}`,
      value: median(f.ts.map((r) => r.loopDelay.p99Ms)),
      unit: 'ms p99',
      note: `max ${Math.max(...f.ts.map((r) => r.loopDelay.maxMs)).toFixed(1)} ms`,
    });
    for (const [kind, runs] of f.http) {
      const rates = runs.map((r) => (r.result.vectors * 1000) / r.result.elapsedMs);
      const vsTs = rates.map((x, i) => x / (tsRates[i] as number));
      const mbps = runs.map((r) => r.result.bodyBytes / 1e3 / r.result.elapsedMs);
      const label = kind === 'binary' ? 'binary batches' : 'JSON bodies';
      rows.push({
        name: `HTTP ${label}, client process, ${CONNECTIONS} keep-alive connections (dim ${dim})`,
        value: median(rates),
        unit: 'vectors/s',
        ratio: median(vsTs),
        vs: tsName(dim),
        note:
          `${median(mbps).toFixed(0)} MB/s of body, ${median(runs.map((r) => r.result.meanRequestMs)).toFixed(1)} ms per request, ` +
          `CPU per batch: node ${median(runs.map((r) => cpuPerBatch(r.loopDelay.cpuMs, r.result.vectors))).toFixed(2)} ms, ` +
          `client ${median(runs.map((r) => cpuPerBatch(r.result.cpuMs, r.result.vectors))).toFixed(2)} ms; ratio per round: ${fmtRatios(vsTs)}`,
      });
      loops.push({
        name: `HTTP ${label}, dim ${dim}`,
        value: median(runs.map((r) => r.loopDelay.p99Ms)),
        unit: 'ms p99',
        note: `max ${Math.max(...runs.map((r) => r.loopDelay.maxMs)).toFixed(1)} ms`,
      });
      if (kind === 'binary') {
        goals.push({
          name: `HTTP binary / TS API, dim ${dim} (goal >= 0.8)`,
          value: median(vsTs),
          unit: 'x',
          note: `per round: ${fmtRatios(vsTs)}`,
        });
      } else {
        const baseName = `JSON.parse + Float32Array.from of the same bodies (dim ${dim})`;
        const vsBase = mbps.map((x, i) => x / (f.baselineMBps[i] as number));
        rows.push({
          name: baseName,
          value: median(f.baselineMBps),
          unit: 'MB/s',
          note: `this process, node idle; ${(f.jsonBodyBytes / 1e6).toFixed(1)} MB bodies`,
        });
        rows.push({
          name: `HTTP JSON ingest (dim ${dim})`,
          value: median(mbps),
          unit: 'MB/s',
          ratio: median(vsBase),
          vs: baseName,
          note: `ratio per round: ${fmtRatios(vsBase)}`,
        });
        goals.push({
          name: `HTTP JSON ingest / JSON.parse + Float32Array.from, dim ${dim} (goal >= 3)`,
          value: median(vsBase),
          unit: 'x',
          note: `per round: ${fmtRatios(vsBase)}`,
        });
      }
    }
    sections.push({
      title: `ingest, standalone node, fsync everysec, consistency One, dim ${dim}, batches of ${BATCH}, median of ${ROUNDS} interleaved rounds`,
      rows,
    });
  }
  sections.unshift({ title: 'ingest goals (issue 12): ratios within the same run', rows: goals });
  sections.push({ title: "the node's event-loop delay during each case (goal p99 <= 10 ms)", rows: loops });
  return sections;
}

await bench.run(main);
