/**
 * `vrep changes`: follows a node's change stream over its `/changes`
 * WebSocket and prints one JSON line per event (docs/change-streams.md).
 *
 * It keeps a window of credit: `window` events at first, topped up as
 * events are printed, and only while stdout keeps up (a pipe into a slow
 * reader slows the stream instead of filling this process's memory).
 * With a group, it commits the last event printed each time stdout took
 * the lines (and before it exits at --limit), so a restart goes on after it.
 */
import { WebSocket } from 'ws';
import { NodeUnavailable } from './node-client.ts';

export interface ChangesCommandOptions {
  url: string;
  from: string;
  collections?: string;
  ops?: string;
  includeVectors?: boolean;
  /** Read as a member of this consumer group, committing what was printed. */
  group?: string;
  partitionBy?: string;
  token?: string;
  /** Stop after this many events (default: follow until interrupted). */
  limit?: number;
  /** Events credited at a time. */
  window?: number;
  /** Where the lines go (stdout). */
  out?: NodeJS.WritableStream;
}

export const DEFAULT_CHANGES_WINDOW = 1000;
/** At --limit with a group: how long to wait for the last commit's answer before exiting anyway. */
const COMMIT_WAIT_MS = 10_000;

interface WireEvent {
  term: number;
  lsn: number;
  index: number;
  count: number;
}

/** An event's place as a commit names it: TERM:LSN for its record's last point, else TERM:LSN:INDEX. */
function positionText(e: WireEvent): string {
  return e.index === e.count - 1 ? `${e.term}:${e.lsn}` : `${e.term}:${e.lsn}:${e.index}`;
}

/** The ws:// URL of a node's change stream. */
export function changesUrl(opts: ChangesCommandOptions): string {
  const url = new URL(`${opts.url.replace(/\/+$/, '')}/changes`);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.searchParams.set('from', opts.from);
  if (opts.collections !== undefined) url.searchParams.set('collections', opts.collections);
  if (opts.ops !== undefined) url.searchParams.set('ops', opts.ops);
  if (opts.includeVectors === true) url.searchParams.set('include_vectors', 'true');
  if (opts.group !== undefined) url.searchParams.set('group', opts.group);
  if (opts.partitionBy !== undefined) url.searchParams.set('partition_by', opts.partitionBy);
  return url.toString();
}

/** Resolves when the stream ends cleanly (limit reached, Ctrl-C); rejects with a NodeUnavailable saying why otherwise. */
export function followChanges(opts: ChangesCommandOptions): Promise<void> {
  const out = opts.out ?? process.stdout;
  const window = opts.window ?? DEFAULT_CHANGES_WINDOW;
  const url = changesUrl(opts);
  const headers: Record<string, string> = {};
  if (opts.token !== undefined) headers['authorization'] = `Bearer ${opts.token}`;
  return new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    let printed = 0;
    /** With a group: the last event printed (TERM:LSN[:INDEX]) not yet committed, and the commit last asked for. */
    let toCommit: string | null = null;
    let asked: string | null = null;
    const commit = (): void => {
      if (opts.group === undefined || toCommit === null || toCommit === asked) return;
      asked = toCommit;
      ws.send(JSON.stringify({ commit: toCommit }));
    };
    // Credit given and not yet used: topped up to `window` once half of it arrived.
    let outstanding = 0;
    let settled = false;
    let limitReached = false;
    const done = (err?: Error): void => {
      if (settled) return;
      settled = true;
      process.off('SIGINT', onSigint);
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(1000);
      if (err) reject(err);
      else resolve();
    };
    const onSigint = (): void => done();
    process.once('SIGINT', onSigint);
    const credit = (): void => {
      const want = opts.limit === undefined ? window : Math.min(window, opts.limit - printed);
      const n = want - outstanding;
      if (n <= 0 || n < want / 2) return;
      outstanding += n;
      ws.send(JSON.stringify({ credit: n }));
    };
    ws.on('open', credit);
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        let why = body;
        try {
          const e = (JSON.parse(body) as { error?: { code?: string; message?: string } }).error;
          if (e) why = `${e.code ?? ''}: ${e.message ?? ''}`;
        } catch {
          // not JSON: the body as it came
        }
        done(new NodeUnavailable(`${url} answered ${res.statusCode ?? '?'} ${why}`));
      });
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) return done(new NodeUnavailable(`${url} sent a binary message`));
      let msg: { events?: unknown[]; error?: { code: string; message: string } };
      try {
        msg = JSON.parse(data.toString()) as typeof msg;
      } catch {
        return done(new NodeUnavailable(`${url} sent a message that is not JSON`));
      }
      if (msg.error) return done(new NodeUnavailable(`${msg.error.code}: ${msg.error.message}`));
      if ((msg as { committed?: string }).committed !== undefined) {
        if (limitReached && (msg as { committed?: string }).committed === asked) done();
        return;
      }
      let lines = '';
      for (const e of (msg.events ?? []) as WireEvent[]) {
        lines += `${JSON.stringify(e)}\n`;
        toCommit = positionText(e);
        printed++;
        outstanding--;
        if (opts.limit !== undefined && printed >= opts.limit) break;
      }
      const more = out.write(lines);
      if (opts.limit !== undefined && printed >= opts.limit) {
        limitReached = true;
        // With a group, exit once the commit of what was printed is answered.
        if (opts.group === undefined) return done();
        const flushed = (): void => {
          commit();
          setTimeout(() => done(), COMMIT_WAIT_MS).unref();
        };
        if (more) flushed();
        else out.once('drain', flushed);
        return;
      }
      // Credit (and commit) again only once stdout took the lines.
      const next = (): void => {
        commit();
        credit();
      };
      if (more) next();
      else out.once('drain', next);
    });
    ws.on('close', (code, reason) => {
      if (code === 1000 || code === 1001) done();
      else done(new NodeUnavailable(`${url} closed the stream (${code} ${reason.toString()})`));
    });
    ws.on('error', (err) =>
      done(new NodeUnavailable(`no stream from ${url}: ${err.message} (is the node running?)`)),
    );
  });
}
