/**
 * The ingest bench's bodies (bench/lib/ingest-batches.ts): a pool body
 * retargeted in place carries exactly the ids of the batch it is sent as,
 * in the binary and the JSON form, so the bench writes what it counts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { batchPointIds, bodyTemplates, retarget, tsApiBatches } from '../../bench/lib/ingest-batches.ts';
import { decodeBinaryBatch } from '../../src/server/binary-batch.ts';
import { parseJsonPoints } from '../../src/native/json-points.ts';
import { POOL_BATCHES } from '../../bench/lib/seeded.ts';

const shape = { seed: 3, dim: 4, batchSize: 25, idPrefix: 'q' };

test('retargeted binary and JSON bodies carry batch b ids and the pool slot vectors', () => {
  const ts = tsApiBatches(shape);
  for (const kind of ['binary', 'json'] as const) {
    const t = bodyTemplates(shape, kind);
    for (const [slot, b] of [
      [0, 0],
      [3, 17],
      [POOL_BATCHES - 1, 123_456_789],
      [3, 4],
    ] as const) {
      const body = retarget(t, shape, slot, b);
      const got =
        kind === 'binary'
          ? decodeBinaryBatch(body, shape.dim)
          : parseJsonPoints(body, { dimension: shape.dim });
      assert.deepEqual(got.ids, batchPointIds(shape, b), `${kind} slot ${slot} batch ${b}`);
      assert.deepEqual([...got.vectors], [...(ts.vectors[slot] as Float32Array)], `${kind} vectors`);
    }
  }
  assert.equal(batchPointIds(shape, 2)[0], 'q0000000050');
});
