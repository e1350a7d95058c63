/**
 * /metrics of real `vrep serve` processes (a primary and its replica), read
 * by an exposition-format parser (parse-prometheus-text-format) and, when it
 * is installed (`npm run test:deps`), by `promtool check metrics`. Counts
 * since start are counters (`_total`, never going down), nothing else ends
 * in `_total`, and there are no blank lines.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import parsePrometheusTextFormat, { type PrometheusFamily } from 'parse-prometheus-text-format';
import { startCli } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

interface Serving {
  base: string;
  peerPort: number;
}

async function serve(t: TestContext, args: string[]): Promise<Serving> {
  const node = startCli(['serve', '--http', '127.0.0.1:0', '--data-dir', tempDir(t), ...args]);
  t.after(() => node.kill());
  const m = await node.waitForLine(/"http":"127\.0\.0\.1:(\d+)".*"vrep node serving"/, 30_000);
  const peer = /"peerPort":(\d+)/.exec(m[0]);
  return { base: `http://127.0.0.1:${m[1]}`, peerPort: peer ? Number(peer[1]) : 0 };
}

async function json(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}${path}`, {
    method,
    signal: AbortSignal.timeout(10_000),
    ...(body !== undefined
      ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }
      : {}),
  });
  assert.ok(res.ok, `${method} ${path}: ${res.status}`);
  return (await res.json()) as Record<string, unknown>;
}

async function scrape(base: string): Promise<string> {
  const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return res.text();
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE_VALUE = /^(?:[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|[-+]?Inf|NaN)$/;

/** Parses an exposition and checks the conventions promtool does not see; returns the families by name. */
function checkExposition(text: string, label: string): Map<string, PrometheusFamily> {
  assert.ok(text.endsWith('\n'), `${label}: ends with a line feed`);
  assert.ok(!text.slice(0, -1).split('\n').includes(''), `${label}: no blank lines`);
  const families = new Map<string, PrometheusFamily>();
  for (const family of parsePrometheusTextFormat(text)) {
    const { name, type } = family;
    assert.ok(!families.has(name), `${label}: ${name} appears once`);
    families.set(name, family);
    assert.match(name, METRIC_NAME);
    assert.notEqual(type, 'UNTYPED', `${label}: ${name} has a TYPE`);
    assert.ok(family.help.length > 0, `${label}: ${name} has a HELP`);
    if (type === 'COUNTER') assert.match(name, /_total$/, `${label}: counter ${name} ends in _total`);
    else
      assert.doesNotMatch(name, /_total$/, `${label}: ${type.toLowerCase()} ${name} must not end in _total`);
    for (const sample of family.metrics) {
      for (const v of [sample.value, sample.count, sample.sum, ...Object.values(sample.buckets ?? {})]) {
        if (v !== undefined) assert.match(v, SAMPLE_VALUE, `${label}: ${name} value ${v}`);
      }
    }
  }
  return families;
}

function family(all: Map<string, PrometheusFamily>, name: string): PrometheusFamily {
  const found = all.get(name);
  assert.ok(found, `${name} is exported`);
  return found;
}

function value(families: Map<string, PrometheusFamily>, name: string): number {
  const family = families.get(name);
  assert.ok(family, `${name} is exported`);
  return Number(family.metrics[0]?.value ?? NaN);
}

const replicationCounters = [
  'vrep_replication_full_syncs_total',
  'vrep_replication_partial_syncs_total',
  'vrep_replication_sent_bytes_total',
  'vrep_replication_received_bytes_total',
  'vrep_replication_frames_rejected_total',
  'vrep_replication_slow_peer_disconnects_total',
  'vrep_truncated_records_total',
  'vrep_elections_total',
  'vrep_step_downs_total',
];

