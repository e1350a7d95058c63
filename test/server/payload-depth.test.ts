/**
 * Payload nesting over HTTP on a real `vrep serve` process: the deepest
 * payload the API allows can be written (JSON and binary batches), read back
 * and found by search; a deeper one is a 400 naming the point and field, is
 * not stored, and the process stays up. Before the one validation, a binary
 * batch could store a payload nested 5000 deep, and the next GET or search
 * that returned it killed the process (RangeError in JSON.stringify).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startCli } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';
import { ApiLimits } from '../../src/limits.ts';
import { BINARY_BATCH_MAGIC } from '../../src/server/binary-batch.ts';

async function startServe(t: TestContext): Promise<{ base: string; exitCode: () => number | null }> {
  const node = startCli(['serve', '--http', '127.0.0.1:0', '--data-dir', tempDir(t)]);
  t.after(() => node.kill());
  const m = await node.waitForLine(/"http":"127\.0\.0\.1:(\d+)"/, 20_000);
  return { base: `http://127.0.0.1:${m[1]}`, exitCode: () => node.child.exitCode };
}

async function call(
  base: string,
  method: string,
  path: string,
  body?: string | Uint8Array,
  contentType = 'application/json',
): Promise<{ status: number; body: Record<string, unknown> }> {
  const init: RequestInit = { method, signal: AbortSignal.timeout(10_000) };
  if (body !== undefined) {
    init.body = body;
    init.headers = { 'content-type': contentType };
  }
  const res = await fetch(`${base}${path}`, init);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** JSON text of a payload whose deepest value sits inside `depth` objects. */
function nestedText(depth: number): string {
  return '{"a":'.repeat(depth - 1) + '{"leaf":true' + '}'.repeat(depth);
}

/** A one-point binary batch (dimension 2) carrying `payload` as raw bytes. */
function binaryBatch(id: string, payload: string): Uint8Array {
  const idBytes = new TextEncoder().encode(id);
  const payloadBytes = new TextEncoder().encode(payload);
  const body = new Uint8Array(20 + 8 + 8 + idBytes.length + payloadBytes.length);
  const view = new DataView(body.buffer);
  [
    BINARY_BATCH_MAGIC,
    1,
    2,
    idBytes.length,
    payloadBytes.length,
    idBytes.length,
    payloadBytes.length,
  ].forEach((v, i) => view.setUint32(4 * i, v, true));
  view.setFloat32(28, 0.5, true);
  view.setFloat32(32, 0.5, true);
  body.set(idBytes, 36);
  body.set(payloadBytes, 36 + idBytes.length);
  return body;
}

const BATCH = 'application/vnd.vrep.batch';

test('the deepest allowed payload round-trips over HTTP; a deeper one is a 400 and the node lives', async (t) => {
  const { base, exitCode } = await startServe(t);
  assert.equal((await call(base, 'PUT', '/collections/c', '{"dimension":2,"metric":"l2"}')).status, 201);
  const deepest = nestedText(ApiLimits.maxPayloadDepth);
  const tooDeep = nestedText(ApiLimits.maxPayloadDepth + 1);

  const json = await call(
    base,
    'POST',
    '/collections/c/points',
    `{"points":[{"id":"json","vector":[1,0],"payload":${deepest}}]}`,
  );
  assert.equal(json.status, 200, JSON.stringify(json.body));
  const binary = await call(base, 'POST', '/collections/c/points', binaryBatch('bin', deepest), BATCH);
  assert.equal(binary.status, 200, JSON.stringify(binary.body));

  for (const id of ['json', 'bin']) {
    const got = await call(base, 'GET', `/collections/c/points/${id}`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.body['payload'], JSON.parse(deepest));
  }
  const found = await call(base, 'POST', '/collections/c/search', '{"vector":[1,0],"k":5}');
  assert.equal(found.status, 200);
  const results = found.body['results'] as { id: string; payload: unknown }[];
  assert.deepEqual(results.map((r) => r.id).sort(), ['bin', 'json']);
  for (const r of results) assert.deepEqual(r.payload, JSON.parse(deepest));

  const refused: [string, string | Uint8Array, string, RegExp][] = [
    [
      'JSON, one level too deep',
      `{"points":[{"id":"x","vector":[1,0]},{"id":"y","vector":[1,0],"payload":${tooDeep}}]}`,
      'application/json',
      /^points\[1\]\.payload: nested deeper than 64 levels$/,
    ],
    [
      'JSON, deeper than the whole batch may nest',
      `{"points":[{"id":"y","vector":[1,0],"payload":${nestedText(5000)}}]}`,
      'application/json',
      /not valid JSON \(nested deeper than 1024 levels\)/,
    ],
    [
      'binary, one level too deep',
      binaryBatch('y', tooDeep),
      BATCH,
      /^points\[0\]\.payload: nested deeper than 64 levels$/,
    ],
    [
      'binary, 5000 deep',
      binaryBatch('y', nestedText(5000)),
      BATCH,
      /^points\[0\]\.payload: nested deeper than 64 levels$/,
    ],
    ['binary, not JSON', binaryBatch('y', '{"a":'), BATCH, /^points\[0\]\.payload: not valid JSON/],
  ];
  for (const [name, body, type, re] of refused) {
    const answer = await call(base, 'POST', '/collections/c/points', body, type);
    assert.equal(answer.status, 400, `${name}: ${JSON.stringify(answer.body)}`);
    assert.match((answer.body['error'] as { message: string }).message, re, name);
  }

  assert.equal((await call(base, 'GET', '/collections/c/points/y')).status, 404, 'nothing was written');
  assert.equal((await call(base, 'GET', '/collections/c/points/x')).status, 404, 'nothing was written');
  const info = await call(base, 'GET', '/collections/c');
  assert.equal(info.body['count'], 2);
  assert.equal((await call(base, 'GET', '/health')).status, 200);
  assert.equal(exitCode(), null, 'the node is still running');
});
