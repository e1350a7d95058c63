/**
 * Write-ahead log: append-only segment files of encoded records (the record
 * format carries its own length and CRC32C), under `<dataDir>/wal/`.
 *
 * - fsync policy as Redis appendfsync: `always` (fsync before an append
 *   resolves; concurrent appends share one fsync: group commit), `everysec`
 *   (a timer fsyncs once a second), `no` (the OS decides).
 * - Rotation: a segment past `segmentBytes` is closed, and the next record
 *   starts a new file named by its first LSN. Under `always` the old one is
 *   fsynced first; otherwise its fsync runs beside the appends and the new
 *   header says so until it is done (docs/storage.md#wal).
 * - Recovery: every record is length-, CRC- and LSN-checked. A bad record at
 *   the tail of the last segment with nothing valid after it is a torn write:
 *   the file is cut there and the cut is reported; so is one at the tail of
 *   the segment before, when the last header says that one may be unsynced
 *   (the last segment then goes). A bad record anywhere else stops start-up
 *   with the file and offset: never skipped silently.
 * - Truncation: `truncateAfter(lsn)` drops a divergent tail (the records a
 *   deposed leader never had committed), cutting the file at a record
 *   boundary; the next append continues at lsn + 1.
 * - A failed write (disk full, I/O error) refuses the whole group it was
 *   part of and cuts the file back to where the group began, so a refused
 *   record cannot come back at the next start. The WAL then refuses appends
 *   (`failure`) until `probe()` finds the disk writable again.
 */
import { open, readdir, readFile, rm, type FileHandle } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { VrepError, vrepError } from '../errors.ts';
import { crc32c } from '../native/crc32c.ts';
import {
  recordChecksumOk,
  recordLengthAt,
  recordLsn,
  RECORD_HEADER_BYTES,
  RECORD_TERM_OFFSET,
} from './record.ts';
import { fsyncDir } from './atomic-file.ts';
import { RecordLimits } from '../limits.ts';

export type FsyncPolicy = 'always' | 'everysec' | 'no';

export interface WalOptions {
  fsync: FsyncPolicy;
  /** Rotate to a new segment once the current one exceeds this. */
  segmentBytes?: number;
  /** Where recovery reports a cut tail (a pino logger fits). */
  warn?: (fields: Record<string, unknown>, message: string) => void;
}

export interface WalRecoveryReport {
  segments: number;
  records: number;
  firstLsn: number;
  lastLsn: number;
  /** Set when a torn tail was cut off. */
  truncated: { file: string; offset: number; droppedBytes: number } | null;
}

const SEGMENT_MAGIC = 'VREPWAL1';
const SEGMENT_HEADER_BYTES = 32;
const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** One record of every this many gets an index entry, for reads by LSN. */
const INDEX_STRIDE = 64;
/** Appends waiting for the writer, bytes; past this, append() is refused with ERR_OVERLOADED. */
export const MAX_PENDING_BYTES = 512 * 1024 * 1024;
/** probe() writes this many bytes past the end (then cuts them) to see whether space is back. */
const PROBE_BYTES = 64 * 1024;

interface Segment {
  file: string;
  firstLsn: number;
  /** LSN of the last record in it (firstLsn - 1 when empty). */
  lastLsn: number;
  sizeBytes: number;
  /** Offsets of records firstLsn + k * INDEX_STRIDE. */
  index: number[];
}

function segmentName(firstLsn: number): string {
  return `wal-${String(firstLsn).padStart(20, '0')}.log`;
}

function emptySegment(file: string, firstLsn: number): Segment {
  return { file, firstLsn, lastLsn: firstLsn - 1, sizeBytes: SEGMENT_HEADER_BYTES, index: [] };
}

/**
 * Header flag: the segment before this one may not be fsynced yet (it was
 * started by a rotation that left that fsync to the background). A torn
 * tail there is then a crash inside the fsync policy's window, not damage.
 */
const FLAG_PREDECESSOR_UNSYNCED = 1;

function segmentHeader(firstLsn: number, flags = 0): Uint8Array {
  const h = new Uint8Array(SEGMENT_HEADER_BYTES);
  const v = new DataView(h.buffer);
  h.set(new TextEncoder().encode(SEGMENT_MAGIC), 0);
  v.setUint32(8, 1, true);
  v.setUint32(12, flags, true);
  v.setBigUint64(16, BigInt(firstLsn), true);
  v.setUint32(24, crc32c(h.subarray(0, 24)), true);
  return h;
}

