/**
 * Change streams in process (src/streams/change-stream.ts through
 * node.changes()): every committed write exactly once and in order,
 * filters, 'latest', resuming with no gap and no duplicate, the explicit
 * errors for an evicted or a diverged position, a bounded buffer behind a
 * consumer that stops reading, and the ways a stream ends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplicationNode, isVrepError } from '../../src/index.ts';
import type { ChangeEvent } from '../../src/streams/change-event.ts';
import { ChangeStreamLimits, type ChangeStream } from '../../src/streams/change-stream.ts';
import { tempDir } from '../helpers/tmp.ts';

const DIM = 3;

async function startNode(t: { after: (fn: () => Promise<void>) => void }, dataDir: string, storage = {}) {
  const node = await ReplicationNode.start({
    nodeId: 'n1',
    dataDir,
    storage: { fsync: 'no', snapshotEveryBytes: 0, ...storage },
  });
  t.after(() => node.stop());
  return node;
}

/**
 * Reads a stream in a test: `take(n)` exactly n events, `idle()` true when
 * nothing comes within a short wait (the pull it started is kept for the
 * next take, so no event is lost to the check). Every wait has a deadline.
 */
class Reader {
  private pending: Promise<ChangeEvent[] | null> | null = null;
  constructor(readonly stream: ChangeStream) {}

  private pull(max: number): Promise<ChangeEvent[] | null> {
    this.pending ??= this.stream.nextBatch(max);
    return this.pending;
  }

  private async within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      p,
      new Promise<'timeout'>((res) => (timer = setTimeout(() => res('timeout'), ms))),
    ]);
    clearTimeout(timer);
    return r;
  }

  async take(n: number, timeoutMs = 10_000): Promise<ChangeEvent[]> {
    const out: ChangeEvent[] = [];
    const deadline = Date.now() + timeoutMs;
    while (out.length < n) {
      const batch = await this.within(this.pull(n - out.length), Math.max(1, deadline - Date.now()));
      assert.notEqual(batch, 'timeout', `only ${out.length} of ${n} events within ${timeoutMs} ms`);
      this.pending = null;
      assert.ok(batch !== null, 'the stream ended early');
      out.push(...(batch as ChangeEvent[]));
    }
    assert.equal(out.length, n, 'a pull gave more events than asked for');
    return out;
  }

  async idle(ms = 200): Promise<boolean> {
    return (await this.within(this.pull(1), ms)) === 'timeout';
  }
}

async function take(stream: ChangeStream, n: number): Promise<ChangeEvent[]> {
  return new Reader(stream).take(n);
}

const key = (e: ChangeEvent): string => `${e.op}:${e.collection}:${e.id ?? ''}`;

