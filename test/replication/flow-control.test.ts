import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FLOW_MAX_HOLD_TICKS,
  FLOW_TRACKED_RECORDS,
  FLOW_WINDOW_BYTES,
  FlowControl,
} from '../../src/replication/flow-control.ts';

const MiB = 1024 * 1024;
const records = (from: number, count: number, bytes: number): { lsn: number; bytes: Uint8Array }[] =>
  Array.from({ length: count }, (_, i) => ({ lsn: from + i, bytes: new Uint8Array(bytes) }));

test('bytes behind count the records after the follower and before the write, not the write itself', () => {
  const flow = new FlowControl();
  flow.appended(records(1, 10, 1000));
  assert.equal(flow.bytesBehind(3, 10), 6000); // 4..9
  assert.equal(flow.bytesBehind(9, 10), 0);
  assert.equal(flow.bytesBehind(10, 10), 0);
  // Records appended before the first tracked one (an earlier process) are not counted.
  const later = new FlowControl();
  later.appended(records(101, 5, 1000));
  assert.equal(later.bytesBehind(50, 105), 4000);
});

test('a One write waits while a streaming follower lacks more than the window before it, then not', () => {
  const flow = new FlowControl();
  const perRecord = 3 * MiB;
  flow.appended(records(1, 10, perRecord));
  const window = Math.floor(FLOW_WINDOW_BYTES / perRecord); // records that fit in the window
  assert.equal(flow.holds(10, 9 - window - 1, 0, 0), true);
  assert.equal(flow.holds(10, 9 - window, 0, 0), false);
  assert.equal(flow.holds(10, 10, 0, 0), false);
  assert.equal(flow.holds(10, Infinity, 0, 0), false, 'nobody streams');
  // One record larger than the window alone never holds anything.
  const big = new FlowControl();
  big.appended(records(1, 2, FLOW_WINDOW_BYTES * 2));
  assert.equal(big.holds(2, 1, 0, 0), false);
  assert.equal(big.holds(2, 0, 0, 0), true);
});

test('a stalled follower holds a write FLOW_MAX_HOLD_TICKS at most', () => {
  const flow = new FlowControl();
  flow.appended(records(1, 10, 4 * MiB));
  assert.equal(flow.holds(10, 1, 5, 5 + FLOW_MAX_HOLD_TICKS - 1), true);
  assert.equal(flow.holds(10, 1, 5, 5 + FLOW_MAX_HOLD_TICKS), false);
});

test('a cut log appended again replaces the sizes above the cut; tracking stays bounded', () => {
  const flow = new FlowControl();
  flow.appended(records(1, 10, 1000));
  flow.appended(records(6, 3, 10)); // 6..8 again, smaller; 9 and 10 gone
  assert.equal(flow.bytesBehind(0, 9), 5 * 1000 + 3 * 10);
  assert.equal(flow.bytesBehind(0, 10), 0, 'LSN 9 is not in the log');
  const many = new FlowControl();
  many.appended(records(1, FLOW_TRACKED_RECORDS * 2 + 1, 1));
  const last = FLOW_TRACKED_RECORDS * 2 + 1;
  assert.equal(many.bytesBehind(last - 11, last), 10);
  assert.equal(many.bytesBehind(0, last), FLOW_TRACKED_RECORDS - 1, 'only what is still tracked counts');
});
