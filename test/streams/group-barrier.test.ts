/**
 * A member reads its group's position only once the node has applied what
 * was committed before it joined (ConsumerGroupDeps.caughtUp, a
 * linearizable read's barrier on a leader). A leader just elected may not
 * have applied the position its predecessor committed: read at once, a
 * group whose commits are not applied yet would start from `from`
 * ('latest': a gap), and one with an older applied position would repeat
 * committed events. Here the node's store serves the stream and the
 * applied positions are held back until the barrier passes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplicationNode } from '../../src/index.ts';
import { ChangeStreams } from '../../src/streams/change-stream.ts';
import { ConsumerGroups } from '../../src/streams/consumer-groups.ts';
import type { AppliedGroup } from '../../src/store/state.ts';
import type { Store } from '../../src/store/store.ts';
import { tempDir } from '../helpers/tmp.ts';

test('a group member starts from the position applied after the barrier, not the stale one before it', async (t) => {
  const node = await ReplicationNode.start({
    nodeId: 'n1',
    dataDir: tempDir(t),
    storage: { fsync: 'no', snapshotEveryBytes: 0 },
  });
  t.after(() => node.stop());
  await node.createCollection('a', { dimension: 2, metric: 'l2' });
  const lsns: number[] = [];
  for (let i = 0; i < 6; i++) lsns.push((await node.write('a', [{ id: `p${i}`, vector: [i, 0] }])).lsn);
  const store = (node as unknown as { store: Store }).store;
  const term = node.replicationStatus().term;

  // What the old leader committed (the group handled p0..p3), applied here only after the barrier.
  let applied = new Map<string, AppliedGroup>();
  let release = (): void => {};
  const barrier = new Promise<void>((resolve) => (release = resolve));
  let barriers = 0;
  const streams = new ChangeStreams(store);
  const groups = new ConsumerGroups({
    streams,
    positions: () => applied,
    firstLsn: () => store.records.firstLsn,
    assertWritable: () => undefined,
    caughtUp: () => {
      barriers++;
      return barrier;
    },
    setPosition: async () => undefined,
    warn: () => undefined,
  });
  const member = groups.join({ group: 'g', from: 'latest', autoCommit: false });
  t.after(() => member.close());
  const started = member.start();
  await new Promise((r) => setTimeout(r, 50));
  const committed = { term, lsn: lsns[3] as number, index: null };
  applied = new Map([['g', { position: committed, setAtLsn: (lsns[5] as number) + 1 }]]);
  release();
  await started;
  await node.write('a', [{ id: 'p6', vector: [6, 0] }]);
  const batch = await member.nextBatch(2);
  assert.deepEqual(
    batch?.map((e) => e.id),
    ['p4', 'p5'],
    'resumed after the committed position (read before the barrier it starts at latest, p6: a gap)',
  );
  assert.equal(barriers, 1, 'the member waited for the barrier');
});
