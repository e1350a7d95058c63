/**
 * The change stream over the network: `GET /changes` upgraded to a
 * WebSocket on the HTTP port (src/server/changes-ws.ts). Credits bound what
 * the server sends; the token guards the upgrade; errors before the upgrade
 * are HTTP answers, after it a last `{"error"}` message and a close; the
 * `vrep changes` CLI (another process) prints one JSON line per event.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { serve, type RunningServer } from '../../src/server/serve.ts';
import { CHANGES_WS_LIMITS, changesRoute } from '../../src/server/changes-ws.ts';
import { startHttpServer } from '../../src/transport/http-server.ts';
import { ReplicationNode } from '../../src/node/replication-node.ts';
import type { ChangeStream } from '../../src/streams/change-stream.ts';
import { startCli } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

const TOKEN = 'sesame';
const DIM = 2;

async function startServer(t: TestContext, storage = {}): Promise<{ server: RunningServer; base: string }> {
  const server = await serve({
    node: { nodeId: 'n1', dataDir: tempDir(t), storage: { fsync: 'no', snapshotEveryBytes: 0, ...storage } },
    http: { host: '127.0.0.1', port: 0, token: TOKEN },
    logger: pino({ level: 'silent' }),
  });
  let stopped = false;
  t.after(() => (stopped ? undefined : server.stop()));
  const s = server as RunningServer & { stopOnce?: () => Promise<void> };
  s.stopOnce = async () => {
    stopped = true;
    await server.stop();
  };
  return { server, base: `127.0.0.1:${server.httpPort}` };
}

interface Client {
  ws: WebSocket;
  /** Every event received so far. */
  events: Record<string, unknown>[];
  /** Messages received so far (events and errors). */
  messages: Record<string, unknown>[];
  closed: Promise<{ code: number; reason: string }>;
  /** Resolves once `n` events in all were received; rejects after timeoutMs. */
  waitEvents(n: number, timeoutMs?: number): Promise<void>;
  credit(n: number): void;
}

/** Opens /changes; resolves once open, or with the HTTP refusal (status and JSON body). */
function connect(
  t: TestContext,
  base: string,
  query: string,
  token: string | null = TOKEN,
): Promise<Client | { status: number; body: { error: { code: string; message: string } } }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${base}/changes?${query}`, {
      headers: token === null ? {} : { authorization: `Bearer ${token}` },
    });
    t.after(() => ws.terminate());
    const timer = setTimeout(() => reject(new Error('no answer to the upgrade within 10 s')), 10_000);
    const events: Record<string, unknown>[] = [];
    const messages: Record<string, unknown>[] = [];
    let notify = (): void => {};
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString()) as { events?: Record<string, unknown>[] };
      messages.push(msg);
      events.push(...(msg.events ?? []));
      notify();
    });
    const closed = new Promise<{ code: number; reason: string }>((res) =>
      ws.on('close', (code, reason) => res({ code, reason: reason.toString() })),
    );
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) as never });
      });
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.on('open', () => {
      clearTimeout(timer);
      resolve({
        ws,
        events,
        messages,
        closed,
        credit: (n) => ws.send(JSON.stringify({ credit: n })),
        waitEvents: (n, timeoutMs = 10_000) =>
          new Promise<void>((res, rej) => {
            const limit = setTimeout(
              () => rej(new Error(`${events.length} of ${n} events within ${timeoutMs} ms`)),
              timeoutMs,
            );
            notify = () => {
              if (events.length >= n) {
                clearTimeout(limit);
                res();
              }
            };
            notify();
          }),
      });
    });
  });
}

function isClient(c: unknown): c is Client {
  return typeof c === 'object' && c !== null && 'ws' in c;
}

async function writePoints(base: string, collection: string, ids: string[]): Promise<void> {
  const res = await fetch(`http://${base}/collections/${collection}/points`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ points: ids.map((id, i) => ({ id, vector: [i, 1], payload: { i } })) }),
  });
  assert.equal(res.status, 200, await res.text());
}

