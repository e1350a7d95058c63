import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import { Piscina } from 'piscina';
import { RingLog } from '../../src/native/ring-log.ts';
import {
  CONTROL_DONE,
  CONTROL_STARTED,
  CONTROL_WAKE,
  CONTROL_WORDS,
  fillRecord,
  recordIsIntact,
  recordLength,
  type ReaderReport,
  type ReaderTask,
} from './ring-reader-worker.ts';

const long = process.env['VREP_TEST_SCALE'] === 'long';
const TOTAL_RECORDS = long ? 20_000_000 : 2_000_000;
const READERS = 3;
const BATCH = 64;

test('the record generator and checker agree, and the checker catches a flipped byte', () => {
  const buf = new Uint8Array(64);
  for (const lsn of [1, 52, 53, 65_536, 2 ** 33 + 7]) {
    const length = fillRecord(lsn, buf, 0);
    assert.equal(length, recordLength(lsn));
    assert.ok(recordIsIntact(lsn, buf, 0, length));
    assert.ok(!recordIsIntact(lsn + 1, buf, 0, length));
    buf[length - 1]! ^= 1;
    assert.ok(!recordIsIntact(lsn, buf, 0, length));
  }
});

test(`1 writer, ${READERS} Piscina readers over ${TOTAL_RECORDS} records: every accepted record is intact`, async () => {
  // Small enough to wrap thousands of times: ~34 B records, 16 KiB / 512 records.
  const ring = new RingLog({ capacityBytes: 16 * 1024, capacityRecords: 512 });
  const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
  const words = new Int32Array(control);
  const pool = new Piscina({
    filename: new URL('./ring-reader-worker.ts', import.meta.url).href,
    minThreads: READERS,
    maxThreads: READERS,
    execArgv: ['--import', 'tsx'],
  });
  try {
    const tasks: Promise<ReaderReport>[] = [];
    for (let i = 0; i < READERS; i++) {
      const task: ReaderTask = {
        // The handle is structured-cloned; its SharedArrayBuffer is shared.
        handle: ring.handle,
        control,
        restartAt: i === 0 ? 'oldest' : 'newest',
        maxRecords: 16 << i,
        outBytes: 8192,
      };
      tasks.push(pool.run(task) as Promise<ReaderReport>);
    }
    // Observed from now on, so a reader failing early is reported, not unhandled.
    const settled = Promise.allSettled(tasks);
    // Start writing once every reader is attached, so they follow the run.
    const startedBy = Date.now() + 60_000;
    while (Atomics.load(words, CONTROL_STARTED) < READERS) {
      assert.ok(Date.now() < startedBy, 'readers did not start');
      await sleep(5);
    }
    const data = new Uint8Array(BATCH * 64);
    const lengths = new Uint32Array(BATCH);
    let next = 1;
    while (next <= TOTAL_RECORDS) {
      const count = Math.min(BATCH, TOTAL_RECORDS - next + 1);
      let at = 0;
      for (let i = 0; i < count; i++) {
        lengths[i] = fillRecord(next + i, data, at);
        at += lengths[i]!;
      }
      assert.equal(ring.appendBatch(data.subarray(0, at), lengths.subarray(0, count)), next);
      next += count;
      // Let the readers' messages and timers breathe now and then.
      if ((next & 0x3fff) < BATCH) await yieldToLoop();
    }
    Atomics.store(words, CONTROL_DONE, 1);
    Atomics.notify(words, CONTROL_WAKE);
    const reports: ReaderReport[] = [];
    for (const outcome of await settled) {
      if (outcome.status === 'rejected') throw outcome.reason;
      reports.push(outcome.value);
    }
    let accepted = 0;
    let evicted = 0;
    for (const r of reports) {
      assert.equal(r.corrupt, 0, `reader accepted a corrupt record at LSN ${r.firstCorruptLsn}`);
      // Each reader followed the writer to the very end.
      assert.equal(r.lastLsn, TOTAL_RECORDS);
      accepted += r.accepted;
      evicted += r.evicted;
    }
    // The detector was exercised: readers fell behind and were told so, and
    // they also accepted (and verified) records.
    assert.ok(accepted > 0, 'no records accepted');
    assert.ok(evicted > 0, 'no evictions observed');
    console.log(`# ring threads: ${JSON.stringify(reports)}`);
  } finally {
    await pool.destroy();
  }
});