test('a stream from earliest sees every committed write exactly once, in log order, with its fields', async (t) => {
  const node = await startNode(t, tempDir(t));
  await node.createCollection('a', { dimension: DIM, metric: 'l2' });
  await node.createCollection('b', { dimension: DIM, metric: 'cosine' });
  await node.write('a', [
    { id: 'p1', vector: [1, 2, 3], payload: { n: 1 } },
    { id: 'p2', vector: [4, 5, 6] },
  ]);
  await node.write('b', [{ id: 'q1', vector: [0, 1, 0], payload: { tag: 'x' } }]);
  await node.delete('a', ['p1']);
  await node.dropCollection('b');
  const expected = [
    'create_collection:a:',
    'create_collection:b:',
    'upsert:a:p1',
    'upsert:a:p2',
    'upsert:b:q1',
    'delete:a:p1',
    'drop_collection:b:',
  ];
  const stream = node.changes({ from: 'earliest', includeVectors: true });
  t.after(() => stream.close());
  const reader = new Reader(stream);
  const events = await reader.take(expected.length);
  assert.deepEqual(events.map(key), expected);
  assert.ok(await reader.idle(), 'no event beyond the writes');
  // Log order: positions never go back, and the points of a record are numbered.
  for (let i = 1; i < events.length; i++) {
    const [a, b] = [events[i - 1] as ChangeEvent, events[i] as ChangeEvent];
    assert.ok(
      b.position.lsn > a.position.lsn || (b.position.lsn === a.position.lsn && b.index === a.index + 1),
    );
  }
  const [p1, p2] = [events[2] as ChangeEvent, events[3] as ChangeEvent];
  assert.deepEqual(p1.position, p2.position, 'one record, one position');
  assert.deepEqual([p1.lsn, p1.term], [p1.position.lsn, p1.position.term]);
  assert.deepEqual([p1.index, p1.count, p2.index, p2.count], [0, 2, 1, 2]);
  assert.deepEqual(p1.payload, { n: 1 });
  assert.equal(p2.payload, null);
  assert.deepEqual(p1.vector, new Float32Array([1, 2, 3]));
  assert.equal(p1.origin, 'n1');
  assert.ok(p1.hlc.ms > Date.now() - 60_000 && p1.hlc.ms <= Date.now() + 1000);
  assert.equal(events[0]?.dimension, DIM);
  assert.equal(events[0]?.metric, 'l2');
  assert.equal(events[5]?.vector, undefined, 'a delete has no vector');

  // Writes after the stream caught up arrive too, once.
  await node.write('a', [{ id: 'p3', vector: [7, 8, 9] }]);
  assert.deepEqual((await reader.take(1)).map(key), ['upsert:a:p3']);
  const plain = node.changes({ from: 'earliest' });
  t.after(() => plain.close());
  assert.equal((await take(plain, 3))[2]?.vector, undefined, 'no vector unless asked');
});

test('filters: collections and ops', async (t) => {
  const node = await startNode(t, tempDir(t));
  await node.createCollection('a', { dimension: DIM, metric: 'l2' });
  await node.createCollection('b', { dimension: DIM, metric: 'l2' });
  for (let i = 0; i < 5; i++) {
    await node.write('a', [{ id: `a${i}`, vector: [i, 0, 0] }]);
    await node.write('b', [{ id: `b${i}`, vector: [0, i, 0] }]);
  }
  await node.delete('b', ['b0']);
  const onlyB = node.changes({ from: 'earliest', collections: ['b'] });
  const deletes = node.changes({ from: 'earliest', ops: ['delete'] });
  const bUpserts = node.changes({ from: 'earliest', collections: ['b'], ops: ['upsert'] });
  t.after(() => [onlyB, deletes, bUpserts].forEach((s) => s.close()));
  const [rb, rd, rbu] = [onlyB, deletes, bUpserts].map((s) => new Reader(s)) as [Reader, Reader, Reader];
  assert.deepEqual((await rb.take(7)).map(key), [
    'create_collection:b:',
    ...[0, 1, 2, 3, 4].map((i) => `upsert:b:b${i}`),
    'delete:b:b0',
  ]);
  assert.deepEqual((await rd.take(1)).map(key), ['delete:b:b0']);
  assert.deepEqual(
    (await rbu.take(5)).map((e) => e.id),
    ['b0', 'b1', 'b2', 'b3', 'b4'],
  );
  for (const r of [rb, rd, rbu]) assert.ok(await r.idle());
  assert.throws(
    () => node.changes({ ops: ['config' as never] }),
    (err: unknown) => isVrepError(err, 'ERR_INVALID_INPUT') && /^ops:/.test((err as Error).message),
  );
});

test("'latest' starts after the head: only writes committed after it opened", async (t) => {
  const node = await startNode(t, tempDir(t));
  await node.createCollection('a', { dimension: DIM, metric: 'l2' });
  await node.write('a', [{ id: 'old', vector: [1, 1, 1] }]);
  const stream = node.changes({ from: 'latest' });
  t.after(() => stream.close());
  await stream.start();
  await node.write('a', [{ id: 'new', vector: [2, 2, 2] }]);
  const reader = new Reader(stream);
  assert.deepEqual((await reader.take(1)).map(key), ['upsert:a:new']);
  assert.ok(await reader.idle());
  const byDefault = node.changes();
  t.after(() => byDefault.close());
  await byDefault.start();
  assert.ok(await new Reader(byDefault).idle(), "the default is 'latest'");
});

