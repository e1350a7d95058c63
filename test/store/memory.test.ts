/**
 * Memory: 1M vectors of dim 128 in one collection use no more than 1.3x the
 * raw vector bytes in RSS above the empty process (store open, collection
 * created). Measured in a fresh child process with forced GC. The figure
 * includes everything a write leaves behind: vector chunks, ids, the id map,
 * and the in-memory circular log filled to its capacity.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startNode, repoRoot } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

// ASan's allocator (redzones, quarantine) inflates RSS: the figure means nothing there.
const underSanitizer = (process.env['LD_PRELOAD'] ?? '').includes('libasan');

test(
  '1M x 128 vectors cost at most 1.3x their raw bytes in RSS',
  { skip: underSanitizer && 'RSS is not meaningful under ASan' },
  async (t) => {
    const child = startNode([
      '--expose-gc',
      '--import',
      'tsx',
      path.join(repoRoot, 'test/store/memory-child.ts'),
      tempDir(t),
      '1000000',
      '128',
    ]);
    t.after(() => child.kill());
    assert.equal(await child.exited(300_000), 0, child.stderr());
    const result = JSON.parse(child.stdout().trim().split('\n').at(-1) as string) as {
      ratio: number;
      addedBytes: number;
      rawBytes: number;
    };
    t.diagnostic(
      `RSS added ${(result.addedBytes / 2 ** 20).toFixed(0)} MiB for ${(result.rawBytes / 2 ** 20).toFixed(0)} MiB of raw vectors: ${result.ratio.toFixed(3)}x`,
    );
    assert.ok(result.ratio <= 1.3, `ratio ${result.ratio.toFixed(3)} over 1.3`);
  },
);
