/**
 * Piscina task for test/native/ring-log-threads.test.ts: attaches a reader to
 * a ring through its handle and follows the writer until told it is done,
 * verifying every record it accepts. Records are derived from their LSN, so
 * any torn or misplaced byte is caught.
 */
import { RingReader, type RingHandle } from '../../src/native/ring-log.ts';
import { ErrorCodes, isVrepError } from '../../src/errors.ts';

/** Int32 indexes into the control SharedArrayBuffer. */
export const CONTROL_DONE = 0;
export const CONTROL_STARTED = 1;
export const CONTROL_WAKE = 2;
export const CONTROL_WORDS = 4;

export function recordLength(lsn: number): number {
  return 8 + (lsn % 53);
}

function byteAt(lsn: number, j: number): number {
  return (((lsn & 0xffff) * 131 + j * 7) ^ (lsn >>> 16)) & 255;
}

/** Writes record `lsn` at out[at..]: its LSN (u32 lo, u32 hi, LE), then derived bytes. */
export function fillRecord(lsn: number, out: Uint8Array, at: number): number {
  const length = recordLength(lsn);
  const view = new DataView(out.buffer, out.byteOffset + at, 8);
  view.setUint32(0, lsn >>> 0, true);
  view.setUint32(4, Math.floor(lsn / 2 ** 32), true);
  for (let j = 8; j < length; j++) out[at + j] = byteAt(lsn, j);
  return length;
}

export function recordIsIntact(lsn: number, bytes: Uint8Array, at: number, length: number): boolean {
  if (length !== recordLength(lsn)) return false;
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, 8);
  if (view.getUint32(0, true) !== lsn >>> 0 || view.getUint32(4, true) !== Math.floor(lsn / 2 ** 32))
    return false;
  for (let j = 8; j < length; j++) if (bytes[at + j] !== byteAt(lsn, j)) return false;
  return true;
}

export interface ReaderTask {
  handle: RingHandle;
  control: SharedArrayBuffer;
  /** How a reader that fell behind restarts: at the oldest record (races the writer) or near the newest. */
  restartAt: 'oldest' | 'newest';
  maxRecords: number;
  outBytes: number;
}

export interface ReaderReport {
  accepted: number;
  evicted: number;
  corrupt: number;
  firstCorruptLsn: number;
  lastLsn: number;
}

export default function followRing(task: ReaderTask): ReaderReport {
  const reader = new RingReader(task.handle);
  const control = new Int32Array(task.control);
  const out = new Uint8Array(task.outBytes);
  const lens = new Uint32Array(task.maxRecords);
  const report: ReaderReport = { accepted: 0, evicted: 0, corrupt: 0, firstCorruptLsn: 0, lastLsn: 0 };
  Atomics.add(control, CONTROL_STARTED, 1);
  let cursor = reader.firstLsn();
  for (;;) {
    // Loaded before the read: once done is seen, lastLsn is final.
    const done = Atomics.load(control, CONTROL_DONE) === 1;
    let n: number;
    try {
      n = reader.read(cursor, cursor + task.maxRecords - 1, out, lens);
    } catch (err) {
      if (isVrepError(err, ErrorCodes.LsnEvicted)) {
        report.evicted++;
        const { firstLsn, lastLsn } = reader.bounds();
        const restart = task.restartAt === 'oldest' ? firstLsn : lastLsn - 4 * task.maxRecords;
        cursor = Math.max(cursor + 1, firstLsn, restart);
        continue;
      }
      if (isVrepError(err, ErrorCodes.LsnNotYetWritten)) {
        if (done) break;
        Atomics.wait(control, CONTROL_WAKE, 0, 1);
        continue;
      }
      throw err;
    }
    let at = 0;
    for (let i = 0; i < n; i++) {
      if (!recordIsIntact(cursor + i, out, at, lens[i]!)) {
        if (report.corrupt++ === 0) report.firstCorruptLsn = cursor + i;
      }
      at += lens[i]!;
    }
    report.accepted += n;
    cursor += n;
  }
  report.lastLsn = cursor - 1;
  return report;
}
