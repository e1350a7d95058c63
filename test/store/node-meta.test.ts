import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Store } from '../../src/store/store.ts';
import { loadNodeMeta, NODE_META_FILE } from '../../src/store/node-meta.ts';
import { isVrepError } from '../../src/errors.ts';
import { tempDir } from '../helpers/tmp.ts';

test('term and vote are durable before setTerm resolves, and survive restart', async (t) => {
  const dataDir = tempDir(t);
  const store = await Store.open({ dataDir, nodeId: 'a' });
  const history = [{ term: 7, historyId: 'ab'.repeat(16), leaderId: 'b', firstLsn: 1 }];
  await store.saveHardState({ term: 7, votedFor: 'b', commit: 0 }, history);
  const saved = (await loadNodeMeta(dataDir))?.meta.hardState;
  assert.deepEqual({ term: saved?.term, vote: saved?.votedFor }, { term: 7, vote: 'b' });
  await store.close();
  const again = await Store.open({ dataDir });
  t.after(() => again.close());
  assert.equal(again.hardState.term, 7);
  assert.equal(again.history.at(-1)?.historyId, history[0]?.historyId);
  assert.equal(again.nodeId, 'a');
});

test('a damaged meta file stops start-up instead of guessing the term', async (t) => {
  const dataDir = tempDir(t);
  await (await Store.open({ dataDir, nodeId: 'a' })).close();
  const file = path.join(dataDir, NODE_META_FILE);
  const good = readFileSync(file, 'utf8');
  for (const bad of [
    good.slice(0, 20),
    good.replace('"term": 0', '"term": -1'),
    good.replace('"nodeId"', '"nodeID"'),
  ]) {
    writeFileSync(file, bad);
    await assert.rejects(
      Store.open({ dataDir }),
      (e: unknown) => isVrepError(e, 'ERR_CORRUPT_META') && (e as Error).message.includes(file),
    );
  }
});
