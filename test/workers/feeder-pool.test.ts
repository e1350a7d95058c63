import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { FeederPool, FeederPoolLimits } from '../../src/workers/feeder-pool.ts';
import {
  decodeRecordsFrame,
  encodeRecordsPrefix,
  RECORDS_FRAME_HEADROOM,
  RECORDS_HEADER_BYTES,
} from '../../src/replication/records-payload.ts';
import {
  decodeFrame,
  encodeFrame,
  encodeFrameInPlace,
  FrameFlags,
  FrameType,
} from '../../src/transport/frame.ts';
import { batchCodecLimits } from '../../src/native/batch-codec.ts';
import { ErrorCodes, isVrepError } from '../../src/errors.ts';
import { repoRoot, startNode } from '../helpers/process.ts';
import { deleteRecord, readOnMainThread, ringWith, upsertRecord } from './records.ts';

const ON = { enabled: true, level: 1 } as const;
const OFF = { enabled: false, level: 1 } as const;
const MAX = FeederPoolLimits.maxBytes;

// One ring of dim-64 upserts (~9 KiB each) and one pool over it, shared by
// the tests that only read: threads start once.
const records = Array.from({ length: 40 }, (_, i) => upsertRecord(i + 1, 32, 64));
const ring = ringWith(records);
const pool = new FeederPool(ring.handle, { threads: 1 });
after(() => pool.close());

function decode(encoded: { payload: Uint8Array; flags: number }, expectedLsn: number): Uint8Array[] {
  const prefix = encodeRecordsPrefix(1, 0, 0);
  const frame = new Uint8Array(prefix.length + encoded.payload.length);
  frame.set(prefix);
  frame.set(encoded.payload, prefix.length);
  const decoded = decodeRecordsFrame(frame, encoded.flags, MAX);
  assert.equal(decoded.firstLsn, expectedLsn);
  return decoded.records;
}

test('a payload from the pool decodes to exactly the ring records, compressed or not', async () => {
  const compressed = await pool.encodeFromRing(1, 40, MAX, ON);
  assert.ok(compressed !== null);
  assert.equal(compressed.flags, FrameFlags.Compressed);
  assert.equal(compressed.firstLsn, 1);
  assert.equal(compressed.count, 40);
  assert.ok(compressed.payload.length < compressed.rawBytes, 'compression saved nothing');
  // Shared by the worker, not transferred (see feeder-task.ts); the view covers it after the
  // headroom a frame header is built in (encodeFrameInPlace).
  assert.ok(compressed.payload.buffer instanceof SharedArrayBuffer);
  assert.equal(compressed.headroom, RECORDS_FRAME_HEADROOM);
  assert.equal(compressed.payload.byteOffset, RECORDS_FRAME_HEADROOM);
  assert.equal(compressed.payload.byteLength, compressed.payload.buffer.byteLength - RECORDS_FRAME_HEADROOM);
  assert.deepEqual(decode(compressed, 1), readOnMainThread(ring, 1, 40));

  const plain = await pool.encodeFromRing(11, 30, MAX, OFF);
  assert.ok(plain !== null);
  assert.equal(plain.flags, 0);
  assert.equal(plain.count, 20);
  assert.equal(plain.rawBytes, plain.payload.length - RECORDS_HEADER_BYTES);
  assert.deepEqual(decode(plain, 11), records.slice(10, 30));
});

