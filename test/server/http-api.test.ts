/**
 * Black-box tests of the HTTP data API: real `vrep serve` processes, spoken
 * to only over HTTP.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startCli } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';
import { encodeBinaryBatch } from '../../src/server/binary-batch.ts';

async function startServe(t: TestContext, extra: string[] = []): Promise<string> {
  const node = startCli(['serve', '--http', '127.0.0.1:0', '--data-dir', tempDir(t), ...extra]);
  t.after(() => node.kill());
  const m = await node.waitForLine(/"http":"127\.0\.0\.1:(\d+)"/, 20_000);
  return `http://127.0.0.1:${m[1]}`;
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(`${base}${path}`, init);
  const text = await res.text();
  assert.match(res.headers.get('content-type') ?? '', /application\/json/, `${method} ${path}: ${text}`);
  return { status: res.status, body: JSON.parse(text) as Record<string, unknown> };
}

/** A binary batch body, optionally damaged (`mutate`) or cut short by `cut` bytes. */
function binaryBody(
  ids: string[],
  values: number[],
  dimension: number,
  mutate?: (bytes: Uint8Array) => void,
  cut = 0,
  payloads?: unknown[],
): Blob {
  const bytes = encodeBinaryBatch({
    ids,
    vectors: Float32Array.from(values),
    dimension,
    ...(payloads ? { payloads: payloads as object[] } : {}),
  });
  mutate?.(bytes);
  return new Blob([bytes.subarray(0, bytes.length - cut)]);
}

function errorOf(a: Answer): { code: string; message: string } {
  const e = a.body['error'] as { code: string; message: string };
  assert.equal(typeof e.code, 'string');
  assert.ok(e.message.length > 0);
  assert.doesNotMatch(e.message, /\n\s+at /, 'no stack trace in a response');
  return e;
}

test('CRUD and search round trip, every route answering its documented shape', async (t) => {
  const base = await startServe(t);
  const created = await call(base, 'PUT', '/collections/docs', { dimension: 3, metric: 'cosine' });
  assert.equal(created.status, 201);
  assert.deepEqual(
    { ...created.body, lsn: undefined },
    { name: 'docs', dimension: 3, metric: 'cosine', lsn: undefined },
  );

  const write = await call(base, 'POST', '/collections/docs/points?consistency=quorum', {
    points: [
      { id: 'a', vector: [1, 0, 0], payload: { tag: 'x', n: 1 } },
      { id: 'b', vector: [0, 1, 0], payload: { tag: 'y' } },
      { id: 7, vector: [0.9, 0.1, 0] },
    ],
  });
  assert.equal(write.status, 200);
  assert.equal(write.body['count'], 3);
  assert.equal(typeof write.body['lsn'], 'number');

  const list = await call(base, 'GET', '/collections');
  assert.deepEqual(list.body, { collections: [{ name: 'docs', dimension: 3, metric: 'cosine', count: 3 }] });

  const info = await call(base, 'GET', '/collections/docs');
  assert.equal(info.status, 200);
  assert.equal(info.body['count'], 3);
  assert.match(info.body['digest'] as string, /^[0-9a-f]{16,}$/);

  const got = await call(base, 'GET', '/collections/docs/points/a');
  assert.deepEqual(got.body, { id: 'a', vector: [1, 0, 0], payload: { tag: 'x', n: 1 } });

  // The binary batch format writes the same points as JSON would.
  const binary = await fetch(`${base}/collections/docs/points`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.vrep.batch' },
    body: binaryBody(['bin-1', 'bin-2'], [0.5, 0.25, 2, -1, 0, 1], 3, undefined, 0, [
      { via: 'binary' },
      null,
    ]),
  });
  assert.equal(binary.status, 200, await binary.clone().text());
  assert.equal(((await binary.json()) as { count: number }).count, 2);
  const gotBinary = await call(base, 'GET', '/collections/docs/points/bin-1');
  assert.deepEqual(gotBinary.body, { id: 'bin-1', vector: [0.5, 0.25, 2], payload: { via: 'binary' } });
  assert.deepEqual((await call(base, 'GET', '/collections/docs/points/bin-2')).body['payload'], null);
  await call(base, 'DELETE', '/collections/docs/points', { ids: ['bin-1', 'bin-2'] });
  const numeric = await call(base, 'GET', '/collections/docs/points/7');
  assert.deepEqual(numeric.body['payload'], null);

  const found = await call(base, 'POST', '/collections/docs/search', { vector: [1, 0, 0], k: 2 });
  assert.equal(found.status, 200);
  const results = found.body['results'] as { id: string; score: number; payload: unknown }[];
  assert.deepEqual(
    results.map((r) => r.id),
    ['a', '7'],
  );
  assert.equal(typeof results[0]?.score, 'number');
  const filtered = await call(base, 'POST', '/collections/docs/search', {
    vector: [1, 0, 0],
    k: 5,
    filter: { tag: 'y' },
  });
  assert.deepEqual(
    (filtered.body['results'] as { id: string }[]).map((r) => r.id),
    ['b'],
  );

  const deleted = await call(base, 'DELETE', '/collections/docs/points', { ids: ['a', 7] });
  assert.equal(deleted.status, 200);
  assert.equal(deleted.body['count'], 2);
  assert.equal((await call(base, 'GET', '/collections/docs/points/a')).status, 404);
  assert.equal((await call(base, 'GET', '/collections/docs')).body['count'], 1);
  assert.notEqual((await call(base, 'GET', '/collections/docs')).body['digest'], info.body['digest']);

  const dropped = await call(base, 'DELETE', '/collections/docs');
  assert.equal(dropped.status, 200);
  assert.deepEqual((await call(base, 'GET', '/collections')).body, { collections: [] });
  assert.equal((await call(base, 'GET', '/collections/docs')).status, 404);
});

