/**
 * Issue 10 acceptance, on real processes: a returning old primary is
 * fenced. A leads B and C (members, addReplica). A is SIGKILLed; B is
 * promoted and C pointed at it (docs/operations.md, "Failover"). A comes
 * back with its old options, still a primary in its own eyes: its members
 * follow B, so it must not acknowledge a Quorum write. What it takes at One
 * is a divergent tail: once A is pointed at B as a replica, that tail is
 * dropped (counted in `truncated_records` and `vrep_truncated_records_total`,
 * a Truncated event, its ids listed in a file under `lost/`) and A's content
 * becomes B's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { until } from '../helpers/node-proc.ts';
import { tempDir } from '../helpers/tmp.ts';
import type { NodeEvent, ReplicationNodeOptions } from '../../src/node/types.ts';
import { ServerMetrics } from '../../src/server/metrics.ts';
import { digestOf, freePorts, idsOf, missingOn, Procs, status, waitConverged } from '../helpers/safety.ts';

const TIMING = { heartbeatIntervalMs: 100, replicaTimeoutMs: 5000, reconnectIntervalMs: 200 };
const DIM = 8;

test(
  'an old primary restarted after a failover acknowledges no Quorum write; re-pointed, its divergent tail is dropped, reported, and it converges',
  { timeout: 150_000 },
  async (t) => {
    const dir = tempDir(t);
    const procs = new Procs(t);
    const [aPort, bPort, cPort] = (await freePorts(3)) as [number, number, number];
    const addr = (port: number): string => `127.0.0.1:${port}`;
    const storage = { fsync: 'always' as const };
    const aOptions: ReplicationNodeOptions = {
      nodeId: 'a',
      dataDir: path.join(dir, 'a'),
      storage,
      replication: { role: 'primary', bindAddress: addr(aPort), ...TIMING },
    };
    const replicaOptions = (id: string, port: number): ReplicationNodeOptions => ({
      nodeId: id,
      dataDir: path.join(dir, id),
      storage,
      replication: { role: 'replica', bindAddress: addr(port), masterAddress: addr(aPort), ...TIMING },
    });
    let a = await procs.start(aOptions);
    const b = await procs.start(replicaOptions('b', bPort));
    const c = await procs.start(replicaOptions('c', cPort));
    for (const port of [bPort, cPort]) await a.call('addReplica', { address: addr(port) });
    await until(
      async () => (await status(a)).replicas.filter((r) => r.status === 'Connected').length === 2,
      30_000,
      'b and c Connected',
    );
    const write = (
      node: typeof a,
      first: number,
      consistency: string,
      timeoutMs = 20_000,
    ): Promise<{ lsn: number }> =>
      node.call('write', { collection: 'c', first, count: 10, dimension: DIM, consistency, timeoutMs });
    await a.call('create', { name: 'c', dimension: DIM });
    for (let i = 0; i < 5; i++) await write(a, i * 10, 'all');
    const fork = (await digestOf(a, 'c')).lastLsn;

    // Failover: A dies, B is promoted, C follows B; B takes Quorum writes (B and C).
    await procs.kill(a);
    await b.call('promote');
    await c.call('configure', { masterAddress: addr(bPort) });
    await write(b, 1000, 'quorum');

    // A returns with its old options: a primary, as far as it knows.
    a = await procs.start(aOptions);
    const quorumOnA = await write(a, 2000, 'quorum', 2000).then(
      (r) => `acknowledged at LSN ${r.lsn}`,
      (err: Error & { code?: string }) => err.code ?? err.message,
    );
    assert.doesNotMatch(quorumOnA, /acknowledged/, 'the returning old primary acknowledged a Quorum write');
    // What it takes alone (at One) is a tail the others never had.
    const tookAlone: number[] = [];
    for (const first of [3000, 3010, 3020]) {
      await write(a, first, 'one', 5000).then(
        () => tookAlone.push(first),
        () => undefined,
      );
    }
    assert.ok(tookAlone.length > 0, 'the returning old primary took no One write');
    const aLast = (await digestOf(a, 'c')).lastLsn;
    assert.ok(aLast > fork, `A wrote nothing after its restart (last LSN ${aLast}, fork at ${fork})`);
    await write(b, 4000, 'quorum');
    await write(b, 4010, 'quorum');
    assert.equal((await status(c)).term, (await status(b)).term, "C is in B's term");

    // Pointed at B as a replica: its tail goes, and it converges on B.
    await a.call('configure', { role: 'replica', masterAddress: addr(bPort) });
    await waitConverged([b, a, c], 'c', 60_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${procs.logs()}`);
    });
    const aStatus = await status(a);
    const tail = aLast - fork;
    assert.ok(
      (aStatus.stats.truncated_records ?? 0) >= tail,
      `truncated_records ${aStatus.stats.truncated_records} for a tail of ${tail} records`,
    );
    const truncated = (await a.call<NodeEvent[]>('events')).filter(
      (e): e is Extract<NodeEvent, { type: 'Truncated' }> => e.type === 'Truncated',
    );
    assert.ok(truncated.length >= 1, 'no Truncated event');
    assert.ok(truncated.some((e) => e.afterLsn <= fork && e.toLsn >= aLast));
    assert.equal(
      truncated.reduce((n, e) => n + e.records, 0),
      aStatus.stats.truncated_records,
      'the events count what the stats count',
    );
    // One lost/ file per truncation, named by the events; its lines list the tail.
    const lostDir = path.join(dir, 'a', 'lost');
    const names = readdirSync(lostDir).sort();
    assert.deepEqual(names, truncated.map((e) => path.basename(e.file)).sort());
    assert.equal(aStatus.stats.lost_files, names.length);
    const lastEvent = truncated.at(-1) as (typeof truncated)[number];
    assert.deepEqual(aStatus.last_truncation, {
      file: lastEvent.file,
      from_lsn: lastEvent.fromLsn,
      to_lsn: lastEvent.toLsn,
      records: lastEvent.records,
      at: lastEvent.atMs,
    });
    const listed: { lsn: number; op: string; collection: string; ids: string[] }[] = [];
    for (const e of truncated) {
      const [head, ...lines] = readFileSync(e.file, 'utf8').trimEnd().split('\n');
      const header = JSON.parse(head as string) as Record<string, unknown>;
      assert.equal(header['nodeId'], 'a');
      assert.equal(header['truncatedAfter'], e.afterLsn);
      assert.equal(header['records'], e.records);
      assert.equal(header['unlisted'], 0);
      const records = lines.map((l) => JSON.parse(l) as (typeof listed)[number]);
      assert.deepEqual(
        records.map((r) => r.lsn),
        Array.from({ length: e.records }, (_, k) => e.fromLsn + k),
        `${e.file} lists LSNs ${e.fromLsn}..${e.toLsn}`,
      );
      listed.push(...records);
    }
    const listedIds = new Set(
      listed.filter((r) => r.op === 'upsert' && r.collection === 'c').flatMap((r) => r.ids),
    );
    for (const first of tookAlone) {
      for (const id of idsOf(first, 10))
        assert.ok(listedIds.has(id), `${id} (taken at One by A alone) is not listed in lost/`);
    }
    for (const id of [...idsOf(0, 50), ...idsOf(1000, 10), ...idsOf(4000, 20)])
      assert.ok(!listedIds.has(id), `${id} is listed in lost/, but it was not dropped`);
    // The counter /metrics exports, from this status.
    const metrics = new ServerMetrics();
    metrics.observeNode(
      () => aStatus,
      () => [],
    );
    assert.match(
      (await metrics.render()).text,
      new RegExp(`^vrep_truncated_records_total ${aStatus.stats.truncated_records}$`, 'm'),
    );
    const aloneIds = tookAlone.flatMap((first) => idsOf(first, 10));
    for (const node of [a, b, c]) {
      assert.deepEqual(
        (await missingOn(node, 'c', aloneIds)).length,
        aloneIds.length,
        'the dropped tail is gone everywhere',
      );
      assert.deepEqual(await missingOn(node, 'c', [...idsOf(1000, 10), ...idsOf(4000, 20)]), []);
    }
    await Promise.all([a.stop(), b.stop(), c.stop()]);
  },
);