test('a shared-memory payload goes through the frame codec like any other', async () => {
  const encoded = await pool.encodeFromRing(3, 9, MAX, ON);
  assert.ok(encoded !== null);
  const frame = decodeFrame(encodeFrame(FrameType.Records, encoded.flags, 7, encoded.payload), {
    maxFrameBytes: MAX * 2,
    expectedSeq: 7,
  });
  assert.equal(frame.flags, encoded.flags);
  assert.deepEqual(decode(frame, 3), records.slice(2, 9));
  // Built in the headroom, as a link sends it: the same bytes, and the payload is left as it was.
  const before = encoded.payload.slice();
  const prefix = encodeRecordsPrefix(2, 3, 4);
  const copied = encodeFrame(FrameType.Records, encoded.flags, 8, encoded.payload, prefix, encoded.crc);
  const inPlace = encodeFrameInPlace(
    FrameType.Records,
    encoded.flags,
    8,
    encoded.payload,
    prefix,
    encoded.crc,
  );
  assert.ok(inPlace.buffer === encoded.payload.buffer, 'built over the payload, not copied');
  assert.deepEqual(new Uint8Array(inPlace), copied);
  assert.deepEqual(encoded.payload, before);
});

test('maxBytes bounds a batch; a first record larger than maxBytes goes alone', async () => {
  // Records 5, 6, 7 (LSNs) and half of record 8.
  const threeBytes = records[4]!.length + records[5]!.length + records[6]!.length;
  const three = await pool.encodeFromRing(5, 40, threeBytes + Math.floor(records[7]!.length / 2), OFF);
  assert.equal(three?.count, 3);
  assert.deepEqual(decode(three!, 5), records.slice(4, 7));

  const exact = await pool.encodeFromRing(5, 40, threeBytes, OFF);
  assert.equal(exact?.count, 3);
  assert.equal(exact?.rawBytes, threeBytes);

  const one = await pool.encodeFromRing(7, 40, 10, ON);
  assert.equal(one?.count, 1);
  assert.deepEqual(decode(one!, 7), [records[6]]);
});

test('toLsn past the newest record is clipped to it', async () => {
  const all = await pool.encodeFromRing(38, Number.MAX_SAFE_INTEGER, MAX, OFF);
  assert.equal(all?.count, 3);
  assert.deepEqual(decode(all!, 38), records.slice(37));
});

test('more records than one native read returns are gathered into one payload', async (t) => {
  const small = Array.from({ length: 10_000 }, (_, i) => deleteRecord(i + 1));
  const many = ringWith(small);
  const p = new FeederPool(many.handle);
  t.after(() => p.close());
  const encoded = await p.encodeFromRing(2, 10_000, MAX, ON);
  assert.equal(encoded?.count, 9_999);
  assert.deepEqual(decode(encoded!, 2), small.slice(1));
});

test('an LSN the ring no longer holds gives null; one past the newest is ERR_LSN_NOT_YET_WRITTEN', async (t) => {
  const small = ringWith(
    Array.from({ length: 40 }, (_, i) => deleteRecord(i + 1)),
    { capacityRecords: 16 },
  );
  assert.equal(small.firstLsn(), 25);
  const p = new FeederPool(small.handle);
  t.after(() => p.close());
  assert.equal(await p.encodeFromRing(1, 40, MAX, OFF), null);
  assert.equal(await p.encodeFromRing(24, 24, MAX, OFF), null);
  assert.equal((await p.encodeFromRing(25, 40, MAX, OFF))?.count, 16);
  await assert.rejects(p.encodeFromRing(41, 50, MAX, OFF), (err: unknown) => {
    assert.ok(isVrepError(err, ErrorCodes.LsnNotYetWritten), String(err));
    assert.equal(
      err.message,
      'FeederPool.encodeFromRing: RingReader.read: LSN 41 is not written yet (last is 40)',
    );
    return true;
  });
});

