import { test } from 'node:test';
import assert from 'node:assert/strict';
import { binding } from '../../src/native/addon.ts';
import { firstInvalidJsonObject, JSON_MAX_DEPTH } from '../../src/native/json-objects.ts';
import { isVrepError } from '../../src/errors.ts';

const encoder = new TextEncoder();

/** The texts back to back, with their offsets. */
function pack(texts: (string | Uint8Array)[]): [Uint8Array, Uint32Array] {
  const parts = texts.map((t) => (typeof t === 'string' ? encoder.encode(t) : t));
  const offsets = new Uint32Array(parts.length + 1);
  parts.forEach((p, i) => (offsets[i + 1] = (offsets[i] as number) + p.length));
  const bytes = new Uint8Array(offsets[parts.length] as number);
  parts.forEach((p, i) => bytes.set(p, offsets[i]));
  return [bytes, offsets];
}

function check(texts: (string | Uint8Array)[], maxDepth = 8): ReturnType<typeof firstInvalidJsonObject> {
  const [bytes, offsets] = pack(texts);
  return firstInvalidJsonObject(bytes, offsets, maxDepth);
}

/** An object whose deepest value sits inside `depth` containers. */
const nested = (depth: number): string => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

test('objects pass, empty texts are skipped, the first bad one is named with a reason', () => {
  assert.equal(check(['{}', '', ' {"a": [1, {"b": null}]} ', '{"n":100000000000000000000}']), null);
  assert.equal(check([]), null);
  // prettier-ignore
  const cases: [string | Uint8Array, string | RegExp][] = [
    ['[1]', 'expected a JSON object, got array'],
    ['"text"', 'expected a JSON object, got string'],
    ['12', 'expected a JSON object, got number'],
    ['null', 'expected a JSON object, got null'],
    ['true', 'expected a JSON object, got boolean'],
    ['{"a":', /^not valid JSON \(/],
    ['{} {}', /^not valid JSON \(/],
    ['{"a":NaN}', /^not valid JSON \(/],
    ['{"s":"\\ud800"}', /^not valid JSON \(/], // a lone surrogate escape is not Unicode
    [Uint8Array.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), 'not valid UTF-8'],
  ];
  for (const [text, reason] of cases) {
    const problem = check(['{}', '', text, '[]']);
    assert.equal(problem?.index, 2, String(text));
    if (typeof reason === 'string') assert.equal(problem?.reason, reason);
    else assert.match(problem?.reason ?? '', reason);
  }
});

test('depth counts the containers around the deepest value, the payload object included', () => {
  for (const depth of [1, 2, 3, 64, JSON_MAX_DEPTH]) {
    assert.equal(check([nested(depth)], depth), null, `depth ${depth}`);
    assert.deepEqual(check([nested(depth + 1)], depth), {
      index: 0,
      reason: `nested deeper than ${depth} levels`,
    });
  }
  assert.equal(check(['{"a":[[1]]}'], 3), null);
  assert.equal(check(['{"a":[[1]]}'], 2)?.reason, 'nested deeper than 2 levels');
  assert.equal(check(['{"a":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}'], 64)?.index, 0);
  assert.equal(JSON_MAX_DEPTH, 1023);
});

test('bad arguments are errors naming the argument, from the wrapper and from the raw binding', () => {
  const [bytes, offsets] = pack(['{}']);
  assert.throws(() => firstInvalidJsonObject('x' as never, offsets, 4), /\(bytes\): expected a Uint8Array/);
  assert.throws(
    () => firstInvalidJsonObject(bytes, [0, 2] as never, 4),
    /\(offsets\): expected a Uint32Array/,
  );
  assert.throws(() => firstInvalidJsonObject(bytes, offsets, 0), /\(maxDepth\).*out of range/);
  assert.throws(
    () => firstInvalidJsonObject(bytes, offsets, JSON_MAX_DEPTH + 1),
    /\(maxDepth\).*out of range/,
  );
  assert.throws(() => firstInvalidJsonObject(bytes, new Uint32Array(0), 4), /at least 1 offset/);
  assert.throws(() => firstInvalidJsonObject(bytes, Uint32Array.of(2, 1), 4), /offsets\[1\] is smaller/);
  assert.throws(() => firstInvalidJsonObject(bytes, Uint32Array.of(0, 3), 4), /past the end/);
  const raw = new binding.JsonObjectChecker();
  const rawCases: unknown[][] = [
    [],
    ['x', offsets, 4],
    [bytes, [0, 2], 4],
    [bytes, offsets, 0],
    [bytes, offsets, 1.5],
    [bytes, new Uint32Array(0), 4],
    [bytes, Uint32Array.of(2, 1), 4],
    [bytes, Uint32Array.of(0, 3), 4],
  ];
  for (const args of rawCases) {
    assert.throws(
      () => (raw.firstInvalid as (...a: unknown[]) => unknown)(...args),
      (e: unknown) => isVrepError(e, 'ERR_INVALID_ARG'),
    );
  }
  assert.equal(raw.firstInvalid(bytes, offsets, 4), null, 'still usable after bad calls');
});
