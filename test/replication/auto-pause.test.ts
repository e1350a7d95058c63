/**
 * Role auto on real processes: a leader that stops (SIGSTOP) for more than
 * two election timeouts under Quorum load, then resumes (SIGCONT), as a
 * process frozen by a long GC pause, a hung disk or a VM migration would.
 *
 * Asserted: the other two elect a leader in a higher term while it is
 * stopped and take Quorum writes; the old leader steps down once it runs
 * again and takes the new term; none of the writes sent to it while it was
 * stopped is acknowledged (they reach it in its old term, which no longer
 * has a majority) and none is in any log at the end; it rejoins by a
 * partial sync (no full sync anywhere); at the end the three hold the same
 * log and digest, with every acknowledged write.
 *
 * Reported: the time from SIGSTOP to the new leader, from SIGCONT to the
 * old leader stepping down (its own RoleChanged event), and the write
 * outcomes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir } from '../helpers/tmp.ts';
import { until } from '../helpers/node-proc.ts';
import { freePorts, idsOf, missingOn, Procs, sleep, status } from '../helpers/safety.ts';
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
} from '../helpers/auto-cluster.ts';

const PAUSE_MS = 3 * ELECTION_TIMEOUT_MS;
const PROBES = 5;
const PROBE_FIRST = 1_000_000;

test(
  'role auto: a leader paused (SIGSTOP) for 3 election timeouts under Quorum load steps down when it resumes; nothing it took while paused is acknowledged, it rejoins by partial sync, nothing acknowledged is lost',
  { timeout: 120_000 },
  async (t) => {
    const procs = new Procs(t);
    const ports = await freePorts(3);
    const addr = (i: number): string => `127.0.0.1:${ports[i] as number}`;
    const cluster = await AutoCluster.start(procs, { dir: tempDir(t), bind: addr, peer: (_, j) => addr(j) });
    const fail = (err: Error): never => {
      throw new Error(`${err.message}\n${procs.logs()}`);
    };

    const first = await cluster.waitLeader('a leader elected');
    await cluster.node(first.i).call('create', { name: 'c', dimension: DIM, timeoutMs: 10_000 });
    const client = new Client(cluster, { workers: 3, patienceMs: 1500 });
    client.start();
    await until(async () => client.acked().length >= 20, 30_000, 'Quorum writes acknowledged').catch(fail);

    const old = await cluster.waitLeader('the leader before the pause');
    const others = [0, 1, 2].filter((i) => i !== old.i);
    const before = await Promise.all(cluster.live.map(status));
    const fullSyncsBefore = before.map((s) => s.stats.full_syncs);

    const pausedAt = Date.now();
    cluster.node(old.i).kill('SIGSTOP');
    t.diagnostic(`stopped ${cluster.ids[old.i]}, leader of term ${old.term}`);
    // Writes sent to the stopped leader: they reach it only once it runs again, in its old term.
    const probes: Attempt[] = [];
    const probing = Array.from({ length: PROBES }, (_, k) =>
      attemptWrite(
        cluster,
        old.i,
        PROBE_FIRST + k * 10,
        { count: 10, consistency: 'quorum', callTimeoutMs: 60_000 },
        probes,
      ),
    );

    const next = await cluster.waitLeader('a leader among the other two', others);
    const electedMs = Date.now() - pausedAt;
    assert.ok(next.term > old.term, `the new leader's term ${next.term} is above ${old.term}`);
    await until(
      async () => client.ackedSince(pausedAt, next.i).length >= 3,
      30_000,
      'Quorum writes acknowledged by the new leader while the old one is stopped',
    ).catch(fail);
    await sleep(Math.max(0, pausedAt + PAUSE_MS - Date.now()));

    const resumedAt = Date.now();
    cluster.node(old.i).kill('SIGCONT');
    const deposed = await until(
      async () => {
        const s = await status(cluster.node(old.i));
        return s.state !== 'leader' && s.term >= next.term && s.leader?.node_id === cluster.ids[next.i] && s;
      },
      30_000,
      'the old leader to step down and follow the new one',
    ).catch(fail);
    assert.equal(deposed.state, 'follower');
    await until(
      async () => client.ackedSince(resumedAt).length >= 10,
      30_000,
      'writes after the resume',
    ).catch(fail);
    await client.stop();
    await Promise.all(probing);

    // Timing, from the old leader's own events (its clock is this machine's).
    const oldEvents = await cluster.events(old.i);
    const stepDown = oldEvents.find(
      (e) => e.type === 'RoleChanged' && e.atMs >= resumedAt && e.role !== 'primary',
    );
    // RoleChanged announces changes: stepping down, then learning who leads, is one.
    const roles = oldEvents.flatMap((e) => (e.type === 'RoleChanged' ? [e.role] : []));
    assert.ok(
      roles.every((r, k) => k === 0 || r !== roles[k - 1]),
      `RoleChanged repeated a role: ${roles.join(', ')}`,
    );
    const attempts = [...client.attempts, ...probes];
    t.diagnostic(
      `paused ${resumedAt - pausedAt} ms: new leader ${cluster.ids[next.i]} in term ${next.term} seen ${electedMs} ms after SIGSTOP; old leader stepped down ${stepDown ? stepDown.atMs - resumedAt : '?'} ms after SIGCONT (election timeout ${ELECTION_TIMEOUT_MS} ms)`,
    );
    t.diagnostic(
      `${client.acked().length} writes acknowledged, failures: ${JSON.stringify(failureCodes(attempts))}; probes: ${JSON.stringify(probes.map((p) => p.code ?? 'ok'))}`,
    );

    // Nothing sent to the old leader while it was stopped is acknowledged.
    const whilePaused = attempts.filter(
      (a) => a.node === old.i && a.sentMs >= pausedAt && a.sentMs < resumedAt,
    );
    assert.ok(whilePaused.length >= PROBES);
    assert.deepEqual(
      whilePaused.filter((a) => a.ok !== false).map((a) => a.first),
      [],
      'writes sent to the stopped leader were acknowledged',
    );

    // A partial sync brought it back: Synced (partial) after the resume, no full sync on any node.
    // (It follows the new leader once the sync is through, after it dropped a divergent tail, if any.)
    const rejoined = await until(
      async () => (await cluster.events(old.i)).find((e) => e.type === 'Synced' && e.atMs >= resumedAt),
      30_000,
      'the old leader to sync with the new one',
    ).catch(async (err: Error) => {
      throw new Error(
        `${err.message}; its events: ${JSON.stringify((await cluster.events(old.i)).slice(-10))}`,
      );
    });
    assert.ok(rejoined, `the old leader reports no sync after it resumed`);
    assert.equal(rejoined.type === 'Synced' && rejoined.mode, 'partial');
    for (const i of [0, 1, 2]) {
      const full = (await cluster.events(i)).filter(
        (e) => e.type === 'FullSyncStarted' || (e.type === 'Synced' && e.mode === 'full'),
      );
      assert.deepEqual(full, [], `${cluster.ids[i]} reports a full sync`);
    }

    await waitLogsConverged(cluster, 60_000);
    const after = await Promise.all(cluster.live.map(status));
    assert.deepEqual(
      after.map((s) => s.stats.full_syncs),
      fullSyncsBefore,
      'stats.full_syncs changed',
    );
    assert.ok(after.every((s) => s.term === after[0]?.term && s.leader?.node_id === cluster.ids[next.i]));
    const truncation = after[old.i]?.last_truncation;
    t.diagnostic(
      `old leader's tail dropped on rejoining: ${truncation ? `${truncation.records} records (${truncation.from_lsn}..${truncation.to_lsn})` : 'none'}`,
    );

    const ids = client.ackedIds();
    const probeIds = probes.flatMap((p) => idsOf(p.first, p.count));
    await assertAllHold(cluster, ids);
    for (const [i, node] of cluster.live.entries()) {
      const present = probeIds.length - (await missingOn(node, 'c', probeIds)).length;
      assert.equal(present, 0, `${cluster.ids[i]} holds ${present} points written to the stopped leader`);
    }
    await Promise.all(cluster.live.map((n) => n.stop()));
  },
);
