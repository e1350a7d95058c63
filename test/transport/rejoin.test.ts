/**
 * Fast rejoin (issue 11/12): a node SIGKILLed while it had live peer links
 * binds its peer port again at once and its peers are back on it soon after.
 *
 * The bind was not the wait: the killed node's connections sit in TIME_WAIT
 * on its peer port (the diagnostics list them), and the bind, with
 * SO_REUSEADDR (uws-listen.ts, tls-front.ts), goes through them. The wait
 * was the replica's redial backoff: it doubled while the primary was down,
 * so the replica could come back as late again as the primary had been
 * away. Redials now grow by 1.25 (peer-client.ts): at most a quarter of the
 * outage plus 100 ms late. The first test holds the schedule to that bound
 * (doubling fails it); the others check on real `vrep serve` processes that
 * the ports are bound again and the replica streams again, and report the
 * times (start-up through tsx is most of them) without asserting them.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { backoffDelayMs, defaultBackoff } from '../../src/transport/peer-client.ts';
import { startCli, type Started } from '../helpers/process.ts';
import { freePorts } from '../helpers/addresses.ts';
import { makeTestPki } from '../helpers/certs.ts';
import { until } from '../helpers/node-proc.ts';
import { tempDir } from '../helpers/tmp.ts';

const SERVING = /"msg":"vrep node serving"/;
/** The replication layer caps redials at reconnect_interval_secs: 5 s by default. */
const RECONNECT_INTERVAL_MS = 5000;

test('redials: a peer back after an outage is dialed again within a quarter of it, and a peer that stays down no more than once per cap', () => {
  const backoff = { ...defaultBackoff, maxMs: RECONNECT_INTERVAL_MS };
  // random 0: no jitter, the longest delays. Dial times after a drop at 0.
  const dials: number[] = [];
  for (let attempt = 0, at = 0; at < 60_000; attempt++) {
    const delayMs = backoffDelayMs(attempt, backoff, 0);
    assert.ok(delayMs <= RECONNECT_INTERVAL_MS, `redial ${attempt} waits ${delayMs} ms, above the cap`);
    at += delayMs;
    dials.push(at);
  }
  for (let outageMs = 100; outageMs <= 20_000; outageMs += 100) {
    const next = dials.find((at) => at >= outageMs) as number;
    assert.ok(
      next - outageMs <= outageMs / 4 + backoff.initialMs,
      `a peer back after ${outageMs} ms is dialed only at ${next} ms`,
    );
  }
  // A peer that never comes back: about one dial per cap once the delays reach it.
  assert.ok(dials.length <= 40, `${dials.length} dials in a minute`);
});

interface Node {
  proc: Started;
  httpPort: number;
  peerPort: number;
}

interface Pair {
  primary: Node;
  replica: Node;
  /** SIGKILLs `which`, starts it again at once on the same data dir and ports. */
  killAndRestart(which: 'primary' | 'replica'): Promise<{ killedAtMs: number; servingMs: number }>;
}

async function serve(t: TestContext, args: string[], env: NodeJS.ProcessEnv): Promise<Node> {
  const proc = startCli(['serve', '--fsync', 'no', ...args], env);
  t.after(() => proc.kill());
  await proc.waitForLine(SERVING, 30_000);
  const line = proc
    .stdout()
    .split('\n')
    .find((l) => SERVING.test(l)) as string;
  const fields = JSON.parse(line) as { http: string; peerPort: number };
  return { proc, httpPort: Number(fields.http.split(':')[1]), peerPort: fields.peerPort };
}

/** A primary and a replica on given ports (127.0.0.1), the replica dialing the primary. */
async function startPair(t: TestContext, opts: { tls: boolean }): Promise<Pair> {
  const dir = tempDir(t);
  const [pHttp, pPeer, rHttp, rPeer] = (await freePorts(4)) as [number, number, number, number];
  let env: NodeJS.ProcessEnv = {};
  if (opts.tls) {
    const pki = makeTestPki(dir);
    env = { VREP_TLS_CERT: pki.serverA.cert, VREP_TLS_KEY: pki.serverA.key, VREP_TLS_CA: pki.caA };
  }
  const args = {
    primary: ['--node-id', 'p', '--role', 'primary', '--http', `127.0.0.1:${pHttp}`],
    replica: ['--node-id', 'r', '--role', 'replica', '--primary', `127.0.0.1:${pPeer}`],
  };
  args.primary.push('--bind', `127.0.0.1:${pPeer}`, '--data-dir', path.join(dir, 'p'));
  args.replica.push('--http', `127.0.0.1:${rHttp}`, '--bind', `127.0.0.1:${rPeer}`);
  args.replica.push('--data-dir', path.join(dir, 'r'));
  const pair: Pair = {
    primary: await serve(t, args.primary, env),
    replica: await serve(t, args.replica, env),
    async killAndRestart(which) {
      const old = pair[which];
      old.proc.kill('SIGKILL');
      await old.proc.exited(10_000);
      const killedAtMs = Date.now();
      t.diagnostic(
        `${which} killed; TCP sockets left on the primary's peer port ${pPeer}: ${socketsOn(pPeer)}`,
      );
      pair[which] = await serve(t, args[which], env);
      return { killedAtMs, servingMs: Date.now() - killedAtMs };
    },
  };
  return pair;
}