/** Writes all of `bytes` at `position` (a short write is continued; a full disk throws ENOSPC). */
async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, written, bytes.length - written, position + written);
    written += bytesWritten;
  }
}

/**
 * Reads a segment header: `unwritten` when it never reached the disk (short,
 * or all zeros: a crash while the segment was being made), `bad` when it is
 * there but not ours or damaged.
 */
function parseHeader(
  bytes: Uint8Array,
): { kind: 'unwritten' } | { kind: 'bad' } | { kind: 'ok'; firstLsn: number; flags: number } {
  if (bytes.length < SEGMENT_HEADER_BYTES) return { kind: 'unwritten' };
  const header = bytes.subarray(0, SEGMENT_HEADER_BYTES);
  if (header.every((b) => b === 0)) return { kind: 'unwritten' };
  const v = new DataView(header.buffer, header.byteOffset, SEGMENT_HEADER_BYTES);
  const magic = new TextDecoder().decode(header.subarray(0, 8));
  if (magic !== SEGMENT_MAGIC || v.getUint32(24, true) !== crc32c(header.subarray(0, 24)))
    return { kind: 'bad' };
  return { kind: 'ok', firstLsn: Number(v.getBigUint64(16, true)), flags: v.getUint32(12, true) };
}

/**
 * Whether the segment before `file` (the last segment) may never have been
 * fsynced: its header says so, or its header itself never reached the disk,
 * which the rotation that made it would have done only after fsyncing the
 * one before.
 */
async function predecessorMayBeUnsynced(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const header = new Uint8Array(SEGMENT_HEADER_BYTES);
    const { bytesRead } = await handle.read(header, 0, SEGMENT_HEADER_BYTES, 0);
    const h = parseHeader(header.subarray(0, bytesRead));
    return h.kind === 'unwritten' || (h.kind === 'ok' && (h.flags & FLAG_PREDECESSOR_UNSYNCED) !== 0);
  } finally {
    await handle.close();
  }
}

function walError(message: string): VrepError {
  return new VrepError('ERR_WAL_CORRUPT', message);
}

/** True when a well-formed record (length, CRC) starts at `offset`. */
function validRecordAt(bytes: Uint8Array, offset: number): boolean {
  try {
    const length = recordLengthAt(bytes, offset);
    return recordChecksumOk(bytes.subarray(offset, offset + length));
  } catch {
    return false;
  }
}

export class Wal {
  readonly dir: string;
  private readonly policy: FsyncPolicy;
  private readonly segmentBytes: number;
  private readonly segments: Segment[] = [];
  private handle: FileHandle | null = null;
  private queue: { records: Uint8Array[]; bytes: number; resolve: () => void; reject: (e: Error) => void }[] =
    [];
  private queuedBytes = 0;
  private writing = false;
  private dirty = false;
  private syncTimer: NodeJS.Timeout | null = null;
  private failed: VrepError | null = null;
  private closed = false;
  /** Bytes of the group a failure refused: probe() needs at least that much room. */
  private failedGroupBytes = 0;
  /** A failed group could not be cut off: only a restart (recovery) may take writes again. */
  private cutFailed = false;
  /**
   * The previous segment's fsync and close after a rotation under
   * `everysec` or `no`, run beside the appends (null when none runs).
   */
  private sealing: Promise<void> | null = null;
  /** Resolves when the writer has nothing in hand (truncateAfter waits for it). */
  private idleWaiters: (() => void)[] = [];
  /** Last LSN handed to append() (written or queued). */
  private lastAppendedLsn: number;
  /** Last LSN written to the files (queued ones excluded). */
  private lastWritten: number;
  /** Last LSN durable per the fsync policy (what append() has resolved). */
  private durableUpTo: number;
  /** whenDurable() callers, until their LSN is durable or cut off. */
  private durableWaiters: { lsn: number; resolve: (held: boolean) => void }[] = [];
  /** Observed fsync latencies for metrics, ms (bounded ring of recent ones). */
  readonly fsyncLatenciesMs: number[] = [];

  private constructor(dir: string, opts: WalOptions, lastLsn: number) {
    this.dir = dir;
    this.policy = opts.fsync;
    this.segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.lastAppendedLsn = lastLsn;
    this.lastWritten = lastLsn;
    this.durableUpTo = lastLsn;
  }

