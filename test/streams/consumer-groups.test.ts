/**
 * Consumer groups (src/streams/consumer-groups.ts through node.changes({group})):
 * a committed position that survives a restart and a snapshot that removes
 * the WAL, delivery resuming after it, members sharing the work with no
 * overlap and no gap, rebalancing, an idle member not holding the group
 * back, auto-commit, the retention limit and the lagged-out error, delete.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplicationNode, isVrepError } from '../../src/index.ts';
import { decodeRecord, encodeRecord, Op } from '../../src/log/record.ts';
import { eventPosition, type ChangeEvent } from '../../src/streams/change-event.ts';
import type { GroupConsumer } from '../../src/streams/consumer-groups.ts';
import { tempDir } from '../helpers/tmp.ts';

const DIM = 3;
type T = { after: (fn: () => Promise<void> | void) => void };

async function startNode(
  t: T,
  dataDir: string,
  extra: Partial<Parameters<typeof ReplicationNode.start>[0]> = {},
) {
  const node = await ReplicationNode.start({
    nodeId: 'n1',
    dataDir,
    storage: { fsync: 'no', snapshotEveryBytes: 0, ...(extra.storage ?? {}) },
    ...(extra.streams ? { streams: extra.streams } : {}),
  });
  t.after(() => node.stop());
  return node;
}

/**
 * Reads a member in a test: a pull that outlives a wait is kept for the
 * next call, so no event is lost to a timeout. Every wait has a deadline.
 */
class Reader {
  private pending: Promise<ChangeEvent[] | null> | null = null;
  constructor(readonly member: GroupConsumer) {}

  /** The next batch, or 'timeout' after `ms`. */
  async next(ms: number, max?: number): Promise<ChangeEvent[] | null | 'timeout'> {
    this.pending ??= this.member.nextBatch(max);
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      this.pending,
      new Promise<'timeout'>((res) => (timer = setTimeout(() => res('timeout'), Math.max(1, ms)))),
    ]);
    clearTimeout(timer);
    if (r !== 'timeout') this.pending = null;
    return r;
  }
}

const readers = new WeakMap<GroupConsumer, Reader>();
const readerOf = (m: GroupConsumer): Reader => {
  let r = readers.get(m);
  if (r === undefined) readers.set(m, (r = new Reader(m)));
  return r;
};

/** Exactly n events from a member, within a deadline. */
async function take(member: GroupConsumer, n: number, timeoutMs = 10_000): Promise<ChangeEvent[]> {
  const out: ChangeEvent[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n) {
    const batch = await readerOf(member).next(deadline - Date.now(), n - out.length);
    assert.notEqual(batch, 'timeout', `only ${out.length} of ${n} events within ${timeoutMs} ms`);
    assert.ok(batch !== null, 'the member ended early');
    out.push(...(batch as ChangeEvent[]));
  }
  return out;
}

/** The events arriving until none came for `quietMs`. */
async function drain(member: GroupConsumer, quietMs: number): Promise<ChangeEvent[]> {
  const out: ChangeEvent[] = [];
  for (;;) {
    const batch = await readerOf(member).next(quietMs);
    if (batch === 'timeout' || batch === null) return out;
    out.push(...batch);
  }
}

async function writePoints(node: ReplicationNode, from: number, to: number, perBatch = 1, pad = '') {
  for (let i = from; i < to; i += perBatch) {
    const points = [];
    for (let k = i; k < Math.min(to, i + perBatch); k++)
      points.push({ id: `p${k}`, vector: [k, 0, 0], ...(pad ? { payload: { pad } } : {}) });
    await node.write('a', points);
  }
}

const groupOf = (node: ReplicationNode, name: string) =>
  node.consumerGroupsStatus().find((g) => g.name === name);

