/**
 * Issue 13, acceptance "Slow consumer", on `vrep serve` processes:
 *
 * - A group member over /changes stops crediting for
 *   VREP_SLOW_CONSUMER_SECONDS (5 here; `npm run test:streams-slow` runs 30)
 *   while writes go on. The writes overwrite the same 500 points, so the
 *   node's own state does not grow with them and its RSS (VmRSS) must not
 *   either: what is written behind the stopped member stays on disk (the WAL
 *   it pins), not in the node's memory. Afterwards the member catches up
 *   with no gap against the acknowledged writes.
 * - A group past streams.max_retained_bytes (2 MiB, 64 KiB WAL segments and
 *   log, snapshots every 1 MiB) is lagged out: the status says so and the
 *   upgrade is answered 410 ERR_POSITION_EVICTED naming the group.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startCli, type Started } from '../helpers/process.ts';
import { until } from '../helpers/node-proc.ts';
import { freePorts } from '../helpers/addresses.ts';
import { tempDir } from '../helpers/tmp.ts';
import {
  checkDeliveries,
  createCollection,
  getJson,
  GroupWsConsumer,
  HttpWriter,
  rssBytes,
  sleep,
  type StatusWire,
} from './group-ws.ts';

const STOPPED_SECONDS = Number(process.env['VREP_SLOW_CONSUMER_SECONDS'] ?? 5);
const DIM = 8;
const MiB = 1024 * 1024;

async function serve(
  t: TestContext,
  env: Record<string, string>,
): Promise<{ node: Started; address: string }> {
  const [port] = await freePorts(1);
  const address = `127.0.0.1:${port as number}`;
  const node = startCli(
    ['serve', '--http', address, '--data-dir', tempDir(t, 'vrep-slow-'), '--fsync', 'no'],
    env,
  );
  t.after(() => node.kill('SIGKILL'));
  await node.waitForLine(/"msg":"vrep node serving"/, 60_000);
  return { node, address };
}

const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;

test(`slow consumer: a group member that stops crediting for ${STOPPED_SECONDS} s while writes go on costs the node no memory for what it did not read, and catches up with no gap`, async (t) => {
  const startedMs = Date.now();
  const { node, address } = await serve(t, { VREP_LOG_BYTES: String(16 * MiB) });
  const pid = node.child.pid as number;
  await createCollection(address, 'c', DIM);
  const writer = new HttpWriter({
    address: () => address,
    collection: 'c',
    dimension: DIM,
    batch: 50,
    workers: 2,
    padBytes: 4000,
    idSpace: 500,
  });
  const consumer = new GroupWsConsumer({ address: () => address, group: 'slow', credit: 500 });
  writer.start();
  consumer.start();
  try {
    // Warm up: the node's state, its ring and heap at their working size, the member keeping up.
    await sleep(3000);
    const rssBefore = rssBytes(pid);
    consumer.pause();
    const pausedAtBytes = writer.ackedBytes;
    const pausedAtDelivered = consumer.deliveries.length;
    let rssMax = rssBefore;
    const samples: number[] = [];
    const stopAt = Date.now() + STOPPED_SECONDS * 1000;
    while (Date.now() < stopAt) {
      await sleep(250);
      const rss = rssBytes(pid);
      samples.push(rss);
      rssMax = Math.max(rssMax, rss);
    }
    const behindBytes = writer.ackedBytes - pausedAtBytes;
    const deliveredWhileStopped = consumer.deliveries.length - pausedAtDelivered;
    await writer.stop();
    const rssStopped = rssBytes(pid);
    const catchUpStart = Date.now();
    consumer.resume();
    await consumer.waitDelivered(writer.acked, 300_000);
    const catchUpMs = Date.now() - catchUpStart;
    const rssAfter = rssBytes(pid);
    const check = checkDeliveries(writer.acked, consumer.deliveries, consumer.sessions);
    const summary =
      `member stopped ${STOPPED_SECONDS} s while ${mib(behindBytes)} of writes (JSON bodies) were acknowledged behind it ` +
      `(${deliveredWhileStopped} events delivered meanwhile, within its last credit); node RSS before ${mib(rssBefore)}, ` +
      `max while stopped ${mib(rssMax)} (+${mib(rssMax - rssBefore)}), at the end of the stop ${mib(rssStopped)}, ` +
      `after catching up ${mib(rssAfter)}; caught up in ${(catchUpMs / 1000).toFixed(1)} s; ${writer.acked.length} writes ` +
      `acknowledged, ${check.delivered} delivered, ${check.duplicates} duplicates, ${check.gaps.length} gaps; ` +
      `${((Date.now() - startedMs) / 1000).toFixed(1)} s`;
    t.diagnostic(summary);
    assert.ok(behindBytes > 64 * MiB, `enough written behind the member to see it in RSS: ${summary}`);
    assert.ok(deliveredWhileStopped <= 500, `nothing past its credit while stopped: ${summary}`);
    // Generous: a quarter of what was written behind it, plus 96 MiB of heap and allocator slack.
    assert.ok(
      rssMax - rssBefore < 96 * MiB + behindBytes / 4,
      `RSS grew with the bytes written behind the stopped member: ${summary}`,
    );
    assert.deepEqual(check.gaps.slice(0, 10), [], summary);
    assert.deepEqual(check.earlyDuplicates.slice(0, 10), [], summary);
  } finally {
    await writer.stop();
    await consumer.stop();
  }
});

test('retention: a group past streams.max_retained_bytes is lagged out in the status and refused with 410 ERR_POSITION_EVICTED naming it', async (t) => {
  const { address } = await serve(t, {
    VREP_STREAMS_MAX_RETAINED_BYTES: String(2 * MiB),
    VREP_WAL_SEGMENT_BYTES: '65536',
    VREP_LOG_BYTES: '65536',
    VREP_SNAPSHOT_EVERY_BYTES: String(MiB),
  });
  await createCollection(address, 'c', DIM);
  const writer = new HttpWriter({
    address: () => address,
    collection: 'c',
    dimension: DIM,
    batch: 20,
    padBytes: 2000,
  });
  writer.start();
  // The group reads a little, commits it, and goes away.
  const member = new GroupWsConsumer({ address: () => address, group: 'lag', credit: 50 });
  member.start();
  await until(async () => member.commitsAnswered > 0, 30_000, 'a commit of group lag');
  await member.stop();
  const status = (): Promise<StatusWire> => getJson<StatusWire>(`http://${address}/replication/status`);
  const lag = await status().then((s) => s.groups.find((g) => g.name === 'lag'));
  assert.equal(lag?.lagged_out, false, 'within the limit at first');
  // Writes go on past the limit; an automatic snapshot removes the WAL past the group's position.
  const lagged = await until(
    async () => {
      const s = await status();
      const g = s.groups.find((x) => x.name === 'lag');
      return g?.lagged_out === true ? { s, g } : false;
    },
    60_000,
    'group lag lagged out',
  );
  await writer.stop();
  t.diagnostic(
    `${writer.acked.length} writes (${mib(writer.ackedBytes)}); group lag at ${JSON.stringify(lagged.g.position)}, ` +
      `retention ${JSON.stringify(lagged.s.retention)}`,
  );
  assert.equal(lagged.s.retention.max_retained_bytes, 2 * MiB);
  // The next record the group needs: its position's own when only part of it was handled (index set).
  const p = lagged.g.position;
  assert.ok(p !== null, 'the group has a position');
  const next = p.index === null ? p.lsn + 1 : p.lsn;
  assert.ok(next < lagged.s.retention.first_lsn, `the log no longer holds LSN ${next}`);
  const refused = new GroupWsConsumer({ address: () => address, group: 'lag' });
  refused.start();
  await until(async () => refused.refusals.length > 0, 30_000, 'the upgrade refused');
  await refused.stop();
  const r = refused.refusals[0];
  assert.equal(r?.status, 410, JSON.stringify(r));
  assert.equal(r?.code, 'ERR_POSITION_EVICTED');
  assert.match(r?.message ?? '', /consumer group lag lagged out/);
  assert.match(r?.message ?? '', /earliest position held is \d+:\d+/);
  assert.equal(refused.sessions.length, 0, 'never upgraded');
});
