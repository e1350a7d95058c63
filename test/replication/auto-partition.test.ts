/**
 * Role auto on real processes, partitioned: every peer link runs through an
 * in-test TCP proxy (test/helpers/partition-proxy.ts) that cuts a node off
 * from the other two (closing its links and refusing new ones) and heals it.
 *
 * The leader cut off: the minority side (the old leader) acknowledges no
 * Quorum write and no linearizable read from the cut on; it steps down
 * (CheckQuorum) and, with PreVote, never raises its term while alone; the
 * majority elects a leader in a higher term and takes Quorum writes; after
 * healing the new leader keeps its term, all three converge with every
 * acknowledged write, and the One writes the old leader acknowledged alone
 * are on no node and listed in its `lost/*.jsonl` file.
 *
 * A follower cut off: it refuses Quorum writes and linearizable reads; the
 * leader keeps leading in its term and takes Quorum writes; the follower's
 * term stays put (PreVote), and after healing nobody's term moved.
 *
 * Reported: from the cut to the old leader's step-down (its RoleChanged
 * event) and to the majority's new leader (its LeaderElected event).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.ts';
import { until } from '../helpers/node-proc.ts';
import { freePorts, idsOf, missingOn, Procs, sleep, status } from '../helpers/safety.ts';
import { PartitionProxy } from '../helpers/partition-proxy.ts';
import {
  attemptRead,
  attemptWrite,
  assertAllHold,
  AutoCluster,
  Client,
  DIM,
  ELECTION_TIMEOUT_MS,
  waitLogsConverged,
  failureCodes,
  type Attempt,
  type ReadAttempt,
} from '../helpers/auto-cluster.ts';

/** Refusals a node cut off from the majority may answer; anything else (success above all) fails the test. */
const MINORITY_REFUSALS = ['ERR_NOT_LEADER', 'ERR_NO_LEADER', 'ERR_CONSISTENCY_TIMEOUT'];

async function partitionedCluster(t: TestContext): Promise<{
  procs: Procs;
  proxy: PartitionProxy;
  cluster: AutoCluster;
  dir: string;
  http: (i: number) => string;
  fail: (err: Error) => never;
}> {
  const procs = new Procs(t);
  const ports = await freePorts(6);
  const proxy = await PartitionProxy.start(ports.slice(0, 3));
  t.after(() => proxy.close());
  // HTTP addresses the nodes tell each other (nothing listens there): ERR_NOT_LEADER names them.
  const http = (i: number): string => `127.0.0.1:${ports[3 + i] as number}`;
  const dir = tempDir(t);
  const cluster = await AutoCluster.start(procs, {
    dir,
    bind: () => '127.0.0.1:0',
    peer: (_, j) => proxy.frontAddress(j),
    httpAddress: http,
  });
  for (const [i, node] of cluster.nodes.entries()) {
    const info = await (node as NonNullable<typeof node>).call<{ peerPort: number; pid: number }>('info');
    proxy.setNode(i, info.peerPort, info.pid);
  }
  const fail = (err: Error): never => {
    throw new Error(`${err.message}\n${procs.logs()}`);
  };
  return { procs, proxy, cluster, dir, http, fail };
}

/** One writes, Quorum writes and linearizable reads sent to one node, each in its own loop, until stopped. */
class Prober {
  readonly one: Attempt[] = [];
  readonly quorum: Attempt[] = [];
  readonly reads: ReadAttempt[] = [];
  private stopped = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly cluster: AutoCluster,
    private readonly node: number,
    private readonly firstId: number,
  ) {}

  start(): void {
    let next = this.firstId;
    const loop = async (step: () => Promise<unknown>): Promise<void> => {
      while (!this.stopped) {
        await step();
        await sleep(20);
      }
    };
    const write = (level: 'one' | 'quorum', into: Attempt[]) => () =>
      attemptWrite(
        this.cluster,
        this.node,
        (next += 5),
        { count: 5, consistency: level, timeoutMs: 2000 },
        into,
      );
    this.loops = [
      loop(write('one', this.one)),
      loop(write('quorum', this.quorum)),
      loop(() => attemptRead(this.cluster, this.node, 'p0', 'linearizable', this.reads)),
    ];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }
}

/** The point ids of every record line in the node's `lost/*.jsonl` files. */
function lostIds(dataDir: string): { files: number; ids: Set<string> } {
  const dir = path.join(dataDir, 'lost');
  const files = readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
  const ids = new Set<string>();
  for (const f of files) {
    const [header, ...lines] = readFileSync(path.join(dir, f), 'utf8').trim().split('\n');
    assert.equal((JSON.parse(header as string) as { format: number }).format, 1, `${f}: header`);
    for (const line of lines) for (const id of (JSON.parse(line) as { ids: string[] }).ids) ids.add(id);
  }
  return { files: files.length, ids };
}

