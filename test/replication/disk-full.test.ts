/**
 * Issue 9, item 2, on real `vrep serve` processes: a primary whose disk
 * fills up under Quorum writes from an HTTP client. A refused write changes
 * nothing anywhere (not readable on the primary, never on a replica);
 * `/health` and the status say the node takes no writes; writes resume once
 * space is back, with no restart; after a restart no LSN is reused (the
 * replicas' content stays equal to the primary's) and nothing acknowledged
 * is lost.
 *
 * On 23ec531 the refused write was applied, readable and replicated,
 * `/health` said ok, freeing space did not help until a restart, and the
 * restarted primary wrote new content at the refused LSN.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startCli, type Started } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';
import { smallDisk } from '../helpers/small-disk.ts';
import { freePorts } from '../helpers/addresses.ts';
import { until } from '../helpers/node-proc.ts';

const DIM = 64;
const BATCH = 40;
const STORAGE = {
  VREP_WAL_SEGMENT_BYTES: String(256 * 1024),
  VREP_SNAPSHOT_EVERY_BYTES: '0',
};

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

async function call(port: number, method: string, route: string, body?: unknown): Promise<Reply> {
  const res = await fetch(`http://127.0.0.1:${port}${route}`, {
    method,
    ...(body === undefined
      ? {}
      : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

function points(batch: number): { id: string; vector: number[]; payload: { batch: number } }[] {
  return Array.from({ length: BATCH }, (_, i) => ({
    id: `b${batch}-${i}`,
    vector: Array.from({ length: DIM }, (_, d) => batch + i / 100 + d / 1000),
    payload: { batch },
  }));
}

function serve(args: string[]): { proc: Started; httpPort: () => Promise<number> } {
  const proc = startCli(['serve', '--http', '127.0.0.1:0', '--fsync', 'always', ...args], STORAGE);
  return {
    proc,
    httpPort: async () => Number((await proc.waitForLine(/"http":"127\.0\.0\.1:(\d+)"/, 30_000))[1]),
  };
}

async function digest(port: number): Promise<unknown> {
  return (await call(port, 'GET', '/collections/c')).body['digest'];
}

test(
  'a full disk on the primary: the refused write changes nothing anywhere, health says so, writes resume without a restart, no LSN is reused',
  { timeout: 240_000 },
  async (t) => {
    const disk = smallDisk(t, 6 * 1024 * 1024);
    if (disk === null) {
      t.skip('mounting a tmpfs needs root');
      return;
    }
    const dir = tempDir(t);
    const [pPeer, r1Peer, r2Peer] = (await freePorts(3)) as [number, number, number];
    const addr = (port: number): string => `127.0.0.1:${port}`;
    const primaryArgs = [
      '--node-id',
      'p',
      '--data-dir',
      path.join(disk.dir, 'p'),
      '--role',
      'primary',
      '--bind',
      addr(pPeer),
      '--peers',
      `${addr(r1Peer)},${addr(r2Peer)}`,
    ];
    let primary = serve(primaryArgs);
    t.after(() => primary.proc.kill());
    const replicas = [
      ['r1', r1Peer],
      ['r2', r2Peer],
    ].map(([id, port]) => {
      const r = serve([
        '--node-id',
        String(id),
        '--data-dir',
        path.join(dir, String(id)),
        '--role',
        'replica',
        '--bind',
        addr(Number(port)),
        '--primary',
        addr(pPeer),
      ]);
      t.after(() => r.proc.kill());
      return r;
    });
    let pHttp = await primary.httpPort();
    const rHttp = await Promise.all(replicas.map((r) => r.httpPort()));
    assert.equal((await call(pHttp, 'PUT', '/collections/c', { dimension: DIM, metric: 'l2' })).status, 201);

    const acked: number[] = [];
    const write = (batch: number): Promise<Reply> =>
      call(pHttp, 'POST', '/collections/c/points?consistency=quorum', { points: points(batch) });
    for (let b = 0; b < 5; b++) {
      assert.equal((await write(b)).status, 200);
      acked.push(b);
    }

    // The disk fills up: the next write that needs space is refused.
    disk.fill();
    let refused = -1;
    let refusal: Reply | null = null;
    for (let b = 5; b < 400; b++) {
      const r = await write(b);
      if (r.status === 200) {
        acked.push(b);
        continue;
      }
      refused = b;
      refusal = r;
      break;
    }
    assert.ok(refusal !== null, 'the full disk refused a write');
    assert.equal(refusal.status, 503, JSON.stringify(refusal.body));
    assert.equal((refusal.body['error'] as { code: string }).code, 'ERR_WAL_IO');

    // It changed nothing: not readable on the primary, never replicated.
    const refusedId = `b${refused}-0`;
    assert.equal((await call(pHttp, 'GET', `/collections/c/points/${refusedId}`)).status, 404);
    const health = await call(pHttp, 'GET', '/health');
    assert.equal(health.status, 200);
    assert.equal(health.body['status'], 'degraded');
    assert.equal((health.body['writable'] as { ok: boolean }).ok, false);
    assert.match(String((health.body['writable'] as { reason: string }).reason), /ENOSPC|space/);
    const st = await call(pHttp, 'GET', '/replication/status');
    assert.equal((st.body['writable'] as { ok: boolean }).ok, false);
    // A second attempt is refused at once, before anything is written.
    assert.equal((await write(refused)).status, 503);
    const lastLsn = (await call(pHttp, 'GET', '/health')).body['last_lsn'];
    await until(
      async () => {
        for (const port of rHttp)
          if ((await call(port, 'GET', '/health')).body['last_lsn'] !== lastLsn) return false;
        return true;
      },
      30_000,
      'the replicas to reach the primary',
    );
    for (const port of rHttp)
      assert.equal((await call(port, 'GET', `/collections/c/points/${refusedId}`)).status, 404, 'replicated');

    // Space comes back: the same process takes writes again.
    disk.free();
    await until(
      async () => (await write(refused)).status === 200,
      30_000,
      'writes to resume without a restart',
    );
    acked.push(refused);
    assert.equal((await call(pHttp, 'GET', '/health')).body['status'], 'ok');
    for (let b = refused + 1; b < refused + 5; b++) {
      assert.equal((await write(b)).status, 200);
      acked.push(b);
    }

    // A restart, then more writes: every node holds the same content (an LSN reused for other
    // content would leave the replicas' digests apart), and every acknowledged write is there.
    primary.proc.kill('SIGTERM');
    assert.equal(await primary.proc.exited(15_000), 0);
    primary = serve(primaryArgs);
    pHttp = await primary.httpPort();
    const next = (acked.at(-1) as number) + 1;
    await until(
      async () => (await write(next)).status === 200,
      30_000,
      'the restarted primary to take Quorum writes',
    );
    acked.push(next);
    const want = await digest(pHttp);
    await until(
      async () => {
        for (const port of rHttp) if ((await digest(port)) !== want) return false;
        return true;
      },
      30_000,
      'the replicas to hold what the primary holds',
    );
    for (const port of [pHttp, ...rHttp]) {
      for (const b of acked) {
        const r = await call(port, 'GET', `/collections/c/points/b${b}-${BATCH - 1}`);
        assert.equal(r.status, 200, `acknowledged batch ${b} on :${port}`);
      }
    }
    t.diagnostic(
      `${acked.length} batches acknowledged; batch ${refused} refused first, then accepted after space came back`,
    );
  },
);
