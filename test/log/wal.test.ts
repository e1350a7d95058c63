import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { Wal, type FsyncPolicy } from '../../src/log/wal.ts';
import { encodeRecord, Op, recordLsn } from '../../src/log/record.ts';
import { isVrepError } from '../../src/errors.ts';
import { crc32c } from '../../src/native/crc32c.ts';
import { scale, tempDir } from '../helpers/tmp.ts';
import { smallDisk, type SmallDisk } from '../helpers/small-disk.ts';

function rec(lsn: number, points = 1 + (lsn % 5), dim = 8): Uint8Array {
  const ids = Array.from({ length: points }, (_, i) => `p${lsn}-${i}`);
  const vectors = new Float32Array(points * dim).map((_, i) => lsn + i / 1000);
  return encodeRecord({
    lsn,
    term: 1,
    hlcMs: lsn,
    hlcLogical: 0,
    origin: 'n1',
    collection: 'c',
    op: Op.Upsert,
    dimension: dim,
    ids,
    vectors,
    payloads: ids.map((id) => new TextEncoder().encode(JSON.stringify({ id }))),
  });
}

async function openCollect(
  dir: string,
  opts: { fsync?: FsyncPolicy; segmentBytes?: number } = {},
  afterLsn = 0,
) {
  const seen: number[] = [];
  const warnings: Record<string, unknown>[] = [];
  const { wal, report } = await Wal.open(
    dir,
    {
      fsync: opts.fsync ?? 'no',
      ...(opts.segmentBytes ? { segmentBytes: opts.segmentBytes } : {}),
      warn: (f) => warnings.push(f),
    },
    1,
    afterLsn,
    (r, lsn) => {
      assert.equal(recordLsn(r), lsn);
      seen.push(lsn);
    },
  );
  return { wal, report, seen, warnings };
}

async function writeN(dir: string, n: number, segmentBytes = 4096, fsync: FsyncPolicy = 'no'): Promise<void> {
  const { wal } = await openCollect(dir, { fsync, segmentBytes });
  const all: Promise<void>[] = [];
  for (let lsn = 1; lsn <= n; lsn += 3) {
    all.push(wal.append([lsn, lsn + 1, lsn + 2].filter((l) => l <= n).map((l) => rec(l))));
  }
  await Promise.all(all);
  await wal.close();
}

function segments(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.startsWith('wal-'))
    .sort()
    .map((n) => path.join(dir, n));
}

for (const fsync of ['always', 'everysec', 'no'] as const) {
  test(`WAL (${fsync}): appends survive reopen across segment rotation, in order`, async (t) => {
    const dir = tempDir(t);
    await writeN(dir, 200, 4096, fsync);
    assert.ok(segments(dir).length > 3, 'rotation happened');
    const { wal, seen, report } = await openCollect(dir);
    assert.deepEqual(
      seen,
      Array.from({ length: 200 }, (_, i) => i + 1),
    );
    assert.equal(report.truncated, null);
    assert.equal(wal.lastLsn, 200);
    await wal.append([rec(201)]);
    await wal.close();
    const again = await openCollect(dir, {}, 150);
    assert.deepEqual(
      again.seen,
      Array.from({ length: 51 }, (_, i) => i + 151),
    );
    await again.wal.close();
  });
}

test('WAL refuses appends whose LSN does not follow', async (t) => {
  const dir = tempDir(t);
  const { wal } = await openCollect(dir);
  await wal.append([rec(1)]);
  await assert.rejects(wal.append([rec(3)]), /LSN 3 does not follow 1/);
  await wal.close();
});

test('WAL read serves any range still on disk, and says when it is gone', async (t) => {
  const dir = tempDir(t);
  await writeN(dir, 300, 8192);
  const { wal } = await openCollect(dir);
  for (const [from, to] of [
    [1, 1],
    [1, 300],
    [63, 66],
    [128, 129],
    [250, 400],
  ] as const) {
    const got = await wal.read(from, to, 1 << 30);
    assert.deepEqual(
      got.map(recordLsn),
      Array.from({ length: Math.min(to, 300) - from + 1 }, (_, i) => from + i),
    );
  }
  const limited = await wal.read(1, 300, 1);
  assert.equal(limited.length, 1, 'at least one record even over maxBytes');
  const removed = await wal.removeBefore(150);
  assert.ok(removed > 0);
  assert.ok(wal.firstLsn <= 150);
  await assert.rejects(wal.read(1, 5, 1 << 20), (e: unknown) => isVrepError(e, 'ERR_LSN_EVICTED'));
  await wal.close();
});

