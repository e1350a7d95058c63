/**
 * SIGTERM on a real `vrep serve` with keep-alive clients (issue 9, item 6):
 * the node stops taking requests, finishes the one in flight, never answers
 * from its closed store, closes idle and busy keep-alive connections and
 * exits 0 within a few seconds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startCli } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

interface Reply {
  status: number;
  body: string;
}

function send(agent: http.Agent, port: number, method: string, path: string, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent,
        headers: body !== undefined ? { 'content-type': 'application/json' } : {},
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test('SIGTERM with a busy and an idle keep-alive client and a request in flight: answered, then exit 0', async (t) => {
  const node = startCli(['serve', '--http', '127.0.0.1:0', '--data-dir', tempDir(t), '--fsync', 'always']);
  t.after(() => node.kill());
  const port = Number((await node.waitForLine(/"http":"127\.0\.0\.1:(\d+)"/, 30_000))[1]);
  const idleAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const busyAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => {
    idleAgent.destroy();
    busyAgent.destroy();
  });
  assert.equal(
    (await send(busyAgent, port, 'PUT', '/collections/c', '{"dimension":2,"metric":"l2"}')).status,
    201,
  );
  // The idle client made one request and keeps its connection open, doing nothing.
  assert.equal((await send(idleAgent, port, 'GET', '/health')).status, 200);

  // A write whose body is still arriving when the signal comes.
  const body = '{"points":[{"id":"late","vector":[1,2]}]}';
  const inFlight = new Promise<Reply>((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/collections/c/points',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.write(body.slice(0, 10));
    setTimeout(() => req.end(body.slice(10)), 700);
  });

  // The busy client keeps sending on its keep-alive connection the whole time.
  const busyReplies: Reply[] = [];
  let busyError: unknown;
  let signalledAtMs = 0;
  const busyLoop = (async () => {
    for (;;) {
      try {
        busyReplies.push(await send(busyAgent, port, 'GET', '/collections'));
      } catch (err) {
        busyError = err; // the node closed the connection or stopped listening
        return;
      }
      if (signalledAtMs > 0 && Date.now() - signalledAtMs > 20_000) return;
    }
  })();

  await new Promise((r) => setTimeout(r, 300));
  const before = busyReplies.length;
  node.kill('SIGTERM');
  signalledAtMs = Date.now();

  const code = await node.exited(15_000);
  const exitMs = Date.now() - signalledAtMs;
  t.diagnostic(
    `exited ${exitMs} ms after SIGTERM; busy client got ${busyReplies.length - before} replies after it`,
  );
  assert.equal(code, 0, node.stderr());
  await busyLoop;

  const late = await inFlight;
  assert.equal(late.status, 200, `the request in flight at SIGTERM is finished: ${late.body}`);
  for (const r of busyReplies.slice(before)) {
    // Either the node still served it normally (an open store) or refused it: never anything else.
    assert.ok(r.status === 200 || r.status === 503, `${r.status} ${r.body}`);
    if (r.status === 200)
      assert.match(r.body, /"collections":\[\{"name":"c"/, 'never an empty, closed store');
  }
  assert.ok(busyError !== undefined || busyReplies.at(-1)?.status === 503, 'the busy client was cut off');
  assert.match(node.stdout(), /"msg":"stopped"/);
});