test('/metrics parses as the Prometheus text format and follows its naming rules', async (t) => {
  const primary = await serve(t, ['--node-id', 'p', '--role', 'primary', '--bind', '127.0.0.1:0']);
  const replica = await serve(t, [
    '--node-id',
    'r',
    '--role',
    'replica',
    '--bind',
    '127.0.0.1:0',
    '--primary',
    `127.0.0.1:${primary.peerPort}`,
  ]);
  await json(primary.base, 'PUT', '/collections/c', { dimension: 2, metric: 'l2' });
  const write = async (id: string): Promise<void> => {
    await json(primary.base, 'POST', '/collections/c/points', { points: [{ id, vector: [1, 2] }] });
  };
  const caughtUp = async (): Promise<void> => {
    const want = (await json(primary.base, 'GET', '/replication/status'))['last_lsn'];
    const deadline = Date.now() + 30_000;
    while ((await json(replica.base, 'GET', '/replication/status'))['last_lsn'] !== want) {
      assert.ok(Date.now() < deadline, 'the replica catches up within 30 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await write('a');
  await caughtUp();

  const first = { p: await scrape(primary.base), r: await scrape(replica.base) };
  const p1 = checkExposition(first.p, 'primary');
  const r1 = checkExposition(first.r, 'replica');
  for (const families of [p1, r1]) {
    for (const name of [
      ...replicationCounters,
      'vrep_http_requests_total',
      'vrep_points_written_total',
      'vrep_write_batches_total',
      'vrep_search_duration_seconds',
      'vrep_last_lsn',
      'vrep_term',
      'vrep_replication_lag_operations',
      'vrep_replication_lag_seconds',
      'vrep_wal_fsync_seconds_max',
      'vrep_nodejs_eventloop_lag_seconds',
      'vrep_process_cpu_seconds_total',
    ]) {
      assert.ok(families.has(name), `${name} is exported`);
    }
    for (const name of replicationCounters) assert.equal(families.get(name)?.type, 'COUNTER', name);
  }
  assert.equal(p1.get('vrep_replica_connected')?.metrics[0]?.value, '1');
  assert.ok(value(p1, 'vrep_replication_sent_bytes_total') > 0, 'the primary sent bytes');
  assert.ok(value(r1, 'vrep_replication_received_bytes_total') > 0, 'the replica received bytes');
  const syncs = (f: Map<string, PrometheusFamily>): number =>
    value(f, 'vrep_replication_full_syncs_total') + value(f, 'vrep_replication_partial_syncs_total');
  assert.ok(syncs(r1) >= 1, 'the replica synced');

  await write('b');
  await caughtUp();
  const p2 = checkExposition(await scrape(primary.base), 'primary, second scrape');
  const r2 = checkExposition(await scrape(replica.base), 'replica, second scrape');
  for (const [before, after] of [
    [p1, p2],
    [r1, r2],
  ] as const) {
    for (const name of replicationCounters) assert.ok(value(after, name) >= value(before, name), name);
  }
  assert.ok(value(p2, 'vrep_replication_sent_bytes_total') > value(p1, 'vrep_replication_sent_bytes_total'));

  // A forced full sync: the primary builds a snapshot, the replica installs its copy.
  assert.equal(value(p2, 'vrep_snapshots_total'), 0);
  assert.equal(value(p2, 'vrep_snapshot_bytes'), 0);
  await json(primary.base, 'POST', '/replication/force-sync', { replica: 'r' });
  const deadline = Date.now() + 30_000;
  while (value(checkExposition(await scrape(replica.base), 'replica'), 'vrep_snapshot_bytes') === 0) {
    assert.ok(Date.now() < deadline, 'the replica installs the snapshot within 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  const p3 = checkExposition(await scrape(primary.base), 'primary, after a full sync');
  const r3 = checkExposition(await scrape(replica.base), 'replica, after a full sync');
  assert.equal(family(p3, 'vrep_snapshots_total').type, 'COUNTER');
  assert.equal(value(p3, 'vrep_snapshots_total'), 1, 'the primary built one snapshot');
  assert.equal(value(r3, 'vrep_snapshots_total'), 0, 'the replica built none: it received one');
  assert.ok(value(p3, 'vrep_snapshot_bytes') > 0);
  assert.equal(value(r3, 'vrep_snapshot_bytes'), value(p3, 'vrep_snapshot_bytes'), 'the same files');

  const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  await t.test(
    'promtool check metrics',
    { skip: promtool.status === 0 ? false : 'promtool not installed (npm run test:deps)' },
    () => {
      for (const [label, text] of Object.entries(first)) {
        const run = spawnSync('promtool', ['check', 'metrics'], {
          input: text,
          encoding: 'utf8',
          timeout: 30_000,
        });
        assert.equal(run.status, 0, `${label}: promtool check metrics:\n${run.stdout}${run.stderr}`);
      }
    },
  );
});
