/**
 * Request bodies in reused buffers (src/transport/body-pool.ts): the pool's
 * bookkeeping, and the listener's promise that a handler's `req.body` stays
 * its own until its answer settles, also when the client goes away first.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { BodyBufferPool, MIN_POOLED_BYTES } from '../../src/transport/body-pool.ts';
import { startHttpServer, type HttpRequest } from '../../src/transport/http-server.ts';

test('the pool hands out exact lengths, reuses what it is given back, and keeps within its limit', () => {
  const pool = new BodyBufferPool(3 * 256 * 1024);
  const small = pool.take(100);
  assert.equal(small.length, 100);
  pool.give(small);
  assert.equal(pool.pooledBytes, 0, 'small buffers are not pooled');

  const a = pool.take(200_000);
  assert.equal(a.length, 200_000);
  assert.equal(a.buffer.byteLength, 256 * 1024);
  pool.give(a);
  assert.equal(pool.pooledBytes, 256 * 1024);
  pool.give(a);
  assert.equal(pool.pooledBytes, 256 * 1024, 'a second give of the same buffer is ignored');
  const b = pool.take(150_000);
  assert.equal(b.buffer, a.buffer, 'same size class: reused');
  assert.equal(b.length, 150_000);
  assert.equal(pool.pooledBytes, 0);
  const c = pool.take(150_000);
  assert.notEqual(c.buffer, b.buffer, 'a buffer in use is never handed out twice');

  pool.give(Buffer.alloc(256 * 1024));
  assert.equal(pool.pooledBytes, 0, 'a buffer the pool did not hand out is ignored');

  const many = Array.from({ length: 5 }, () => pool.take(MIN_POOLED_BYTES * 4));
  for (const m of many) pool.give(m);
  assert.equal(pool.pooledBytes, 3 * 256 * 1024, 'at most maxPooledBytes wait');
});

function post(port: number, path: string, body: Buffer, agent: http.Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-length': body.length } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve(text));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const digest = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

test('concurrent handlers each read their own body, however long they wait before reading it', async (t) => {
  const server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    maxBodyBytes: 4 * 1024 * 1024,
    routes: [
      {
        method: 'POST',
        pattern: '/digest',
        handler: async (req: HttpRequest) => {
          // Waits first, so later requests take pool buffers meanwhile.
          await new Promise((r) => setTimeout(r, (req.body[0] ?? 0) % 15));
          return { status: 200, body: { digest: digest(req.body) } };
        },
      },
    ],
  });
  t.after(() => server.close());
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  t.after(() => agent.destroy());
  const bodies = Array.from({ length: 48 }, (_, i) => Buffer.alloc(200_000 + i * 1000, i + 1));
  for (let round = 0; round < 3; round++) {
    const answers = await Promise.all(bodies.map((b) => post(server.port, '/digest', b, agent)));
    answers.forEach((text, i) => {
      assert.equal((JSON.parse(text) as { digest: string }).digest, digest(bodies[i] as Buffer), `body ${i}`);
    });
  }
});

test('a handler whose client went away still has its body until its answer settles', async (t) => {
  let release: () => void = () => undefined;
  const released = new Promise<void>((r) => (release = r));
  let entered: () => void = () => undefined;
  const slowEntered = new Promise<void>((r) => (entered = r));
  let slowDigest: string | undefined;
  const server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    maxBodyBytes: 4 * 1024 * 1024,
    routes: [
      {
        method: 'POST',
        pattern: '/slow',
        handler: async (req: HttpRequest) => {
          entered();
          await released;
          slowDigest = digest(req.body);
          return { status: 200, body: {} };
        },
      },
      {
        method: 'POST',
        pattern: '/digest',
        handler: (req) => ({ status: 200, body: { digest: digest(req.body) } }),
      },
    ],
  });
  t.after(() => server.close());
  const slowBody = Buffer.alloc(300_000, 0x61);
  const slow = http.request({
    host: '127.0.0.1',
    port: server.port,
    path: '/slow',
    method: 'POST',
    headers: { 'content-length': slowBody.length },
  });
  slow.on('error', () => undefined);
  slow.end(slowBody);
  await slowEntered;
  slow.destroy();
  await new Promise((r) => setTimeout(r, 50));
  // Same size class: would get the slow request's buffer if it had gone back on the close.
  const agent = new http.Agent({ keepAlive: false });
  for (let i = 0; i < 3; i++) {
    const other = Buffer.alloc(290_000, 0x62 + i);
    const answer = JSON.parse(await post(server.port, '/digest', other, agent)) as { digest: string };
    assert.equal(answer.digest, digest(other));
  }
  release();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(slowDigest, digest(slowBody));
});