async function createCollection(base: string, name: string): Promise<void> {
  const res = await fetch(`http://${base}/collections/${name}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ dimension: DIM, metric: 'l2' }),
  });
  assert.equal(res.status, 201, await res.text());
}

/** Waits `ms` (to see that nothing more arrives: the check is on counts, never on time). */
const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('the WebSocket sends exactly the credited number of events, then waits for more credit', async (t) => {
  const { base } = await startServer(t);
  await createCollection(base, 'c');
  await writePoints(
    base,
    'c',
    Array.from({ length: 50 }, (_, i) => `p${i}`),
  );
  const c = await connect(t, base, 'from=earliest&ops=upsert&include_vectors=true');
  assert.ok(isClient(c));
  await settle(200);
  assert.equal(c.events.length, 0, 'nothing before any credit');
  c.credit(10);
  await c.waitEvents(10);
  await settle(300);
  assert.equal(c.events.length, 10, 'exactly the credit, then it waits');
  c.credit(5);
  await c.waitEvents(15);
  await settle(300);
  assert.equal(c.events.length, 15);
  c.credit(100);
  await c.waitEvents(50);
  await writePoints(base, 'c', ['late']);
  await c.waitEvents(51);
  assert.deepEqual(
    c.events.map((e) => e['id']),
    [...Array.from({ length: 50 }, (_, i) => `p${i}`), 'late'],
  );
  const first = c.events[0] as {
    position: { term: number; lsn: number };
    vector: number[];
    payload: unknown;
  };
  assert.deepEqual(first.vector, [0, 1], 'vectors as arrays');
  assert.deepEqual(first.payload, { i: 0 });
  assert.equal(typeof first.position.term, 'number');
  assert.equal(first.position.lsn, 2);

  // More credit outstanding than the limit is a protocol error: a last message, then a close.
  c.credit(CHANGES_WS_LIMITS.maxCredit + 1);
  const { code } = await c.closed;
  assert.equal(code, 1008);
  const last = c.messages.at(-1) as { error: { code: string; message: string } };
  assert.equal(last.error.code, 'ERR_INVALID_INPUT');
  assert.match(last.error.message, /more than 10000/);
});

test('the upgrade needs the bearer token: 401 in the API error shape', async (t) => {
  const { base } = await startServer(t);
  for (const token of [null, 'wrong']) {
    const r = await connect(t, base, 'from=earliest', token);
    assert.ok(!isClient(r), 'refused before the upgrade');
    assert.equal(r.status, 401);
    assert.equal(r.body.error.code, 'ERR_UNAUTHORIZED');
  }
});

test('errors before the upgrade are HTTP answers: bad query, group, evicted position', async (t) => {
  const { server, base } = await startServer(t, { walSegmentBytes: 64 * 1024, logBytes: 64 * 1024 });
  const cases: [string, number, string, RegExp][] = [
    ['from=yesterday', 400, 'ERR_INVALID_INPUT', /^from: /],
    ['from=1:2:3:4', 400, 'ERR_INVALID_INPUT', /^from: /],
    ['group=no%20spaces', 400, 'ERR_INVALID_INPUT', /^group: expected 1-255 of/],
    ['partition_by=id', 400, 'ERR_INVALID_INPUT', /only with group/],
    ['group=g&partition_by=hash', 400, 'ERR_INVALID_INPUT', /^partition_by: /],
    ['ops=upsert,config', 400, 'ERR_INVALID_INPUT', /^ops: unknown op "config"/],
    ['include_vectors=yes', 400, 'ERR_INVALID_INPUT', /^include_vectors: /],
    ['from=earliest&from=latest', 400, 'ERR_INVALID_INPUT', /given 2 times/],
    ['colections=a', 400, 'ERR_INVALID_INPUT', /unknown query parameter/],
  ];
  for (const [query, status, code, message] of cases) {
    const r = await connect(t, base, query);
    assert.ok(!isClient(r), query);
    assert.equal(r.status, status, query);
    assert.equal(r.body.error.code, code, query);
    assert.match(r.body.error.message, message, query);
  }
  const plain = await fetch(`http://${base}/changes`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(plain.status, 400, 'a GET without Upgrade says it is a WebSocket route');

  await createCollection(base, 'c');
  const pad = 'z'.repeat(4000);
  for (let i = 0; i < 100; i++) {
    const res = await fetch(`http://${base}/collections/c/points`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ points: [{ id: `p${i}`, vector: [i, 0], payload: { pad } }] }),
    });
    assert.equal(res.status, 200);
  }
  await server.node.snapshot();
  const evicted = await connect(t, base, 'from=1:1');
  assert.ok(!isClient(evicted));
  assert.equal(evicted.status, 410);
  assert.equal(evicted.body.error.code, 'ERR_POSITION_EVICTED');
  assert.match(evicted.body.error.message, /earliest position held is 1:\d+/);
});

