/**
 * HTTP strictness of `vrep serve` (issue 9, item 7), over raw sockets: every
 * request gets an answer (HTTP/1.0 health checks, pipelined requests),
 * ambiguous framing is refused (RFC 9112), HEAD works like GET, and bad
 * input that used to surface as 500 or a dead node is a 400.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startCli, type Started } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';
import { rawExchange, statusesOf } from '../helpers/raw-http.ts';

async function startServe(t: TestContext, extra: string[] = []): Promise<{ port: number; node: Started }> {
  const node = startCli(['serve', '--http', '127.0.0.1:0', '--data-dir', tempDir(t), ...extra]);
  t.after(() => node.kill());
  const m = await node.waitForLine(/"http":"127\.0\.0\.1:(\d+)"/, 30_000);
  return { port: Number(m[1]), node };
}

const CRLF = '\r\n';
function request(lines: string[], body = ''): string {
  return `${lines.join(CRLF)}${CRLF}${CRLF}${body}`;
}

test('HTTP/1.0 and a missing Host: a health check gets 200, HTTP/1.1 without Host gets 400 and a close', async (t) => {
  const { port } = await startServe(t);
  const http10 = await rawExchange(port, request(['GET /health HTTP/1.0']));
  assert.deepEqual(statusesOf(http10.text), [200], JSON.stringify(http10.text));
  assert.match(http10.text, /"status":"ok"/);
  assert.ok(http10.closed, 'an HTTP/1.0 request without keep-alive closes after the answer');

  const noHost = await rawExchange(port, request(['GET /health HTTP/1.1']));
  assert.deepEqual(statusesOf(noHost.text), [400], JSON.stringify(noHost.text));
  assert.ok(noHost.closed, 'the connection is closed after a 400 for a missing Host');
});

test('ambiguous framing is refused: two Content-Lengths, chunked not last, a Content-Length of 1e9', async (t) => {
  const { port } = await startServe(t);
  const twoLengths = await rawExchange(
    port,
    request(
      [
        'PUT /collections/c HTTP/1.1',
        'Host: x',
        'Content-Type: application/json',
        'Content-Length: 29',
        'Content-Length: 30',
      ],
      '{"dimension":2,"metric":"l2"} ',
    ),
  );
  assert.deepEqual(statusesOf(twoLengths.text), [400], JSON.stringify(twoLengths.text));
  assert.ok(twoLengths.closed);

  const chunkedIdentity = await rawExchange(
    port,
    request(
      [
        'POST /collections/c/search HTTP/1.1',
        'Host: x',
        'Content-Type: application/json',
        'Transfer-Encoding: chunked, identity',
      ],
      `2${CRLF}{}${CRLF}0${CRLF}${CRLF}`,
    ),
  );
  const [status] = statusesOf(chunkedIdentity.text);
  assert.ok(status === 400 || status === 501, JSON.stringify(chunkedIdentity.text));
  assert.ok(chunkedIdentity.closed);

  const huge = await rawExchange(
    port,
    request([
      'POST /collections/c/points HTTP/1.1',
      'Host: x',
      'Content-Type: application/json',
      'Content-Length: 1000000000',
    ]),
  );
  assert.deepEqual(statusesOf(huge.text), [413], JSON.stringify(huge.text));
  assert.match(huge.text, /ERR_BODY_TOO_LARGE/);

  // Nothing above created the collection.
  const list = await fetch(`http://127.0.0.1:${port}/collections`);
  assert.deepEqual(await list.json(), { collections: [] });
});

test('a body followed by a pipelined request: both are answered, in order', async (t) => {
  const { port } = await startServe(t);
  const create = request(
    ['PUT /collections/p HTTP/1.1', 'Host: x', 'Content-Type: application/json', 'Content-Length: 29'],
    '{"dimension":2,"metric":"l2"}',
  );
  const list = request(['GET /collections HTTP/1.1', 'Host: x']);
  const both = await rawExchange(port, create + list);
  assert.deepEqual(statusesOf(both.text), [201, 200], JSON.stringify(both.text));
  assert.match(both.text, /"collections":\[\{"name":"p"/);

  const emptyBody = request(['DELETE /collections/p HTTP/1.1', 'Host: x', 'Content-Length: 0']);
  const again = await rawExchange(port, emptyBody + list);
  assert.deepEqual(statusesOf(again.text), [200, 200], JSON.stringify(again.text));
  assert.match(again.text, /\{"collections":\[\]\}/);
});

test('HEAD answers like GET without a body', async (t) => {
  const { port } = await startServe(t);
  for (const path of ['/health', '/collections']) {
    const get = await fetch(`http://127.0.0.1:${port}${path}`);
    const getBody = await get.text();
    const head = await rawExchange(port, request([`HEAD ${path} HTTP/1.1`, 'Host: x']), 1000);
    assert.deepEqual(statusesOf(head.text), [200], `${path}: ${JSON.stringify(head.text)}`);
    const [headers, body] = head.text.split(`${CRLF}${CRLF}`);
    assert.equal(body, '', `HEAD ${path} sends no body`);
    assert.match(headers ?? '', /content-type: application\/json/i);
    assert.ok(getBody.length > 0);
  }
  const unknown = await fetch(`http://127.0.0.1:${port}/nothing`, { method: 'HEAD' });
  assert.equal(unknown.status, 404);
});

test('a repeated consistency parameter and a 100k-deep JSON body are 400, not a silent pick or a 500', async (t) => {
  const { port } = await startServe(t);
  const base = `http://127.0.0.1:${port}`;
  const json = { 'content-type': 'application/json' };
  assert.equal(
    (
      await fetch(`${base}/collections/c`, {
        method: 'PUT',
        headers: json,
        body: '{"dimension":2,"metric":"l2"}',
      })
    ).status,
    201,
  );
  const repeated = await fetch(`${base}/collections/c/points?consistency=one&consistency=all`, {
    method: 'POST',
    headers: json,
    body: '{"points":[{"id":"a","vector":[1,2]}]}',
  });
  const repeatedBody = (await repeated.json()) as { error: { code: string; message: string } };
  assert.equal(repeated.status, 400, JSON.stringify(repeatedBody));
  assert.match(repeatedBody.error.message, /consistency/);

  const deep = `{"role":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
  for (const path of ['/replication/configure', '/collections/c/search', '/collections/c/points']) {
    const res = await fetch(`${base}${path}`, { method: 'POST', headers: json, body: deep });
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(res.status, 400, `${path}: ${JSON.stringify(body)}`);
  }
  const count = (await (await fetch(`${base}/collections/c`)).json()) as { count: number };
  assert.equal(count.count, 0, 'nothing was written');
});

/** One point whose payload is nested `depth` arrays deep, in the binary batch format. */
function deepBinaryBatch(id: string, vector: number[], depth: number): Buffer {
  const idBytes = Buffer.from(id);
  const payload = Buffer.from(`{"x":${'['.repeat(depth)}${']'.repeat(depth)}}`);
  const head = Buffer.alloc(28);
  head.write('VRB1', 0, 'latin1');
  head.writeUInt32LE(1, 4);
  head.writeUInt32LE(vector.length, 8);
  head.writeUInt32LE(idBytes.length, 12);
  head.writeUInt32LE(payload.length, 16);
  head.writeUInt32LE(idBytes.length, 20);
  head.writeUInt32LE(payload.length, 24);
  return Buffer.concat([head, Buffer.from(Float32Array.from(vector).buffer), idBytes, payload]);
}

