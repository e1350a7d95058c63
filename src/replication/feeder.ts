/**
 * The leader's transport half of an append request: the core names a range
 * (from `firstLsn`, up to `maxLsn`), the feeder moves its log cursor there
 * (whose pin keeps the WAL from that point), reads as many records as one
 * RECORDS frame holds (the circular log, the WAL when the ring no longer
 * has them; shared and compressed by RecordsSource), waits for the
 * throttle and the link's backpressure, sends, and tells the core what went
 * out. One request per follower at a time (the core never asks for a
 * second before the first is reported).
 */
import { isVrepError } from '../errors.ts';
import { FrameType, FRAME_HEADER_BYTES } from '../transport/frame.ts';
import type { AppendRequest } from '../consensus/messages.ts';
import type { LocalInput } from '../consensus/core.ts';
import type { LogCursor } from '../store/log-cursor.ts';
import type { RecordsSource } from './records-source.ts';
import { encodeRecordsPrefix } from './records-payload.ts';
import type { TokenBucket, TrafficClass } from './throttle.ts';
import type { PeerSession } from './peer-session.ts';
import type { OutgoingFrame, PeerLink } from '../transport/link.ts';
import { ReplicationCloseCodes } from './close-codes.ts';

/** A request this many records behind the head is catch-up (bulk) traffic. */
export const LIVE_WINDOW_RECORDS = 64;

export interface FeederHooks {
  records: RecordsSource;
  step(input: LocalInput): void;
  /** A cursor on what the log holds (the core bounds each request to the leader's durable records). */
  openCursor(fromLsn: number): LogCursor;
  /** Wall clock, for the throttle (the core never sees it). */
  nowMs(): number;
  warn(obj: object, msg: string): void;
}

/** Sends `payload` within the throttle and the link's buffer limit; false when the link is gone. */
export async function sendPaced(
  link: Pick<PeerLink, 'send' | 'whenWritable' | 'closed'>,
  throttle: TokenBucket | null,
  nowMs: () => number,
  frame: OutgoingFrame,
  cls: TrafficClass,
): Promise<boolean> {
  const bytes = FRAME_HEADER_BYTES + frame.payload.length + (frame.prefix?.length ?? 0);
  if (throttle) {
    for (let wait = throttle.delayMs(bytes, cls, nowMs()); wait > 0;) {
      await new Promise((resolve) => setTimeout(resolve, wait));
      if (link.closed) return false;
      wait = throttle.delayMs(bytes, cls, nowMs());
    }
    throttle.take(bytes, nowMs());
  }
  for (;;) {
    const result = link.send(frame);
    if (result === 'ok') return true;
    if (result === 'backpressure') return link.whenWritable();
    // Not sent (no sequence number used): the link is gone, or another sender on it filled its
    // queue (a full sync streams beside the records). Dropping the frame would leave it unreported.
    if (link.closed || !(await link.whenWritable())) return false;
  }
}

export class Feeder {
  private busy = false;
  private cursor: LogCursor | null = null;
  private closed = false;

  constructor(
    readonly peer: string,
    private readonly session: PeerSession,
    private readonly throttle: TokenBucket | null,
    private readonly hooks: FeederHooks,
  ) {}

  request(req: AppendRequest): void {
    if (this.closed) return;
    if (this.busy) {
      // The core asks for one frame at a time; a second request means a reset replaced the first.
      this.hooks.warn({ peer: this.peer }, 'replication: feeder got a request while one runs');
    }
    this.busy = true;
    this.run(req).then(
      (report) => {
        // Free before reporting: the core may ask for the next frame within the report.
        this.busy = false;
        if (report !== null) this.hooks.step(report);
      },
      (err: unknown) => {
        this.busy = false;
        this.hooks.warn({ peer: this.peer, err: (err as Error).message }, 'replication: feeder failed');
        this.session.fail(ReplicationCloseCodes.protocol, `feeder failed: ${(err as Error).message}`);
      },
    );
  }

  /** Sends one frame for `req`; what to tell the core (null: nothing, the link is gone). */
  private async run(req: AppendRequest): Promise<LocalInput | null> {
    // What this follower needs stays in the WAL until it has it.
    if (this.cursor === null) this.cursor = this.hooks.openCursor(req.firstLsn);
    else this.cursor.seek(req.firstLsn);
    const cursor = this.cursor;
    const range = cursor.range(req.maxLsn);
    const behind = req.maxLsn - req.firstLsn >= LIVE_WINDOW_RECORDS;
    let encoded = null;
    try {
      if (range !== null) encoded = await this.hooks.records.next(range.fromLsn, range.toLsn, behind);
    } catch (err) {
      if (isVrepError(err, 'ERR_LSN_EVICTED')) {
        return { type: 'appendUnavailable', to: this.peer, term: req.term, requestId: req.requestId };
      }
      throw err;
    }
    if (this.closed || this.session.link.closed) return null;
    if (encoded === null) {
      const nothing = { to: this.peer, term: req.term, requestId: req.requestId };
      return { type: 'appendSent', ...nothing, lastLsn: req.firstLsn - 1, bytes: 0 };
    }
    const prefix = encodeRecordsPrefix(req.term, req.commit, req.applyLimit);
    const sent = await sendPaced(
      this.session.link,
      this.throttle,
      this.hooks.nowMs,
      {
        type: FrameType.Records,
        payload: encoded.payload,
        flags: encoded.flags,
        prefix,
        payloadCrc: encoded.crc,
        inPlace: encoded.headroom >= FRAME_HEADER_BYTES + prefix.length,
      },
      behind ? 'bulk' : 'live',
    );
    if (!sent) return null;
    cursor.advanceTo(encoded.firstLsn + encoded.count);
    return {
      type: 'appendSent',
      to: this.peer,
      term: req.term,
      requestId: req.requestId,
      lastLsn: encoded.firstLsn + encoded.count - 1,
      bytes: encoded.payload.length,
    };
  }

  close(): void {
    this.closed = true;
    this.cursor?.close();
    this.cursor = null;
  }
}
