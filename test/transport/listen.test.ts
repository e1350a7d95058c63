/**
 * Listening ports between real `vrep serve` processes (issue 9, item 4): a
 * port another node already listens on stops start-up with a clear message
 * (uWS's default SO_REUSEPORT let a second node share it and split the
 * connections), while a node killed with live peer links and keep-alive HTTP
 * connections binds both its ports again at once.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import path from 'node:path';
import { startCli, type Started } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';
import { until } from '../helpers/node-proc.ts';
import { freePorts } from '../helpers/addresses.ts';

const SERVING = /"msg":"vrep node serving"/;

interface Serving {
  node: Started;
  httpPort: number;
  peerPort: number | null;
}

async function serve(t: TestContext, args: string[]): Promise<Serving> {
  const node = startCli(['serve', '--fsync', 'no', ...args]);
  t.after(() => node.kill());
  const line = (await node.waitForLine(SERVING, 30_000))[0];
  const fields = JSON.parse(
    node
      .stdout()
      .split('\n')
      .find((l) => SERVING.test(l)) ?? line,
  ) as {
    http: string;
    peerPort?: number;
  };
  return { node, httpPort: Number(fields.http.split(':')[1]), peerPort: fields.peerPort ?? null };
}

/** `node` exits non-zero instead of serving. */
async function refusesToServe(node: Started, why: string): Promise<void> {
  const outcome = await Promise.race([
    node.exited(30_000),
    node.waitForLine(SERVING, 30_000).then(() => 'serving'),
  ]);
  assert.notEqual(outcome, 'serving', why);
  assert.notEqual(outcome, 0);
}

async function nodeIdAt(port: number): Promise<string> {
  // A fresh connection each time: with a shared port the kernel would spread them over both nodes.
  const res = await fetch(`http://127.0.0.1:${port}/health`, { headers: { connection: 'close' } });
  return ((await res.json()) as { node_id: string }).node_id;
}

test('a second node on a busy HTTP port exits non-zero naming the port; the first keeps every connection', async (t) => {
  const dir = tempDir(t);
  // Both ask for the same given port (uWS set SO_REUSEPORT only on given ports, not on port 0).
  const port = (await freePorts(1))[0] as number;
  const first = await serve(t, [
    '--node-id',
    'first',
    '--http',
    `127.0.0.1:${port}`,
    '--data-dir',
    path.join(dir, 'a'),
  ]);
  const second = startCli([
    'serve',
    '--node-id',
    'second',
    '--http',
    `127.0.0.1:${first.httpPort}`,
    '--data-dir',
    path.join(dir, 'b'),
  ]);
  t.after(() => second.kill());
  await refusesToServe(second, 'the second node must not serve on a port the first one holds');
  assert.match(second.stderr(), new RegExp(`HTTP.*127\\.0\\.0\\.1:${first.httpPort}.*in use`));
  for (let i = 0; i < 20; i++) assert.equal(await nodeIdAt(first.httpPort), 'first');
});

test('a second node on a busy peer port exits non-zero naming the port', async (t) => {
  const dir = tempDir(t);
  const first = await serve(t, [
    '--node-id',
    'p1',
    '--role',
    'primary',
    '--http',
    '127.0.0.1:0',
    '--bind',
    `127.0.0.1:${(await freePorts(1))[0] as number}`,
    '--data-dir',
    path.join(dir, 'a'),
  ]);
  assert.ok(first.peerPort !== null);
  const second = startCli([
    'serve',
    '--node-id',
    'p2',
    '--role',
    'primary',
    '--http',
    '127.0.0.1:0',
    '--bind',
    `127.0.0.1:${first.peerPort}`,
    '--data-dir',
    path.join(dir, 'b'),
  ]);
  t.after(() => second.kill());
  await refusesToServe(second, 'the second node must not share the peer port');
  assert.match(second.stderr(), new RegExp(`peer server.*127\\.0\\.0\\.1:${first.peerPort}.*in use`));
});

test('a primary SIGKILLed with live peer links and a keep-alive HTTP client binds both ports again at once', async (t) => {
  const dir = tempDir(t);
  // Port 0 first: uWS set no SO_REUSEADDR on a port it picked, so that port stayed in TIME_WAIT.
  const primaryArgs = (http: string, bind: string): string[] => [
    '--node-id',
    'p',
    '--role',
    'primary',
    '--http',
    http,
    '--bind',
    bind,
    '--data-dir',
    path.join(dir, 'p'),
  ];
  const primary = await serve(t, primaryArgs('127.0.0.1:0', '127.0.0.1:0'));
  const peerPort = primary.peerPort as number;
  const replica = await serve(t, [
    '--node-id',
    'r',
    '--role',
    'replica',
    '--primary',
    `127.0.0.1:${peerPort}`,
    '--http',
    '127.0.0.1:0',
    '--bind',
    '127.0.0.1:0',
    '--data-dir',
    path.join(dir, 'r'),
  ]);
  const connected = async (): Promise<boolean> => {
    const res = await fetch(`http://127.0.0.1:${primary.httpPort}/replication/replicas`);
    const body = (await res.json()) as { replicas: { status: string }[] };
    return body.replicas.some((r) => r.status === 'Connected');
  };
  await until(connected, 30_000, 'the replica Connected');
  // A keep-alive HTTP connection that is open when the primary dies.
  const keepAlive = connect(primary.httpPort, '127.0.0.1');
  keepAlive.on('error', () => undefined);
  t.after(() => keepAlive.destroy());
  await new Promise<void>((resolve) => {
    keepAlive.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    keepAlive.once('data', () => resolve());
  });

  primary.node.kill('SIGKILL');
  await primary.node.exited(10_000);
  const killedAtMs = Date.now();
  const again = await serve(t, primaryArgs(`127.0.0.1:${primary.httpPort}`, `127.0.0.1:${peerPort}`));
  t.diagnostic(
    `rebound HTTP ${primary.httpPort} and peer ${peerPort}: serving ${Date.now() - killedAtMs} ms after the kill`,
  );
  assert.equal(again.httpPort, primary.httpPort);
  assert.equal(again.peerPort, peerPort);
  assert.doesNotMatch(again.node.stdout(), /port busy/);
  await until(connected, 30_000, 'the replica Connected to the restarted primary');
  assert.equal(replica.node.child.exitCode, null);
});
