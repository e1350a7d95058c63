/**
 * Errors that read the same whichever route or layer raised them (issue 9,
 * item 13): an unknown collection, a JSON syntax mistake, and a batch too
 * large for the log (413 ERR_RECORD_TOO_LARGE, as docs/http-api.md says).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startCli } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

async function startServe(t: TestContext, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const node = startCli(['serve', '--http', '127.0.0.1:0', '--fsync', 'no', '--data-dir', tempDir(t)], env);
  t.after(() => node.kill());
  const m = await node.waitForLine(/"http":"127\.0\.0\.1:(\d+)"/, 30_000);
  return `http://127.0.0.1:${m[1]}`;
}

interface ErrorAnswer {
  status: number;
  code: string;
  message: string;
}

async function errorOf(base: string, method: string, path: string, body?: string): Promise<ErrorAnswer> {
  const res = await fetch(`${base}${path}`, {
    method,
    ...(body !== undefined ? { body, headers: { 'content-type': 'application/json' } } : {}),
  });
  const answer = (await res.json()) as { error?: { code: string; message: string } };
  assert.ok(answer.error, `${method} ${path}: ${JSON.stringify(answer)}`);
  return { status: res.status, code: answer.error.code, message: answer.error.message };
}

test('an unknown collection reads the same on every route', async (t) => {
  const base = await startServe(t);
  const answers = await Promise.all([
    errorOf(base, 'GET', '/collections/nope'),
    errorOf(base, 'DELETE', '/collections/nope'),
    errorOf(base, 'GET', '/collections/nope/points/p'),
    errorOf(base, 'POST', '/collections/nope/points', '{"points":[{"id":"a","vector":[1]}]}'),
    errorOf(base, 'DELETE', '/collections/nope/points', '{"ids":["a"]}'),
    errorOf(base, 'POST', '/collections/nope/search', '{"vector":[1],"k":1}'),
  ]);
  for (const a of answers) {
    assert.deepEqual(a, {
      status: 404,
      code: 'ERR_COLLECTION_NOT_FOUND',
      message: 'collection "nope" does not exist',
    });
  }
  await fetch(`${base}/collections/c`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: '{"dimension":1,"metric":"l2"}',
  });
  assert.deepEqual(await errorOf(base, 'GET', '/collections/c/points/zz'), {
    status: 404,
    code: 'ERR_POINT_NOT_FOUND',
    message: 'point "zz" does not exist in collection "c"',
  });
});

test('the same JSON syntax mistake gets the same message on data and control routes', async (t) => {
  const base = await startServe(t);
  await fetch(`${base}/collections/c`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: '{"dimension":1,"metric":"l2"}',
  });
  for (const broken of ['{"points":', '{"points":[}', 'nope', '{"a":1,}']) {
    const answers = await Promise.all([
      errorOf(base, 'POST', '/collections/c/points', broken),
      errorOf(base, 'POST', '/collections/c/search', broken),
      errorOf(base, 'DELETE', '/collections/c/points', broken),
      errorOf(base, 'PUT', '/collections/d', broken),
      errorOf(base, 'POST', '/replication/configure', broken),
    ]);
    const first = answers[0] as ErrorAnswer;
    assert.equal(first.status, 400);
    assert.equal(first.code, 'ERR_JSON_SYNTAX');
    assert.match(first.message, /^body: not valid JSON \(.+\)$/);
    for (const a of answers) assert.deepEqual(a, first, `${broken}: ${JSON.stringify(answers)}`);
  }
});

test('a batch whose encoded record exceeds the log limit is 413 ERR_RECORD_TOO_LARGE; nothing is written', async (t) => {
  // The smallest in-memory log: 64 KiB, also the largest record.
  const base = await startServe(t, { VREP_LOG_BYTES: '65536' });
  const json = { 'content-type': 'application/json' };
  await fetch(`${base}/collections/big`, {
    method: 'PUT',
    headers: json,
    body: '{"dimension":128,"metric":"l2"}',
  });
  const points = Array.from({ length: 200 }, (_, i) => ({ id: `p${i}`, vector: new Array(128).fill(0.5) }));
  const res = await fetch(`${base}/collections/big/points`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ points }),
  });
  const body = (await res.json()) as { error: { code: string; message: string } };
  assert.equal(res.status, 413, JSON.stringify(body));
  assert.equal(body.error.code, 'ERR_RECORD_TOO_LARGE');
  assert.match(body.error.message, /split/);
  const info = (await (await fetch(`${base}/collections/big`)).json()) as { count: number };
  assert.equal(info.count, 0);
});
