/**
 * `GET /changes` upgraded to a WebSocket: a change stream over the network
 * (docs/http-api.md, "Change stream"). The HTTP listener is node:http, so
 * the upgrade is taken by `ws` (already the peer dialer's library) with
 * `noServer`, after the listener's own checks (token, start-up, draining).
 *
 * Flow control is the client's: it sends `{"credit": n}` and the server
 * sends at most that many events, never more than CHANGES_WS_LIMITS.maxCredit
 * outstanding; with no credit the server reads nothing from the stream, so a
 * client that stops crediting costs the node one stream's bounded buffer
 * (src/streams/change-stream.ts). The server also waits while the socket
 * holds more than maxBufferedBytes unsent (a client that credits but does
 * not read).
 *
 * Errors before the upgrade are HTTP answers in the API's error shape;
 * after it, a last text message `{"error":{code,message}}`, then a close.
 */
import assert from 'node:assert/strict';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { isVrepError, VrepError, type ErrorCode } from '../errors.ts';
import type { Route, UpgradeRequest, UpgradeRoute } from '../transport/http-server.ts';
import type { ReplicationNode } from '../node/replication-node.ts';
import { ChangeStreamLimits, type ChangeStream, type ChangeStreamOptions } from '../streams/change-stream.ts';
import {
  CHANGE_OPS,
  eventPosition,
  formatGroupPosition,
  type ChangeEvent,
  type ChangeOp,
  type StartFrom,
} from '../streams/change-event.ts';
import type { GroupConsumer, GroupStreamOptions } from '../streams/consumer-groups.ts';
import type { GroupPosition } from '../log/record.ts';

export const CHANGES_WS_LIMITS = {
  /** Events a client may have credited and not yet received. */
  maxCredit: 10_000,
  /** Events read from the stream per pull (each pull is at most this many, and at most the credit). */
  pullEvents: 256,
  /** A message is sent once its JSON reaches this many bytes (one event at least). */
  messageBytes: 1024 * 1024,
  /** Unsent bytes on the socket past which the server waits for it to drain. */
  maxBufferedBytes: 4 * 1024 * 1024,
  /** Largest client message (credits are a few bytes). */
  maxClientMessageBytes: 4096,
  /** A ping every this many ms; a client that has not answered the previous one is dropped. */
  pingIntervalMs: 30_000,
} as const;

assert.ok(CHANGES_WS_LIMITS.pullEvents <= ChangeStreamLimits.maxBatchEvents, 'pullEvents within a batch');
assert.ok(CHANGES_WS_LIMITS.pullEvents <= CHANGES_WS_LIMITS.maxCredit, 'pullEvents within the credit');

/** WebSocket close codes of this route (RFC 6455 7.4.1). */
export const ChangesCloseCodes = {
  /** The stream ended because the node stops. */
  goingAway: 1001,
  /** The client broke the protocol (bad message, too much credit). */
  policy: 1008,
  /** The stream failed (an evicted or diverged position found after the upgrade, a bug). */
  error: 1011,
} as const;

const QUERY_KEYS = [
  'from',
  'collections',
  'ops',
  'include_vectors',
  'group',
  'partition_by',
  'auto_commit',
] as const;

/** What a session reads: a plain stream, or a consumer group's member (which also commits). */
type Feed = ChangeStream | GroupConsumer;

/** The stream options of a `/changes` query, and whether a group member commits at each credit. */
export interface ChangesQuery {
  opts: ChangeStreamOptions | GroupStreamOptions;
  /** auto_commit=true: each credit commits every event sent before it. */
  commitOnCredit: boolean;
}

function invalid(message: string): VrepError {
  return new VrepError('ERR_INVALID_INPUT', message);
}

/** A query parameter given at most once (as the API's queryParam does for its routes). */
function once(query: URLSearchParams, name: string): string | null {
  const values = query.getAll(name);
  if (values.length > 1) throw invalid(`${name}: given ${values.length} times; give it once`);
  return values[0] ?? null;
}

/** `earliest`, `latest`, `TERM:LSN` or `TERM:LSN:INDEX`. */
export function parseFrom(text: string): StartFrom {
  if (text === 'earliest' || text === 'latest') return text;
  const m = /^(\d{1,15}):(\d{1,15})(?::(\d{1,15}))?$/.exec(text);
  if (!m)
    throw invalid(`from: expected earliest, latest, TERM:LSN or TERM:LSN:INDEX, got ${JSON.stringify(text)}`);
  const from = { term: Number(m[1]), lsn: Number(m[2]) };
  return m[3] === undefined ? from : { ...from, index: Number(m[3]) };
}