test('a stream ends with a last error message and a close when the node stops', async (t) => {
  const { server, base } = await startServer(t);
  await createCollection(base, 'c');
  const c = await connect(t, base, 'from=latest');
  assert.ok(isClient(c));
  c.credit(10);
  await settle(100);
  await (server as RunningServer & { stopOnce: () => Promise<void> }).stopOnce();
  const { code } = await c.closed;
  assert.equal(code, 1001);
  assert.deepEqual((c.messages.at(-1) as { error: { code: string } }).error.code, 'ERR_NODE_STOPPED');
});

test('vrep changes prints one JSON line per event', async (t) => {
  const { base } = await startServer(t);
  await createCollection(base, 'a');
  await createCollection(base, 'b');
  await writePoints(base, 'a', ['x', 'y']);
  await writePoints(base, 'b', ['z']);
  const cli = startCli([
    'changes',
    '--from',
    'earliest',
    '--collections',
    'a',
    '--limit',
    '3',
    '--url',
    `http://${base}`,
    '--token',
    TOKEN,
  ]);
  t.after(() => cli.kill());
  assert.equal(await cli.exited(30_000), 0, cli.stderr());
  const lines = cli.stdout().trim().split('\n');
  const events = lines.map((l) => JSON.parse(l) as { op: string; collection: string; id: string | null });
  assert.deepEqual(
    events.map((e) => `${e.op}:${e.collection}:${e.id ?? ''}`),
    ['create_collection:a:', 'upsert:a:x', 'upsert:a:y'],
  );

  // With --group it commits what it printed: a second run goes on after it.
  const groupRun = async (): Promise<string[]> => {
    const c = startCli([
      'changes',
      '--group',
      'cli',
      '--from',
      'earliest',
      '--limit',
      '2',
      '--url',
      `http://${base}`,
      '--token',
      TOKEN,
    ]);
    t.after(() => c.kill());
    assert.equal(await c.exited(30_000), 0, c.stderr());
    return c
      .stdout()
      .trim()
      .split('\n')
      .map((l) => {
        const e = JSON.parse(l) as { op: string; collection: string; id: string | null };
        return `${e.op}:${e.collection}:${e.id ?? ''}`;
      });
  };
  assert.deepEqual(await groupRun(), ['create_collection:a:', 'create_collection:b:']);
  assert.deepEqual(await groupRun(), ['upsert:a:x', 'upsert:a:y']);

  const refused = startCli(['changes', '--from', 'earliest', '--url', `http://${base}`, '--token', 'nope']);
  t.after(() => refused.kill());
  assert.equal(await refused.exited(30_000), 1);
  assert.match(refused.stderr(), /401 ERR_UNAUTHORIZED/);
});

