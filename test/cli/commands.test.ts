/**
 * The command line and the operator's routes (issue 9, item 12): --version,
 * what `vrep status` says about a bad URL, the promote route's word on
 * fields, the bearer scheme in any case, forcing a diverged replica's full
 * sync over HTTP and from the CLI, and restarting one node of `cluster up`.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot, startCli, type Started } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';
import { freeBasePort } from '../helpers/addresses.ts';
import { until } from '../helpers/node-proc.ts';

const SERVING = /"msg":"vrep node serving"/;

async function serve(
  t: TestContext,
  args: string[],
): Promise<{ node: Started; base: string; peerPort: number }> {
  const node = startCli(['serve', '--http', '127.0.0.1:0', '--fsync', 'no', ...args]);
  t.after(() => node.kill());
  await node.waitForLine(SERVING, 30_000);
  const line = node
    .stdout()
    .split('\n')
    .find((l) => SERVING.test(l)) as string;
  const fields = JSON.parse(line) as { http: string; peerPort?: number };
  return { node, base: `http://${fields.http}`, peerPort: fields.peerPort ?? 0 };
}

async function post(base: string, route: string, body?: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}${route}`, {
    method: 'POST',
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function run(args: string[]): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const cli = startCli(args);
  return cli.exited(30_000).then((code) => ({ code, stdout: cli.stdout(), stderr: cli.stderr() }));
}

test('vrep --version prints the package version', async () => {
  const { version } = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
    version: string;
  };
  const r = await run(['--version']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), version);
});

test('vrep status --url notaurl says the URL is invalid, not that the node is down', async () => {
  const r = await run(['status', '--url', 'notaurl']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /notaurl/);
  assert.match(r.stderr, /not a valid URL|invalid URL/i);
  assert.doesNotMatch(r.stderr, /is the node running/);
});

test('promote names an unknown body field and the one it takes; the bearer scheme matches in any case', async (t) => {
  const { base } = await serve(t, ['--data-dir', tempDir(t), '--token', 'sesame']);
  const auth = { authorization: 'Bearer sesame' };
  const promote = await post(base, '/replication/promote', '{"now":true}', auth);
  assert.equal(promote.status, 400);
  const message = (promote.body['error'] as { message: string }).message;
  assert.match(message, /"now"/);
  assert.match(message, /allowed: "force"/);
  for (const scheme of ['bearer', 'BEARER', 'BeArEr']) {
    const res = await fetch(`${base}/collections`, { headers: { authorization: `${scheme} sesame` } });
    assert.equal(res.status, 200, scheme);
    await res.arrayBuffer();
  }
  const wrong = await fetch(`${base}/collections`, { headers: { authorization: 'bearer nope' } });
  assert.equal(wrong.status, 401);
  await wrong.arrayBuffer();
});

test('a diverged replica: POST /replication/force-sync and vrep force-sync make it take the primary in full', async (t) => {
  const dir = tempDir(t);
  const fast = ['--log-level', 'info'];
  // The replica-to-be first lives on its own history, with a write the primary never had.
  const lone = await serve(t, [
    '--node-id',
    'r',
    '--role',
    'primary',
    '--bind',
    '127.0.0.1:0',
    '--data-dir',
    path.join(dir, 'r'),
    ...fast,
  ]);
  const json = { 'content-type': 'application/json' };
  await fetch(`${lone.base}/collections/mine`, {
    method: 'PUT',
    headers: json,
    body: '{"dimension":2,"metric":"l2"}',
  });
  lone.node.kill('SIGTERM');
  assert.equal(await lone.node.exited(15_000), 0);

  const primary = await serve(t, [
    '--node-id',
    'p',
    '--role',
    'primary',
    '--bind',
    '127.0.0.1:0',
    '--data-dir',
    path.join(dir, 'p'),
    ...fast,
  ]);
  await fetch(`${primary.base}/collections/docs`, {
    method: 'PUT',
    headers: json,
    body: '{"dimension":2,"metric":"l2"}',
  });
  const replica = await serve(t, [
    '--node-id',
    'r',
    '--role',
    'replica',
    '--bind',
    '127.0.0.1:0',
    '--primary',
    `127.0.0.1:${primary.peerPort}`,
    '--data-dir',
    path.join(dir, 'r'),
    ...fast,
  ]);
  const status = async (): Promise<{ master?: { refused: string | null }; last_lsn: number }> =>
    (await (await fetch(`${replica.base}/replication/status`)).json()) as {
      master?: { refused: string | null };
      last_lsn: number;
    };
  await until(async () => (await status()).master?.refused, 30_000, 'the replica to refuse the primary');

  // The route checks its body before calling the node.
  assert.equal((await post(primary.base, '/replication/force-sync', '{}')).status, 400);
  assert.equal((await post(primary.base, '/replication/force-sync', '{"replica":"r","x":1}')).status, 400);
  // A replica has nobody to force: an operation for another role.
  const onReplica = await post(replica.base, '/replication/force-sync', '{"replica":"r"}');
  assert.equal(onReplica.status, 409, JSON.stringify(onReplica.body));
  assert.equal((onReplica.body['error'] as { code: string }).code, 'ERR_ROLE');
  assert.match((onReplica.body['error'] as { message: string }).message, /not a primary/);

  const cli = await run(['force-sync', '--url', primary.base, '--replica', 'r']);
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /full sync/);
  await until(
    async () => {
      const list = (await (await fetch(`${replica.base}/collections`)).json()) as {
        collections: { name: string }[];
      };
      return list.collections.map((c) => c.name).join() === 'docs';
    },
    30_000,
    'the replica to hold exactly the primary data',
  );
  // The state switches before the install is reported to the core (which then clears the refusal).
  await until(async () => (await status()).master?.refused === null, 10_000, 'the refusal to clear');
  const again = await post(primary.base, '/replication/force-sync', '{"replica":"r"}');
  assert.equal(again.status, 202, JSON.stringify(again.body));
  const unknown = await run(['force-sync', '--url', primary.base, '--replica', 'nobody']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /nobody/);
});

test('vrep cluster restart n2 restarts that node inside the running cluster', async (t) => {
  const base = await freeBasePort(2);
  const dataDir = tempDir(t);
  const cluster = startCli([
    'cluster',
    'up',
    '--nodes',
    '2',
    '--fsync',
    'no',
    '--base-port',
    String(base),
    '--data-dir',
    dataDir,
  ]);
  t.after(async () => {
    cluster.kill('SIGTERM');
    await cluster.exited(20_000).catch(() => cluster.kill());
  });
  await cluster.waitForLine(/read back from n2/, 90_000);
  const n2 = `http://127.0.0.1:${base + 1}`;
  const uptime = async (): Promise<number> =>
    ((await (await fetch(`${n2}/health`)).json()) as { uptime_ms: number }).uptime_ms;
  await new Promise((r) => setTimeout(r, 1500));
  const before = await uptime();

  const r = await run(['cluster', 'restart', 'n2', '--data-dir', dataDir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /n2/);
  assert.ok((await uptime()) < before, 'n2 is a new process');
  await until(
    async () => {
      const list = (await (await fetch(`http://127.0.0.1:${base}/replication/replicas`)).json()) as {
        replicas: { id: string; status: string }[];
      };
      return list.replicas.some((x) => x.id === 'n2' && x.status === 'Connected');
    },
    30_000,
    'n2 Connected again',
  );
  assert.equal(cluster.child.exitCode, null, 'the cluster keeps running');
  assert.doesNotMatch(cluster.stderr(), /node n2 exited/);

  const unknown = await run(['cluster', 'restart', 'n9', '--data-dir', dataDir]);
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /n9/);
  const none = await run(['cluster', 'restart', 'n2', '--data-dir', path.join(dataDir, 'nothing')]);
  assert.notEqual(none.code, 0);
  assert.match(none.stderr, /no cluster/);

  cluster.kill('SIGTERM');
  assert.equal(await cluster.exited(30_000), 0, cluster.stderr());
});
