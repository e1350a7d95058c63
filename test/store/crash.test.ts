/**
 * Crash safety: a child writes acknowledged batches with fsync=always and is
 * killed with SIGKILL at random moments, many times (more with
 * VREP_TEST_SCALE=long or `npm run test:crash`). After each kill the data
 * dir must recover to exactly the acknowledged operations, or those plus the
 * one in flight (a batch is all or nothing): compared by collection digest
 * against a model that replays the operations.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Store } from '../../src/store/store.ts';
import { startNode, repoRoot } from '../helpers/process.ts';
import { scale, tempDir } from '../helpers/tmp.ts';
import { modelDigest } from './crash-workload.ts';

const kills = Number(process.env['VREP_CRASH_KILLS'] ?? scale(8, 60));

test(`crash: ${kills} SIGKILLs during acknowledged fsync=always writes lose nothing and half-apply nothing`, async (t) => {
  const dataDir = tempDir(t, 'vrep-crash-');
  const seed = Math.floor(Math.random() * 2 ** 31);
  t.diagnostic(`seed ${seed}`);
  let acked = 0; // operations [0, acked) are acknowledged
  let snapshotsSeen = 0;
  for (let round = 0; round < kills; round++) {
    const child = startNode([
      '--import',
      'tsx',
      path.join(repoRoot, 'test/store/crash-child.ts'),
      dataDir,
      String(seed),
      String(acked),
    ]);
    t.after(() => child.kill());
    await child.waitForLine(/^READY/, 30_000);
    await new Promise((r) => setTimeout(r, 50 + Math.random() * 400));
    child.kill('SIGKILL');
    await child.exited(10_000);
    for (const m of child.stdout().matchAll(/^ACK (\d+)$/gm)) acked = Math.max(acked, Number(m[1]) + 1);

    const store = await Store.open({ dataDir, fsync: 'no' });
    try {
      const got = store.digest('c');
      const ok = got === modelDigest(seed, acked) || got === modelDigest(seed, acked + 1);
      assert.ok(
        ok,
        `round ${round} (seed ${seed}): state is neither the ${acked} acknowledged operations nor one more`,
      );
      if (store.recovery.snapshotLsn > 0) snapshotsSeen++;
    } finally {
      await store.close();
    }
  }
  assert.ok(acked > kills, `the child made progress (${acked} operations acknowledged)`);
  t.diagnostic(
    `${acked} operations acknowledged over ${kills} kills; recovered from a snapshot ${snapshotsSeen} times`,
  );
});
