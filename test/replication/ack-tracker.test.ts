import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AckTracker } from '../../src/replication/ack-tracker.ts';
import { isVrepError } from '../../src/errors.ts';

const settled = async (p: Promise<void>): Promise<string> =>
  Promise.race([
    p.then(
      () => 'resolved',
      (e: Error) => `rejected: ${e.message}`,
    ),
    new Promise<string>((r) => setImmediate(() => r('pending'))),
  ]);

test('One, Quorum and All resolve exactly when enough WALs hold the LSN (the primary counts)', async () => {
  const t = new AckTracker();
  t.setMembers(['r1', 'r2']); // cluster of 3: quorum 2, all 3
  const one = t.wait(5, 'one', 1000);
  const quorum = t.wait(5, 'quorum', 1000);
  const all = t.wait(5, 'all', 1000);
  assert.equal(await settled(one), 'pending', 'not even the primary has it yet');
  t.primaryDurable(5);
  assert.equal(await settled(one), 'resolved');
  assert.equal(await settled(quorum), 'pending');
  t.replicaAcked('r1', 4);
  assert.equal(await settled(quorum), 'pending', 'an ack below the LSN does not count');
  t.replicaAcked('r1', 6);
  assert.equal(await settled(quorum), 'resolved');
  assert.equal(await settled(all), 'pending');
  t.replicaAcked('r2', 5);
  assert.equal(await settled(all), 'resolved');
});

test('a wait past its deadline is rejected as indeterminate; acks never move back', async () => {
  const t = new AckTracker();
  t.setMembers(['r1', 'r2', 'r3', 'r4']); // 5 nodes: quorum 3
  t.primaryDurable(10);
  t.replicaAcked('r1', 10);
  const w = t.wait(10, 'quorum', 50);
  t.expire(49);
  assert.equal(await settled(w), 'pending');
  t.expire(50);
  await assert.rejects(
    w,
    (e: unknown) =>
      isVrepError(e, 'ERR_CONSISTENCY_TIMEOUT') &&
      /2 of the 3 nodes needed.*indeterminate/.test((e as Error).message),
  );
  t.replicaAcked('r1', 3);
  assert.equal(t.ackedLsn('r1'), 10);
  assert.equal(t.needed('quorum'), 3);
  assert.equal(t.needed('all'), 5);
});
