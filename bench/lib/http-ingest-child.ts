/**
 * The HTTP client of the ingest bench, in its own process as a user's would
 * be: `connections` keep-alive connections (node:http Agent), each with one
 * POST /collections/{name}/points in flight, sending the bench's batches as
 * binary batch or JSON bodies (bench/lib/ingest-batches.ts). Bodies are
 * built once per shape ('prepare') and retargeted to each batch's ids in
 * place, so the client's own CPU stays small.
 *
 *   fork('bench/lib/http-ingest-child.ts', [], { execArgv: ['--import', 'tsx'] })
 */
import http from 'node:http';
import { bodyTemplates, retarget, type BodyTemplates } from './ingest-batches.ts';
import { POOL_BATCHES } from './seeded.ts';
import type {
  HttpClientCommand,
  HttpIngestArgs,
  HttpIngestResult,
  ServeChildReply,
} from './ingest-client.ts';

const CONTENT_TYPES = { binary: 'application/vnd.vrep.batch', json: 'application/json' } as const;

const templates = new Map<string, BodyTemplates>();
const keyOf = (a: {
  shape: { seed: number; dim: number; batchSize: number; idPrefix: string };
  kind: string;
}): string => `${a.kind}/${a.shape.seed}/${a.shape.dim}/${a.shape.batchSize}/${a.shape.idPrefix}`;

function post(agent: http.Agent, a: HttpIngestArgs, body: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: a.port,
        method: 'POST',
        path: `/collections/${a.collection}/points?consistency=${a.consistency}`,
        agent,
        headers: { 'content-type': CONTENT_TYPES[a.kind], 'content-length': body.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode === 200) resolve();
          else reject(new Error(`POST points: ${res.statusCode} ${Buffer.concat(chunks).toString()}`));
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function runIngest(a: HttpIngestArgs): Promise<HttpIngestResult> {
  const t = templates.get(keyOf(a));
  if (!t) throw new Error('prepare first');
  if (a.connections > POOL_BATCHES) throw new Error(`at most ${POOL_BATCHES} connections`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: a.connections });
  // A body is rewritten only when no request is sending it.
  const free = Array.from({ length: POOL_BATCHES }, (_, i) => i);
  let next = 0;
  let bodyBytes = 0;
  let requestMs = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const connection = async (): Promise<void> => {
    while (next < a.maxBatches && performance.now() - t0 < a.durationMs) {
      const b = next++;
      const slot = free.pop() as number;
      const body = retarget(t, a.shape, slot, b);
      const sentMs = performance.now();
      await post(agent, a, body);
      requestMs += performance.now() - sentMs;
      bodyBytes += body.length;
      free.push(slot);
    }
  };
  await Promise.all(Array.from({ length: a.connections }, connection));
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  agent.destroy();
  return {
    vectors: next * a.shape.batchSize,
    bodyBytes,
    elapsedMs,
    meanRequestMs: requestMs / Math.max(1, next),
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

async function run(cmd: HttpClientCommand): Promise<unknown> {
  switch (cmd.cmd) {
    case 'prepare': {
      const key = keyOf(cmd);
      if (!templates.has(key)) templates.set(key, bodyTemplates(cmd.shape, cmd.kind));
      const t = templates.get(key) as BodyTemplates;
      return { bodyBytes: (t.bodies[0] as Uint8Array).length };
    }
    case 'run':
      return runIngest(cmd.args);
  }
}

process.on('message', (msg: { id: number; command: HttpClientCommand }) => {
  run(msg.command).then(
    (result) => process.send?.({ id: msg.id, ok: true, result } satisfies ServeChildReply),
    (err: unknown) =>
      process.send?.({
        id: msg.id,
        ok: false,
        error: { message: (err as Error).message ?? String(err), code: null },
      } satisfies ServeChildReply),
  );
});
process.on('disconnect', () => process.exit(0));
process.send?.({ id: 0, ok: true, result: null } satisfies ServeChildReply);