/** The stream options of a `/changes` query (the stream checks the values' meaning). */
export function changesQueryOf(query: URLSearchParams): ChangesQuery {
  const opts = streamOptionsOf(query);
  const partitionBy = once(query, 'partition_by');
  const autoCommit = once(query, 'auto_commit');
  if (opts.group === undefined) {
    if (partitionBy !== null || autoCommit !== null)
      throw invalid('partition_by and auto_commit: only with group');
    return { opts, commitOnCredit: false };
  }
  if (partitionBy !== null && partitionBy !== 'id' && partitionBy !== 'collection')
    throw invalid(`partition_by: expected id or collection, got ${JSON.stringify(partitionBy)}`);
  if (autoCommit !== null && autoCommit !== 'true' && autoCommit !== 'false')
    throw invalid(`auto_commit: expected true or false, got ${JSON.stringify(autoCommit)}`);
  // The server cannot tell when a client handled an event: commits follow the client's messages.
  const group: GroupStreamOptions = { ...opts, group: opts.group, autoCommit: false };
  if (partitionBy !== null) group.partitionBy = partitionBy;
  return { opts: group, commitOnCredit: autoCommit === 'true' };
}

function streamOptionsOf(query: URLSearchParams): ChangeStreamOptions {
  for (const key of query.keys()) {
    if (!(QUERY_KEYS as readonly string[]).includes(key))
      throw invalid(`${key}: unknown query parameter (allowed: ${QUERY_KEYS.join(', ')})`);
  }
  const opts: ChangeStreamOptions = {};
  const group = once(query, 'group');
  if (group !== null) opts.group = group;
  const from = once(query, 'from');
  opts.from = from === null ? 'latest' : parseFrom(from);
  const collections = once(query, 'collections');
  if (collections !== null) opts.collections = collections.split(',');
  const ops = once(query, 'ops');
  if (ops !== null) {
    const list = ops.split(',');
    const known: readonly string[] = CHANGE_OPS;
    const bad = list.find((o) => !known.includes(o));
    if (bad !== undefined)
      throw invalid(`ops: unknown op ${JSON.stringify(bad)} (allowed: ${CHANGE_OPS.join(', ')})`);
    opts.ops = list as ChangeOp[];
  }
  const vectors = once(query, 'include_vectors');
  if (vectors !== null) {
    if (vectors !== 'true' && vectors !== 'false')
      throw invalid(`include_vectors: expected true or false, got ${JSON.stringify(vectors)}`);
    opts.includeVectors = vectors === 'true';
  }
  return opts;
}

/** An event as JSON: the vector as an array of numbers. */
function wireEvent(e: ChangeEvent): unknown {
  return e.vector === undefined ? e : { ...e, vector: Array.from(e.vector) };
}

type ClientMessage = { credit: number } | { commit: GroupPosition | 'sent' };

const COMMIT_POSITION = /^(\d{1,15}):(\d{1,15})(?::(\d{1,15}))?$/;

/** A client message: `{"credit": n}`, or (group members) `{"commit": "TERM:LSN[:INDEX]"}` / `{"commit": "sent"}`. */
function clientMessageOf(data: RawData, isBinary: boolean): ClientMessage {
  const expected = 'expected {"credit": n}, {"commit": "TERM:LSN[:INDEX]"} or {"commit": "sent"}';
  if (isBinary) throw invalid(`message: a text message ${expected}`);
  let value: unknown;
  try {
    value = JSON.parse(data.toString());
  } catch {
    throw invalid(`message: not valid JSON; ${expected}`);
  }
  const keys =
    typeof value === 'object' && value !== null && !Array.isArray(value) ? Object.keys(value) : null;
  if (keys === null || keys.length !== 1) throw invalid(`message: ${expected}`);
  if (keys[0] === 'credit') {
    const n = (value as { credit?: unknown }).credit;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1)
      throw invalid('message: credit must be an integer ≥ 1');
    return { credit: n };
  }
  if (keys[0] === 'commit') {
    const c = (value as { commit?: unknown }).commit;
    if (c === 'sent') return { commit: 'sent' };
    const m = typeof c === 'string' ? COMMIT_POSITION.exec(c) : null;
    if (!m) throw invalid(`message: commit must be "TERM:LSN", "TERM:LSN:INDEX" or "sent"`);
    return {
      commit: { term: Number(m[1]), lsn: Number(m[2]), index: m[3] === undefined ? null : Number(m[3]) },
    };
  }
  throw invalid(`message: ${expected}`);
}