test('a stream resumed from an acknowledged position continues with no gap and no duplicate', async (t) => {
  const node = await startNode(t, tempDir(t));
  await node.createCollection('a', { dimension: DIM, metric: 'l2' });
  for (let i = 0; i < 20; i++) {
    await node.write('a', [
      { id: `x${i}`, vector: [i, 0, 0] },
      { id: `y${i}`, vector: [0, i, 0] },
      { id: `z${i}`, vector: [0, 0, i] },
    ]);
  }
  const all = await take(node.changes({ from: 'earliest' }), 61);
  for (const cut of [1, 10, 31, 32, 59]) {
    // Acknowledge event `cut - 1`: a record boundary or the middle of a batch.
    const acked = all[cut - 1] as ChangeEvent;
    const from =
      acked.index === acked.count - 1 ? { ...acked.position } : { ...acked.position, index: acked.index };
    const resumed = node.changes({ from });
    const reader = new Reader(resumed);
    const rest = await reader.take(all.length - cut);
    assert.deepEqual(rest.map(key), all.slice(cut).map(key), `resumed after event ${cut - 1}`);
    assert.ok(await reader.idle(), `nothing duplicated after event ${cut - 1}`);
    resumed.close();
  }
  // {term: 0, lsn: 0}: before the first record.
  const fromZero = node.changes({ from: { term: 0, lsn: 0 } });
  t.after(() => fromZero.close());
  assert.deepEqual((await take(fromZero, 61)).map(key), all.map(key));
});

test('an evicted position is ERR_POSITION_EVICTED naming the earliest position held, the one the status shows', async (t) => {
  // Small segments and a small in-memory log, so a snapshot removes the WAL the old records were in.
  const node = await startNode(t, tempDir(t), { walSegmentBytes: 64 * 1024, logBytes: 64 * 1024 });
  await node.createCollection('a', { dimension: DIM, metric: 'l2' });
  const reading = node.changes({ from: 'earliest' });
  const first = (await take(reading, 1))[0] as ChangeEvent;
  reading.close(); // an open stream's cursor pins the WAL from its position
  const pad = 'x'.repeat(4000);
  for (let i = 0; i < 200; i++) await node.write('a', [{ id: `p${i}`, vector: [i, 0, 0], payload: { pad } }]);
  await node.snapshot();
  const open = node.changes({ from: first.position });
  const { retention } = node.replicationStatus();
  await assert.rejects(open.start(), (err: unknown) => {
    assert.ok(isVrepError(err, 'ERR_POSITION_EVICTED'), String(err));
    const m = /earliest position held is (\d+):(\d+)/.exec((err as Error).message);
    assert.ok(m, (err as Error).message);
    assert.ok(Number(m[2]) > first.position.lsn + 1, 'the earliest position held is past the one asked for');
    assert.deepEqual(
      { first_term: Number(m[1]), first_lsn: Number(m[2]) },
      { first_term: retention.first_term, first_lsn: retention.first_lsn },
      'the status names the same retention window',
    );
    return true;
  });
  // The position it names is one a stream can start from: after it, at the next record, no error.
  const earliest = node.changes({ from: 'earliest' });
  t.after(() => earliest.close());
  const [e] = await take(earliest, 1);
  assert.ok((e as ChangeEvent).position.lsn > first.position.lsn + 1);
});

test('a position whose LSN this log holds in another term is ERR_POSITION_DIVERGED', async (t) => {
  const node = await startNode(t, tempDir(t));
  await node.createCollection('a', { dimension: DIM, metric: 'l2' });
  await node.write('a', [{ id: 'p', vector: [1, 0, 0] }]);
  const [, e] = await take(node.changes({ from: 'earliest' }), 2);
  const wrongTerm = { term: (e as ChangeEvent).position.term + 7, lsn: (e as ChangeEvent).position.lsn };
  await assert.rejects(
    node.changes({ from: wrongTerm }).start(),
    (err: unknown) =>
      isVrepError(err, 'ERR_POSITION_DIVERGED') && /branch a failover dropped/.test((err as Error).message),
  );
});