  /**
   * Opens (creating if needed) the WAL in `dir`, validating every record.
   * `onRecord` gets each record with LSN > `afterLsn`, in order, as a view
   * into the segment buffer (copy it to keep it past the call).
   * `startLsn` is the LSN the log continues from when it is empty (after a
   * snapshot at startLsn - 1).
   */
  static async open(
    dir: string,
    opts: WalOptions,
    startLsn: number,
    afterLsn: number,
    onRecord: (record: Uint8Array, lsn: number) => void,
  ): Promise<{ wal: Wal; report: WalRecoveryReport }> {
    mkdirSync(dir, { recursive: true });
    const names = (await readdir(dir)).filter((n) => /^wal-\d{20}\.log$/.test(n)).sort();
    const report: WalRecoveryReport = {
      segments: names.length,
      records: 0,
      firstLsn: 0,
      lastLsn: 0,
      truncated: null,
    };
    // The last segment's header may say the one before it was never fsynced
    // (a crash within the policy's window after a rotation): that one may
    // then end torn, and whatever follows the tear goes with it.
    const lastFile = names.length >= 2 ? path.join(dir, names.at(-1) as string) : null;
    const predecessorUnsynced = lastFile !== null && (await predecessorMayBeUnsynced(lastFile));
    const segments: Segment[] = [];
    let expectedLsn = -1;
    for (let s = 0; s < names.length; s++) {
      const name = names[s] as string;
      const file = path.join(dir, name);
      const isLast = s === names.length - 1;
      const mayTear = isLast || (s === names.length - 2 && predecessorUnsynced);
      const bytes = new Uint8Array(await readFile(file));
      // Torn before the last segment: the records after the tear are gone, so is that segment.
      const removeLast =
        !mayTear || isLast || lastFile === null
          ? null
          : async (): Promise<void> => {
              await rm(lastFile);
              await fsyncDir(dir);
              opts.warn?.(
                { file: lastFile },
                'WAL: removed the last segment, which followed a torn tail in the segment before it (a crash within the fsync window)',
              );
            };
      const seg = await Wal.scanSegment(
        file,
        bytes,
        isLast,
        mayTear,
        expectedLsn,
        afterLsn,
        onRecord,
        opts,
        report,
        removeLast,
      );
      if (seg === null) continue; // an empty, torn segment header at the tail: removed
      if (seg.lastLsn >= seg.firstLsn) expectedLsn = seg.lastLsn + 1;
      else if (expectedLsn === -1) expectedLsn = seg.firstLsn;
      segments.push(seg);
      if (!isLast && report.truncated !== null) break;
    }
    const lastLsn = segments.length > 0 ? (segments.at(-1) as Segment).lastLsn : startLsn - 1;
    if (segments.length > 0 && (segments[0] as Segment).firstLsn > startLsn) {
      throw walError(
        `${dir}: the WAL starts at LSN ${(segments[0] as Segment).firstLsn} but the snapshot needs it from ${startLsn}: records are missing`,
      );
    }
    const wal = new Wal(dir, opts, Math.max(lastLsn, startLsn - 1));
    wal.segments.push(...segments);
    report.firstLsn = segments[0]?.firstLsn ?? startLsn;
    report.lastLsn = wal.lastAppendedLsn;
    if (wal.policy === 'everysec') {
      wal.syncTimer = setInterval(() => void wal.syncIfDirty(), 1000);
      wal.syncTimer.unref();
    }
    return { wal, report };
  }

