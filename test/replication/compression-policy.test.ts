import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CompressionPolicy,
  MIN_WORTHWHILE_SAVING,
  PROBE_EVERY,
} from '../../src/replication/compression-policy.ts';

/** Runs `n` payloads that each save `saving` when tried; how many were tried. */
function run(policy: CompressionPolicy, n: number, saving: number): number {
  let tried = 0;
  for (let i = 0; i < n; i++) {
    if (!policy.next()) continue;
    tried++;
    policy.observe(saving);
  }
  return tried;
}

test('compression that saves little is tried one payload in PROBE_EVERY; data that compresses again is noticed', () => {
  const p = new CompressionPolicy(true, () => false);
  const low = MIN_WORTHWHILE_SAVING / 2;
  run(p, 10, low); // the estimate settles below the bar
  const tried = run(p, PROBE_EVERY * 10, low);
  assert.equal(tried, 10);
  // Now the data compresses 3x: within a few probes every payload is compressed again.
  run(p, PROBE_EVERY * 4, 0.66);
  assert.equal(run(p, 100, 0.66), 100);
  const s = p.stats();
  assert.ok(s.saving !== null && s.saving > MIN_WORTHWHILE_SAVING);
  assert.ok(s.skipped > 0 && s.tried > 0);
});

test('a throttled link compresses every payload, whatever it saves; disabled never does', () => {
  let limited = true;
  const p = new CompressionPolicy(true, () => limited);
  assert.equal(run(p, 50, 0.01), 50);
  limited = false;
  assert.ok(run(p, PROBE_EVERY * 4, 0.01) <= 5);
  const off = new CompressionPolicy(false, () => true);
  assert.equal(run(off, 50, 0.9), 0);
});

test('the first payloads are tried (nothing measured yet), and a saving of zero or less counts as none', () => {
  const p = new CompressionPolicy(true, () => false);
  assert.equal(p.next(), true);
  p.observe(-0.5); // compression made it bigger
  assert.equal(p.stats().saving, 0);
  assert.equal(run(p, PROBE_EVERY - 1, 0), 0);
  assert.equal(p.next(), true);
});