test('a client that credits but does not read: the server stops reading its stream (socket backpressure)', async (t) => {
  const node = await ReplicationNode.start({
    nodeId: 'n1',
    dataDir: tempDir(t),
    storage: { fsync: 'no', snapshotEveryBytes: 0 },
  });
  t.after(() => node.stop());
  // The route gets a node whose streams the test can see (how far the server read).
  const streams: ChangeStream[] = [];
  const watched = new Proxy(node, {
    get(target, prop) {
      if (prop === 'changes')
        return (opts: Parameters<ReplicationNode['changes']>[0]) => {
          const s = target.changes(opts) as ChangeStream;
          streams.push(s);
          return s;
        };
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const http = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    routes: [],
    maxBodyBytes: 1024,
    upgrades: [changesRoute({ node: watched, logger: pino({ level: 'silent' }) })],
  });
  t.after(() => http.close());
  await node.createCollection('c', { dimension: DIM, metric: 'l2' });
  const records = 50;
  const perRecord = 100;
  const pad = 'p'.repeat(10_000);
  for (let r = 0; r < records; r++) {
    await node.write(
      'c',
      Array.from({ length: perRecord }, (_, i) => ({ id: `r${r}-${i}`, vector: [r, i], payload: { pad } })),
    );
  }
  const head = node.lastLsn; // 51: the create and 50 batches of ~1 MB
  const c = await connect(t, `127.0.0.1:${http.port}`, 'from=earliest&ops=upsert', null);
  assert.ok(isClient(c));
  const socket = (c.ws as unknown as { _socket: Socket })._socket;
  socket.pause(); // the client reads nothing from here on
  c.credit(records * perRecord); // 5000 events, ~50 MB of JSON, all credited
  // Wait until the server's read position stops moving (it waits for the socket), then look.
  let last = -1;
  for (let stable = 0; stable < 5;) {
    await settle(100);
    const now = streams[0]?.readLsn ?? 0;
    stable = now === last ? stable + 1 : 0;
    last = now;
  }
  // Held back by the socket: 4 MiB unsent at most, the kernel's buffers, one pull (~2.5 MB).
  assert.ok(last <= head / 2, `the server read up to LSN ${last} of ${head} for a client that reads nothing`);
  socket.resume();
  await c.waitEvents(records * perRecord, 60_000);
  assert.equal(c.events.length, records * perRecord, 'and it catches up once it reads');
});

test('a group member over the WebSocket: commits answered once held, a new connection resumes after them, DELETE /replication/groups/:name', async (t) => {
  const { base } = await startServer(t);
  await createCollection(base, 'c');
  await writePoints(
    base,
    'c',
    Array.from({ length: 20 }, (_, i) => `p${i}`),
  );
  const c = await connect(t, base, 'group=g&from=earliest&ops=upsert');
  assert.ok(isClient(c));
  c.credit(5);
  await c.waitEvents(5);
  c.ws.send(JSON.stringify({ commit: 'sent' }));
  const committedOf = async (client: Client, n: number): Promise<string> => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const got = client.messages.filter((m) => 'committed' in m);
      if (got.length >= n) return (got[n - 1] as { committed: string }).committed;
      assert.ok(Date.now() < deadline, 'no commit answer within 10 s');
      await settle(10);
    }
  };
  const e5 = c.events[4] as { position: { term: number; lsn: number }; index: number; count: number };
  // One write of 20 points is one record: the commit names the point within it.
  assert.equal(await committedOf(c, 1), `${e5.position.term}:${e5.position.lsn}:4`);
  c.credit(5);
  await c.waitEvents(10);
  // A position that was not sent is a protocol error.
  c.ws.send(JSON.stringify({ commit: '1:9999' }));
  assert.equal((await c.closed).code, 1008);
  assert.match(JSON.stringify(c.messages.at(-1)), /not handed out/);

  // The next member of the group starts after the commit: p5 comes again (sent, never committed), p4 never.
  const d = await connect(t, base, 'group=g&auto_commit=true');
  assert.ok(isClient(d));
  d.credit(3);
  await d.waitEvents(3);
  assert.deepEqual(
    d.events.map((e) => e['id']),
    ['p5', 'p6', 'p7'],
  );
  d.credit(2); // auto_commit: the first credit was the window; this one says two were handled: p5, p6
  assert.equal(await committedOf(d, 1), `${e5.position.term}:${e5.position.lsn}:6`);
  await d.waitEvents(5);
  d.credit(1); // one more handled: p7 (p8 and p9 were sent, not handled: not committed)
  assert.equal(await committedOf(d, 2), `${e5.position.term}:${e5.position.lsn}:7`);
  const status = (await (
    await fetch(`http://${base}/replication/status`, { headers: { authorization: `Bearer ${TOKEN}` } })
  ).json()) as { groups: { name: string; position: unknown; members: number; lagged_out: boolean }[] };
  const g = status.groups.find((x) => x.name === 'g');
  assert.equal(g?.members, 1);
  assert.equal(g?.lagged_out, false);
  assert.deepEqual(g?.position, { ...e5.position, index: 7 });

  // A commit on a plain stream is a protocol error.
  const plain = await connect(t, base, 'from=earliest');
  assert.ok(isClient(plain));
  plain.ws.send(JSON.stringify({ commit: 'sent' }));
  assert.equal((await plain.closed).code, 1008);

  const del = (name: string) =>
    fetch(`http://${base}/replication/groups/${name}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
  const r = await del('g');
  assert.equal(r.status, 200, await r.clone().text());
  assert.equal(((await r.json()) as { deleted: string }).deleted, 'g');
  assert.equal((await d.closed).code, 1001, 'its member here ends');
  assert.equal((await del('g')).status, 404);
});
