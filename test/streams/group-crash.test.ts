/**
 * Issue 13, acceptance "Crashes": a `vrep serve` process (fsync always,
 * small WAL segments and snapshots, so group positions also come back from
 * snapshots) is SIGKILLed and restarted N times under write load
 * (VREP_GROUP_CRASH_CYCLES, default 5; `npm run test:streams-crash` runs
 * 50) while a consumer-group member over the /changes WebSocket handles
 * events, commits each message and reconnects after each crash. Against the
 * writer's acknowledged writes: zero gaps, and an event delivered again only
 * after the last `committed` answer received before that reconnect.
 *
 * The checker is shown to fail: a consumer that drops the first new events
 * after each reconnect (VREP_GROUP_CRASH_BROKEN=skip-new runs the main test
 * that way) is reported as gaps, and a repeat before the committed position
 * as an early duplicate.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startCli, type Started } from '../helpers/process.ts';
import { freePorts } from '../helpers/addresses.ts';
import { tempDir } from '../helpers/tmp.ts';
import {
  checkDeliveries,
  createCollection,
  GroupWsConsumer,
  HttpWriter,
  sleep,
  SKIP_NEW_EVENTS,
  type CheckResult,
  type Delivery,
  type SessionInfo,
} from './group-ws.ts';

const CYCLES = Number(process.env['VREP_GROUP_CRASH_CYCLES'] ?? 5);
const BROKEN = process.env['VREP_GROUP_CRASH_BROKEN'] === 'skip-new' ? 'skip-new' : null;
const DIM = 8;

interface CrashRun {
  check: CheckResult;
  acked: number;
  cycles: number;
  reconnects: number;
  commitsAnswered: number;
  commitsSent: number;
  commitsAt: number;
  writeFailures: number;
  elapsedMs: number;
}

async function crashRun(t: TestContext, cycles: number, broken: 'skip-new' | null): Promise<CrashRun> {
  const started = Date.now();
  const dir = tempDir(t, 'vrep-group-crash-');
  const [port] = await freePorts(1);
  const address = `127.0.0.1:${port as number}`;
  let node: Started | null = null;
  let up = false;
  const children: Started[] = [];
  t.after(() => {
    for (const c of children) c.kill('SIGKILL');
  });
  const start = async (): Promise<void> => {
    const child = startCli(['serve', '--http', address, '--data-dir', dir, '--fsync', 'always'], {
      VREP_WAL_SEGMENT_BYTES: String(256 * 1024),
      VREP_SNAPSHOT_EVERY_BYTES: String(1024 * 1024),
    });
    children.push(child);
    node = child;
    await child.waitForLine(/"msg":"vrep node serving"/, 60_000);
    up = true;
  };
  await start();
  await createCollection(address, 'c', DIM);
  const writer = new HttpWriter({
    address: () => (up ? address : null),
    collection: 'c',
    dimension: DIM,
    batch: 20,
    workers: 2,
  });
  const consumer = new GroupWsConsumer({
    address: () => (up ? address : null),
    group: 'crash',
    credit: 200,
    broken,
  });
  writer.start();
  consumer.start();
  try {
    for (let cycle = 0; cycle < cycles; cycle++) {
      // Run under load until this incarnation has delivered something, then a while more.
      const delivered = consumer.deliveries.length;
      const deadline = Date.now() + 30_000;
      while (consumer.deliveries.length === delivered && Date.now() < deadline) await sleep(20);
      await sleep(200 + Math.random() * 800);
      up = false;
      const n = node as Started | null;
      n?.kill('SIGKILL');
      await n?.exited(10_000);
      await start();
    }
    // Let the last incarnation take writes too, then drain.
    await sleep(500);
    await writer.stop();
    // A broken consumer never delivers what it dropped: wait less for it.
    await consumer.waitDelivered(writer.acked, broken ? 5000 : 60_000).catch(() => undefined);
  } finally {
    await writer.stop();
    await consumer.stop();
    const n = node as Started | null;
    n?.kill('SIGKILL');
  }
  return {
    check: checkDeliveries(writer.acked, consumer.deliveries, consumer.sessions),
    acked: writer.acked.length,
    cycles,
    reconnects: consumer.sessions.length - 1,
    commitsAnswered: consumer.commitsAnswered,
    commitsSent: consumer.commitsSent,
    commitsAt: consumer.commitsAt,
    writeFailures: writer.failures,
    elapsedMs: Date.now() - started,
  };
}

function summary(r: CrashRun): string {
  return (
    `${r.cycles} SIGKILL cycles in ${(r.elapsedMs / 1000).toFixed(1)} s: ${r.acked} writes acknowledged, ` +
    `${r.check.delivered} events delivered (${r.check.duplicates} duplicates, ${r.check.earlyDuplicates.length} ` +
    `before the committed position), ${r.check.gaps.length} gaps; ${r.reconnects} reconnects; ` +
    `${r.commitsAnswered} commits answered (${r.commitsSent} sent as "sent", ${r.commitsAt} as a position); ` +
    `${r.writeFailures} write attempts not acknowledged`
  );
}

test(`group crash: ${CYCLES} SIGKILL/restart cycles under writes, a committing group member over /changes: no gap, duplicates only after the committed position`, async (t) => {
  const r = await crashRun(t, CYCLES, BROKEN);
  t.diagnostic(summary(r));
  assert.ok(r.acked > 0 && r.reconnects >= CYCLES, `progress and a reconnect per crash: ${summary(r)}`);
  assert.deepEqual(r.check.gaps.slice(0, 10), [], `acknowledged writes never delivered: ${summary(r)}`);
  assert.deepEqual(
    r.check.earlyDuplicates.slice(0, 10),
    [],
    `repeats before the committed position: ${summary(r)}`,
  );
  assert.ok(r.commitsAnswered > 0, 'commits were answered');
});

test('group crash checker: a consumer that drops the first new events after each reconnect is caught as gaps', async (t) => {
  const r = await crashRun(t, 2, 'skip-new');
  t.diagnostic(summary(r));
  assert.ok(r.reconnects >= 2);
  // At most the two writers' batches in flight at a crash (40 events) are dropped without being acknowledged.
  assert.ok(
    r.check.gaps.length >= r.reconnects * (SKIP_NEW_EVENTS - 40),
    `the checker reports the dropped events as gaps (${r.check.gaps.length}): ${summary(r)}`,
  );
});

test('group crash checker: a repeat at or before the committed position is reported; one after it is not', () => {
  const pos = (lsn: number, index: number): Delivery['pos'] => ({ term: 1, lsn, index });
  const deliveries: Delivery[] = [
    { key: 'a', pos: pos(2, 0), session: 0 },
    { key: 'b', pos: pos(2, 1), session: 0 },
    { key: 'c', pos: pos(3, 0), session: 0 },
    // Session 1 resumed after 1:2:0 (committed), so b and c may come again; a may not.
    { key: 'a', pos: pos(2, 0), session: 1 },
    { key: 'b', pos: pos(2, 1), session: 1 },
    { key: 'c', pos: pos(3, 0), session: 1 },
  ];
  const sessions: SessionInfo[] = [
    { committedBefore: null, events: 3, end: 'close 1006' },
    { committedBefore: { term: 1, lsn: 2, index: 0 }, events: 3, end: null },
  ];
  const r = checkDeliveries(['a', 'b', 'c', 'd'], deliveries, sessions);
  assert.deepEqual(r.gaps, ['d']);
  assert.equal(r.duplicates, 3);
  assert.deepEqual(
    r.earlyDuplicates.map((d) => d.key),
    ['a'],
  );
  // A whole-record commit (no index) covers every point of that record.
  const whole = checkDeliveries(['a', 'b', 'c'], deliveries, [
    sessions[0] as SessionInfo,
    { committedBefore: { term: 1, lsn: 2, index: null }, events: 3, end: null },
  ]);
  assert.deepEqual(
    whole.earlyDuplicates.map((d) => d.key),
    ['a', 'b'],
  );
});