test('a payload too deep to serialize never takes the node down', async (t) => {
  const { port, node } = await startServe(t);
  const base = `http://127.0.0.1:${port}`;
  await fetch(`${base}/collections/c`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: '{"dimension":2,"metric":"l2"}',
  });
  const write = await fetch(`${base}/collections/c/points`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.vrep.batch' },
    body: deepBinaryBatch('deep', [1, 2], 20_000),
  });
  const writeBody = await write.text();
  if (write.status === 200) {
    // Stored: reading it back must be an answer (a 500 for that request), not a crash.
    const read = await fetch(`${base}/collections/c/points/deep`);
    assert.equal(read.status, 500, await read.text());
  } else {
    assert.equal(write.status, 400, writeBody);
    assert.match(writeBody, /points\[0\]\.payload/);
  }
  const health = await fetch(`${base}/health`);
  assert.equal(health.status, 200, 'the node is still up');
  assert.equal(node.child.exitCode, null);
  assert.doesNotMatch(node.stderr(), /RangeError/);
});

test('a client still sending a body over the limit reads its 413 (the close lingers instead of resetting)', async (t) => {
  const { port } = await startServe(t, ['--max-body-bytes', '65536']);
  const size = 16 * 1024 * 1024;
  for (let attempt = 0; attempt < 3; attempt++) {
    const answer = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      let text = '';
      socket.setEncoding('utf8').on('data', (d: string) => (text += d));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(text));
      socket.setTimeout(10_000, () => socket.destroy());
      socket.write(
        request([
          'POST /collections/c/points HTTP/1.1',
          'Host: x',
          'Content-Type: application/json',
          `Content-Length: ${size}`,
        ]),
      );
      // Like a simple client: the whole body first, the answer after.
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      let sent = 0;
      const pump = (): void => {
        while (sent < size && !socket.destroyed) {
          sent += chunk.length;
          if (!socket.write(chunk)) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
    assert.deepEqual(
      statusesOf(answer),
      [413],
      `attempt ${attempt}: ${JSON.stringify(answer.slice(0, 200))}`,
    );
  }
});