test('a consumer that stops reading keeps the stream to one read: nothing queues up behind it', async (t) => {
  const node = await startNode(t, tempDir(t));
  await node.createCollection('a', { dimension: DIM, metric: 'l2' });
  const batchPoints = 100;
  const payload = { pad: 'y'.repeat(1000) };
  const batch = (i: number) =>
    Array.from({ length: batchPoints }, (_, k) => ({ id: `p${i}-${k}`, vector: [i, k, 0], payload }));
  await node.write('a', batch(0));
  const stream = node.changes({ from: 'earliest' });
  t.after(() => stream.close());
  await take(stream, 2); // the create and one point of the first batch
  for (let i = 1; i < 100; i++) {
    await node.write('a', batch(i));
  }
  // ~10 MB written while the consumer reads nothing: the stream read no more than it held.
  const held = stream.buffered;
  assert.ok(held.bytes <= ChangeStreamLimits.readBytes, `holds ${held.bytes} bytes`);
  assert.ok((stream.readLsn as number) <= 3, `read ahead to LSN ${stream.readLsn}`);
  // Reading again, every event comes, and each pull holds at most one read.
  let seen = 1;
  while (seen < 100 * batchPoints) {
    const batch = await stream.nextBatch(1000);
    assert.ok(batch !== null);
    seen += batch.length;
    assert.ok(stream.buffered.bytes <= ChangeStreamLimits.readBytes);
  }
  assert.equal(seen, 100 * batchPoints);
});

test('a stream ends when its signal aborts, when closed, and when the node stops', async (t) => {
  const node = await ReplicationNode.start({ nodeId: 'n1', dataDir: tempDir(t), storage: { fsync: 'no' } });
  let stopped = false;
  t.after(() => (stopped ? undefined : node.stop()));
  await node.createCollection('a', { dimension: DIM, metric: 'l2' });
  const ac = new AbortController();
  const bySignal = node.changes({ from: 'latest', signal: ac.signal });
  const waiting = bySignal.nextBatch();
  ac.abort();
  assert.equal(await waiting, null);

  const viaLoop = node.changes({ from: 'earliest' });
  const seen: string[] = [];
  for await (const event of viaLoop) {
    seen.push(event.op);
    break;
  }
  assert.deepEqual(seen, ['create_collection']);
  assert.equal(viaLoop.isClosed, true, 'break releases the cursor');

  const byStop = node.changes({ from: 'latest' });
  const loop = (async () => {
    const events: ChangeEvent[] = [];
    for await (const event of byStop) events.push(event);
    return events.length;
  })();
  await new Promise((r) => setTimeout(r, 50));
  await node.stop();
  stopped = true;
  assert.equal(await loop, 0, 'the iterator finished, no error');
  assert.throws(
    () => node.changes(),
    (err: unknown) => isVrepError(err, 'ERR_NODE_STOPPED'),
  );
});

test('bad options are refused naming the option, never ignored', async (t) => {
  const node = await startNode(t, tempDir(t));
  for (const [opts, name] of [
    [{ group: 'no spaces' }, 'group'],
    [{ group: 'g', partitionBy: 'hash' }, 'partitionBy'],
    [{ group: 'g', autoCommit: { everyMs: 1 } }, 'autoCommit.everyMs'],
    [{ group: 'g', autoCommit: { everyEvents: 0 } }, 'autoCommit.everyEvents'],
  ] as const) {
    assert.throws(
      () => node.changes(opts as never),
      (err: unknown) =>
        isVrepError(err, 'ERR_INVALID_INPUT') && (err as Error).message.startsWith(`${name}: `),
      name,
    );
  }
  for (const from of [{ term: -1, lsn: 1 }, { term: 1, lsn: 1.5 }, 'first', { term: 2, lsn: 0 }]) {
    assert.throws(
      () => node.changes({ from: from as never }),
      (err: unknown) => isVrepError(err, 'ERR_INVALID_INPUT') && /^from/.test((err as Error).message),
      JSON.stringify(from),
    );
  }
});