async function until(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    assert.ok(Date.now() < deadline, `not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('the group position record round-trips, and a deletion is a null position', () => {
  for (const position of [{ term: 3, lsn: 41, index: null }, { term: 1, lsn: 7, index: 4 }, null]) {
    const bytes = encodeRecord({
      lsn: 9,
      term: 3,
      hlcMs: 1,
      hlcLogical: 0,
      origin: 'n1',
      collection: 'indexer',
      op: Op.GroupPosition,
      position,
    });
    const r = decodeRecord(bytes);
    assert.equal(r.op, Op.GroupPosition);
    assert.equal(r.collection, 'indexer');
    assert.deepEqual((r as { position: unknown }).position, position);
  }
  assert.throws(() =>
    encodeRecord({
      lsn: 1,
      term: 1,
      hlcMs: 1,
      hlcLogical: 0,
      origin: 'n1',
      collection: '',
      op: Op.GroupPosition,
      position: null,
    }),
  );
});

test('a committed position survives a restart and a snapshot that removed the WAL; delivery resumes after it', async (t) => {
  const dir = tempDir(t);
  let node = await startNode(t, dir, { storage: { walSegmentBytes: 64 * 1024 } });
  await node.createCollection('a', { dimension: DIM, metric: 'l2' });
  await writePoints(node, 0, 10);
  const g = node.changes({ group: 'indexer', from: 'earliest', autoCommit: false });
  const first = await take(g, 6); // create + p0..p4
  assert.deepEqual(
    first.map((e) => e.id),
    [null, 'p0', 'p1', 'p2', 'p3', 'p4'],
  );
  await g.commit(first[3] as ChangeEvent); // handled through p2
  assert.deepEqual(groupOf(node, 'indexer')?.position, eventPosition(first[3] as ChangeEvent));
  assert.equal(groupOf(node, 'indexer')?.members, 1);
  await assert.rejects(
    g.commit({ term: 1, lsn: 10_000 }),
    (err: unknown) => isVrepError(err, 'ERR_INVALID_INPUT') && /not handed out/.test(String(err)),
  );
  g.close();
  // A new member of the group starts after the committed position: p3 again (handed out, not committed), never p2.
  const again = node.changes({ group: 'indexer', autoCommit: false });
  assert.deepEqual(
    (await take(again, 3)).map((e) => e.id),
    ['p3', 'p4', 'p5'],
  );
  again.close();

  // Restart, with a snapshot past the position: the WAL before it goes, the group's position does not.
  await node.snapshot();
  await node.stop();
  node = await startNode(t, dir, { storage: { walSegmentBytes: 64 * 1024 } });
  assert.deepEqual(groupOf(node, 'indexer')?.position, eventPosition(first[3] as ChangeEvent));
  assert.equal(groupOf(node, 'indexer')?.laggedOut, false, 'the group pins the WAL after its position');
  const after = node.changes({ group: 'indexer', autoCommit: false });
  assert.deepEqual(
    (await take(after, 7)).map((e) => e.id),
    ['p3', 'p4', 'p5', 'p6', 'p7', 'p8', 'p9'],
  );
  after.close();
  assert.equal(await node.deleteConsumerGroup('indexer'), true);
  assert.equal(groupOf(node, 'indexer'), undefined);
  assert.equal(await node.deleteConsumerGroup('indexer'), false);
});

test('members share the work by id hash: every event once, none twice, each in log order', async (t) => {
  const node = await startNode(t, tempDir(t));
  await node.createCollection('a', { dimension: DIM, metric: 'l2' });
  const opts = { group: 'workers', from: 'latest' as const, autoCommit: false as const };
  const a = node.changes(opts);
  const b = node.changes(opts);
  const c = node.changes(opts);
  await Promise.all([a.start(), b.start(), c.start()]);
  assert.deepEqual(
    [a.share, b.share, c.share],
    [
      { index: 0, of: 3 },
      { index: 1, of: 3 },
      { index: 2, of: 3 },
    ],
  );
  await writePoints(node, 0, 300, 10);
  const seen = await Promise.all([a, b, c].map((m) => drain(m, 1500)));
  const ids = seen.flat().map((e) => e.id as string);
  assert.equal(ids.length, 300, 'every event once');
  assert.equal(new Set(ids).size, 300, 'none twice');
  for (const events of seen) {
    assert.ok(events.length > 30, `a member got ${events.length} of 300 events: the hash spreads them`);
    for (let i = 1; i < events.length; i++)
      assert.ok(eventPosition(events[i] as ChangeEvent).lsn >= (events[i - 1] as ChangeEvent).lsn);
  }
  // The group's position is the oldest of its members': while one has not committed, it stays where the group started.
  const started = groupOf(node, 'workers')?.position;
  await a.commit();
  await b.commit();
  assert.deepEqual(groupOf(node, 'workers')?.position, started, 'c has committed nothing yet');
  await c.commit();
  const lastData = Math.max(...seen.flat().map((e) => e.lsn));
  assert.deepEqual(
    groupOf(node, 'workers')?.position,
    { term: 1, lsn: lastData, index: null },
    'all three committed: the position is the last record of data',
  );
  for (const m of [a, b, c]) m.close();
});

test('an idle member does not hold the group back; a member leaving hands its share over (rebalance, from the committed position)', async (t) => {
  const node = await startNode(t, tempDir(t));
  await node.createCollection('a', { dimension: DIM, metric: 'l2' });
  await node.createCollection('b', { dimension: DIM, metric: 'l2' });
  const opts = {
    group: 'g',
    from: 'latest' as const,
    partitionBy: 'collection' as const,
    autoCommit: false as const,
  };
  const m0 = node.changes(opts);
  const m1 = node.changes(opts);
  await Promise.all([m0.start(), m1.start()]);
  await writePoints(node, 0, 20, 5); // collection a only: one member has every event, the other none
  const [e0, e1] = await Promise.all([drain(m0, 800), drain(m1, 800)]);
  const busy = e0.length > 0 ? m0 : m1;
  const idle = busy === m0 ? m1 : m0;
  assert.deepEqual([e0.length + e1.length, Math.min(e0.length, e1.length)], [20, 0]);
  await busy.commit();
  const last = Math.max(...[...e0, ...e1].map((e) => e.lsn));
  assert.equal(groupOf(node, 'g')?.position?.lsn, last, 'the idle member went past every record');

  // Handed out and not committed: after the busy member leaves, the other gets those events again, and then the new ones.
  await writePoints(node, 20, 30, 5);
  const handed = await drain(busy, 500);
  assert.equal(handed.length, 10);
  busy.close();
  const taken = await drain(idle, 800);
  assert.deepEqual(
    taken.map((e) => e.id),
    handed.map((e) => e.id),
    'the events after the committed position come again, to the member that owns them now',
  );
  assert.equal(idle.share.of, 1);
  idle.close();
});

test('auto-commit commits the events handled: those handed out before the consumer asked for more', async (t) => {
  const node = await startNode(t, tempDir(t));
  await node.createCollection('a', { dimension: DIM, metric: 'l2' });
  await writePoints(node, 0, 30);
  const member = node.changes({
    group: 'auto',
    from: 'earliest',
    autoCommit: { everyEvents: 5, everyMs: 60_000 },
  });
  const got: ChangeEvent[] = [];
  for await (const e of member) {
    got.push(e);
    if (got.length === 12) break; // events 1..11 were handled; the 12th was not
  }
  // Commits after the 5th and the 10th, and at the close what was handled: through the 11th.
  await until(
    'the commit at the close is applied',
    () => groupOf(node, 'auto')?.position?.lsn === got[10]?.lsn,
  );
  // Resuming: after the 11th, so the 12th comes again (handed out, not handled), never the 11th.
  const next = node.changes({ group: 'auto', autoCommit: false });
  assert.deepEqual(
    (await take(next, 2)).map((e) => e.id),
    [got[11]?.id, 'p11'],
  );
  next.close();
});

test('retention: a group holds the WAL within streams.max_retained_bytes; past it, it lags out with the explicit error', async (t) => {
  const node = await startNode(t, tempDir(t), {
    // A small in-memory log too: what the log holds is the ring's and the WAL's.
    storage: { walSegmentBytes: 64 * 1024, logBytes: 64 * 1024 },
    streams: { maxRetainedBytes: 1024 * 1024 },
  });
  await node.createCollection('a', { dimension: DIM, metric: 'l2' });
  const pad = 'x'.repeat(2000);
  await writePoints(node, 0, 10, 1, pad);
  for (const name of ['slow', 'near']) {
    const m = node.changes({ group: name, from: 'earliest', autoCommit: false });
    await take(m, 3);
    await m.commit();
    m.close();
  }
  // 'slow' stays at p1; 'near' moves on after ~0.5 MB more.
  await writePoints(node, 10, 250, 1, pad);
  const near = node.changes({ group: 'near', autoCommit: false });
  const caught = await take(near, 248);
  await near.commit();
  near.close();
  await writePoints(node, 250, 700, 1, pad); // ~0.9 MB more: 'slow' is ~1.4 MB behind, 'near' ~0.9 MB
  await node.snapshot();
  const status = node.replicationStatus();
  assert.equal(status.retention.max_retained_bytes, 1024 * 1024);
  const slow = status.groups.find((g) => g.name === 'slow');
  const nearStatus = status.groups.find((g) => g.name === 'near');
  assert.equal(slow?.lagged_out, true, 'past the limit: lagged out');
  assert.equal(nearStatus?.lagged_out, false, 'within the limit: its WAL is kept');
  assert.ok(status.retention.first_lsn <= (caught.at(-1) as ChangeEvent).lsn + 1);
  const lagged = node.changes({ group: 'slow', autoCommit: false });
  await assert.rejects(lagged.start(), (err: unknown) => {
    assert.ok(isVrepError(err, 'ERR_POSITION_EVICTED'), String(err));
    assert.match((err as Error).message, /consumer group slow lagged out: its committed position 1:\d+/);
    assert.match((err as Error).message, /earliest position held is \d+:\d+/);
    return true;
  });
  lagged.close();
  const resumed = node.changes({ group: 'near', autoCommit: false });
  assert.equal((await take(resumed, 1))[0]?.id, 'p250', 'the group within the limit resumes with no gap');
  resumed.close();
  // Deleting the lagged-out group lets it start over.
  assert.equal(await node.deleteConsumerGroup('slow'), true);
  const fresh = node.changes({ group: 'slow', from: 'latest', autoCommit: false });
  await fresh.start();
  fresh.close();
});
