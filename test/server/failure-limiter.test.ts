import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FailureLimiter } from '../../src/server/http-api.ts';

test('FailureLimiter blocks an address past the limit within the window, then forgets it', () => {
  const limiter = new FailureLimiter(3, 1_000, 100);
  for (let i = 0; i < 3; i++) limiter.fail('a', 0);
  assert.equal(limiter.blocked('a', 10), false, 'exactly the limit is still allowed');
  limiter.fail('a', 20);
  assert.equal(limiter.blocked('a', 30), true);
  assert.equal(limiter.blocked('b', 30), false, 'other addresses are not affected');
  assert.equal(limiter.blocked('a', 1_000), false, 'the window ended');
  limiter.fail('a', 1_001);
  assert.equal(limiter.blocked('a', 1_002), false, 'a new window starts from one failure');
});

test('FailureLimiter keeps at most maxEntries addresses, dropping expired then oldest', () => {
  const limiter = new FailureLimiter(1, 1_000, 50);
  for (let i = 0; i < 500; i++) limiter.fail(`10.0.${i >> 8}.${i & 255}`, i);
  assert.ok(limiter.size <= 50, `size ${limiter.size}`);
  // The newest address is still tracked.
  limiter.fail('10.0.1.243', 500);
  assert.equal(limiter.blocked('10.0.1.243', 501), true);
  for (let i = 0; i < 60; i++) limiter.fail(`192.168.0.${i}`, 10_000);
  assert.equal(limiter.size, 50);
  assert.equal(limiter.blocked('10.0.1.243', 10_001), false);
});
