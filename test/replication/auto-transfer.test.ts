/**
 * Role auto on real processes: leadership transfer and the operator's
 * promote.
 *
 * - transfer(to) under Quorum load: `to` leads afterwards in a higher term;
 *   the writes meanwhile either succeed or fail as the transfer says
 *   (ERR_TRANSFER_IN_PROGRESS while it runs, ERR_NOT_LEADER / ERR_NO_LEADER
 *   once the old leader has handed over), none times out, and every
 *   acknowledged write is on all three at the end.
 * - transfer to a follower that is stopped (SIGSTOP) and lacks records: it
 *   cannot take over; transfer() fails with ERR_CONSISTENCY_TIMEOUT, the
 *   leader keeps its term and takes writes again, and stays leader once the
 *   follower runs again and catches up.
 * - promote() of a follower that lags (the leader feeds it through a
 *   throttled link) is refused, naming how many records it lacks; with
 *   {force: true} it is not refused for that (it campaigns: it wins, or the
 *   voters' log check turns it down), and afterwards every Quorum write is
 *   on all three and every One write is on all three or in a lost file.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.ts';
import { until } from '../helpers/node-proc.ts';
import { freePorts, idsOf, missingOn, Procs, status } from '../helpers/safety.ts';
import {
  attemptWrite,
  assertAllHold,
  AutoCluster,
  Client,
  DIM,
  ELECTION_TIMEOUT_MS,
  waitLogsConverged,
  failureCodes,
  type Attempt,
  type Outcome,
} from '../helpers/auto-cluster.ts';

async function directCluster(
  t: TestContext,
  replication: Parameters<typeof AutoCluster.start>[1]['replication'] = {},
): Promise<{ cluster: AutoCluster; procs: Procs; dir: string; fail: (err: Error) => never }> {
  const procs = new Procs(t);
  const ports = await freePorts(3);
  const addr = (i: number): string => `127.0.0.1:${ports[i] as number}`;
  const dir = tempDir(t);
  const cluster = await AutoCluster.start(procs, { dir, bind: addr, peer: (_, j) => addr(j), replication });
  const fail = (err: Error): never => {
    throw new Error(`${err.message}\n${procs.logs()}`);
  };
  return { cluster, procs, dir, fail };
}

/** Refusals a write may meet while leadership is handed over. */
const TRANSFER_REFUSALS = ['ERR_TRANSFER_IN_PROGRESS', 'ERR_NOT_LEADER', 'ERR_NO_LEADER'];

test(
  'role auto: transfer(to) under Quorum load hands leadership to `to` in a higher term; writes meanwhile succeed or are refused as in transfer, none is lost',
  { timeout: 120_000 },
  async (t) => {
    const { cluster, fail } = await directCluster(t);
    const old = await cluster.waitLeader('a leader elected');
    await cluster.node(old.i).call('create', { name: 'c', dimension: DIM, timeoutMs: 10_000 });
    const client = new Client(cluster, { workers: 3, patienceMs: 5000 });
    client.start();
    await until(async () => client.acked().length >= 20, 30_000, 'Quorum writes acknowledged').catch(fail);

    const to = (old.i + 1) % 3;
    const startedAt = Date.now();
    const out = await cluster
      .node(old.i)
      .call<Outcome<null>>('attempt', { cmd: 'transfer', args: { to: cluster.ids[to] } }, 30_000);
    const endedAt = Date.now();
    assert.ok(out.ok, `transfer failed: ${JSON.stringify(out)}`);
    const now = await cluster.waitLeader('the leader after the transfer');
    assert.equal(now.i, to, `${cluster.ids[now.i]} leads, not ${cluster.ids[to]}`);
    assert.ok(now.term > old.term, `term ${now.term} after the transfer, ${old.term} before`);
    await until(
      async () => client.ackedSince(endedAt, to).length >= 10,
      30_000,
      'writes on the new leader',
    ).catch(fail);
    await client.stop();

    const elected = (await cluster.events(to)).find((e) => e.type === 'LeaderElected' && e.term === now.term);
    const during = client.attempts.filter(
      (a) => a.endMs !== null && a.endMs >= startedAt && a.sentMs <= endedAt,
    );
    t.diagnostic(
      `transfer ${cluster.ids[old.i]} -> ${cluster.ids[to]} (term ${old.term} -> ${now.term}): transfer() took ${endedAt - startedAt} ms, ${cluster.ids[to]} elected ${elected ? elected.atMs - startedAt : '?'} ms after the call; writes in flight meanwhile: ${during.filter((a) => a.ok).length} acknowledged, failures ${JSON.stringify(failureCodes(during))}; overall ${client.acked().length} acknowledged, failures ${JSON.stringify(failureCodes(client.attempts))}`,
    );
    const wrong = client.attempts.filter((a) => a.ok === false && !TRANSFER_REFUSALS.includes(a.code ?? ''));
    assert.deepEqual(
      wrong.map((a) => `${a.code}: ${a.message}`),
      [],
      'writes failed otherwise than a transfer refuses',
    );
    await waitLogsConverged(cluster, 60_000);
    await assertAllHold(cluster, client.ackedIds());
    await Promise.all(cluster.live.map((n) => n.stop()));
  },
);