/** One client's stream: reads only what the client credited, sends it as it can. */
class ChangesSession {
  private credit = 0;
  private ended = false;
  private wake: (() => void) | null = null;
  private alive = true;
  private readonly ping: NodeJS.Timeout;
  /** The last event written to the socket (what a commit of "sent" commits). */
  private lastSent: GroupPosition | null = null;
  /** auto_commit: the client's window (its first credit), events it said it handled, and the positions sent since. */
  private window: number | null = null;
  private handledCount = 0;
  private sent: GroupPosition[] = [];
  private sentAt = 0;
  private sentCountBefore = 0;
  /** Commits run one after another, in the order the client sent them. */
  private commits: Promise<void> = Promise.resolve();

  constructor(
    private readonly ws: WebSocket,
    private readonly stream: Feed,
    private readonly logger: Logger,
    private readonly commitOnCredit: boolean,
  ) {
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('close', () => this.end());
    ws.on('error', () => this.end());
    ws.on('pong', () => (this.alive = true));
    // Ended by the node (it stops, the group was deleted) while the session waits for credit.
    // A turn later: a stream that ended by failing reports its own error first (run's catch).
    void stream.ended
      .then(() => new Promise((r) => setImmediate(r)))
      .then(() => {
        const why = 'endedBecause' in stream ? stream.endedBecause : null;
        if (why !== null) this.finish(why.code, why.message, ChangesCloseCodes.goingAway);
        else this.finish('ERR_NODE_STOPPED', 'the node is stopping', ChangesCloseCodes.goingAway);
      });
    this.ping = setInterval(() => {
      if (!this.alive) {
        ws.terminate();
        return;
      }
      this.alive = false;
      ws.ping();
    }, CHANGES_WS_LIMITS.pingIntervalMs).unref();
    void this.run();
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    let n: number;
    try {
      const message = clientMessageOf(data, isBinary);
      if ('commit' in message) {
        this.commit(message.commit);
        return;
      }
      n = message.credit;
      if (this.commitOnCredit) this.creditedAfterHandling(n);
      if (this.credit + n > CHANGES_WS_LIMITS.maxCredit)
        throw invalid(
          `credit: ${this.credit} outstanding + ${n} is more than ${CHANGES_WS_LIMITS.maxCredit}; credit again after events arrive`,
        );
    } catch (err) {
      this.fail(err as VrepError, ChangesCloseCodes.policy);
      return;
    }
    this.credit += n;
    this.wakeUp();
  }

  /**
   * auto_commit: the first credit is the client's window; each later credit
   * of n says n more events were handled (the protocol: credit what you
   * handled, after handling it), so the events sent up to the count handled
   * are committed. Events sent and not yet handled are never covered, however
   * many messages are on their way.
   */
  private creditedAfterHandling(n: number): void {
    if (this.window === null) {
      this.window = n;
      return;
    }
    this.handledCount += n;
    let upTo: GroupPosition | null = null;
    while (this.sentAt < this.sent.length && this.sentCountBefore + this.sentAt < this.handledCount) {
      upTo = this.sent[this.sentAt++] as GroupPosition;
    }
    // Drop what was consumed now and then, so the list holds only what is outstanding (at most the credit).
    if (this.sentAt > 1024 && this.sentAt * 2 > this.sent.length) {
      this.sent = this.sent.slice(this.sentAt);
      this.sentCountBefore += this.sentAt;
      this.sentAt = 0;
    }
    if (upTo !== null) this.commit(upTo);
  }

