/**
 * What issue 13's acceptance runs share (group-crash, group-failover,
 * slow-consumer): a writer over HTTP that keeps what was acknowledged, a
 * consumer-group member over the `/changes` WebSocket that commits what it
 * handled and reconnects when its node goes away, and the checker that
 * compares the two: no gap, and duplicates only after the last committed
 * position.
 *
 * Writes are told apart by `payload.w` (a write key), not by point id, so a
 * writer may overwrite the same ids (a node state that does not grow) and
 * still check every write.
 */
import { WebSocket } from 'ws';
import { statusBytes } from '../helpers/memory.ts';

export interface Pos {
  term: number;
  lsn: number;
  /** null: the whole record. */
  index: number | null;
}

export function parsePos(text: string): Pos {
  const m = /^(\d+):(\d+)(?::(\d+))?$/.exec(text);
  if (!m) throw new Error(`not a position: ${text}`);
  return { term: Number(m[1]), lsn: Number(m[2]), index: m[3] === undefined ? null : Number(m[3]) };
}

export function formatPos(p: Pos): string {
  return p.index === null ? `${p.term}:${p.lsn}` : `${p.term}:${p.lsn}:${p.index}`;
}

/** Whether event position `e` (with its index) is after committed position `c` (null index: the whole record). */
export function isAfter(e: Pos, c: Pos | null): boolean {
  if (c === null) return true;
  if (e.term !== c.term) return e.term > c.term;
  if (e.lsn !== c.lsn) return e.lsn > c.lsn;
  if (c.index === null) return false;
  return (e.index ?? Number.MAX_SAFE_INTEGER) > c.index;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ writer

export interface WriterOptions {
  /** The HTTP address to write to now (null: none known; the writer waits). */
  address: () => Promise<string | null> | string | null;
  collection: string;
  dimension: number;
  batch: number;
  /** Query string of each write (e.g. `consistency=quorum`). */
  query?: string;
  /** Padding in each payload (bytes). */
  padBytes?: number;
  /** Point ids cycle through this many (overwrites); default every write a new id. */
  idSpace?: number;
  /** Concurrent writes. */
  workers?: number;
}

/** Writes batches of new write keys over HTTP; keeps the keys of the acknowledged ones. */
export class HttpWriter {
  readonly acked: string[] = [];
  ackedBytes = 0;
  failures = 0;
  private next = 0;
  private stopped = false;
  private running: Promise<void>[] = [];
  private readonly pad: string;

  constructor(private readonly opts: WriterOptions) {
    this.pad = 'x'.repeat(opts.padBytes ?? 0);
  }

  start(): void {
    this.stopped = false;
    this.running = Array.from({ length: this.opts.workers ?? 1 }, () => this.work());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.running);
  }

  private async work(): Promise<void> {
    const { batch, dimension, collection } = this.opts;
    while (!this.stopped) {
      const address = await this.opts.address();
      if (address === null) {
        await sleep(50);
        continue;
      }
      const first = this.next;
      this.next += batch;
      const keys = Array.from({ length: batch }, (_, i) => `w${first + i}`);
      const points = keys.map((w, i) => ({
        id: this.opts.idSpace === undefined ? w : `k${(first + i) % this.opts.idSpace}`,
        vector: Array.from({ length: dimension }, (_, d) => ((first + i + d) % 97) / 97),
        payload: this.pad === '' ? { w } : { w, pad: this.pad },
      }));
      const body = JSON.stringify({ points });
      try {
        const res = await fetch(
          `http://${address}/collections/${collection}/points${this.opts.query ? `?${this.opts.query}` : ''}`,
          {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
            signal: AbortSignal.timeout(15_000),
          },
        );
        await res.arrayBuffer();
        if (res.status === 200) {
          this.acked.push(...keys);
          this.ackedBytes += body.length;
          continue;
        }
      } catch {
        // The node is down (a crash) or changing leader: not acknowledged, tried again with new keys.
      }
      this.failures++;
      await sleep(50);
    }
  }
}

// ------------------------------------------------------------------ consumer

export interface Delivery {
  /** payload.w of an upsert; null for other events. */
  key: string | null;
  pos: Pos;
  session: number;
}

export interface SessionInfo {
  /** The last `committed` answer received before this session opened (what it must resume after). */
  committedBefore: Pos | null;
  events: number;
  /** The last message's error code, or how it ended. */
  end: string | null;
}

export interface Refusal {
  status: number;
  code: string | null;
  primary: string | null;
  message: string;
}

/** Events a 'skip-new' consumer drops after each reconnect. */
export const SKIP_NEW_EVENTS = 100;