test('encodeRecords (the WAL fallback) encodes records the caller has, leaving them usable', async () => {
  // As a WAL read gives them: views into one larger buffer.
  const big = Array.from({ length: 8 }, (_, i) => upsertRecord(100 + i, 64, 768));
  const backing = new Uint8Array(big.reduce((n, r) => n + r.length, 0) + 64);
  const views: Uint8Array[] = [];
  let at = 64;
  for (const r of big) {
    backing.set(r, at);
    views.push(backing.subarray(at, at + r.length));
    at += r.length;
  }
  const encoded = await pool.encodeRecords(views, ON);
  assert.equal(encoded.flags, FrameFlags.Compressed);
  assert.equal(encoded.firstLsn, 100);
  assert.equal(encoded.count, 8);
  assert.deepEqual(decode(encoded, 100), big);
  // Copied, not transferred: the caller's buffer is intact.
  assert.equal(backing.byteLength, big.reduce((n, r) => n + r.length, 0) + 64);
  assert.deepEqual(views, big);

  const plain = await pool.encodeRecords([records[0]!], OFF);
  assert.deepEqual(decode(plain, 1), [records[0]]);
});

test('tasks beyond threads + maxQueue are refused with ERR_OVERLOADED, and admitted again once settled', async (t) => {
  const p = new FeederPool(ring.handle, { threads: 1, maxQueue: 2 });
  t.after(() => p.close());
  // Admission is decided when the call is made, so this does not depend on timing.
  const admitted = [p.encodeRecords(records.slice(0, 5), ON), p.encodeFromRing(1, 40, MAX, ON)];
  admitted.push(p.encodeFromRing(2, 40, MAX, ON));
  assert.equal(p.inFlight, 3);
  await assert.rejects(p.encodeFromRing(1, 1, MAX, ON), {
    code: ErrorCodes.Overloaded,
    message: 'FeederPool.encodeFromRing: 3 tasks in flight, the limit is 3 (threads + maxQueue); retry later',
  });
  await assert.rejects(p.encodeRecords([records[0]!], ON), { code: ErrorCodes.Overloaded });
  assert.equal(p.inFlight, 3);
  const results = await Promise.all(admitted);
  assert.deepEqual(
    results.map((r) => r?.count),
    [5, 40, 39],
  );
  assert.equal(p.inFlight, 0);
  assert.equal((await p.encodeFromRing(1, 1, MAX, ON))?.count, 1);
});

test('bad arguments are refused with messages naming the argument', async () => {
  const fromRing = 'FeederPool.encodeFromRing';
  const { minLevel, maxLevel } = batchCodecLimits;
  const cases: [() => Promise<unknown>, Error][] = [
    [
      () => pool.encodeFromRing(0, 1, MAX, ON),
      new RangeError(`${fromRing}(fromLsn): 0 is out of range [1, ${Number.MAX_SAFE_INTEGER}]`),
    ],
    [
      () => pool.encodeFromRing(5, 4, MAX, ON),
      new RangeError(`${fromRing}(toLsn): 4 is out of range [5, ${Number.MAX_SAFE_INTEGER}]`),
    ],
    [
      () => pool.encodeFromRing(1.5, 4, MAX, ON),
      new TypeError(`${fromRing}(fromLsn): expected an integer, got number 1.5`),
    ],
    [
      () => pool.encodeFromRing(1, 4, MAX + 1, ON),
      new RangeError(`${fromRing}(maxBytes): ${MAX + 1} is out of range [1, ${MAX}]`),
    ],
    [
      () => pool.encodeFromRing(1, 4, 0, ON),
      new RangeError(`${fromRing}(maxBytes): 0 is out of range [1, ${MAX}]`),
    ],
    [
      () => pool.encodeFromRing(1, 4, MAX, null as never),
      new TypeError(`${fromRing}(compression): expected { enabled, level }, got null`),
    ],
    [
      () => pool.encodeFromRing(1, 4, MAX, { enabled: 'yes', level: 1 } as never),
      new TypeError(`${fromRing}(compression.enabled): expected a boolean, got string`),
    ],
    [
      () => pool.encodeFromRing(1, 4, MAX, { enabled: true, level: maxLevel + 1 }),
      new RangeError(
        `${fromRing}(compression.level): ${maxLevel + 1} is out of range [${minLevel}, ${maxLevel}]`,
      ),
    ],
    [() => pool.encodeRecords([], ON), new RangeError('FeederPool.encodeRecords(records): no records')],
    [
      () => pool.encodeRecords('abc' as never, ON),
      new TypeError('FeederPool.encodeRecords(records): expected an array, got string'),
    ],
    [
      () => pool.encodeRecords([records[0]!, new Float32Array(4) as never], ON),
      new TypeError(
        'FeederPool.encodeRecords(records[1]): expected a Uint8Array, got Float32Array(16 bytes)',
      ),
    ],
    [
      // Two records over the limit together: refused before anything is copied.
      () => pool.encodeRecords([new Uint8Array(MAX / 2 + 1), new Uint8Array(MAX / 2)], ON),
      new RangeError(
        `FeederPool.encodeRecords(records): ${MAX + 1} bytes in total, over the limit of ${MAX}`,
      ),
    ],
  ];
  for (const [call, expected] of cases) {
    await assert.rejects(call(), { name: expected.name, message: expected.message });
  }
  // Refused calls never took a slot.
  assert.equal(pool.inFlight, 0);

  const ctor: [() => unknown, Error][] = [
    [
      () => new FeederPool({} as never),
      new TypeError('RingReader(handle): expected { buffer: SharedArrayBuffer }, got Object'),
    ],
    [
      () => new FeederPool(ring.handle, { threads: 0 }),
      new RangeError('FeederPool(options.threads): 0 is out of range [1, 64]'),
    ],
    [
      () => new FeederPool(ring.handle, { maxQueue: 1.5 }),
      new TypeError('FeederPool(options.maxQueue): expected an integer, got number 1.5'),
    ],
    [
      () => new FeederPool(ring.handle, null as never),
      new TypeError('FeederPool(options): expected an object, got null'),
    ],
  ];
  for (const [call, expected] of ctor)
    assert.throws(call, { name: expected.name, message: expected.message });
});

