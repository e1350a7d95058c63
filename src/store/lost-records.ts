/**
 * What a log cut drops, kept for the operator. Before a divergent tail
 * leaves the log (`Store.truncateAfter`), its records are listed in
 * `<dataDir>/lost/<UTC time>-lsn-<from>-<to>.jsonl`, one JSON line per
 * record with its ids, so whoever reads the file can tell which writes a
 * failover discarded (they were acknowledged at most at One). vrep writes
 * these files and never removes them; the operator does.
 *
 * The file is streamed (a tail may be far larger than memory): records are
 * read and written in batches of `LostFileLimits`, into a temporary file
 * that is fsynced, renamed into place and its directory fsynced. A failure
 * anywhere rejects, and the caller drops nothing: a tail is never discarded
 * without its list (docs/storage.md, "Lost records").
 */
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { decodeRecord, Op, recordLsn, type LogRecord } from '../log/record.ts';
import { fsyncDir } from '../log/atomic-file.ts';
import type { Epoch } from '../consensus/term-history.ts';
import { LostFileLimits } from '../limits.ts';

export const LOST_DIR = 'lost';
/** Version of the header line's shape (`format`). */
export const LOST_FILE_FORMAT = 1;

const opNames: Record<LogRecord['op'], string> = {
  [Op.CreateCollection]: 'create_collection',
  [Op.DropCollection]: 'drop_collection',
  [Op.Upsert]: 'upsert',
  [Op.Delete]: 'delete',
  [Op.Config]: 'config',
  [Op.GroupPosition]: 'group_position',
};

/** What one truncation dropped and where its list is. */
export interface LostRecords {
  /** Path of the file in `lost/`. */
  file: string;
  fromLsn: number;
  toLsn: number;
  /** Records dropped: toLsn - fromLsn + 1. */
  records: number;
  /** Of those, the oldest ones no longer in the log, so not listed (see the header's `unlisted`). */
  unlisted: number;
  atMs: number;
}

export interface LostFileInput {
  dataDir: string;
  nodeId: string;
  afterLsn: number;
  /** The log's last LSN: records (afterLsn, toLsn] are dropped. */
  toLsn: number;
  /** Oldest LSN the log can still read (older ones are counted as `unlisted`). */
  firstReadableLsn: number;
  /** The term history the dropped records were written under (the store's, before the cut). */
  history: readonly Epoch[];
  /** Reads records [from, to], at most about `maxBytes` (one at least), as RecordLog.read does. */
  read(fromLsn: number, toLsn: number, maxBytes: number): Promise<Uint8Array[]>;
  nowMs?: () => number;
}

/** `2026-12-02T07-15-03.123Z-lsn-1201-1250.jsonl`: sorts by time, says what it holds. */
export function lostFileName(atMs: number, fromLsn: number, toLsn: number): string {
  return `${new Date(atMs).toISOString().replace(/:/g, '-')}-lsn-${fromLsn}-${toLsn}.jsonl`;
}

/** The epochs that wrote some LSN in [from, to] (an epoch runs up to the next one's firstLsn). */
function epochsCovering(history: readonly Epoch[], from: number, to: number): Epoch[] {
  return history.filter((e, i) => {
    const end = (history[i + 1]?.firstLsn ?? Infinity) - 1;
    return e.firstLsn <= to && end >= from && end >= e.firstLsn;
  });
}

/** One JSON line per record: what it did and to which ids; no vectors, no payloads. */
export function lostLine(bytes: Uint8Array): string {
  const r = decodeRecord(bytes);
  return JSON.stringify({
    lsn: r.lsn,
    term: r.term,
    origin: r.origin,
    op: opNames[r.op],
    collection: r.collection,
    ids: r.op === Op.Upsert || r.op === Op.Delete ? r.ids : [],
    hlcMs: r.hlcMs,
    ...(r.op === Op.Config ? { members: r.members } : {}),
    ...(r.op === Op.GroupPosition ? { position: r.position } : {}),
  });
}

async function writeAll(handle: FileHandle, text: string, position: number): Promise<number> {
  const bytes = Buffer.from(text, 'utf8');
  let written = 0;
  while (written < bytes.length) {
    const r = await handle.write(bytes, written, bytes.length - written, position + written);
    written += r.bytesWritten;
  }
  return position + written;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/**
 * Lists records (afterLsn, toLsn] in a new file under `<dataDir>/lost/`,
 * durably (temp file, fsync, rename, directory fsync). Rejects, leaving no
 * file behind, when any step fails.
 */
export async function writeLostFile(input: LostFileInput): Promise<LostRecords> {
  const fromLsn = input.afterLsn + 1;
  const { toLsn } = input;
  const atMs = (input.nowMs ?? Date.now)();
  const dir = path.join(input.dataDir, LOST_DIR);
  if (!(await exists(dir))) {
    await mkdir(dir, { recursive: true });
    await fsyncDir(input.dataDir);
  }
  let file = path.join(dir, lostFileName(atMs, fromLsn, toLsn));
  // Two cuts of the same range within one millisecond: keep both.
  for (let n = 2; await exists(file); n++)
    file = path.join(dir, lostFileName(atMs, fromLsn, toLsn).replace(/\.jsonl$/, `-${n}.jsonl`));
  const listFrom = Math.max(fromLsn, input.firstReadableLsn);
  const unlisted = Math.min(toLsn + 1, listFrom) - fromLsn;
  const header = {
    format: LOST_FILE_FORMAT,
    nodeId: input.nodeId,
    atIso: new Date(atMs).toISOString(),
    truncatedAfter: input.afterLsn,
    fromLsn,
    toLsn,
    records: toLsn - fromLsn + 1,
    unlisted,
    termHistory: epochsCovering(input.history, fromLsn, toLsn),
  };
  const tmp = `${file}.tmp-${process.pid}`;
  const handle = await open(tmp, 'w');
  let placed = false;
  try {
    let at = await writeAll(handle, `${JSON.stringify(header)}\n`, 0);
    for (let lsn = listFrom; lsn <= toLsn;) {
      const to = Math.min(toLsn, lsn + LostFileLimits.batchRecords - 1);
      const records = await input.read(lsn, to, LostFileLimits.batchBytes);
      if (records.length === 0) throw new Error(`the log returned no record at LSN ${lsn}`);
      let text = '';
      for (const bytes of records) {
        if (recordLsn(bytes) !== lsn) throw new Error(`the log returned LSN ${recordLsn(bytes)} for ${lsn}`);
        text += `${lostLine(bytes)}\n`;
        lsn++;
      }
      at = await writeAll(handle, text, at);
    }
    await handle.sync();
    await handle.close();
    await rename(tmp, file);
    placed = true;
    await fsyncDir(dir);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await rm(placed ? file : tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  return { file, fromLsn, toLsn, records: toLsn - fromLsn + 1, unlisted, atMs };
}
