import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { binding, NativeError } from '../../src/native/addon.ts';
import { isErrorCode, VrepError } from '../../src/errors.ts';

test('the addon loads once and registers the error class', () => {
  assert.equal(typeof binding.setErrorClass, 'function');
  assert.throws(() => (binding.setErrorClass as (x: unknown) => void)(42), TypeError);
  // Re-registering keeps native errors as VrepError with a checked code.
  binding.setErrorClass(NativeError);
  assert.throws(
    () => (binding.crc32c as (data: unknown, previous: unknown) => number)('not bytes', 0),
    (err: unknown) => err instanceof VrepError && err.code === 'ERR_INVALID_ARG',
  );
});

test('every code the addon raises is in the error registry', () => {
  const header = readFileSync(new URL('../../native/errors.h', import.meta.url), 'utf8');
  const codes = [...header.matchAll(/"(ERR_[A-Z0-9_]+)"/g)].map((m) => m[1] as string);
  assert.ok(codes.length >= 10, `codes found in native/errors.h: ${codes.join(', ')}`);
  for (const code of codes) assert.ok(isErrorCode(code), `${code} (native/errors.h) is not in src/errors.ts`);
});

test('a native error with a code the registry lacks becomes ERR_INTERNAL naming it', () => {
  const err = new NativeError('ERR_NOT_A_CODE', 'boom');
  assert.ok(err instanceof VrepError);
  assert.equal(err.code, 'ERR_INTERNAL');
  assert.match(err.message, /unknown code ERR_NOT_A_CODE: boom/);
  assert.equal(new NativeError('ERR_CORRUPT_FRAME', 'bad').code, 'ERR_CORRUPT_FRAME');
});
