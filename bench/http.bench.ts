/**
 * HTTP ingest: JSON and binary batches POSTed to a running server (client and server in
 * this process, fsync=no) vs the same points written through the TypeScript
 * API (ReplicationNode.write with objects) in the same run. Also a search
 * round trip over HTTP vs node.search directly.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { emit, isQuick, measureAsync, withRatios, type Row } from './lib/harness.ts';
import { serve } from '../src/server/serve.ts';
import { ReplicationNode } from '../src/node/replication-node.ts';
import { encodeBinaryBatch } from '../src/server/binary-batch.ts';

const quick = isQuick();
const dim = 128;
const batchSize = quick ? 200 : 1000;
const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'vrep-bench-http-'));

const points = Array.from({ length: batchSize }, (_, i) => ({
  id: `p${i}`,
  vector: Array.from({ length: dim }, () => Math.random() * 2 - 1),
  payload: { group: i % 7, title: `point ${i}` },
}));
const body = JSON.stringify({ points });
const binaryBody = encodeBinaryBatch({
  ids: points.map((p) => p.id),
  vectors: Float32Array.from(points.flatMap((p) => p.vector)),
  dimension: dim,
  payloads: points.map((p) => p.payload),
});

const direct = await ReplicationNode.start({
  dataDir: path.join(tmpRoot, 'direct'),
  storage: { fsync: 'no' },
});
await direct.createCollection('b', { dimension: dim, metric: 'cosine' });
const server = await serve({
  node: { nodeId: 'bench', dataDir: path.join(tmpRoot, 'http'), storage: { fsync: 'no' } },
  http: { host: '127.0.0.1', port: 0 },
  logger: pino({ level: 'silent' }),
});
const base = `http://127.0.0.1:${server.httpPort}`;
const json = { 'content-type': 'application/json' };
await fetch(`${base}/collections/b`, {
  method: 'PUT',
  headers: json,
  body: JSON.stringify({ dimension: dim, metric: 'cosine' }),
});

const postBatch = async (): Promise<void> => {
  const res = await fetch(`${base}/collections/b/points`, { method: 'POST', headers: json, body });
  if (res.status !== 200) throw new Error(`POST points: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
};
const postBinary = async (): Promise<void> => {
  const res = await fetch(`${base}/collections/b/points`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.vrep.batch' },
    body: binaryBody,
  });
  if (res.status !== 200) throw new Error(`POST binary points: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
};
const viaApi = await measureAsync(() => direct.write('b', points));
const viaHttp = await measureAsync(postBatch);
const viaBinary = await measureAsync(postBinary);

const query = points[0]?.vector as number[];
const searchBody = JSON.stringify({ vector: query, k: 10 });
const searchApi = await measureAsync(() => direct.search('b', query, { k: 10 }));
const searchHttp = await measureAsync(async () => {
  const res = await fetch(`${base}/collections/b/search`, {
    method: 'POST',
    headers: json,
    body: searchBody,
  });
  await res.arrayBuffer();
});

await server.stop();
await direct.stop();
rmSync(tmpRoot, { recursive: true, force: true });

const ingest: Row[] = [
  { name: 'TS API node.write (objects)', value: viaApi.opsPerSec * batchSize, unit: 'vectors/s' },
  {
    name: 'HTTP POST JSON (fetch client in-process)',
    value: viaHttp.opsPerSec * batchSize,
    unit: 'vectors/s',
    note: `${((viaHttp.opsPerSec * body.length) / 1e6).toFixed(0)} MB/s of JSON`,
  },
  {
    name: 'HTTP POST binary batch (fetch client in-process)',
    value: viaBinary.opsPerSec * batchSize,
    unit: 'vectors/s',
    note: `${((viaBinary.opsPerSec * binaryBody.length) / 1e6).toFixed(0)} MB/s of body`,
  },
];
const search: Row[] = [
  { name: 'TS API node.search', value: searchApi.opsPerSec, unit: 'queries/s' },
  { name: 'HTTP POST search', value: searchHttp.opsPerSec, unit: 'queries/s' },
];
emit('http', [
  {
    title: `ingest, dim ${dim}, batches of ${batchSize}, fsync=no (${batchSize} distinct ids rewritten)`,
    rows: withRatios(ingest, 'TS API node.write (objects)'),
  },
  { title: `search, ${batchSize} points, k=10`, rows: withRatios(search, 'TS API node.search') },
]);