test('WAL torn tail: cut at any offset, recovery keeps exactly the whole records before it', async (t) => {
  const base = tempDir(t);
  let run = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 60 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      async (n, where) => {
        const dir = path.join(base, `r${run++}`);
        await writeN(dir, n, 1 << 20);
        const [file] = segments(dir) as [string];
        const size = statSync(file).size;
        const cut = Math.floor(32 + where * (size - 32));
        const bytes = readFileSync(file);
        // Whole records that end at or before the cut survive.
        let offset = 32;
        let expected = 0;
        while (offset < size) {
          const len = bytes.readUInt32LE(offset);
          if (offset + len > cut) break;
          offset += len;
          expected++;
        }
        truncateSync(file, cut);
        const { wal, seen, report } = await openCollect(dir);
        assert.equal(seen.length, expected);
        assert.equal(wal.lastLsn, expected);
        if (cut !== offset) assert.deepEqual(report.truncated?.offset, offset);
        assert.equal(statSync(file).size, offset, 'file cut at the last good record');
        await wal.append([rec(expected + 1)]);
        await wal.close();
      },
    ),
    { numRuns: scale(25, 300) },
  );
});

test('WAL bit flip: in the middle stops start-up naming file and offset; at the tail it is cut', async (t) => {
  const base = tempDir(t);
  let run = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 2, max: 40 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.integer({ min: 0, max: 7 }),
      async (n, where, bit) => {
        const dir = path.join(base, `r${run++}`);
        await writeN(dir, n, 1 << 20);
        const [file] = segments(dir) as [string];
        const bytes = readFileSync(file);
        const pos = Math.floor(32 + where * (bytes.length - 33));
        // Which record holds the flipped byte?
        let offset = 32;
        let index = 0;
        while (offset + bytes.readUInt32LE(offset) <= pos) {
          offset += bytes.readUInt32LE(offset);
          index++;
        }
        bytes[pos] = (bytes[pos] as number) ^ (1 << bit);
        writeFileSync(file, bytes);
        if (index === n - 1) {
          const { wal, seen, report } = await openCollect(dir);
          assert.equal(seen.length, n - 1);
          assert.equal(report.truncated?.offset, offset);
          await wal.close();
        } else {
          await assert.rejects(openCollect(dir), (e: unknown) => {
            assert.ok(isVrepError(e, 'ERR_WAL_CORRUPT'), String(e));
            assert.match(
              (e as Error).message,
              new RegExp(`${path.basename(file)}: corrupt record at offset ${offset}`),
            );
            return true;
          });
        }
      },
    ),
    { numRuns: scale(25, 300) },
  );
});

test('WAL: corruption in an older segment stops start-up; a missing segment is named', async (t) => {
  const dir = tempDir(t);
  await writeN(dir, 100, 2048);
  const files = segments(dir);
  assert.ok(files.length >= 3);
  const bytes = readFileSync(files[0] as string);
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
  writeFileSync(files[0] as string, bytes);
  await assert.rejects(openCollect(dir), /corrupt record at offset/);

  const dir2 = tempDir(t);
  await writeN(dir2, 100, 2048);
  const files2 = segments(dir2);
  writeFileSync(files2[1] as string, '');
  await assert.rejects(openCollect(dir2), /segment header truncated/);
});

