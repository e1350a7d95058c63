/**
 * `vrep cluster up`: the plan (ports, roles, data dirs), the failure path (a
 * node that cannot start stops the cluster, exit 1, naming the node), and
 * once the replication roles exist, 3 nodes Connected and a clean Ctrl-C.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startCli, type Started } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';
import { freeBasePort, listen } from '../helpers/addresses.ts';
import { clusterPlan, formatLogLine } from '../../src/cli/cluster.ts';

function clusterUp(t: TestContext, args: string[]): Started {
  const cluster = startCli(['cluster', 'up', '--fsync', 'no', ...args]);
  // SIGTERM first so the cluster stops its children; the helper SIGKILLs at exit.
  t.after(async () => {
    cluster.kill('SIGTERM');
    await cluster.exited(20_000).catch(() => cluster.kill());
  });
  return cluster;
}

test('the plan: n1 primary with the replicas as members, replicas pointing at its peer port, consecutive ports, one data dir each', () => {
  const plan = clusterPlan({ nodes: 3, basePort: 15002, dataDir: 'cd', fsync: 'everysec' });
  assert.deepEqual(
    plan.map((p) => [p.id, p.role, p.httpAddress, p.bindAddress, p.dataDir]),
    [
      ['n1', 'primary', '127.0.0.1:15002', '127.0.0.1:15102', path.join('cd', 'n1')],
      ['n2', 'replica', '127.0.0.1:15003', '127.0.0.1:15103', path.join('cd', 'n2')],
      ['n3', 'replica', '127.0.0.1:15004', '127.0.0.1:15104', path.join('cd', 'n3')],
    ],
  );
  assert.ok(!plan[0]?.args.includes('--primary'));
  // The replicas are members: Quorum is 2 of 3.
  assert.deepEqual(plan[0]?.args.slice(-2), ['--peers', '127.0.0.1:15103,127.0.0.1:15104']);
  assert.deepEqual(plan[2]?.args.slice(-2), ['--primary', '127.0.0.1:15102']);
  assert.equal(
    formatLogLine('{"level":40,"time":1,"pid":2,"hostname":"h","name":"vrep","msg":"hi","x":1}'),
    'warn  hi {"x":1}',
  );
  assert.equal(formatLogLine('plain text'), 'plain text');
});

test('a node that cannot start: the cluster names it and why, stops the others, exits 1', async (t) => {
  const base = await freeBasePort(2);
  // Occupy n2's HTTP port so n2 fails whatever the roles this build has.
  const blocker = await listen(base + 1);
  assert.ok(blocker);
  t.after(() => blocker.close());
  const cluster = clusterUp(t, ['--nodes', '2', '--base-port', String(base), '--data-dir', tempDir(t)]);
  assert.equal(await cluster.exited(60_000), 1);
  assert.match(cluster.stderr(), /vrep cluster: node n\d failed to start \(exit code [12]\): .+/);
  assert.doesNotMatch(cluster.stdout(), /node\(s\) up/);
});

test('3 nodes come up Connected, then SIGTERM stops them all and exits 0', async (t) => {
  const base = await freeBasePort(3);
  const cluster = clusterUp(t, ['--nodes', '3', '--base-port', String(base), '--data-dir', tempDir(t)]);
  const outcome = await Promise.race([
    cluster.exited(90_000),
    // The "try this" lines follow the "up" line: wait for the last of them.
    cluster.waitForLine(/read back from n2/, 90_000).then(() => 'up'),
  ]);
  assert.equal(outcome, 'up', cluster.stderr());
  assert.match(cluster.stdout(), /try this:\n {2}curl .*\n {2}curl .*\n {2}curl .*read back from n2/);
  const n1 = `http://127.0.0.1:${base}`;
  let last: unknown;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const body = (await (await fetch(`${n1}/replication/replicas`)).json()) as {
      replicas: { id: string; status: string; member: boolean }[];
      count: number;
    };
    last = body;
    if (body.count === 2 && body.replicas.every((r) => r.status === 'Connected' && r.member)) break;
    assert.ok(Date.now() < deadline, `replicas not Connected within 30 s: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  cluster.kill('SIGTERM');
  assert.equal(await cluster.exited(30_000), 0, cluster.stderr());
  // Every node stopped: their ports are free again.
  for (const port of [base, base + 1, base + 2]) {
    const s = await listen(port);
    assert.ok(s, `port ${port} still taken`);
    s.close();
  }
});