export interface ConsumerOptions {
  /** The HTTP address to connect to now (null: wait). */
  address: () => Promise<string | null> | string | null;
  group: string;
  /** Extra query (e.g. `partition_by=id`). */
  query?: string;
  /** Events credited at a time. */
  credit?: number;
  /**
   * A deliberately broken consumer, to show the checker catches it:
   * 'skip-new' drops the first SKIP_NEW_EVENTS events it never saw before
   * after each reconnect (as a consumer that resumes a batch past its
   * committed position). More than the writes in flight at a crash (which
   * may be delivered without being acknowledged), so some are acknowledged.
   */
  broken?: 'skip-new' | null;
  /** Called with each HTTP refusal of the upgrade (e.g. ERR_NOT_LEADER naming the primary). */
  onRefusal?: (r: Refusal) => void;
}

/**
 * A group member over /changes that handles each message, then commits it:
 * `{"commit":"sent"}` when every credited event has arrived (nothing else
 * was sent, so "sent" is what it handled), else the last event's
 * `TERM:LSN:INDEX`. It reconnects whenever its connection ends, until
 * stopped.
 */
export class GroupWsConsumer {
  readonly deliveries: Delivery[] = [];
  readonly sessions: SessionInfo[] = [];
  readonly refusals: Refusal[] = [];
  lastCommitted: Pos | null = null;
  commitsAnswered = 0;
  /** Connections that failed (refused, reset, handshake timeout). */
  connectFailures = 0;
  /** Commits sent as {"commit":"sent"} (every credited event had arrived) and as a position. */
  commitsSent = 0;
  commitsAt = 0;
  /** Whether credit is given (false: the consumer stops reading). */
  reading = true;
  private readonly seen = new Set<string>();
  private stopped = false;
  private loop: Promise<void> | null = null;
  private ws: WebSocket | null = null;
  private resumeReading: (() => void) | null = null;

  constructor(private readonly opts: ConsumerOptions) {}

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.ws?.terminate();
    await this.loop;
  }

  /** Stops crediting (the server then reads nothing for it). */
  pause(): void {
    this.reading = false;
  }

  resume(): void {
    this.reading = true;
    this.resumeReading?.();
  }

  /** Keys delivered at least once. */
  get delivered(): ReadonlySet<string> {
    return this.seen;
  }

  /** Connects (or is refused) once; resolves when that session ends. */
  private async run(): Promise<void> {
    while (!this.stopped) {
      const address = await this.opts.address();
      if (address === null) {
        await sleep(50);
        continue;
      }
      await this.session(address).catch(() => undefined);
      if (!this.stopped) await sleep(50);
    }
  }

  private session(address: string): Promise<void> {
    const credit = this.opts.credit ?? 200;
    const query = `group=${this.opts.group}&from=earliest${this.opts.query ? `&${this.opts.query}` : ''}`;
    return new Promise<void>((resolve) => {
      const ws = new WebSocket(`ws://${address}/changes?${query}`, { handshakeTimeout: 10_000 });
      this.ws = ws;
      let info: SessionInfo | null = null;
      let outstanding = 0;
      let skipLeft = 0;
      let idle: NodeJS.Timeout | null = null;
      // Tops the credit up to the window: at once when all of it arrived, else after a quiet moment
      // (fewer events than the window may be there to send).
      const give = (): void => {
        if (idle !== null) clearTimeout(idle);
        idle = null;
        if (!this.reading || ws.readyState !== ws.OPEN) {
          if (!this.reading) this.resumeReading = give;
          return;
        }
        this.resumeReading = null;
        if (outstanding === 0) {
          ws.send(JSON.stringify({ credit }));
          outstanding = credit;
        } else if (outstanding < credit) {
          idle = setTimeout(() => {
            idle = null;
            if (!this.reading) {
              this.resumeReading = give;
              return;
            }
            if (ws.readyState !== ws.OPEN || outstanding >= credit) return;
            ws.send(JSON.stringify({ credit: credit - outstanding }));
            outstanding = credit;
          }, 100);
        }
      };
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => {
          let error: { code?: string; message?: string; primary?: string | null } = {};
          try {
            error = (JSON.parse(body) as { error?: typeof error }).error ?? {};
          } catch {
            // not the API's error shape
          }
          const r: Refusal = {
            status: res.statusCode ?? 0,
            code: error.code ?? null,
            primary: error.primary ?? null,
            message: error.message ?? body,
          };
          this.refusals.push(r);
          this.opts.onRefusal?.(r);
          resolve();
        });
        res.on('error', () => resolve());
      });
      ws.on('open', () => {
        info = { committedBefore: this.lastCommitted, events: 0, end: null };
        this.sessions.push(info);
        skipLeft = this.opts.broken === 'skip-new' && this.sessions.length > 1 ? SKIP_NEW_EVENTS : 0;
        give();
      });
      ws.on('message', (data) => {
        const msg = JSON.parse(data.toString()) as {
          events?: {
            position: { term: number; lsn: number };
            index: number;
            op: string;
            payload: { w?: string } | null;
          }[];
          committed?: string;
          error?: { code: string };
        };
        if (msg.committed !== undefined) {
          const c = parsePos(msg.committed);
          if (this.lastCommitted === null || isAfter(c, this.lastCommitted)) this.lastCommitted = c;
          this.commitsAnswered++;
          return;
        }
        if (msg.error !== undefined) {
          if (info) info.end = msg.error.code;
          return;
        }
        const events = msg.events ?? [];
        if (events.length === 0 || info === null) return;
        const session = this.sessions.length - 1;
        for (const e of events) {
          const key = e.op === 'upsert' ? (e.payload?.w ?? null) : null;
          if (skipLeft > 0 && key !== null && !this.seen.has(key)) {
            skipLeft--;
            continue;
          }
          const pos: Pos = { term: e.position.term, lsn: e.position.lsn, index: e.index };
          this.deliveries.push({ key, pos, session });
          if (key !== null) this.seen.add(key);
        }
        info.events += events.length;
        outstanding -= events.length;
        const last = events.at(-1) as (typeof events)[number];
        const commit = outstanding === 0 ? 'sent' : formatPos({ ...last.position, index: last.index });
        if (commit === 'sent') this.commitsSent++;
        else this.commitsAt++;
        ws.send(JSON.stringify({ commit }));
        give();
      });
      ws.on('error', () => this.connectFailures++);
      ws.on('close', (code) => {
        if (idle !== null) clearTimeout(idle);
        if (info && info.end === null) info.end = `close ${code}`;
        if (this.ws === ws) this.ws = null;
        resolve();
      });
    });
  }

  /** Resolves once every key in `keys` was delivered; rejects after timeoutMs with how many are missing. */
  async waitDelivered(keys: readonly string[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const missing = keys.filter((k) => !this.seen.has(k)).length;
      if (missing === 0) return;
      if (Date.now() > deadline)
        throw new Error(
          `${missing} of ${keys.length} acknowledged writes not delivered within ${timeoutMs} ms`,
        );
      await sleep(50);
    }
  }
}

