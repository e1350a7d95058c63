/**
 * sendPaced with two senders on one link, as while a full sync streams
 * beside the records: a sender that finds the queue filled by the other
 * waits for it to drain instead of having its frame dropped (a dropped
 * RECORDS frame was never reported to the core, and the follower's stream
 * stopped for good: the full-sync-under-writes bench found it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sendPaced } from '../../src/replication/feeder.ts';
import { FrameType } from '../../src/transport/frame.ts';
import type { OutgoingFrame, SendResult } from '../../src/transport/link.ts';

/** A link with a queue limit, drained by the test. */
class FakeLink {
  closed = false;
  buffered = 0;
  readonly sent: OutgoingFrame[] = [];
  private waiters: ((ok: boolean) => void)[] = [];
  constructor(private readonly maxBufferedBytes: number) {}

  send(frame: OutgoingFrame): SendResult {
    if (this.closed || this.buffered > this.maxBufferedBytes) return 'dropped';
    this.sent.push(frame);
    this.buffered += frame.payload.length;
    return this.buffered >= this.maxBufferedBytes ? 'backpressure' : 'ok';
  }

  whenWritable(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.buffered < this.maxBufferedBytes / 2) return Promise.resolve(true);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  drain(): void {
    this.buffered = 0;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(true);
  }
}

const frame = (bytes: number): OutgoingFrame => ({ type: FrameType.Records, payload: new Uint8Array(bytes) });

test('a sender that finds the queue over its limit waits for the drain; its frame is not dropped', async () => {
  const link = new FakeLink(1000);
  // The full sync's piece takes the queue past its limit (it waits, as sendPaced tells it).
  const bulk = sendPaced(link, null, () => 0, frame(5000), 'bulk');
  // The records sender comes while the queue is full.
  let done = false;
  const live = sendPaced(link, null, () => 0, frame(100), 'live').then((ok) => {
    done = true;
    return ok;
  });
  await new Promise((r) => setImmediate(r));
  assert.equal(done, false, 'it waits for the queue instead of sending into it');
  assert.equal(link.sent.length, 1);
  link.drain();
  assert.equal(await bulk, true);
  assert.equal(await live, true, 'sent once the queue drained');
  assert.equal(link.sent.length, 2);
});

test('a closed link: not sent, and false', async () => {
  const link = new FakeLink(1000);
  link.closed = true;
  assert.equal(await sendPaced(link, null, () => 0, frame(10), 'live'), false);
  assert.equal(link.sent.length, 0);
});
