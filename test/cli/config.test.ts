/**
 * Black-box tests of `vrep serve`'s configuration and of `vrep status`: real
 * processes, a config file on disk, env variables, spoken to over HTTP.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startCli, type Started } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

const SERVING = /"msg":"vrep node serving"/;

async function serving(t: TestContext, node: Started): Promise<string> {
  t.after(() => node.kill());
  const m = await node.waitForLine(/"http":"127\.0\.0\.1:(\d+)"/, 30_000);
  return `http://127.0.0.1:${m[1]}`;
}

test('vrep serve --config with a bad file exits 2, names the key, value and expectation, starts nothing', async (t) => {
  const dir = tempDir(t);
  const dataDir = path.join(dir, 'data');
  const bad = path.join(dir, 'bad.yaml');
  writeFileSync(bad, `data_dir: ${dataDir}\nreplication:\n  heartbeat_interval_secs: soon\n  colour: blue\n`);
  const node = startCli(['serve', '--config', bad, '--http', '127.0.0.1:0']);
  assert.equal(await node.exited(30_000), 2);
  assert.match(
    node.stderr(),
    /config replication\.heartbeat_interval_secs: expected a positive number of seconds .*, got "soon" \(in .*bad\.yaml\)/,
  );
  assert.match(node.stderr(), /config replication\.colour: unknown key \(value "blue"/);
  assert.doesNotMatch(node.stdout(), SERVING);
  assert.ok(!existsSync(dataDir), 'no data dir was created');
});

test('a missing config file and a bad env value each exit 2 with a message', async (t) => {
  const dir = tempDir(t);
  const missing = startCli(['serve', '--config', path.join(dir, 'nope.yaml')]);
  assert.equal(await missing.exited(30_000), 2);
  assert.match(
    missing.stderr(),
    /config file: expected a readable YAML file, got ".*nope\.yaml" \(from --config\): ENOENT/,
  );

  const badEnv = startCli(['serve', '--data-dir', dir], { REPLICATION_HEARTBEAT_INTERVAL: 'abc' });
  assert.equal(await badEnv.exited(30_000), 2);
  assert.match(
    badEnv.stderr(),
    /config replication\.heartbeat_interval_secs: expected a positive number of seconds .*, got "abc" \(from REPLICATION_HEARTBEAT_INTERVAL\)/,
  );
});

test('a good YAML file starts a standalone node that serves /health; env overrides the file, flags override env', async (t) => {
  const dir = tempDir(t);
  const config = path.join(dir, 'vrep.yaml');
  writeFileSync(
    config,
    [
      'node_id: from-file',
      `data_dir: ${path.join(dir, 'data')}`,
      'http: { host: 127.0.0.1, port: 0 }',
      'replication: { role: standalone }',
      'storage: { fsync: always }',
      '',
    ].join('\n'),
  );
  const fromFile = startCli(['serve', '--config', config]);
  const base = await serving(t, fromFile);
  const health = (await (await fetch(`${base}/health`)).json()) as Record<string, unknown>;
  assert.equal(health['node_id'], 'from-file');
  assert.equal(health['role'], 'standalone');
  fromFile.kill('SIGTERM');
  assert.equal(await fromFile.exited(15_000), 0);

  // VREP_CONFIG names the file; VREP_DATA_DIR and VREP_NODE_ID override it (the data dir is new, so
  // the node id is free to change), and --node-id overrides the env.
  const envDir = path.join(dir, 'env-data');
  const overridden = startCli(['serve', '--node-id', 'from-flag'], {
    VREP_CONFIG: config,
    VREP_DATA_DIR: envDir,
    VREP_NODE_ID: 'from-env',
    VREP_LOG_LEVEL: 'debug',
  });
  const base2 = await serving(t, overridden);
  const h2 = (await (await fetch(`${base2}/health`)).json()) as Record<string, unknown>;
  assert.equal(h2['node_id'], 'from-flag');
  assert.ok(existsSync(path.join(envDir, 'node-meta.json')), 'VREP_DATA_DIR took effect');
  overridden.kill('SIGTERM');
  assert.equal(await overridden.exited(15_000), 0);
});

test('vrep status prints a standalone node summary; --json the raw status; a dead node exits 1', async (t) => {
  const node = startCli(['serve', '--http', '127.0.0.1:0', '--node-id', 'stat-1', '--data-dir', tempDir(t)]);
  const base = await serving(t, node);

  const status = startCli(['status', '--url', base]);
  assert.equal(await status.exited(30_000), 0, status.stderr());
  assert.match(status.stdout(), /^node stat-1 {2}role standalone {2}term \d+ {2}last LSN 0$/m);

  const json = startCli(['status', '--url', base, '--json']);
  assert.equal(await json.exited(30_000), 0, json.stderr());
  const body = JSON.parse(json.stdout()) as Record<string, unknown>;
  assert.equal(body['role'], 'standalone');
  assert.equal(body['node_id'], 'stat-1');

  node.kill('SIGTERM');
  assert.equal(await node.exited(15_000), 0);
  const dead = startCli(['status', '--url', base]);
  assert.equal(await dead.exited(30_000), 1);
  assert.match(
    dead.stderr(),
    /vrep status: no answer from http:\/\/127\.0\.0\.1:\d+\/replication\/status: ECONNREFUSED/,
  );
});

test('vrep status with a token: 401 without it is reported, with it the summary', async (t) => {
  const node = startCli(['serve', '--http', '127.0.0.1:0', '--data-dir', tempDir(t)], {
    VREP_HTTP_TOKEN: 'sesame',
  });
  const base = await serving(t, node);
  const without = startCli(['status', '--url', base]);
  assert.equal(await without.exited(30_000), 1);
  assert.match(without.stderr(), /answered 401 ERR_UNAUTHORIZED/);
  const withToken = startCli(['status', '--url', base, '--token', 'sesame']);
  assert.equal(await withToken.exited(30_000), 0, withToken.stderr());
  assert.match(withToken.stdout(), /role standalone/);
});
