/**
 * The HTTP listener in-process: an answer that cannot be serialized, or a
 * handler that throws or rejects, is a 500 for that request only, never an
 * unhandled rejection; HEAD and 405 carry the headers RFC 9110 asks for.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHttpServer, type HttpReply } from '../../src/transport/http-server.ts';
import { rawExchange, statusesOf } from '../helpers/raw-http.ts';

function deepObject(depth: number): unknown {
  let value: unknown = {};
  for (let i = 0; i < depth; i++) value = { next: value };
  return value;
}

test('a reply that fails to serialize, a throwing and a rejecting handler: 500 each, the server goes on', async (t) => {
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown): void => void rejections.push(reason);
  process.on('unhandledRejection', onRejection);
  t.after(() => process.off('unhandledRejection', onRejection));
  const errors: unknown[] = [];
  const server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    maxBodyBytes: 1024,
    routes: [
      { method: 'GET', pattern: '/deep', handler: async () => ({ status: 200, body: deepObject(200_000) }) },
      { method: 'GET', pattern: '/bigint', handler: () => ({ status: 200, body: { n: 1n } }) },
      {
        method: 'GET',
        pattern: '/throws',
        handler: () => {
          throw new Error('sync');
        },
      },
      { method: 'GET', pattern: '/rejects', handler: () => Promise.reject(new Error('async')) },
      { method: 'GET', pattern: '/ok', handler: () => ({ status: 200, body: { ok: true } }) },
    ],
    onError: (err): HttpReply => {
      errors.push(err);
      return { status: 500, body: { error: { code: 'ERR_INTERNAL', message: 'internal error' } } };
    },
  });
  t.after(() => server.close());
  const base = `http://127.0.0.1:${server.port}`;
  for (const path of ['/deep', '/bigint', '/throws', '/rejects']) {
    const res = await fetch(`${base}${path}`);
    assert.equal(res.status, 500, path);
    assert.deepEqual(await res.json(), { error: { code: 'ERR_INTERNAL', message: 'internal error' } });
    const ok = await fetch(`${base}/ok`);
    assert.equal(ok.status, 200, `the server answers after ${path}`);
    await ok.arrayBuffer();
  }
  assert.equal(errors.length, 4);
  assert.ok(errors[0] instanceof RangeError, String(errors[0]));
  assert.ok(errors[1] instanceof TypeError, String(errors[1]));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(rejections, []);
});

test('405 names the allowed methods in Allow (HEAD with GET); HEAD sends the GET headers without a body', async (t) => {
  const server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    maxBodyBytes: 1024,
    routes: [{ method: 'GET', pattern: '/thing', handler: () => ({ status: 200, body: { a: 1 } }) }],
  });
  t.after(() => server.close());
  const wrong = await fetch(`http://127.0.0.1:${server.port}/thing`, { method: 'DELETE' });
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get('allow'), 'GET, HEAD');
  await wrong.arrayBuffer();
  const head = await fetch(`http://127.0.0.1:${server.port}/thing`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String('{"a":1}'.length));
  assert.equal((await head.arrayBuffer()).byteLength, 0);
});

test('drain: no new connections, requests after it get 503, the one in flight is answered', async (t) => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    maxBodyBytes: 1024,
    routes: [
      {
        method: 'GET',
        pattern: '/slow',
        handler: async () => {
          await held;
          return { status: 200, body: { done: true } };
        },
      },
    ],
  });
  t.after(() => server.close());
  const base = `http://127.0.0.1:${server.port}`;
  const slow = fetch(`${base}/slow`);
  await new Promise((r) => setTimeout(r, 100));
  const drained = server.drain(5000);
  await assert.rejects(fetch(`${base}/slow`), 'a new connection is refused');
  release();
  const answer = await slow;
  assert.equal(answer.status, 200);
  assert.equal(answer.headers.get('connection'), 'close');
  await drained;
});

test('headers over 16 KiB: 431 ERR_HEADERS_TOO_LARGE, the status from the error registry', async (t) => {
  const server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    maxBodyBytes: 1024,
    routes: [{ method: 'GET', pattern: '/ok', handler: () => ({ status: 200, body: { ok: true } }) }],
  });
  t.after(() => server.close());
  const { text } = await rawExchange(
    server.port,
    `GET /ok HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`,
  );
  assert.deepEqual(statusesOf(text), [431], text);
  assert.match(text, /"code":"ERR_HEADERS_TOO_LARGE"/);
});