  /** Commits for a group member, then answers `{"committed": "TERM:LSN[:INDEX]"}`; a failed commit ends the session. */
  private commit(upTo: GroupPosition | 'sent'): void {
    const member = this.stream;
    if (!('commit' in member)) {
      this.fail(
        invalid('commit: this stream reads without a group; nothing to commit'),
        ChangesCloseCodes.policy,
      );
      return;
    }
    const position = upTo === 'sent' ? this.lastSent : upTo;
    if (position === null) return;
    this.commits = this.commits
      .then(() => member.commit(position))
      .then(
        () => {
          if (!this.ended && this.ws.readyState === this.ws.OPEN)
            this.ws.send(JSON.stringify({ committed: formatGroupPosition(position) }));
        },
        (err: unknown) =>
          this.fail(
            err,
            isVrepError(err, 'ERR_INVALID_INPUT') ? ChangesCloseCodes.policy : ChangesCloseCodes.error,
          ),
      );
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Resolves when there is credit, the socket has drained below its limit, or the session ended. */
  private waitUntil(ready: () => boolean): Promise<void> {
    if (ready() || this.ended) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.wake = resolve;
    }).then(() => this.waitUntil(ready));
  }

  private async run(): Promise<void> {
    try {
      while (!this.ended) {
        await this.waitUntil(() => this.credit > 0);
        if (this.ended) return;
        const batch = await this.stream.nextBatch(Math.min(this.credit, CHANGES_WS_LIMITS.pullEvents));
        if (batch === null) {
          // Closed by the client (ended) or by the node stopping.
          if (!this.ended)
            this.finish('ERR_NODE_STOPPED', 'the node is stopping', ChangesCloseCodes.goingAway);
          return;
        }
        this.credit -= batch.length;
        await this.send(batch);
      }
    } catch (err) {
      if (!isVrepError(err)) this.logger.error({ err }, 'change stream failed');
      this.fail(err, ChangesCloseCodes.error);
    }
  }

  /** Sends events in messages of about messageBytes, waiting while the socket holds too much. */
  private async send(batch: ChangeEvent[]): Promise<void> {
    let parts: string[] = [];
    let bytes = 0;
    const flush = async (): Promise<void> => {
      if (parts.length === 0 || this.ended) return;
      const text = `{"events":[${parts.join(',')}]}`;
      parts = [];
      bytes = 0;
      await new Promise<void>((resolve) => {
        // The callback runs once the frame is written to the socket (or failed): real backpressure.
        this.ws.send(text, () => resolve());
        if (this.ws.bufferedAmount <= CHANGES_WS_LIMITS.maxBufferedBytes) resolve();
      });
    };
    let last: ChangeEvent | null = null;
    for (const e of batch) {
      const json = JSON.stringify(wireEvent(e));
      parts.push(json);
      bytes += json.length;
      last = e;
      if (this.commitOnCredit) this.sent.push(eventPosition(e));
      if (bytes >= CHANGES_WS_LIMITS.messageBytes) {
        await flush();
        this.lastSent = eventPosition(last);
      }
    }
    await flush();
    if (last !== null) this.lastSent = eventPosition(last);
  }

  private fail(err: unknown, closeCode: number): void {
    if (isVrepError(err)) this.finish(err.code, err.message, closeCode);
    else this.finish('ERR_INTERNAL', 'internal error (see the node log)', closeCode);
  }

  /** The last message, then the close. */
  private finish(code: ErrorCode, message: string, closeCode: number): void {
    if (this.ended) return;
    if (this.ws.readyState === this.ws.OPEN) {
      this.ws.send(JSON.stringify({ error: { code, message } }));
      this.ws.close(closeCode, code);
    }
    this.end();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.ping);
    this.stream.close();
    this.wakeUp();
  }
}

/** The `/changes` upgrade route for the HTTP listener. */
export function changesRoute(opts: { node: ReplicationNode; logger: Logger }): UpgradeRoute {
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    maxPayload: CHANGES_WS_LIMITS.maxClientMessageBytes,
    perMessageDeflate: false,
  });
  return {
    path: '/changes',
    handler: async (req: UpgradeRequest) => {
      const query = changesQueryOf(req.query);
      const stream: Feed = opts.node.changes(query.opts);
      try {
        // The position is checked here, so an evicted or diverged one is an HTTP answer.
        await stream.start();
      } catch (err) {
        stream.close();
        throw err;
      }
      if (req.socket.destroyed) {
        stream.close();
        return;
      }
      let upgraded = false;
      wss.handleUpgrade(req.raw, req.socket, req.head, (ws) => {
        upgraded = true;
        new ChangesSession(ws, stream, opts.logger, query.commitOnCredit);
      });
      // ws answers a handshake it refuses (bad headers) with 400 itself, without calling back.
      if (!upgraded) stream.close();
    },
  };
}

/** `GET /changes` without `Upgrade: websocket`: a 400 saying how to ask (rather than a 404). */
export const changesPlainRoute: Route = {
  method: 'GET',
  pattern: '/changes',
  handler: () => {
    throw new VrepError(
      'ERR_BAD_REQUEST',
      'changes: a WebSocket route; connect with a WebSocket client (Upgrade: websocket)',
    );
  },
};