test('WAL truncateAfter: cuts inside a segment and across segments; appends continue after the cut; reopen agrees', async (t) => {
  const dir = tempDir(t);
  const { wal } = await openCollect(dir, { segmentBytes: 4096 });
  for (let lsn = 1; lsn <= 120; lsn++) await wal.append([rec(lsn)]);
  const before = segments(dir).length;
  assert.ok(before > 4);
  assert.equal(await wal.termAt(77), 1);
  assert.equal(await wal.truncateAfter(130), 0, 'nothing above the last record');
  assert.equal(await wal.truncateAfter(100), 20);
  assert.equal(wal.lastLsn, 100);
  await assert.rejects(wal.termAt(101), (e: unknown) => isVrepError(e, 'ERR_LSN_NOT_YET_WRITTEN'));
  await assert.rejects(wal.append([rec(102)]), /does not follow 100/);
  await wal.append([rec(101)]);
  // Far back: every segment above goes, the one holding 31 is cut at 31.
  assert.equal(await wal.truncateAfter(30), 71);
  assert.ok(segments(dir).length < before);
  const recs = await wal.read(25, 40, 1 << 20);
  assert.deepEqual(
    recs.map((r) => recordLsn(r)),
    [25, 26, 27, 28, 29, 30],
  );
  await wal.append([rec(31), rec(32)]);
  await wal.close();
  const again = await openCollect(dir);
  assert.deepEqual(
    again.seen,
    Array.from({ length: 32 }, (_, i) => i + 1),
  );
  assert.equal(again.report.truncated, null);
  // Down to nothing: the WAL continues at 1.
  assert.equal(await again.wal.truncateAfter(0), 32);
  await again.wal.append([rec(1)]);
  await again.wal.close();
  const last = await openCollect(dir);
  assert.deepEqual(last.seen, [1]);
  await last.wal.close();
});

/** A WAL (fsync always) on a 4 MiB tmpfs that the test can fill; null (the test skipped) without root. */
async function walOnSmallDisk(t: TestContext): Promise<{ disk: SmallDisk; dir: string; wal: Wal } | null> {
  const disk = smallDisk(t, 4 * 1024 * 1024);
  if (disk === null) {
    t.skip('mounting a tmpfs needs root');
    return null;
  }
  const dir = path.join(disk.dir, 'wal');
  const { wal } = await openCollect(dir, { fsync: 'always', segmentBytes: 256 * 1024 });
  return { disk, dir, wal };
}

test('WAL on a full disk: the failed group is refused and cut off, later appends are refused until space is back, nothing refused survives a restart', async (t) => {
  const small = await walOnSmallDisk(t);
  if (small === null) return;
  const { disk, dir, wal } = small;
  for (let lsn = 1; lsn <= 10; lsn++) await wal.append([rec(lsn, 50, 64)]);
  disk.fill();
  // Records of ~13 KB each: the disk cannot take many more.
  let refusedAt = 0;
  for (let lsn = 11; lsn <= 400; lsn++) {
    try {
      await wal.append([rec(lsn, 50, 64)]);
    } catch (err) {
      assert.ok(isVrepError(err, 'ERR_WAL_IO'), String(err));
      refusedAt = lsn;
      break;
    }
  }
  assert.ok(refusedAt > 0, 'the full disk refused a write');
  assert.equal(wal.lastLsn, refusedAt - 1, 'the refused record took no LSN');
  assert.ok(wal.failure !== null);
  assert.throws(
    () => wal.checkAppend([rec(refusedAt)]),
    (e: unknown) => isVrepError(e, 'ERR_WAL_IO'),
  );
  assert.equal(await wal.probe(), false, 'still full');
  disk.free();
  assert.equal(await wal.probe(), true, 'space is back');
  await wal.append([rec(refusedAt, 50, 64)]);
  await wal.close();
  const again = await openCollect(dir);
  assert.deepEqual(
    again.seen,
    Array.from({ length: refusedAt }, (_, i) => i + 1),
  );
  await again.wal.close();
});

test('WAL whenDurable: true once the records are durable, false when the disk refuses them first', async (t) => {
  const small = await walOnSmallDisk(t);
  if (small === null) return;
  const { disk, wal } = small;
  const appended = wal.append([1, 2, 3].map((l) => rec(l, 50, 64)));
  const pending = wal.whenDurable(3);
  assert.equal(await wal.whenDurable(4), false, 'an LSN not appended is not waited for');
  await appended;
  assert.equal(await pending, true);
  assert.equal(await wal.whenDurable(2), true);
  disk.fill();
  const waits: Promise<boolean>[] = [];
  let refused = false;
  for (let lsn = 4; lsn <= 400 && !refused; lsn++) {
    const write = wal.append([rec(lsn, 50, 64)]);
    waits.push(wal.whenDurable(lsn));
    await write.catch(() => (refused = true));
  }
  assert.ok(refused, 'the full disk refused a write');
  const held = await Promise.all(waits);
  assert.equal(held.at(-1), false, 'the refused record is never held');
  assert.ok(held.slice(0, -1).every(Boolean), 'the ones before it are');
  disk.free();
  await wal.close();
  assert.equal(await wal.whenDurable(held.length + 3), false, 'a closed WAL holds nothing more');
});