test(
  'role auto: transfer to a stopped follower that lacks records fails with ERR_CONSISTENCY_TIMEOUT; the leader keeps its term and takes writes again',
  { timeout: 120_000 },
  async (t) => {
    const { cluster, fail } = await directCluster(t);
    const leader = await cluster.waitLeader('a leader elected');
    await cluster.node(leader.i).call('create', { name: 'c', dimension: DIM, timeoutMs: 10_000 });
    const client = new Client(cluster, { workers: 3, patienceMs: 5000 });
    client.start();
    await until(async () => client.acked().length >= 10, 30_000, 'Quorum writes acknowledged').catch(fail);

    const to = (leader.i + 1) % 3;
    cluster.node(to).kill('SIGSTOP');
    const stoppedAt = Date.now();
    // Records it will lack: acknowledged by the leader and the other follower.
    await until(async () => client.ackedSince(stoppedAt).length >= 10, 30_000, 'writes without it').catch(
      fail,
    );

    const startedAt = Date.now();
    const out = await cluster
      .node(leader.i)
      .call<Outcome<null>>('attempt', { cmd: 'transfer', args: { to: cluster.ids[to] } }, 30_000);
    const endedAt = Date.now();
    assert.equal(out.ok, false, 'transfer to a stopped follower succeeded');
    assert.equal(!out.ok && out.code, 'ERR_CONSISTENCY_TIMEOUT', JSON.stringify(out));
    await until(async () => client.ackedSince(endedAt, leader.i).length >= 5, 30_000, 'writes resumed').catch(
      fail,
    );
    const s = await status(cluster.node(leader.i));
    assert.equal(s.state, 'leader');
    assert.equal(s.term, leader.term);

    cluster.node(to).kill('SIGCONT');
    const resumedAt = Date.now();
    await until(
      async () => client.ackedSince(resumedAt).length >= 5,
      30_000,
      'writes after the resume',
    ).catch(fail);
    await client.stop();
    await waitLogsConverged(cluster, 60_000);
    assert.deepEqual(
      await cluster.waitLeader('the leader at the end'),
      leader,
      'leadership moved after the aborted transfer',
    );
    const refused = client.attempts.filter(
      (a) => a.code === 'ERR_TRANSFER_IN_PROGRESS' && a.sentMs >= startedAt && a.sentMs <= endedAt,
    );
    t.diagnostic(
      `transfer to stopped ${cluster.ids[to]} failed after ${endedAt - startedAt} ms (election timeout ${ELECTION_TIMEOUT_MS} ms): ${out.ok ? '' : out.message}; ${refused.length} writes refused meanwhile with ERR_TRANSFER_IN_PROGRESS; failures overall ${JSON.stringify(failureCodes(client.attempts))}`,
    );
    assert.ok(
      refused.length > 0,
      'no write was refused with ERR_TRANSFER_IN_PROGRESS while the transfer ran',
    );
    const wrong = client.attempts.filter((a) => a.ok === false && a.code !== 'ERR_TRANSFER_IN_PROGRESS');
    assert.deepEqual(
      wrong.map((a) => `${a.code}: ${a.message}`),
      [],
      'other failures',
    );
    await assertAllHold(cluster, client.ackedIds());
    await Promise.all(cluster.live.map((n) => n.stop()));
  },
);

