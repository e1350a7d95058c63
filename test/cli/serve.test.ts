import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startCli } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';
import { existsSync } from 'node:fs';
import path from 'node:path';

test('vrep serve opens its data dir, answers /health on loopback and stops cleanly on SIGTERM', async (t) => {
  const dataDir = tempDir(t);
  const node = startCli(['serve', '--http', '127.0.0.1:0', '--node-id', 'health-1', '--data-dir', dataDir]);
  t.after(() => node.kill());
  const m = await node.waitForLine(/"http":"127\.0\.0\.1:(\d+)"/, 20_000);
  const port = Number(m[1]);

  const health = await fetch(`http://127.0.0.1:${port}/health`);
  assert.equal(health.status, 200);
  const body = (await health.json()) as Record<string, unknown>;
  assert.equal(body['status'], 'ok');
  assert.equal(body['node_id'], 'health-1');
  assert.equal(body['role'], 'standalone');
  const native = body['native'] as { distance: { selected: string; available: string[] }; crc32c: string };
  assert.ok(native.distance.available.includes(native.distance.selected));
  assert.match(native.crc32c, /^(sse4\.2|armv8-crc|software)$/);

  assert.equal((await fetch(`http://127.0.0.1:${port}/nope`)).status, 404);
  assert.equal((await fetch(`http://127.0.0.1:${port}/health`, { method: 'POST' })).status, 405);

  assert.equal(body['last_lsn'], 0);

  // The data dir is locked while the node runs.
  const second = startCli(['serve', '--http', '127.0.0.1:0', '--data-dir', dataDir]);
  assert.notEqual(await second.exited(20_000), 0);
  assert.match(second.stderr(), /in use by process/);

  node.kill('SIGTERM');
  assert.equal(await node.exited(10_000), 0);
  assert.match(node.stdout(), /"msg":"stopped"/);
  assert.ok(existsSync(path.join(dataDir, 'node-meta.json')));
  assert.ok(!existsSync(path.join(dataDir, 'LOCK')), 'lock released on shutdown');
});

test('a role this build cannot run: the message on stderr, exit 2', async (t) => {
  // multi-master is the last role to arrive; once it does, this test has nothing to check.
  const node = startCli([
    'serve',
    '--role',
    'multi-master',
    '--peers',
    '127.0.0.1:9',
    '--bind',
    '127.0.0.1:0',
    '--http',
    '127.0.0.1:0',
    '--data-dir',
    tempDir(t),
  ]);
  t.after(() => node.kill());
  const outcome = await Promise.race([
    node.exited(30_000),
    node.waitForLine(/"msg":"vrep node serving"/, 30_000).then(() => 'serving'),
  ]);
  if (outcome === 'serving') {
    t.skip('multi-master is available in this build');
    return;
  }
  assert.equal(outcome, 2);
  assert.match(node.stderr(), /^vrep serve: role "multi-master" is not available/m);
});

test('vrep serve rejects a malformed --http address, naming it, with exit 2', async () => {
  const node = startCli(['serve', '--http', 'nonsense']);
  assert.equal(await node.exited(20_000), 2);
  assert.match(node.stderr(), /config http: expected HOST:PORT .*, got "nonsense" \(from --http\)/);
});

test('an unknown flag is a usage error: exit 2', async () => {
  const node = startCli(['serve', '--colour', 'blue']);
  assert.equal(await node.exited(20_000), 2);
  assert.match(node.stderr(), /unknown option '--colour'/);
});
