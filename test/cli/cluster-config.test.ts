/**
 * A 3-node primary/replica cluster of real `vrep serve` processes, set up
 * from YAML config files (n1, n2) and from environment variables only (n3),
 * driven over HTTP alone: writes on the primary reach both replicas, a write
 * to a replica gets 409 naming the primary, and the replication routes
 * report both replicas Connected.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startCli, type Started } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';
import { until } from '../helpers/node-proc.ts';

interface Serving {
  http: string;
  peerPort: number;
}

async function serving(t: TestContext, node: Started): Promise<Serving> {
  t.after(() => node.kill());
  const m = await node.waitForLine(/"msg":"vrep node serving"/, 30_000);
  const line = JSON.parse(
    node
      .stdout()
      .split('\n')
      .find((l) => l.includes('"vrep node serving"')) ?? m[0],
  ) as {
    http: string;
    peerPort: number;
  };
  return { http: `http://${line.http}`, peerPort: line.peerPort };
}

async function json(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, init);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test(
  'a 3-node cluster from config files and env variables replicates over HTTP',
  { timeout: 120_000 },
  async (t) => {
    const dir = tempDir(t);
    const yaml = (file: string, text: string): string => {
      const p = path.join(dir, file);
      writeFileSync(p, text);
      return p;
    };
    const n1Config = yaml(
      'n1.yaml',
      `node_id: n1
data_dir: ${path.join(dir, 'n1')}
http: { host: 127.0.0.1, port: 0 }
replication:
  role: primary
  bind_address: 127.0.0.1:0
  heartbeat_interval_secs: 1
storage:
  fsync: always
`,
    );
    const n1 = await serving(t, startCli(['serve', '--config', n1Config]));
    const master = `127.0.0.1:${n1.peerPort}`;
    const n2Config = yaml(
      'n2.yaml',
      `node_id: n2
data_dir: ${path.join(dir, 'n2')}
http: { host: 127.0.0.1, port: 0 }
replication:
  role: replica
  bind_address: 127.0.0.1:0
  master_address: ${master}
  heartbeat_interval_secs: 1
`,
    );
    const n2 = await serving(t, startCli(['serve', '--config', n2Config]));
    const n3 = await serving(
      t,
      startCli(['serve'], {
        VREP_NODE_ID: 'n3',
        VREP_DATA_DIR: path.join(dir, 'n3'),
        VREP_HTTP_PORT: '0',
        REPLICATION_ROLE: 'replica',
        REPLICATION_BIND_ADDRESS: '127.0.0.1:0',
        REPLICATION_MASTER_ADDRESS: master,
        REPLICATION_HEARTBEAT_INTERVAL: '1',
      }),
    );

    await until(
      async () => {
        const r = await json(`${n1.http}/replication/replicas`);
        const replicas = r.body['replicas'] as { id: string; status: string }[];
        return r.body['count'] === 2 && replicas.every((x) => x.status === 'Connected');
      },
      30_000,
      'n2 and n3 Connected on n1',
    );

    const put = await json(`${n1.http}/collections/docs`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ dimension: 3, metric: 'cosine' }),
    });
    assert.equal(put.status, 201);
    const write = await json(`${n1.http}/collections/docs/points?consistency=all`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ points: [{ id: 'a', vector: [1, 0, 0], payload: { lang: 'en' } }] }),
    });
    assert.equal(write.status, 200, JSON.stringify(write.body));
    for (const replica of [n2, n3]) {
      const got = await json(`${replica.http}/collections/docs/points/a`);
      assert.equal(got.status, 200, 'an All write is on every replica when it is acknowledged');
      assert.deepEqual(got.body['payload'], { lang: 'en' });
    }

    const refused = await json(`${n3.http}/collections/docs/points`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ points: [{ id: 'b', vector: [0, 1, 0] }] }),
    });
    assert.equal(refused.status, 409);
    const error = refused.body['error'] as { code: string; primary: string | null };
    assert.equal(error.code, 'ERR_READ_ONLY');
    assert.equal(`http://${error.primary}`, n1.http);

    const status = await json(`${n2.http}/replication/status`);
    assert.equal(status.body['role'], 'replica');
    const masterInfo = status.body['master'] as { status: string; node_id: string };
    assert.equal(masterInfo.node_id, 'n1');
    const stats = (await json(`${n1.http}/replication/stats`)).body;
    assert.equal(stats['connected_replicas'], 2);
    const metrics = await (await fetch(`${n1.http}/metrics`)).text();
    assert.match(metrics, /vrep_replica_connected\{replica="n2"\} 1/);
  },
);
