import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TokenBucket } from '../../src/replication/throttle.ts';

/** Sends as fast as the bucket allows for `durationMs` of simulated time; returns bytes sent. */
function run(
  bucket: TokenBucket,
  sizes: () => number,
  durationMs: number,
  cls: 'live' | 'bulk',
  startMs = 0,
): number {
  let now = startMs;
  let sent = 0;
  while (now < startMs + durationMs) {
    const size = sizes();
    const wait = bucket.delayMs(size, cls, now);
    now += wait;
    if (now >= startMs + durationMs) break;
    bucket.take(size, now);
    sent += size;
  }
  return sent;
}

test('sustained throughput stays within 10% of the configured rate over 10 s windows', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 10_000, max: 500_000_000 }),
      fc.double({ min: 0.002, max: 0.2, noNaN: true }),
      fc.constantFrom<'live' | 'bulk'>('live', 'bulk'),
      (rate, messageSeconds, cls) => {
        // Message sizes up to `messageSeconds` of budget: a bounded number of
        // messages per simulated second, from tiny to most of the bucket.
        const maxMessage = Math.max(1, Math.floor(rate * messageSeconds));
        const bucket = new TokenBucket({ bytesPerSec: rate }, 0);
        let s = 7;
        const sizes = () => 1 + ((s = (s * 1103515245 + 12345) >>> 0) % maxMessage);
        // Skip the first burst, then measure 10 s windows.
        run(bucket, sizes, 1000, cls);
        for (let w = 0; w < 3; w++) {
          const sent = run(bucket, sizes, 10_000, cls, 1000 + w * 10_000);
          assert.ok(Math.abs(sent / 10 - rate) <= 0.1 * rate, `window ${w}: ${sent / 10} B/s vs ${rate}`);
        }
      },
    ),
    { numRuns: 200 },
  );
});

test('bulk traffic leaves a reserve that live traffic can use at once', () => {
  const bucket = new TokenBucket({ bytesPerSec: 1000, burstBytes: 1000, liveReserve: 0.25 }, 0);
  bucket.take(700, 0); // 300 left: below bulk's floor of 250 + size
  assert.ok(bucket.delayMs(100, 'bulk', 0) > 0, 'bulk waits');
  assert.equal(bucket.delayMs(100, 'live', 0), 0, 'live goes now');
  assert.throws(() => new TokenBucket({ bytesPerSec: 0 }, 0), /bytesPerSec/);
  assert.throws(() => new TokenBucket({ bytesPerSec: 10, liveReserve: 1 }, 0), /liveReserve/);
});
