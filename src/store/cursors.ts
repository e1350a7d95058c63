/**
 * The store's log cursors: opens them, holds the committed watermark they
 * wait on, and keeps the positions of named cursors in `cursors.json` (so
 * their pins hold the WAL across restarts).
 */
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { VrepError } from '../errors.ts';
import { writeFileAtomic } from '../log/atomic-file.ts';
import type { RecordLog } from '../log/record-log.ts';
import { LogCursor, type CursorBound, type CursorHost } from './log-cursor.ts';
import type { LogPin, LogPinKind, LogPins } from './log-pins.ts';

/** Named cursors at most: each holds WAL on disk until dropped. */
export const MAX_NAMED_CURSORS = 256;
/** Reads waiting for the watermark at once, at most. */
export const MAX_CURSOR_WAITERS = 10_000;
const NAME = /^[A-Za-z0-9._-]{1,64}$/;
const FILE = 'cursors.json';

interface Waiter {
  bound: CursorBound;
  lsn: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface OpenCursorOptions {
  /** First LSN to read (default: the next record appended). Ignored when a saved named cursor resumes. */
  from?: number;
  /** A name makes the position saveable: `openCursor({ name })` after a restart resumes it. */
  name?: string;
  /** `committed` (default) for every reader but the replication feed. */
  bound?: CursorBound;
  /** `stream`: the pin holds the WAL only within the streams' retention limit (log-pins.ts); default `feed`. */
  retention?: LogPinKind;
}

export class Cursors implements CursorHost {
  private committed: number;
  private waiters: Waiter[] = [];
  private closed = false;
  /** Pins of saved positions, held for as long as the name exists. */
  private readonly saved: Map<string, LogPin>;
  private writes: Promise<void> = Promise.resolve();

  private constructor(
    private readonly dataDir: string,
    readonly log: RecordLog,
    private readonly pins: LogPins,
    saved: Map<string, number>,
    committedLsn: number,
  ) {
    this.committed = committedLsn;
    this.saved = new Map([...saved].map(([name, lsn]) => [name, pins.pin(lsn)]));
  }

  static async open(opts: {
    dataDir: string;
    log: RecordLog;
    pins: LogPins;
    committedLsn: number;
  }): Promise<Cursors> {
    return new Cursors(opts.dataDir, opts.log, opts.pins, await loadSaved(opts.dataDir), opts.committedLsn);
  }

  open(opts: OpenCursorOptions = {}): LogCursor {
    const bound = opts.bound ?? 'committed';
    if (bound !== 'committed' && bound !== 'appended') {
      throw new VrepError(
        'ERR_INVALID_ARG',
        `cursor bound must be "committed" or "appended", got ${String(bound)}`,
      );
    }
    const name = opts.name ?? null;
    if (name !== null && !NAME.test(name)) {
      throw new VrepError(
        'ERR_INVALID_ARG',
        `cursor name must match ${NAME.source}, got ${JSON.stringify(name)}`,
      );
    }
    const from = opts.from ?? this.log.lastLsn + 1;
    if (!Number.isSafeInteger(from) || from < 1) {
      throw new VrepError('ERR_INVALID_ARG', `cursor "from" must be an LSN ≥ 1, got ${from}`);
    }
    const resumed = name === null ? undefined : this.saved.get(name)?.lsn;
    const kind = name === null ? (opts.retention ?? 'feed') : 'feed';
    return new LogCursor(this, this.pins.pin(resumed ?? from, kind), bound, name);
  }

  /** Saved positions by name. */
  list(): { name: string; lsn: number }[] {
    return [...this.saved].map(([name, pin]) => ({ name, lsn: pin.lsn }));
  }

  savePosition(name: string, lsn: number): Promise<void> {
    const pin = this.saved.get(name);
    if (pin === undefined && this.saved.size >= MAX_NAMED_CURSORS) {
      return Promise.reject(
        new VrepError('ERR_OVERLOADED', `${MAX_NAMED_CURSORS} named cursors exist; drop one first`),
      );
    }
    if (pin) pin.lsn = lsn;
    else this.saved.set(name, this.pins.pin(lsn));
    return this.persist();
  }

  /** Forgets a saved position; the WAL it held can be removed by the next snapshot. */
  drop(name: string): Promise<boolean> {
    const pin = this.saved.get(name);
    if (pin === undefined) return Promise.resolve(false);
    pin.release();
    this.saved.delete(name);
    return this.persist().then(() => true);
  }

  readableThrough(bound: CursorBound): number {
    return bound === 'committed' ? Math.min(this.committed, this.log.lastLsn) : this.log.lastLsn;
  }

  waitReadable(bound: CursorBound, lsn: number, signal?: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(new VrepError('ERR_NODE_STOPPED', 'the store is closed'));
    if (this.readableThrough(bound) >= lsn) return Promise.resolve();
    if (this.waiters.length >= MAX_CURSOR_WAITERS) {
      return Promise.reject(new VrepError('ERR_OVERLOADED', `${MAX_CURSOR_WAITERS} cursors wait already`));
    }
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { bound, lsn, resolve, reject };
      this.waiters.push(w);
      signal?.addEventListener(
        'abort',
        () => {
          this.waiters = this.waiters.filter((x) => x !== w);
          reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
        },
        { once: true },
      );
    });
  }

  /** The quorum-held, applied watermark moved (the node reports it after each Ready). */
  setCommitted(lsn: number): void {
    if (lsn === this.committed) return;
    this.committed = lsn;
    this.wake();
  }

  /** The log grew (or changed): wake readers that wait for it. */
  wake(): void {
    if (this.waiters.length === 0) return;
    this.waiters = this.waiters.filter((w) => {
      if (this.readableThrough(w.bound) < w.lsn) return true;
      w.resolve();
      return false;
    });
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiters) w.reject(new VrepError('ERR_NODE_STOPPED', 'the store is closed'));
    this.waiters = [];
  }

  private persist(): Promise<void> {
    const body = `${JSON.stringify({ version: 1, cursors: Object.fromEntries(this.list().map((c) => [c.name, c.lsn])) })}\n`;
    // One write at a time, in order: the file ends with the last position asked for.
    const run = this.writes.then(() => writeFileAtomic(path.join(this.dataDir, FILE), body));
    this.writes = run.catch(() => undefined);
    return run;
  }
}

async function loadSaved(dataDir: string): Promise<Map<string, number>> {
  const file = path.join(dataDir, FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw err;
  }
  const bad = (why: string): VrepError =>
    new VrepError('ERR_CORRUPT_META', `${file}: ${why}; remove it to forget every saved cursor`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  const cursors = (parsed as { version?: unknown; cursors?: unknown } | null)?.cursors;
  if ((parsed as { version?: unknown }).version !== 1 || typeof cursors !== 'object' || cursors === null) {
    throw bad('not a version 1 cursor file');
  }
  const out = new Map<string, number>();
  for (const [name, lsn] of Object.entries(cursors)) {
    if (!NAME.test(name) || !Number.isSafeInteger(lsn) || (lsn as number) < 1) throw bad(`bad entry ${name}`);
    out.set(name, lsn as number);
  }
  return out;
}