/**
 * Starts a chunked body over a raw socket without finishing it, ignoring write
 * errors (the server may close mid-body); returns everything the server answered.
 */
function streamChunked(base: string, path: string, chunks: number, chunkBytes: number): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    let answer = '';
    socket.setEncoding('utf8').on('data', (d: string) => (answer += d));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(answer));
    // A server that kept waiting for the rest of the body would fail the test, not hang it.
    socket.setTimeout(5_000, () => socket.destroy());
    socket.write(
      `POST ${path} HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n`,
    );
    const chunk = `${chunkBytes.toString(16)}\r\n${' '.repeat(chunkBytes)}\r\n`;
    let sent = 0;
    const pump = (): void => {
      while (sent < chunks && !socket.destroyed) {
        sent++;
        if (!socket.write(chunk)) {
          socket.once('drain', pump);
          return;
        }
      }
      // No terminating chunk: the answer must come while the body is still open.
    };
    pump();
  });
}

test('bad input gets the documented status and a message; nothing changes and the node stays up', async (t) => {
  const base = await startServe(t, ['--max-body-bytes', '65536']);
  assert.equal((await call(base, 'PUT', '/collections/c', { dimension: 2, metric: 'l2' })).status, 201);
  assert.equal(
    (
      await call(base, 'POST', '/collections/c/points', {
        points: [{ id: 'p', vector: [1, 2], payload: { a: 1 } }],
      })
    ).status,
    200,
  );
  const before = (await call(base, 'GET', '/collections/c')).body;
  const json = { 'content-type': 'application/json' };
  const bin = { 'content-type': 'application/vnd.vrep.batch' };

  const cases: [string, string, string, unknown, Record<string, string>, number, RegExp][] = [
    ['malformed JSON', 'POST', '/collections/c/points', '{"points":[{"id":"x",', json, 400, /JSON/],
    [
      'wrong dimension',
      'POST',
      '/collections/c/points',
      { points: [{ id: 'x', vector: [1, 2, 3] }] },
      json,
      400,
      /points\[0\]\.vector/,
    ],
    [
      'NaN as text',
      'POST',
      '/collections/c/points',
      '{"points":[{"id":"x","vector":[NaN,1]}]}',
      json,
      400,
      /NaN/,
    ],
    [
      'unknown point field',
      'POST',
      '/collections/c/points',
      { points: [{ id: 'x', vector: [1, 2], vectors: [] }] },
      json,
      400,
      /unknown field "vectors"/,
    ],
    [
      'unknown top-level field',
      'POST',
      '/collections/c/points',
      { points: [], extra: 1 },
      json,
      400,
      /unknown field "extra"/,
    ],
    [
      'wrong id type',
      'POST',
      '/collections/c/points',
      { points: [{ id: {}, vector: [1, 2] }] },
      json,
      400,
      /points\[0\]\.id/,
    ],
    [
      'vector of strings',
      'POST',
      '/collections/c/points',
      { points: [{ id: 'x', vector: ['1', 2] }] },
      json,
      400,
      /vector\[0\]/,
    ],
    [
      'bad consistency',
      'POST',
      '/collections/c/points?consistency=most',
      { points: [] },
      json,
      400,
      /consistency/,
    ],
    [
      'text/plain body',
      'POST',
      '/collections/c/points',
      '{"points":[]}',
      { 'content-type': 'text/plain' },
      415,
      /application\/json/,
    ],
    [
      'binary batch: too short',
      'POST',
      '/collections/c/points',
      new Blob(['xx']),
      bin,
      400,
      /binary batch: 2 bytes/,
    ],
    [
      'binary batch: wrong dimension',
      'POST',
      '/collections/c/points',
      binaryBody(['q'], [1, 2, 3], 3),
      bin,
      400,
      /dimension: the collection has 2/,
    ],
    [
      'binary batch: bad magic',
      'POST',
      '/collections/c/points',
      binaryBody(['q'], [1, 2], 2, (b) => (b[0] = 0)),
      bin,
      400,
      /bad magic/,
    ],
    [
      'binary batch: truncated',
      'POST',
      '/collections/c/points',
      binaryBody(['q'], [1, 2], 2, undefined, 1),
      bin,
      400,
      /describes \d+ bytes, the body has/,
    ],
    [
      'binary batch: NaN',
      'POST',
      '/collections/c/points',
      binaryBody(['q'], [1, NaN], 2),
      bin,
      400,
      /points\[0\]\.vector\[1\]/,
    ],
    [
      'binary batch: payload not an object',
      'POST',
      '/collections/c/points',
      binaryBody(['q'], [1, 2], 2, undefined, 0, [[1, 2]]),
      bin,
      400,
      /points\[0\]\.payload: expected a JSON object/,
    ],
    ['no content type on search', 'POST', '/collections/c/search', new Blob(['{}']), {}, 415, /content-type/],
    ['k = 0', 'POST', '/collections/c/search', { vector: [1, 2], k: 0 }, json, 400, /k: /],
    ['k as text', 'POST', '/collections/c/search', { vector: [1, 2], k: 'ten' }, json, 400, /k: /],
    ['k fractional', 'POST', '/collections/c/search', { vector: [1, 2], k: 1.5 }, json, 400, /k: /],
    [
      'filter not an object',
      'POST',
      '/collections/c/search',
      { vector: [1, 2], k: 1, filter: [1] },
      json,
      400,
      /filter/,
    ],
    ['search wrong dimension', 'POST', '/collections/c/search', { vector: [1], k: 1 }, json, 400, /vector/],
    [
      'unknown search field',
      'POST',
      '/collections/c/search',
      { vector: [1, 2], topk: 1 },
      json,
      400,
      /unknown field "topk"/,
    ],
    ['delete ids not an array', 'DELETE', '/collections/c/points', { ids: 'p' }, json, 400, /ids/],
    ['bad metric', 'PUT', '/collections/d', { dimension: 2, metric: 'manhattan' }, json, 400, /metric/],
    ['bad dimension', 'PUT', '/collections/d', { dimension: -1, metric: 'l2' }, json, 400, /dimension/],
    [
      'bad collection name',
      'PUT',
      '/collections/..%2F',
      { dimension: 2, metric: 'l2' },
      json,
      400,
      /collection name/,
    ],
    [
      'existing collection',
      'PUT',
      '/collections/c',
      { dimension: 2, metric: 'l2' },
      json,
      409,
      /already exists/,
    ],
    ['unknown collection write', 'POST', '/collections/nope/points', { points: [] }, json, 404, /nope/],
    [
      'unknown collection search',
      'POST',
      '/collections/nope/search',
      { vector: [1, 2], k: 1 },
      json,
      404,
      /nope/,
    ],
    ['unknown collection get', 'GET', '/collections/nope/points/p', undefined, {}, 404, /nope/],
    ['unknown point', 'GET', '/collections/c/points/zz', undefined, {}, 404, /zz/],
    ['unknown route', 'GET', '/nothing/here', undefined, {}, 404, /no route/],
    ['wrong method', 'PATCH', '/collections/c', undefined, {}, 405, /PATCH/],
    ['declared body over the limit', 'POST', '/collections/c/points', 'x'.repeat(70_000), json, 413, /65536/],
  ];
  for (const [what, method, path, body, headers, status, message] of cases) {
    const init: RequestInit = { method, headers };
    if (body !== undefined)
      init.body = typeof body === 'string' || body instanceof Blob ? body : JSON.stringify(body);
    const res = await fetch(`${base}${path}`, init);
    const answer = { status: res.status, body: (await res.json()) as Record<string, unknown> };
    assert.equal(answer.status, status, `${what}: ${JSON.stringify(answer.body)}`);
    assert.match(errorOf(answer).message, message, what);
  }

  // A chunked body that only turns out too large while streaming (96 KiB sent, 64 KiB allowed).
  const streamed = await streamChunked(base, '/collections/c/points', 6, 16 * 1024);
  assert.match(streamed, /^HTTP\/1\.1 413 /);
  assert.match(streamed, /ERR_BODY_TOO_LARGE/);

  // A client that goes away mid-body: the request is dropped, nothing written, the node goes on.
  await new Promise<void>((resolve) => {
    const { hostname, port } = new URL(base);
    const socket = connect(Number(port), hostname, () => {
      socket.write(
        `POST /collections/c/points HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"points":[`,
        () => setTimeout(() => socket.destroy(), 50),
      );
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
  });

  const after = await call(base, 'GET', '/collections/c');
  assert.deepEqual(after.body, before, 'nothing was written');
  assert.equal((await fetch(`${base}/health`)).status, 200, 'the node stays up');
});

test('bearer token: 401 without or with a wrong one, 429 after a burst of failures, /health open', async (t) => {
  const base = await startServe(t, ['--token', 's3cret']);
  const good = { authorization: 'Bearer s3cret' };
  assert.equal((await fetch(`${base}/health`)).status, 200);
  const none = await call(base, 'GET', '/collections');
  assert.equal(none.status, 401);
  assert.match(errorOf(none).message, /missing/);
  assert.equal((await call(base, 'GET', '/collections', undefined, good)).status, 200);
  assert.equal(
    (
      await call(
        base,
        'PUT',
        '/collections/c',
        { dimension: 2, metric: 'l2' },
        { authorization: 'Bearer nope' },
      )
    ).status,
    401,
  );
  assert.equal(
    (await call(base, 'GET', '/collections', undefined, good)).body['collections'] instanceof Array,
    true,
  );
  assert.deepEqual((await call(base, 'GET', '/collections', undefined, good)).body, { collections: [] });

  const statuses: number[] = [];
  for (let i = 0; i < 15; i++) {
    statuses.push(
      (await call(base, 'GET', '/collections', undefined, { authorization: `Bearer guess${i}` })).status,
    );
  }
  assert.ok(
    statuses.slice(0, 8).every((s) => s === 401),
    statuses.join(),
  );
  assert.equal(statuses.at(-1), 429, statuses.join());
  const blocked = await call(base, 'GET', '/collections', undefined, good);
  assert.equal(blocked.status, 429, 'the address stays blocked for the window');
  assert.match(errorOf(blocked).message, /too many/);
  assert.equal((await fetch(`${base}/health`)).status, 200);
});

test('/metrics serves Prometheus text with the request, write, search and event-loop metrics', async (t) => {
  const base = await startServe(t);
  await call(base, 'PUT', '/collections/m', { dimension: 2, metric: 'dot' });
  await call(base, 'POST', '/collections/m/points', {
    points: [
      { id: 'a', vector: [1, 2] },
      { id: 'b', vector: [2, 1] },
    ],
  });
  await call(base, 'POST', '/collections/m/search', { vector: [1, 1], k: 1 });
  await call(base, 'GET', '/collections/m/points/zz');
  const res = await fetch(`${base}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  const text = await res.text();
  assert.match(text, /^vrep_points_written_total 2$/m);
  assert.match(text, /^vrep_write_batches_total\{op="upsert"\} 1$/m);
  assert.match(text, /^vrep_search_duration_seconds_count 1$/m);
  assert.match(
    text,
    /^vrep_http_requests_total\{route="\/collections\/:name\/points\/:id",method="GET",status="404"\} 1$/m,
  );
  assert.match(text, /^vrep_nodejs_eventloop_lag_seconds /m);
});