  private static async scanSegment(
    file: string,
    bytes: Uint8Array,
    isLast: boolean,
    mayTear: boolean,
    expectedLsn: number,
    afterLsn: number,
    onRecord: (record: Uint8Array, lsn: number) => void,
    opts: WalOptions,
    report: WalRecoveryReport,
    beforeCut: (() => Promise<void>) | null,
  ): Promise<Segment | null> {
    const header = parseHeader(bytes);
    if (header.kind === 'unwritten') {
      if (isLast) {
        // Crashed while creating the segment (its header never reached the
        // disk): nothing in it was fsynced, so nothing in it was acknowledged.
        await rm(file);
        opts.warn?.(
          { file, sizeBytes: bytes.length },
          'WAL: removed a last segment whose header never reached the disk',
        );
        return null;
      }
      throw walError(
        bytes.length < SEGMENT_HEADER_BYTES
          ? `${file}: segment header truncated (${bytes.length} bytes)`
          : `${file}: segment header is all zeros`,
      );
    }
    if (header.kind === 'bad') throw walError(`${file}: bad segment header at offset 0`);
    const firstLsn = header.firstLsn;
    if (path.basename(file) !== segmentName(firstLsn)) {
      throw walError(`${file}: header says first LSN ${firstLsn}, the name disagrees`);
    }
    if (expectedLsn !== -1 && firstLsn !== expectedLsn) {
      throw walError(`${file}: starts at LSN ${firstLsn}, expected ${expectedLsn} (a segment is missing)`);
    }
    const seg = emptySegment(file, firstLsn);
    let offset = SEGMENT_HEADER_BYTES;
    let lsnWanted = firstLsn;
    while (offset < bytes.length) {
      let length = 0;
      let problem: string | null = null;
      try {
        length = recordLengthAt(bytes, offset);
        if (!recordChecksumOk(bytes.subarray(offset, offset + length))) problem = 'checksum mismatch';
      } catch (err) {
        problem = (err as Error).message;
      }
      if (problem === null) {
        const lsn = recordLsn(bytes.subarray(offset, offset + length));
        if (lsn !== lsnWanted) problem = `LSN ${lsn} where ${lsnWanted} was expected`;
      }
      if (problem !== null) {
        // Torn tail only where one may be (the last segment, or the one before
        // it when that was never fsynced) and nothing valid follows.
        let validAfter = -1;
        for (let o = offset + 1; o + RECORD_HEADER_BYTES <= bytes.length; o++) {
          if (validRecordAt(bytes, o)) {
            validAfter = o;
            break;
          }
        }
        if (!mayTear || validAfter !== -1) {
          throw walError(
            `${file}: corrupt record at offset ${offset} (${problem})` +
              (validAfter !== -1 ? `; valid records follow at offset ${validAfter}` : '') +
              '; refusing to start: restore this file or remove the node data and resync',
          );
        }
        // The segment after this one goes first: were it still there after a
        // crash in between, the cut would look like a missing segment.
        await beforeCut?.();
        const handle = await open(file, 'r+');
        try {
          await handle.truncate(offset);
          await handle.sync();
        } finally {
          await handle.close();
        }
        report.truncated = { file, offset, droppedBytes: bytes.length - offset };
        opts.warn?.(report.truncated, 'WAL: cut a torn tail at the last good record');
        break;
      }
      if ((lsnWanted - firstLsn) % INDEX_STRIDE === 0) seg.index.push(offset);
      if (lsnWanted > afterLsn) onRecord(bytes.subarray(offset, offset + length), lsnWanted);
      report.records++;
      seg.lastLsn = lsnWanted;
      lsnWanted++;
      offset += length;
    }
    seg.sizeBytes = offset;
    return seg;
  }

  /** LSN of the last record appended (durable or queued). */
  get lastLsn(): number {
    return this.lastAppendedLsn;
  }

  /** LSN of the oldest record still in the WAL (lastLsn + 1 when empty). */
  get firstLsn(): number {
    const first = this.segments[0];
    return first && first.lastLsn >= first.firstLsn ? first.firstLsn : this.lastAppendedLsn + 1;
  }