/** The states of the TCP sockets on `port` at either end (TIME-WAIT ...), as `ss` shows them. */
function socketsOn(port: number): string {
  try {
    const out = execFileSync('ss', ['-tanH', `( sport = :${port} or dport = :${port} )`], {
      encoding: 'utf8',
      timeout: 5000,
    });
    const states = out
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => l.trim().split(/\s+/)[0]);
    return states.length === 0 ? 'no sockets' : states.join(', ');
  } catch {
    return 'ss not available';
  }
}

/** The TLS front's socket dirs of process `pid` (src/transport/socket-dir.ts). */
function socketDirsOf(pid: number): string[] {
  return readdirSync(os.tmpdir()).filter((n) => n.startsWith(`vrep-peer-${pid}-`));
}

async function getJson<T>(port: number, route: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${port}${route}`, { headers: { connection: 'close' } });
  assert.equal(res.status, 200, `GET ${route} on ${port}`);
  return (await res.json()) as T;
}

async function send(port: number, method: string, route: string, body: unknown): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}${route}`, {
    method,
    headers: { 'content-type': 'application/json', connection: 'close' },
    body: JSON.stringify(body),
  });
  assert.ok(
    res.status === 200 || res.status === 201,
    `${method} ${route}: ${res.status} ${await res.text()}`,
  );
}

async function writePoints(primary: Node, first: number, count: number): Promise<void> {
  const points = Array.from({ length: count }, (_, i) => ({ id: `p${first + i}`, vector: [first + i, 1] }));
  await send(primary.httpPort, 'POST', '/collections/c/points', { points });
}

interface Status {
  last_lsn: number;
  applied_lsn: number;
  replicas: { id: string; status: string }[];
  master?: { status: string };
}

/** Both ends say the link is up and in step: the primary lists r Connected, r its master Connected. */
async function linked(pair: Pair): Promise<boolean> {
  const p = await getJson<Status>(pair.primary.httpPort, '/replication/status');
  const r = await getJson<Status>(pair.replica.httpPort, '/replication/status');
  return p.replicas.some((x) => x.id === 'r' && x.status === 'Connected') && r.master?.status === 'Connected';
}

/** The replica holds exactly what the primary holds (same LSN applied, same collection digest). */
async function inStep(pair: Pair): Promise<boolean> {
  const p = await getJson<Status>(pair.primary.httpPort, '/replication/status');
  const r = await getJson<Status>(pair.replica.httpPort, '/replication/status');
  if (r.applied_lsn !== p.last_lsn) return false;
  const pc = await getJson<{ count: number; digest: string }>(pair.primary.httpPort, '/collections/c');
  const rc = await getJson<{ count: number; digest: string }>(pair.replica.httpPort, '/collections/c');
  return pc.count === rc.count && pc.digest === rc.digest;
}

async function rejoin(t: TestContext, which: 'primary' | 'replica', tls: boolean): Promise<void> {
  const pair = await startPair(t, { tls });
  await send(pair.primary.httpPort, 'PUT', '/collections/c', { dimension: 2, metric: 'l2' });
  await writePoints(pair.primary, 0, 50);
  await until(async () => (await linked(pair)) && (await inStep(pair)), 30_000, 'the replica in step');
  const before = { ...pair[which] };

  const { killedAtMs, servingMs } = await pair.killAndRestart(which);
  // Bound again on the same ports (TIME_WAIT left by the killed node does not block the bind).
  assert.equal(pair[which].peerPort, before.peerPort);
  assert.equal(pair[which].httpPort, before.httpPort);
  if (tls) {
    // The killed node could not remove its TLS socket dir; the restarted one swept it.
    const dirs = socketDirsOf(before.proc.child.pid as number);
    assert.deepEqual(dirs, [], `the killed node's socket dir is left: ${dirs.join(', ')}`);
    assert.equal(
      socketDirsOf(pair[which].proc.child.pid as number).length,
      1,
      'the restarted node has its own',
    );
  }
  await until(() => linked(pair), 30_000, `the peer link back after the ${which} restart`);
  const linkedMs = Date.now() - killedAtMs;
  // Streaming again: a write made now reaches the replica, and the data is the same on both.
  await writePoints(pair.primary, 50, 50);
  await until(() => inStep(pair), 30_000, 'the replica in step after the restart');
  const count = (await getJson<{ count: number }>(pair.replica.httpPort, '/collections/c')).count;
  assert.equal(count, 100);
  t.diagnostic(
    `${which} SIGKILLed${tls ? ' (mutual TLS)' : ''}: serving again ${servingMs} ms after the kill, peer link back at ${linkedMs} ms (${linkedMs - servingMs} ms after serving), replica in step at ${Date.now() - killedAtMs} ms`,
  );
  assert.equal(pair.primary.proc.child.exitCode, null);
  assert.equal(pair.replica.proc.child.exitCode, null);
}