/** Rewrites a segment header's flags (and its CRC), as a rotation that left its fsyncs to the background wrote it. */
function setHeaderFlags(file: string, flags: number): void {
  const bytes = readFileSync(file);
  const v = new DataView(bytes.buffer, bytes.byteOffset, 32);
  v.setUint32(12, flags, true);
  v.setUint32(24, crc32c(bytes.subarray(0, 24)), true);
  writeFileSync(file, bytes);
}

const headerFlags = (file: string): number => readFileSync(file).readUInt32LE(12);

for (const fsync of ['everysec', 'no'] as const) {
  test(`WAL (${fsync}): rotations leave the old segment's fsync to the background; once done no header says its predecessor is unsynced`, async (t) => {
    const dir = tempDir(t);
    await writeN(dir, 300, 4096, fsync);
    const files = segments(dir);
    assert.ok(files.length > 5, 'rotation happened');
    for (const f of files) assert.equal(headerFlags(f), 0, `${path.basename(f)} is sealed`);
    const { seen, report } = await openCollect(dir);
    assert.equal(seen.length, 300);
    assert.equal(report.truncated, null);
  });
}

test('WAL after a crash within the fsync window of a rotation: a torn tail before the last segment is cut when that segment says so, and the last segment goes', async (t) => {
  for (const lastHeader of ['flagged', 'zeros'] as const) {
    const dir = tempDir(t);
    await writeN(dir, 100, 2048);
    const files = segments(dir);
    const last = files.at(-1) as string;
    const before = files.at(-2) as string;
    const firstOfLast = Number(path.basename(last).slice(4, 24));
    if (lastHeader === 'flagged') setHeaderFlags(last, 1);
    else writeFileSync(last, Buffer.concat([Buffer.alloc(32), readFileSync(last).subarray(32)]));
    truncateSync(before, statSync(before).size - 7);
    const { wal, seen, report, warnings } = await openCollect(dir);
    assert.deepEqual(
      seen,
      Array.from({ length: firstOfLast - 2 }, (_, i) => i + 1),
      `${lastHeader}: every whole record before the tear`,
    );
    assert.equal(report.truncated?.file, before, lastHeader);
    assert.ok(!segments(dir).includes(last), `${lastHeader}: the segment after the tear is removed`);
    assert.ok(warnings.length >= 2, lastHeader);
    await wal.append([rec(firstOfLast - 1)]);
    await wal.close();
    const again = await openCollect(dir);
    assert.equal(again.wal.lastLsn, firstOfLast - 1, lastHeader);
    await again.wal.close();
  }
});

test('WAL: the same tear with a last segment that does not say so stops start-up; a last segment whose header never reached the disk is removed', async (t) => {
  const dir = tempDir(t);
  await writeN(dir, 100, 2048);
  const files = segments(dir);
  const before = files.at(-2) as string;
  truncateSync(before, statSync(before).size - 7);
  await assert.rejects(openCollect(dir), /corrupt record at offset/);

  const dir2 = tempDir(t);
  await writeN(dir2, 100, 2048);
  const last = segments(dir2).at(-1) as string;
  const firstOfLast = Number(path.basename(last).slice(4, 24));
  writeFileSync(last, Buffer.concat([Buffer.alloc(32), readFileSync(last).subarray(32)]));
  const { wal, seen, warnings } = await openCollect(dir2);
  assert.deepEqual(
    seen,
    Array.from({ length: firstOfLast - 1 }, (_, i) => i + 1),
  );
  assert.ok(!segments(dir2).includes(last));
  assert.match(JSON.stringify(warnings), /sizeBytes/);
  await wal.close();
});
