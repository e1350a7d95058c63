/** The ReadIndex bookkeeping (src/consensus/read-index.ts): rounds, batching, majorities, failing over. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReadIndex } from '../../src/consensus/read-index.ts';
import type { Membership } from '../../src/consensus/membership.ts';

const m: Membership = {
  members: [
    { id: 'n1', address: null },
    { id: 'n2', address: null },
    { id: 'n3', address: null },
    { id: 'n4', address: null, learner: true },
  ],
};

test('a read waits for a round begun after it, confirmed by a majority of the voters', () => {
  const r = new ReadIndex();
  assert.equal(r.add(1, m, 'n1'), true, 'no round is out: begin one');
  assert.equal(r.begin(), 1);
  assert.deepEqual(r.settle(m, 'n1').ids, [], 'the leader alone is no majority');
  r.echo('n4', 1);
  assert.deepEqual(r.settle(m, 'n1').ids, [], 'a learner confirms nothing');
  assert.equal(r.echo('n2', 1), true);
  assert.equal(r.echo('n2', 1), false, 'the same echo again is no news');
  assert.deepEqual(r.settle(m, 'n1'), { ids: [1], beginNext: false });
});

test('reads that come in while a round is out share the next one', () => {
  const r = new ReadIndex();
  r.add(1, m, 'n1');
  r.begin();
  assert.equal(r.add(2, m, 'n1'), false, 'round 1 is out: read 2 waits for round 2');
  assert.equal(r.add(3, m, 'n1'), false);
  r.echo('n3', 1);
  assert.deepEqual(r.settle(m, 'n1'), { ids: [1], beginNext: true }, 'round 1 settles read 1 only');
  r.begin();
  r.echo('n2', 2);
  assert.deepEqual(r.settle(m, 'n1'), { ids: [2, 3], beginNext: false });
});

test('a leader that stops leading fails its waiting reads and forgets the echoes', () => {
  const r = new ReadIndex();
  r.add(1, m, 'n1');
  r.begin();
  r.add(2, m, 'n1');
  assert.deepEqual(r.drain(), [1, 2]);
  assert.equal(r.waiting, 0);
  assert.equal(r.add(3, m, 'n1'), true, 'no round is out after a drain: the next read begins one');
  r.begin();
  assert.deepEqual(r.settle(m, 'n1').ids, [], 'an echo from before the drain no longer counts');
});