test(
  'a primary SIGKILLed with a replica streaming from it binds its ports again and the replica streams again',
  { timeout: 120_000 },
  (t) => rejoin(t, 'primary', false),
);

test('the same with mutual TLS (the TLS front and the Unix socket behind it)', { timeout: 120_000 }, (t) =>
  rejoin(t, 'primary', true),
);

test(
  'a replica SIGKILLed while streaming binds its ports again and streams again',
  { timeout: 120_000 },
  (t) => rejoin(t, 'replica', false),
);

test(
  'a primary SIGKILLed while it streams to two replicas binds both ports again (no EADDRINUSE) and both replicas stream again',
  { timeout: 180_000 },
  async (t) => {
    const dir = tempDir(t);
    const ports = (await freePorts(6)) as [number, number, number, number, number, number];
    const [pHttp, pPeer] = ports;
    const primaryArgs = ['--node-id', 'p', '--role', 'primary', '--http', `127.0.0.1:${pHttp}`];
    primaryArgs.push('--bind', `127.0.0.1:${pPeer}`, '--data-dir', path.join(dir, 'p'));
    let primary = await serve(t, primaryArgs, {});
    const replicas: Node[] = [];
    for (const [i, id] of ['r1', 'r2'].entries()) {
      const args = ['--node-id', id, '--role', 'replica', '--primary', `127.0.0.1:${pPeer}`];
      args.push('--http', `127.0.0.1:${ports[2 + 2 * i]}`, '--bind', `127.0.0.1:${ports[3 + 2 * i]}`);
      args.push('--data-dir', path.join(dir, id));
      replicas.push(await serve(t, args, {}));
    }
    const allLinked = async (): Promise<boolean> => {
      const p = await getJson<Status>(primary.httpPort, '/replication/status');
      for (const [i, r] of replicas.entries()) {
        const rs = await getJson<Status>(r.httpPort, '/replication/status');
        const id = `r${i + 1}`;
        if (!p.replicas.some((x) => x.id === id && x.status === 'Connected')) return false;
        if (rs.master?.status !== 'Connected') return false;
      }
      return true;
    };
    const allInStep = async (): Promise<boolean> => {
      const p = await getJson<Status>(primary.httpPort, '/replication/status');
      for (const r of replicas) {
        const rs = await getJson<Status>(r.httpPort, '/replication/status');
        if (rs.applied_lsn !== p.last_lsn) return false;
      }
      return true;
    };
    await send(primary.httpPort, 'PUT', '/collections/c', { dimension: 2, metric: 'l2' });
    await writePoints(primary, 0, 50);
    await until(async () => (await allLinked()) && (await allInStep()), 30_000, 'both replicas in step');

    // Kill it while it streams: writes in flight on both links.
    const writing = (async () => {
      for (let i = 1; i < 200; i++) await writePoints(primary, i * 50, 50);
    })().catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 300));
    primary.proc.kill('SIGKILL');
    await primary.proc.exited(10_000);
    await writing;
    const killedAtMs = Date.now();
    const leftBehind = socketsOn(pPeer);
    primary = await serve(t, primaryArgs, {});
    const servingMs = Date.now() - killedAtMs;
    assert.equal(primary.peerPort, pPeer, 'the same peer port');
    assert.equal(primary.httpPort, pHttp, 'the same HTTP port');
    assert.doesNotMatch(
      primary.proc.stderr() + primary.proc.stdout(),
      /EADDRINUSE|ERR_LISTEN|address in use/,
    );
    await until(allLinked, 30_000, 'both replicas linked to the restarted primary');
    const linkedMs = Date.now() - killedAtMs;
    const before = (await getJson<{ count: number }>(primary.httpPort, '/collections/c')).count;
    await writePoints(primary, 100_000, 50);
    await until(allInStep, 30_000, 'both replicas in step after the restart');
    for (const r of replicas) {
      const rc = await getJson<{ count: number; digest: string }>(r.httpPort, '/collections/c');
      const pc = await getJson<{ count: number; digest: string }>(primary.httpPort, '/collections/c');
      assert.equal(rc.count, before + 50);
      assert.equal(rc.digest, pc.digest);
    }
    t.diagnostic(
      `sockets left on the peer port at the kill: ${leftBehind}; serving again ${servingMs} ms after the kill, both replicas linked at ${linkedMs} ms`,
    );
  },
);
