import { test } from 'node:test';
import assert from 'node:assert/strict';
import { operatorSetHeapGrowth } from '../../src/server/gc-tuning.ts';

test("the operator's heap growing flag, in the node's flags or NODE_OPTIONS, is left alone", () => {
  assert.equal(operatorSetHeapGrowth([], undefined), false);
  assert.equal(
    operatorSetHeapGrowth(['--import', 'tsx', '--max-old-space-size=4096'], '--enable-source-maps'),
    false,
  );
  assert.equal(operatorSetHeapGrowth(['--heap-growing-percent=50'], undefined), true);
  assert.equal(operatorSetHeapGrowth(['--heap_growing_percent', '50'], undefined), true);
  assert.equal(operatorSetHeapGrowth([], '--enable-source-maps --heap-growing-percent=20'), true);
  assert.equal(operatorSetHeapGrowth(['--heap-growing-percentage=5'], ''), false, 'another flag');
});