// ------------------------------------------------------------------ checker

export interface CheckResult {
  /** Acknowledged keys never delivered. */
  gaps: string[];
  /** Deliveries of a key seen before whose position is not after the session's committedBefore. */
  earlyDuplicates: { key: string; pos: string; session: number; committedBefore: string | null }[];
  /** Deliveries of a key delivered before (at-least-once's repeats). */
  duplicates: number;
  delivered: number;
}

/** The acceptance check: every acknowledged write delivered at least once; a repeat only after the last commit answered before its session. */
export function checkDeliveries(
  acked: readonly string[],
  deliveries: readonly Delivery[],
  sessions: readonly SessionInfo[],
): CheckResult {
  const seen = new Set<string>();
  const earlyDuplicates: CheckResult['earlyDuplicates'] = [];
  let duplicates = 0;
  let delivered = 0;
  for (const d of deliveries) {
    if (d.key === null) continue;
    delivered++;
    if (seen.has(d.key)) {
      duplicates++;
      const before = sessions[d.session]?.committedBefore ?? null;
      if (!isAfter(d.pos, before))
        earlyDuplicates.push({
          key: d.key,
          pos: formatPos(d.pos),
          session: d.session,
          committedBefore: before && formatPos(before),
        });
    }
    seen.add(d.key);
  }
  return { gaps: acked.filter((k) => !seen.has(k)), earlyDuplicates, duplicates, delivered };
}

// ------------------------------------------------------------------ node process

/** Resident set size of process `pid` in bytes (VmRSS of /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  return statusBytes('VmRSS', pid);
}

export async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (res.status !== 200) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

export async function createCollection(address: string, name: string, dimension: number): Promise<void> {
  const res = await fetch(`http://${address}/collections/${name}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ dimension, metric: 'l2' }),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`create ${name}: ${res.status} ${text}`);
}

export interface GroupStatusWire {
  name: string;
  position: Pos | null;
  members: number;
  lagged_out: boolean;
}

export interface StatusWire {
  state?: string;
  leader?: { node_id: string; http_address?: string | null } | null;
  groups: GroupStatusWire[];
  retention: { first_lsn: number; first_term: number; max_retained_bytes: number };
}
