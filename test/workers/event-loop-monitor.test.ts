import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import { EventLoopMonitor } from '../../src/workers/event-loop-monitor.ts';

function blockFor(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

test('a block of the event loop shows in max (lower bound only: a block is never read shorter)', async () => {
  const monitor = new EventLoopMonitor({ resolutionMs: 1 }).start();
  try {
    await monitor.newWindow();
    assert.deepEqual(monitor.read(), { maxMs: 0, p99Ms: 0, p50Ms: 0, meanMs: 0, samples: 0 });
    blockFor(40);
    // Let the timer tick after the block, then once more.
    await sleep(5);
    await yieldToLoop();
    const window = monitor.takeWindow();
    assert.ok(window.samples >= 1, JSON.stringify(window));
    assert.ok(window.maxMs >= 40, `max ${window.maxMs} ms after a 40 ms block`);
    assert.ok(window.p99Ms <= window.maxMs && window.p50Ms <= window.p99Ms);
    // takeWindow reset it.
    assert.equal(monitor.read().samples, 0);
  } finally {
    monitor.stop();
  }
});

test('resolutionMs is checked', () => {
  assert.equal(new EventLoopMonitor().resolutionMs, 1);
  assert.throws(() => new EventLoopMonitor({ resolutionMs: 0 }), {
    name: 'RangeError',
    message: 'EventLoopMonitor(options.resolutionMs): 0 is out of range [1, 1000]',
  });
  assert.throws(() => new EventLoopMonitor({ resolutionMs: 2.5 }), {
    name: 'TypeError',
    message: 'EventLoopMonitor(options.resolutionMs): expected an integer, got number 2.5',
  });
});