  /**
   * The oldest LSN whose segments, with every newer one, fit in `maxBytes`
   * (the newest segment always counts): how far back a byte-bounded
   * retention can keep the WAL. Segment-grained, as removal is.
   */
  retainedFrom(maxBytes: number): number {
    let bytes = 0;
    let from = this.lastAppendedLsn + 1;
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const seg = this.segments[i] as Segment;
      bytes += seg.sizeBytes;
      if (bytes > maxBytes && i < this.segments.length - 1) break;
      from = seg.firstLsn;
    }
    return from;
  }

  /**
   * Appends encoded records, which must carry consecutive LSNs following
   * `lastLsn`. Resolves once written, and with `always` once fsynced.
   */
  append(records: Uint8Array[]): Promise<void> {
    try {
      this.checkAppend(records);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    let bytes = 0;
    for (const r of records) bytes += r.length;
    this.lastAppendedLsn += records.length;
    return new Promise((resolve, reject) => {
      this.queue.push({ records, bytes, resolve, reject });
      this.queuedBytes += bytes;
      if (!this.writing) void this.drain();
    });
  }

  /**
   * Throws (and changes nothing) unless `append(records)` would be accepted:
   * the WAL is open and healthy, LSNs follow lastLsn, sizes within limits.
   */
  checkAppend(records: readonly Uint8Array[]): void {
    if (this.closed) throw vrepError('ERR_WAL_CLOSED');
    if (this.failed) throw this.failed;
    if (this.queuedBytes > MAX_PENDING_BYTES) {
      throw new VrepError(
        'ERR_OVERLOADED',
        `WAL: ${this.queuedBytes} bytes are waiting for the disk (limit ${MAX_PENDING_BYTES}); retry later`,
      );
    }
    let expected = this.lastAppendedLsn + 1;
    for (const r of records) {
      const lsn = recordLsn(r);
      if (lsn !== expected) throw new RangeError(`WAL append: LSN ${lsn} does not follow ${expected - 1}`);
      if (r.length > RecordLimits.maxRecordBytes) {
        throw new RangeError(`WAL append: record of ${r.length} bytes over the limit`);
      }
      expected++;
    }
  }

  /** Bytes queued for the writer and not yet written (a back-pressure signal). */
  get pendingBytes(): number {
    return this.queuedBytes;
  }

  /** Why appends are refused (a write or fsync failed), or null while the WAL takes them. */
  get failure(): VrepError | null {
    return this.failed;
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        const mark = this.markEnd();
        try {
          for (const item of batch) {
            for (const r of item.records) await this.writeRecord(r);
          }
          if (this.policy === 'always') await this.sync();
          else this.dirty = true;
          this.durableUpTo = this.lastWritten;
          for (const item of batch) {
            this.queuedBytes -= item.bytes;
            item.resolve();
          }
          this.settleDurableWaiters();
        } catch (err) {
          // The group is refused as a whole, and what of it reached the file
          // is cut off again: a refused record must not reappear at the next
          // start. Later appends are refused until probe() succeeds.
          this.failed = new VrepError('ERR_WAL_IO', `WAL write failed: ${(err as Error).message}`, {
            cause: err,
          });
          const rest = this.queue;
          this.queue = [];
          this.failedGroupBytes = [...batch, ...rest].reduce((n, item) => n + item.bytes, 0);
          await this.rollBackTo(mark).catch((cutErr: unknown) => {
            // The file and this WAL's idea of its end may now disagree: no probe may resume on that.
            this.cutFailed = true;
            this.failed = new VrepError(
              'ERR_WAL_IO',
              `WAL write failed (${(err as Error).message}) and the partial write could not be cut off (${(cutErr as Error).message}); restart the node once the disk is healthy`,
              { cause: err },
            );
          });
          for (const item of [...batch, ...rest]) {
            this.queuedBytes -= item.bytes;
            item.reject(this.failed);
          }
          this.settleDurableWaiters();
          return;
        }
      }
    } finally {
      this.writing = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  /** Where the log ends now (to cut a failed group back to). */
  private markEnd(): { segments: number; sizeBytes: number; lastLsn: number; indexLength: number } {
    const seg = this.segments.at(-1);
    return {
      segments: this.segments.length,
      sizeBytes: seg?.sizeBytes ?? 0,
      lastLsn: this.lastWritten,
      indexLength: seg?.index.length ?? 0,
    };
  }

  /** Removes what was written after `mark` (segments started since, the tail of the one before). */
  private async rollBackTo(mark: ReturnType<Wal['markEnd']>): Promise<void> {
    await this.sealing;
    while (this.segments.length > mark.segments) {
      const seg = this.segments.pop() as Segment;
      if (this.handle !== null) {
        await this.handle.close().catch(() => undefined);
        this.handle = null;
      }
      await rm(seg.file, { force: true });
    }
    const seg = this.segments.at(-1);
    if (seg) {
      if (this.handle === null) this.handle = await open(seg.file, 'r+');
      await this.handle.truncate(mark.sizeBytes);
      await this.handle.sync();
      seg.sizeBytes = mark.sizeBytes;
      seg.lastLsn = Math.max(seg.firstLsn - 1, mark.lastLsn);
      seg.index.length = mark.indexLength;
    }
    this.lastAppendedLsn = mark.lastLsn;
    this.lastWritten = mark.lastLsn;
    this.durableUpTo = Math.min(this.durableUpTo, mark.lastLsn);
    await fsyncDir(this.dir);
  }

  /**
   * After a failure: checks that the disk takes writes again (writes and
   * fsyncs as many bytes as the refused group had, at least PROBE_BYTES,
   * past the end, then cuts them off). True, and appends are taken again,
   * when it does; false (still failing) otherwise.
   */
  async probe(): Promise<boolean> {
    if (this.failed === null) return true;
    if (this.closed || this.writing || this.cutFailed) return false;
    const seg = this.segments.at(-1);
    try {
      if (seg) {
        if (this.handle === null) this.handle = await open(seg.file, 'r+');
        const zeros = new Uint8Array(Math.max(PROBE_BYTES, this.failedGroupBytes));
        await writeFully(this.handle, zeros, seg.sizeBytes);
        await this.handle.sync();
        await this.handle.truncate(seg.sizeBytes);
        await this.handle.sync();
      } else {
        const file = path.join(this.dir, `probe-${process.pid}.tmp`);
        const h = await open(file, 'w');
        try {
          const zeros = new Uint8Array(Math.max(PROBE_BYTES, this.failedGroupBytes));
          await writeFully(h, zeros, 0);
          await h.sync();
        } finally {
          await h.close();
          await rm(file, { force: true });
        }
      }
    } catch {
      return false;
    }
    this.failed = null;
    return true;
  }

  /** Waits until the writer has nothing in hand. */
  private async idle(): Promise<void> {
    while (this.writing || this.queue.length > 0 || this.sealing !== null) {
      if (this.sealing !== null && !this.writing && this.queue.length === 0) await this.sealing;
      else await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
  }

  /**
   * Drops every record above `lsn` (waiting for appends in flight first);
   * the next append must carry lsn + 1. Segments wholly above are removed;
   * the one holding lsn + 1 is cut at that record. `lsn` below the oldest
   * record removes them all. Returns the number of records dropped.
   */
  async truncateAfter(lsn: number): Promise<number> {
    if (this.closed) throw vrepError('ERR_WAL_CLOSED');
    await this.idle();
    if (lsn >= this.lastAppendedLsn) return 0;
    const dropped = this.lastAppendedLsn - lsn;
    while (this.segments.length > 0 && (this.segments.at(-1) as Segment).firstLsn > lsn) {
      const seg = this.segments.pop() as Segment;
      if (this.handle !== null) {
        await this.handle.close();
        this.handle = null;
      }
      await rm(seg.file, { force: true });
    }
    const seg = this.segments.at(-1);
    if (seg && seg.lastLsn > lsn) {
      const cut = await this.offsetOf(seg, lsn + 1);
      if (this.handle === null) this.handle = await open(seg.file, 'r+');
      await this.handle.truncate(cut);
      await this.handle.sync();
      seg.sizeBytes = cut;
      seg.lastLsn = lsn;
      seg.index = seg.index.filter((offset) => offset < cut);
    }
    await fsyncDir(this.dir);
    this.lastAppendedLsn = lsn;
    this.lastWritten = lsn;
    this.durableUpTo = Math.min(this.durableUpTo, lsn);
    this.settleDurableWaiters();
    return dropped;
  }

  /** Byte offset of record `lsn` in `seg` (which must hold it), from the index and the record headers. */
  private async offsetOf(seg: Segment, lsn: number): Promise<number> {
    const k = Math.floor((lsn - seg.firstLsn) / INDEX_STRIDE);
    let offset = seg.index[k] ?? SEGMENT_HEADER_BYTES;
    let at = seg.firstLsn + k * INDEX_STRIDE;
    if (at === lsn) return offset;
    const handle = await open(seg.file, 'r');
    try {
      const header = new Uint8Array(4);
      for (; at < lsn; at++) {
        await handle.read(header, 0, 4, offset);
        offset += new DataView(header.buffer).getUint32(0, true);
      }
    } finally {
      await handle.close();
    }
    return offset;
  }

  /**
   * Removes every segment; the next append must carry `nextLsn` (a
   * follower that installed a snapshot continues after it).
   */
  async resetAt(nextLsn: number): Promise<void> {
    if (this.closed) throw vrepError('ERR_WAL_CLOSED');
    await this.idle();
    if (this.handle !== null) {
      await this.handle.close();
      this.handle = null;
    }
    for (const seg of this.segments.splice(0)) await rm(seg.file, { force: true });
    await fsyncDir(this.dir);
    this.lastAppendedLsn = nextLsn - 1;
    this.lastWritten = nextLsn - 1;
    // A new log: nothing waited for in the old one is held by it.
    this.durableUpTo = nextLsn - 1;
    for (const w of this.durableWaiters.splice(0)) w.resolve(false);
  }

  /**
   * Term of the record at `lsn` (read from its header on disk), or
   * ERR_LSN_EVICTED / ERR_LSN_NOT_YET_WRITTEN when the WAL does not hold it.
   */
  async termAt(lsn: number): Promise<number> {
    const seg = this.segments.find((s) => s.firstLsn <= lsn && s.lastLsn >= lsn);
    if (!seg) {
      throw new VrepError(
        lsn < this.firstLsn ? 'ERR_LSN_EVICTED' : 'ERR_LSN_NOT_YET_WRITTEN',
        `LSN ${lsn} is not in the WAL (it holds ${this.firstLsn}..${this.lastWrittenLsn})`,
      );
    }
    const offset = await this.offsetOf(seg, lsn);
    const handle = await open(seg.file, 'r');
    try {
      const field = new Uint8Array(8);
      await handle.read(field, 0, 8, offset + RECORD_TERM_OFFSET);
      return Number(new DataView(field.buffer).getBigUint64(0, true));
    } finally {
      await handle.close();
    }
  }

  /** LSN of the last record written to the files (queued ones excluded). */
  get lastWrittenLsn(): number {
    return this.lastWritten;
  }

  /**
   * True once every record up to `lsn` is durable per the fsync policy;
   * false if one of them is cut off first (refused by the disk, truncated,
   * a reset) or the WAL closes without it. A snapshot of state applied
   * ahead of the WAL (a follower applies before its disk has the records)
   * is put in place only once this says its records are held.
   */
  whenDurable(lsn: number): Promise<boolean> {
    if (lsn <= this.durableUpTo) return Promise.resolve(true);
    if (this.closed || lsn > this.lastAppendedLsn) return Promise.resolve(false);
    return new Promise((resolve) => this.durableWaiters.push({ lsn, resolve }));
  }

  private settleDurableWaiters(): void {
    if (this.durableWaiters.length === 0) return;
    this.durableWaiters = this.durableWaiters.filter((w) => {
      if (w.lsn <= this.durableUpTo) w.resolve(true);
      else if (w.lsn > this.lastAppendedLsn || this.failed !== null) w.resolve(false);
      else return true;
      return false;
    });
  }

  private async writeRecord(record: Uint8Array): Promise<void> {
    const lsn = recordLsn(record);
    let seg = this.segments.at(-1);
    if (!seg || this.handle === null || seg.sizeBytes >= this.segmentBytes) {
      seg = await this.startSegment(lsn);
    }
    if ((lsn - seg.firstLsn) % INDEX_STRIDE === 0) seg.index.push(seg.sizeBytes);
    await writeFully(this.handle as FileHandle, record, seg.sizeBytes);
    seg.sizeBytes += record.length;
    seg.lastLsn = lsn;
    this.lastWritten = lsn;
  }

  private async startSegment(firstLsn: number): Promise<Segment> {
    const last = this.segments.at(-1);
    if (last && this.handle === null && last.sizeBytes < this.segmentBytes) {
      // Reopen the recovered last segment for appending.
      this.handle = await open(last.file, 'r+');
      return last;
    }
    // Under `always` the appends wait for fsyncs anyway; otherwise the old
    // segment's fsync (and the new one's) run beside the appends, one such
    // rotation at a time, and the new header says its predecessor may be
    // unsynced until they are done.
    let predecessor: FileHandle | null = null;
    if (this.handle !== null) {
      if (this.policy !== 'always' && this.sealing === null) predecessor = this.handle;
      else {
        await this.sealing;
        await this.handle.sync();
        await this.handle.close();
      }
      this.handle = null;
    }
    const file = path.join(this.dir, segmentName(firstLsn));
    const handle = await open(file, 'w+');
    const header = segmentHeader(firstLsn, predecessor ? FLAG_PREDECESSOR_UNSYNCED : 0);
    await handle.write(header, 0, header.length, 0);
    if (predecessor === null) {
      await handle.sync();
      await fsyncDir(this.dir);
    }
    this.handle = handle;
    const seg = emptySegment(file, firstLsn);
    this.segments.push(seg);
    if (predecessor !== null) {
      this.sealing = this.seal(predecessor, handle, firstLsn).finally(() => (this.sealing = null));
    }
    return seg;
  }

  /**
   * After a rotation: fsyncs and closes the previous segment, then clears
   * the new segment's flag and makes the new file and its name durable. A
   * failure refuses later appends, as a failed timer fsync does.
   */
  private async seal(previous: FileHandle, current: FileHandle, firstLsn: number): Promise<void> {
    const t0 = performance.now();
    try {
      await previous.sync();
      this.noteFsync(t0);
      await previous.close();
      const header = segmentHeader(firstLsn);
      await current.write(header, 0, header.length, 0);
      await current.sync();
      await fsyncDir(this.dir);
    } catch (err) {
      await previous.close().catch(() => undefined);
      this.failed ??= new VrepError('ERR_WAL_IO', `WAL fsync failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  private async sync(): Promise<void> {
    if (this.handle === null) return;
    const t0 = performance.now();
    await this.handle.sync();
    this.dirty = false;
    this.noteFsync(t0);
  }

  private noteFsync(t0: number): void {
    if (this.fsyncLatenciesMs.length >= 1024) this.fsyncLatenciesMs.shift();
    this.fsyncLatenciesMs.push(performance.now() - t0);
  }

  private async syncIfDirty(): Promise<void> {
    if (!this.dirty || this.writing || this.handle === null) return;
    try {
      await this.sync();
    } catch (err) {
      this.failed = new VrepError('ERR_WAL_IO', `WAL fsync failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /** Waits for queued appends, fsyncs, and closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.idle();
    this.closed = true;
    for (const w of this.durableWaiters.splice(0)) w.resolve(w.lsn <= this.durableUpTo);
    if (this.syncTimer) clearInterval(this.syncTimer);
    if (this.handle) {
      await this.handle.sync();
      await this.handle.close();
      this.handle = null;
    }
  }

  /**
   * Removes whole segments every record of which is below `lsn` (they are
   * covered by a snapshot). The segment being written is never removed.
   */
  async removeBefore(lsn: number): Promise<number> {
    let removed = 0;
    while (this.segments.length > 1 && (this.segments[1] as Segment).firstLsn <= lsn) {
      const seg = this.segments.shift() as Segment;
      await rm(seg.file);
      removed++;
    }
    if (removed > 0) await fsyncDir(this.dir);
    return removed;
  }

  /**
   * Reads records [fromLsn, toLsn] from disk, at most `maxBytes` of them (at
   * least one record if any is in range). For readers whose position fell
   * out of the in-memory circular log. Only written (not queued) records are
   * returned.
   */
  async read(fromLsn: number, toLsn: number, maxBytes: number): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    if (fromLsn < this.firstLsn) {
      throw new VrepError(
        'ERR_LSN_EVICTED',
        `LSN ${fromLsn} is no longer in the WAL (oldest is ${this.firstLsn})`,
      );
    }
    let total = 0;
    for (const seg of this.segments) {
      if (seg.lastLsn < fromLsn || seg.firstLsn > toLsn) continue;
      const k = Math.floor((Math.max(fromLsn, seg.firstLsn) - seg.firstLsn) / INDEX_STRIDE);
      let offset = seg.index[k] ?? SEGMENT_HEADER_BYTES;
      let lsn = seg.firstLsn + k * INDEX_STRIDE;
      const handle = await open(seg.file, 'r');
      try {
        const header = new Uint8Array(8);
        while (lsn <= Math.min(seg.lastLsn, toLsn)) {
          await handle.read(header, 0, 8, offset);
          const length = new DataView(header.buffer).getUint32(0, true);
          if (lsn >= fromLsn) {
            if (out.length > 0 && total + length > maxBytes) return out;
            const rec = new Uint8Array(length);
            await handle.read(rec, 0, length, offset);
            if (!recordChecksumOk(rec) || recordLsn(rec) !== lsn) {
              throw walError(`${seg.file}: record at offset ${offset} changed on disk`);
            }
            out.push(rec);
            total += length;
          }
          offset += length;
          lsn++;
        }
      } finally {
        await handle.close();
      }
    }
    return out;
  }
}