test('close() settles every task (result or ERR_NODE_STOPPED), refuses new ones, and is idempotent', async () => {
  const p = new FeederPool(ring.handle, { threads: 1, maxQueue: 4 });
  // Observed at once: some of these reject when the pool closes.
  const settled = Promise.allSettled([1, 2, 3, 4].map((from) => p.encodeFromRing(from, 40, MAX, ON)));
  const closing = p.close();
  await assert.rejects(p.encodeFromRing(1, 1, MAX, ON), {
    code: ErrorCodes.NodeStopped,
    message: 'FeederPool.encodeFromRing: the pool is closed',
  });
  await assert.rejects(p.encodeRecords([records[0]!], ON), {
    code: ErrorCodes.NodeStopped,
    message: 'FeederPool.encodeRecords: the pool is closed',
  });
  await closing;
  await p.close();
  for (const outcome of await settled) {
    if (outcome.status === 'fulfilled') assert.ok(outcome.value !== null && outcome.value.count > 0);
    else assert.ok(isVrepError(outcome.reason, ErrorCodes.NodeStopped), String(outcome.reason));
  }
  assert.equal(p.inFlight, 0);
});

test('close() ends the worker threads, and the process then exits by itself', async () => {
  const child = startNode(['--import', 'tsx', path.join(repoRoot, 'test', 'workers', 'pool-exit-child.ts')]);
  try {
    // The child never calls process.exit: it ends only when nothing is left running.
    assert.equal(await child.exited(30_000), 0, child.stderr());
    assert.match(child.stdout(), /^encoded 20 records; closed$/m);
    const threads = /^threads before (\S+) during (\S+) after (\S+)$/m.exec(child.stdout());
    assert.ok(threads, child.stdout());
    if (process.platform === 'linux') {
      // Two worker threads were running, and close() ended them.
      assert.ok(Number(threads[2]) >= Number(threads[1]) + 2, threads[0]);
      assert.equal(threads[3], threads[1], threads[0]);
    }
  } finally {
    child.kill();
  }
});
