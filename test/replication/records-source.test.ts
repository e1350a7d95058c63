import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Wal } from '../../src/log/wal.ts';
import { RecordLog } from '../../src/log/record-log.ts';
import { decodeRecord, encodeRecordUnsealed, Op, sealRecord, type LogRecord } from '../../src/log/record.ts';
import { RecordsSource } from '../../src/replication/records-source.ts';
import {
  decodeRecordsFrame,
  encodeRecordsPrefix,
  RECORD_FRONT_BYTES,
  reserveFront,
  type EncodedRecords,
} from '../../src/replication/records-payload.ts';
import { crc32c } from '../../src/native/crc32c.ts';
import { tempDir } from '../helpers/tmp.ts';

async function openLog(t: TestContext): Promise<RecordLog> {
  const { wal } = await Wal.open(path.join(tempDir(t), 'wal'), { fsync: 'no' }, 1, 0, () => undefined);
  const log = new RecordLog(wal, { ringCapacityBytes: 1 << 20, ringCapacityRecords: 1024 });
  t.after(() => wal.close());
  return log;
}

/** A sealed delete record of `ids` at (lsn, term); `front`: encoded with room in front, reserved. */
function record(lsn: number, term: number, ids: string[], front = false): Uint8Array {
  const r = { lsn: 0, term: 0, hlcMs: 1, hlcLogical: 0, origin: 'n1', collection: 'c', op: Op.Delete, ids };
  const bytes = sealRecord(encodeRecordUnsealed(r as LogRecord, front ? RECORD_FRONT_BYTES : 0), lsn, term);
  return front ? reserveFront(bytes) : bytes;
}

/** What a follower decodes from the payload: each record's (lsn, term, ids). */
function received(e: EncodedRecords | null): { lsn: number; term: number; ids: string[] }[] {
  assert.ok(e !== null);
  assert.equal(e.crc, crc32c(e.payload), 'the payload checksum given is its bytes');
  const prefix = encodeRecordsPrefix(1, 0, 0);
  const frame = new Uint8Array(prefix.length + e.payload.length);
  frame.set(prefix);
  frame.set(e.payload, prefix.length);
  return decodeRecordsFrame(frame, e.flags, 1 << 20).records.map((bytes) => {
    const r = decodeRecord(bytes);
    return { lsn: r.lsn, term: r.term, ids: r.op === Op.Delete ? r.ids : [] };
  });
}

const off = { enabled: false, level: 1 };

test('a payload made before the log was cut is not sent after it: the LSN holds another record now', async (t) => {
  const log = await openLog(t);
  const source = new RecordsSource(() => log, null, off);
  await log.append([record(1, 1, ['a'])]);
  await log.append([record(2, 1, ['old'])]);
  assert.deepEqual(received(await source.next(2, 2, false)), [{ lsn: 2, term: 1, ids: ['old'] }]);
  // A new leader's log replaces LSN 2 here; this node leads again and a follower asks for 2.
  await log.truncateAfter(1);
  await log.append([record(2, 3, ['new'])]);
  assert.deepEqual(received(await source.next(2, 2, false)), [{ lsn: 2, term: 3, ids: ['new'] }]);
});

test("a leader's record is made into its payload in place, before the feeders ask, and shared with them", async (t) => {
  const log = await openLog(t);
  const source = new RecordsSource(() => log, null, off);
  const bytes = record(1, 1, ['x', 'y'], true);
  await log.append([bytes]);
  source.prepare([bytes]);
  const first = await source.next(1, 1, false);
  assert.ok(first !== null);
  assert.equal(first.payload.buffer, bytes.buffer, 'the payload is a view around the record, not a copy');
  assert.deepEqual(received(first), [{ lsn: 1, term: 1, ids: ['x', 'y'] }]);
  // A second feeder asking for more gets the same payload (a shorter frame; it asks again for the rest).
  await log.append([record(2, 1, ['z'])]);
  assert.equal(await source.next(1, 2, false), first);
  // Without room reserved in front, the payload is a copy.
  const plain = record(3, 1, ['w']);
  await log.append([plain]);
  source.prepare([plain]);
  const copied = await source.next(3, 3, false);
  assert.ok(copied !== null);
  assert.notEqual(copied.payload.buffer, plain.buffer);
  assert.deepEqual(received(copied), [{ lsn: 3, term: 1, ids: ['w'] }]);
});

test('a payload prepared past what a feeder may send is not sent to it', async (t) => {
  const log = await openLog(t);
  const source = new RecordsSource(() => log, null, off);
  const batch = [record(1, 1, ['a']), record(2, 1, ['b'])];
  await log.append(batch);
  source.prepare(batch);
  // Only LSN 1 is durable (or committed) so far: the frame must stop there.
  assert.deepEqual(received(await source.next(1, 1, false)), [{ lsn: 1, term: 1, ids: ['a'] }]);
  assert.deepEqual(
    received(await source.next(1, 2, false)).map((r) => r.lsn),
    [1],
    'the payload made for the shorter request serves the longer one',
  );
});