test(
  'role auto, partition: the leader cut off from both followers refuses Quorum writes and linearizable reads, steps down; the majority elects and takes writes; after healing all converge and its lone One writes are in its lost file',
  { timeout: 120_000 },
  async (t) => {
    const { proxy, cluster, dir, http, fail } = await partitionedCluster(t);
    const first = await cluster.waitLeader('a leader elected');
    await cluster.node(first.i).call('create', { name: 'c', dimension: DIM, timeoutMs: 10_000 });
    const client = new Client(cluster, { workers: 2, patienceMs: 1500 });
    client.start();
    await until(async () => client.acked().length >= 20, 30_000, 'Quorum writes acknowledged').catch(fail);

    const old = await cluster.waitLeader('the leader before the cut');
    const majority = [0, 1, 2].filter((i) => i !== old.i);
    const cutAt = Date.now();
    proxy.isolate(old.i);
    const prober = new Prober(cluster, old.i, 2_000_000);
    prober.start();

    const next = await cluster.waitLeader('a leader of the majority', majority);
    assert.ok(next.term > old.term, `the majority's leader's term ${next.term} is above ${old.term}`);
    const deposed = await until(
      async () => {
        const s = await status(cluster.node(old.i));
        return s.state !== 'leader' && s;
      },
      30_000,
      'the cut-off leader to step down',
    ).catch(fail);
    await until(
      async () => client.ackedSince(cutAt, next.i).length >= 10,
      30_000,
      'Quorum writes acknowledged by the majority',
    ).catch(fail);
    // The minority goes on refusing for another two election timeouts.
    await sleep(2 * ELECTION_TIMEOUT_MS);
    const alone = await status(cluster.node(old.i));
    await prober.stop();
    const healAt = Date.now();
    proxy.healAll();

    await until(
      async () => {
        const s = await status(cluster.node(old.i));
        return s.state === 'follower' && s.leader?.node_id === cluster.ids[next.i] && s.term === next.term;
      },
      30_000,
      'the old leader to follow the new one after healing',
    ).catch(fail);
    await until(async () => client.ackedSince(healAt).length >= 5, 30_000, 'writes after healing').catch(
      fail,
    );
    await client.stop();

    const oldEvents = await cluster.events(old.i);
    const stepDown = oldEvents.find(
      (e) => e.type === 'RoleChanged' && e.atMs >= cutAt && e.role !== 'primary',
    );
    const elected = (await cluster.events(next.i)).find(
      (e) => e.type === 'LeaderElected' && e.term === next.term && e.leader === cluster.ids[next.i],
    );
    const oneAcked = prober.one.filter((a) => a.ok === true);
    t.diagnostic(
      `cut ${cluster.ids[old.i]} (leader of term ${old.term}): it stepped down ${stepDown ? stepDown.atMs - cutAt : '?'} ms after the cut; ${cluster.ids[next.i]} elected in term ${next.term} ${elected ? elected.atMs - cutAt : '?'} ms after it (election timeout ${ELECTION_TIMEOUT_MS} ms); partition held ${healAt - cutAt} ms`,
    );
    t.diagnostic(
      `minority: ${oneAcked.length} One writes acknowledged alone, Quorum ${JSON.stringify(failureCodes(prober.quorum))}, linearizable reads ${JSON.stringify(countCodes(prober.reads))}; client ${client.acked().length} acknowledged, failures ${JSON.stringify(failureCodes(client.attempts))}; proxy refused ${JSON.stringify(Object.fromEntries(proxy.refused))}, ${proxy.unidentified} dials unidentified`,
    );

    // The minority side acknowledged no Quorum write and no linearizable read sent after the cut.
    assert.ok(prober.quorum.length > 0 && prober.reads.length > 0);
    const refusedOrWrong = (xs: { ok: boolean | null; code: string | null }[]): unknown[] =>
      xs
        .filter((x) => x.ok !== false || !MINORITY_REFUSALS.includes(x.code ?? ''))
        .map((x) => x.code ?? 'success');
    const clientToOld = client.attempts.filter(
      (a) => a.node === old.i && a.sentMs >= cutAt && a.sentMs < healAt,
    );
    assert.deepEqual(
      refusedOrWrong([...prober.quorum, ...clientToOld]),
      [],
      'Quorum writes on the minority side',
    );
    assert.deepEqual(refusedOrWrong(prober.reads), [], 'linearizable reads on the minority side');
    assert.notEqual(deposed.state, 'leader');
    // PreVote: alone, it campaigned without raising its term.
    assert.equal(alone.term, old.term, `the cut-off node's term went from ${old.term} to ${alone.term}`);

    // After healing: the majority's leader was not deposed, everything converged.
    const leaderNow = await cluster.waitLeader('the leader after healing');
    assert.deepEqual(leaderNow, next, 'the leader after healing');
    await waitLogsConverged(cluster, 60_000);
    const ids = client.ackedIds();
    await assertAllHold(cluster, ids);

    // The One writes it acknowledged alone: on no node, and listed in its lost file.
    assert.ok(oneAcked.length > 0, 'the cut-off leader acknowledged no One write before stepping down');
    const loneIds = oneAcked.flatMap((a) => idsOf(a.first, a.count));
    for (const [i, node] of cluster.live.entries()) {
      const present = loneIds.length - (await missingOn(node, 'c', loneIds)).length;
      assert.equal(
        present,
        0,
        `${cluster.ids[i]} holds ${present} of the ${loneIds.length} points taken at One by the cut-off leader`,
      );
    }
    const lost = lostIds(path.join(dir, cluster.ids[old.i] as string));
    const unlisted = loneIds.filter((id) => !lost.ids.has(id));
    assert.deepEqual(
      unlisted.slice(0, 20),
      [],
      `${unlisted.length} of ${loneIds.length} lone One writes are not in the lost file`,
    );
    const st = await status(cluster.node(old.i));
    assert.ok(
      st.stats.lost_files >= 1 && st.last_truncation !== null,
      'the truncation is reported in the status',
    );
    t.diagnostic(
      `old leader dropped ${st.stats.truncated_records} records into ${lost.files} lost file(s), ${lost.ids.size} point ids`,
    );

    // A follower refuses a write naming the leader's HTTP address (error.primary).
    const refused = await attemptWrite(cluster, old.i, 9_000_000, { count: 1, consistency: 'quorum' }, []);
    assert.equal(refused.code, 'ERR_NOT_LEADER');
    assert.equal(refused.primary, http(next.i));
    await Promise.all(cluster.live.map((n) => n.stop()));
  },
);