/** The point ids of every record line in `dataDir`'s `lost/*.jsonl` files. */
function lostIds(dataDir: string): Set<string> {
  const dir = path.join(dataDir, 'lost');
  const ids = new Set<string>();
  if (!existsSync(dir)) return ids;
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.jsonl'))) {
    const [, ...lines] = readFileSync(path.join(dir, f), 'utf8').trim().split('\n');
    for (const line of lines) for (const id of (JSON.parse(line) as { ids: string[] }).ids) ids.add(id);
  }
  return ids;
}

test(
  'role auto: promote() of a lagging follower is refused, naming how many records it lacks, unless {force: true}; nothing acknowledged at Quorum is lost',
  { timeout: 120_000 },
  async (t) => {
    // The leader feeds its followers at 16 KiB/s: a burst of One writes leaves them behind.
    const { cluster, dir } = await directCluster(t, { bandwidthBytesPerSec: 16 * 1024 });
    const leader = await cluster.waitLeader('a leader elected');
    await cluster.node(leader.i).call('create', { name: 'c', dimension: DIM, timeoutMs: 10_000 });
    const quorum: Attempt[] = [];
    for (let k = 0; k < 5; k++) {
      await attemptWrite(
        cluster,
        leader.i,
        k * 10,
        { count: 10, consistency: 'quorum', timeoutMs: 10_000 },
        quorum,
      );
    }
    assert.deepEqual(
      quorum.filter((a) => !a.ok).map((a) => a.message),
      [],
    );
    const one: Attempt[] = [];
    for (let k = 0; k < 150; k++) {
      await attemptWrite(cluster, leader.i, 100_000 + k * 10, { count: 10, consistency: 'one' }, one);
    }
    assert.deepEqual(
      one.filter((a) => !a.ok).map((a) => a.message),
      [],
    );

    const b = (leader.i + 1) % 3;
    const before = await status(cluster.node(b));
    const refused = await cluster
      .node(b)
      .call<Outcome<null>>('attempt', { cmd: 'promote', args: {} }, 30_000);
    const leaderLast = (await status(cluster.node(leader.i))).last_lsn;
    assert.equal(refused.ok, false, 'promote() of a lagging follower succeeded');
    assert.equal(!refused.ok && refused.code, 'ERR_ROLE');
    const lacks = Number(/lacks (\d+) records/.exec(refused.ok ? '' : refused.message)?.[1]);
    assert.ok(
      lacks > 0 && lacks <= leaderLast - before.last_lsn,
      `lacks ${lacks}: the follower was at ${before.last_lsn}, the leader at ${leaderLast}; ${refused.ok ? '' : refused.message}`,
    );
    t.diagnostic(`refused: ${refused.ok ? '' : refused.message}`);

    const forced = await cluster
      .node(b)
      .call<Outcome<null>>('attempt', { cmd: 'promote', args: { force: true } }, 30_000);
    const after = await status(cluster.node(b));
    t.diagnostic(
      `promote({force: true}) of ${cluster.ids[b]} (at ${after.last_lsn}, leader at ${leaderLast}): ${forced.ok ? `leads in term ${after.term}` : `${forced.code}: ${forced.message}`}`,
    );
    if (forced.ok) assert.ok(after.state === 'leader' || after.term > leader.term);
    else assert.equal(forced.code, 'ERR_CONSISTENCY_TIMEOUT', forced.message);

    await cluster.waitLeader('a leader after the forced promote');
    await waitLogsConverged(cluster, 90_000);
    await assertAllHold(
      cluster,
      quorum.flatMap((a) => idsOf(a.first, a.count)),
    );
    // A One write is on all three, or every node that dropped it listed it.
    const lost = cluster.ids.map((id) => lostIds(path.join(dir, id)));
    const oneIds = one.flatMap((a) => idsOf(a.first, a.count));
    const missingAnywhere = new Set<string>();
    for (const node of cluster.live)
      for (const id of await missingOn(node, 'c', oneIds)) missingAnywhere.add(id);
    const unaccounted = [...missingAnywhere].filter((id) => !lost.some((l) => l.has(id)));
    assert.deepEqual(
      unaccounted.slice(0, 20),
      [],
      `${unaccounted.length} One writes are neither everywhere nor in a lost file`,
    );
    t.diagnostic(
      `${oneIds.length - missingAnywhere.size} of ${oneIds.length} One points on all three, ${missingAnywhere.size} dropped and listed in lost files`,
    );
    await Promise.all(cluster.live.map((n) => n.stop()));
  },
);
