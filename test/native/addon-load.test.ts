import { test } from 'node:test';
import assert from 'node:assert/strict';
import { binding } from '../../src/native/addon.ts';
import { VrepError } from '../../src/errors.ts';

test('the addon loads once and registers the error class', () => {
  assert.equal(typeof binding.setErrorClass, 'function');
  assert.throws(() => (binding.setErrorClass as (x: unknown) => void)(42), TypeError);
  // Re-registering keeps native errors as VrepError.
  binding.setErrorClass(VrepError);
});