test(
  'role auto, partition: a follower cut off refuses Quorum writes and linearizable reads; the leader keeps its term and takes writes; after healing no term moved',
  { timeout: 120_000 },
  async (t) => {
    const { proxy, cluster, http, fail } = await partitionedCluster(t);
    const leader = await cluster.waitLeader('a leader elected');
    await cluster.node(leader.i).call('create', { name: 'c', dimension: DIM, timeoutMs: 10_000 });
    const follower = (leader.i + 1) % 3;
    const client = new Client(cluster, { workers: 2, patienceMs: 1500 });
    client.start();
    await until(async () => client.acked().length >= 20, 30_000, 'Quorum writes acknowledged').catch(fail);

    const cutAt = Date.now();
    proxy.isolate(follower);
    const prober = new Prober(cluster, follower, 2_000_000);
    prober.start();
    await until(
      async () => client.ackedSince(cutAt, leader.i).length >= 20,
      30_000,
      'Quorum writes acknowledged by the leader and the other follower',
    ).catch(fail);
    // Long enough for the cut-off follower to time out and campaign (pre-votes) more than once.
    await sleep(4 * ELECTION_TIMEOUT_MS);
    const alone = await status(cluster.node(follower));
    await prober.stop();
    const healAt = Date.now();
    proxy.healAll();
    await until(
      async () => {
        const s = await status(cluster.node(follower));
        return s.state === 'follower' && s.leader?.node_id === cluster.ids[leader.i];
      },
      30_000,
      'the follower to follow the leader again',
    ).catch(fail);
    await until(async () => client.ackedSince(healAt).length >= 5, 30_000, 'writes after healing').catch(
      fail,
    );
    await client.stop();

    const notLeader = [...prober.quorum, ...prober.reads].filter((x) => x.code === 'ERR_NOT_LEADER');
    t.diagnostic(
      `cut ${cluster.ids[follower]} for ${healAt - cutAt} ms: its state then ${alone.state}, term ${alone.term}; Quorum ${JSON.stringify(failureCodes(prober.quorum))}, linearizable reads ${JSON.stringify(countCodes(prober.reads))}, One ${JSON.stringify(failureCodes(prober.one))}; leader took ${client.ackedSince(cutAt).length} writes meanwhile`,
    );
    const wrong = [...prober.one, ...prober.quorum, ...prober.reads].filter(
      (x) => x.ok !== false || !['ERR_NOT_LEADER', 'ERR_NO_LEADER'].includes(x.code ?? ''),
    );
    assert.deepEqual(
      wrong.map((x) => x.code ?? 'success'),
      [],
      'the cut-off follower took a write or a read',
    );
    // Its refusals name the leader when they name anyone.
    for (const x of notLeader)
      assert.ok(x.primary === http(leader.i) || x.primary === null, `primary ${x.primary}`);
    assert.equal(
      alone.term,
      leader.term,
      `the cut-off follower's term went from ${leader.term} to ${alone.term}`,
    );
    assert.notEqual(alone.state, 'leader');

    assert.deepEqual(
      await cluster.waitLeader('the leader after healing'),
      leader,
      'the leader after healing',
    );
    await waitLogsConverged(cluster, 60_000);
    const terms = (await Promise.all(cluster.live.map(status))).map((s) => s.term);
    assert.deepEqual(terms, [leader.term, leader.term, leader.term]);
    const ids = client.ackedIds();
    await assertAllHold(cluster, ids);
    await Promise.all(cluster.live.map((n) => n.stop()));
  },
);

function countCodes(xs: { ok: boolean | null; code: string | null }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) {
    const k = x.ok === true ? 'success' : (x.code ?? 'none');
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}
