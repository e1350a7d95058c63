import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { binding } from '../../src/native/addon.ts';
import { VrepError } from '../../src/errors.ts';
import {
  JsonPointsParser,
  MAX_PARALLEL_PARSES,
  decodeJsonPoints,
  parseJsonPoints,
  parseJsonPointsAsync,
  pointPayloadBytes,
  pointPayloadText,
  pointVector,
  type JsonPointsBatch,
  type JsonPointsOptions,
} from '../../src/native/json-points.ts';

const long = process.env['VREP_TEST_SCALE'] === 'long';
const enc = new TextEncoder();
const bytesOf = (text: string): Uint8Array => enc.encode(text);

function parseText(text: string, options?: JsonPointsOptions): JsonPointsBatch {
  return parseJsonPoints(bytesOf(text), options);
}

function assertFloatBits(actual: Float32Array, expected: Float32Array): void {
  assert.equal(actual.length, expected.length);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i])
      assert.fail(`float ${i}: got ${actual[i]} (0x${a[i]?.toString(16)}), expected ${expected[i]}`);
  }
}

test('parses a batch into one Float32Array, ids and raw payload bytes', () => {
  const text =
    '{"points":[{"id":"a","vector":[1, 2.5, -3e2],"payload":{"tags": ["x", "y"], "n": 1}},' +
    '{"vector":[0.1,0,1e-40],"id":42},{"id":"\\u00e9\\n","vector":[1,2,3],"payload":null}]}';
  const batch = parseText(text);
  assert.equal(batch.count, 3);
  assert.equal(batch.dimension, 3);
  assertFloatBits(batch.vectors, Float32Array.from([1, 2.5, -300, 0.1, 0, 1e-40, 1, 2, 3]));
  assert.deepEqual(batch.ids, ['a', '42', 'é\n']);
  // The payload is the source text, byte for byte (spaces included).
  assert.equal(pointPayloadText(batch, 0), '{"tags": ["x", "y"], "n": 1}');
  assert.equal(pointPayloadText(batch, 1), undefined);
  assert.equal(pointPayloadText(batch, 2), undefined);
  assert.deepEqual([...batch.payloadOffsets], [0, 28, 28, 28]);
  assert.equal(pointPayloadBytes(batch, 1).length, 0);
  assertFloatBits(pointVector(batch, 1), Float32Array.from([0.1, 0, 1e-40]));
});

test('an empty batch, an expected dimension and an empty payload object', () => {
  const empty = parseText('{"points":[]}', { dimension: 4 });
  assert.equal(empty.count, 0);
  assert.equal(empty.dimension, 4);
  assert.equal(empty.vectors.length, 0);
  assert.deepEqual([...empty.payloadOffsets], [0]);
  assert.equal(parseText(' { "points" : [ ] } ').dimension, 0);
  const withEmptyPayload = parseText('{"points":[{"id":"x","vector":[1],"payload":{}}]}', { dimension: 1 });
  assert.equal(pointPayloadText(withEmptyPayload, 0), '{}');
});

test('negative zero, big integers and float32 rounding agree with Math.fround(JSON.parse(x))', () => {
  const literals = [
    '-0',
    '-0.0',
    '0',
    '-0e5',
    '100000000000000000000',
    '-123456789012345678901234567890',
    '18446744073709551615',
    '-9223372036854775808',
    '9007199254740993',
    '16777217',
    '3.4028235e38',
    '-3.4028235677973362e38', // just under the halfway point to 2^128: rounds to -FLT_MAX
    '1e-46',
    '1.401298464324817e-45',
    '4.9406564584124654e-324',
    '0.1',
  ];
  const text = `{"points":[{"id":1,"vector":[${literals.join(' , ')}]}]}`;
  const batch = parseText(text);
  const expected = Float32Array.from(literals.map((l) => Math.fround(JSON.parse(l) as number)));
  assertFloatBits(batch.vectors, expected);
  // Big integers in payloads survive the rewrite as equal values.
  const withPayload = parseText(
    '{"points":[{"id":1,"vector":[1],"payload":{"big":200000000000000000000,"s":"99999999999999999999999"}}]}',
  );
  assert.deepEqual(JSON.parse(pointPayloadText(withPayload, 0) ?? ''), {
    big: 2e20,
    s: '99999999999999999999999',
  });
});

test('integer ids become their decimal text, including beyond 2^53', () => {
  const batch = parseText('{"points":[{"id":0,"vector":[1]},{"id":18446744073709551615,"vector":[2]}]}');
  assert.deepEqual(batch.ids, ['0', '18446744073709551615']);
  // Rewriting out-of-range integers for simdjson leaves 64-bit ones alone.
  const mixed = parseText(
    '{"points":[{"id":12345678901234567890,"vector":[18446744073709551616,-9223372036854775809,-9223372036854775808]}]}',
  );
  assert.deepEqual(mixed.ids, ['12345678901234567890']);
  assertFloatBits(mixed.vectors, Float32Array.from([2 ** 64, -(2 ** 63), -(2 ** 63)]));
});

test('decodeJsonPoints gives ids, vectors and parsed payloads', () => {
  const decoded = decodeJsonPoints(
    bytesOf(
      '{"points":[{"id":"a","vector":[1,2],"payload":{"k":[1,{"z":null}]}},{"id":"b","vector":[3,4]}]}',
    ),
  );
  assert.deepEqual(decoded.ids, ['a', 'b']);
  assert.equal(decoded.dimension, 2);
  assertFloatBits(decoded.vectors, Float32Array.from([1, 2, 3, 4]));
  assert.deepEqual(decoded.payloads, [{ k: [1, { z: null }] }, undefined]);
});

// ---- agreement with JSON.parse on random valid batches ----

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface GenPoint {
  id: string | number;
  vector: number[];
  payload?: Record<string, Json> | null;
  order: number;
}

const fieldOrders = [
  ['id', 'vector', 'payload'],
  ['id', 'payload', 'vector'],
  ['vector', 'id', 'payload'],
  ['vector', 'payload', 'id'],
  ['payload', 'id', 'vector'],
  ['payload', 'vector', 'id'],
] as const;

// Doubles whose float32 is finite, with the awkward ones made likely.
const vectorNumber = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => Number.isFinite(Math.fround(x))),
  fc.float({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
  fc.constantFrom(
    -0,
    0,
    5e-324,
    -5e-324,
    2 ** -149,
    1e-45,
    2.2250738585072014e-308,
    1e20,
    -2e20,
    1e21,
    2 ** 53 + 2,
    2 ** 64,
    16777217,
    3.4028234663852886e38,
    -3.4028235677973362e38,
  ),
);

// How a number is written: JSON.stringify, exponent form, 17 digits, plain
// integer digits (exercises simdjson's 64-bit limit), or "-0" for negative zero.
const numberStyle = fc.constantFrom('stringify', 'exponent', 'precision', 'digits');

function writeNumber(x: number, style: string): string {
  if (Object.is(x, -0)) return style === 'stringify' ? '0' : '-0';
  switch (style) {
    case 'exponent':
      return x.toExponential();
    case 'precision':
      return x.toPrecision(17);
    case 'digits':
      return Number.isInteger(x) ? BigInt(x).toString() : JSON.stringify(x);
    default:
      return JSON.stringify(x);
  }
}

const idArb = fc.oneof(
  fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }),
  fc.string({
    unit: fc.constantFrom('"', '\\', '\n', '\u0000', '\u001f', 'é', '😀', '\u2028', 'a'),
    minLength: 1,
  }),
  fc.maxSafeNat(),
);

const payloadArb: fc.Arbitrary<Record<string, Json> | null | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.dictionary(
    fc.string({ unit: 'binary', maxLength: 8 }),
    fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>,
    { maxKeys: 5 },
  ),
);

const batchArb = fc.integer({ min: 1, max: 12 }).chain((dim) =>
  fc.record({
    dim: fc.constant(dim),
    points: fc.array(
      fc.record({
        id: idArb,
        vector: fc.array(vectorNumber, { minLength: dim, maxLength: dim }),
        payload: payloadArb,
        order: fc.nat({ max: 5 }),
      }),
      { maxLength: 8 },
    ) as fc.Arbitrary<GenPoint[]>,
    styles: fc.array(numberStyle, { minLength: 1, maxLength: 7 }),
    spaces: fc.array(fc.constantFrom('', '', ' ', '\n', '\t', '\r\n', '   '), {
      minLength: 1,
      maxLength: 11,
    }),
    pretty: fc.boolean(),
    giveDimension: fc.boolean(),
  }),
);

// Writes the batch with whitespace from `spaces` between every token.
function writeBatch(points: GenPoint[], styles: string[], spaces: string[], pretty: boolean): string {
  let w = 0;
  let s = 0;
  const ws = (): string => spaces[w++ % spaces.length] ?? '';
  const payloadText = (p: Record<string, Json> | null): string =>
    pretty ? JSON.stringify(p, null, 2) : JSON.stringify(p);
  const parts = points.map((p) => {
    const fields: string[] = [];
    for (const name of fieldOrders[p.order] ?? fieldOrders[0]) {
      let value: string;
      if (name === 'id') value = JSON.stringify(p.id);
      else if (name === 'vector')
        value = `[${ws()}${p.vector.map((x) => writeNumber(x, styles[s++ % styles.length] ?? 'stringify')).join(`${ws()},${ws()}`)}${ws()}]`;
      else if (p.payload === undefined) continue;
      else value = payloadText(p.payload);
      fields.push(`${ws()}"${name}"${ws()}:${ws()}${value}${ws()}`);
    }
    return `${ws()}{${fields.join(',')}}${ws()}`;
  });
  return `${ws()}{${ws()}"points"${ws()}:${ws()}[${parts.join(',')}]${ws()}}${ws()}`;
}

test('agrees with JSON.parse on random valid batches (ids, vectors bit-exact, payloads)', () => {
  const parser = new JsonPointsParser();
  fc.assert(
    fc.property(batchArb, ({ dim, points, styles, spaces, pretty, giveDimension }) => {
      const text = writeBatch(points, styles, spaces, pretty);
      const reference = JSON.parse(text) as {
        points: { id: string | number; vector: number[]; payload?: unknown }[];
      };
      const batch = parser.parse(bytesOf(text), giveDimension ? { dimension: dim } : {});
      assert.equal(batch.count, points.length);
      assert.equal(batch.dimension, giveDimension || points.length > 0 ? dim : 0);
      assert.deepEqual(
        batch.ids,
        reference.points.map((p) => String(p.id)),
      );
      assertFloatBits(
        batch.vectors,
        Float32Array.from(reference.points.flatMap((p) => p.vector.map(Math.fround))),
      );
      reference.points.forEach((p, i) => {
        const payload = pointPayloadText(batch, i);
        if (p.payload === undefined || p.payload === null) assert.equal(payload, undefined);
        else assert.deepEqual(JSON.parse(payload ?? ''), p.payload);
      });
    }),
    { numRuns: long ? 5000 : 300 },
  );
});

// ---- malformed batches: code and message ----

const point = (fields: string): string => `{"points":[{"id":"ok","vector":[1,2,3]},${fields}]}`;
const deep = (n: number): string => '['.repeat(n) + ']'.repeat(n);

// One case per line reads as a table.
// prettier-ignore
const malformed: { name: string; text: string | Uint8Array; code: string; message: RegExp; options?: JsonPointsOptions }[] = [
  { name: 'empty input', text: '', code: 'ERR_JSON_SYNTAX', message: /invalid JSON: Empty/ },
  { name: 'whitespace only', text: ' \n ', code: 'ERR_JSON_SYNTAX', message: /invalid JSON/ },
  { name: 'trailing comma', text: '{"points":[{"id":"a","vector":[1],}]}', code: 'ERR_JSON_SYNTAX', message: /invalid JSON/ },
  { name: 'truncated', text: '{"points":[{"id":"a","vector":[1,2', code: 'ERR_JSON_SYNTAX', message: /invalid JSON/ },
  { name: 'truncated string', text: '{"points":[{"id":"a', code: 'ERR_JSON_SYNTAX', message: /invalid JSON/ },
  { name: 'NaN', text: '{"points":[{"id":"a","vector":[NaN]}]}', code: 'ERR_JSON_SYNTAX', message: /NaN and Infinity are not JSON/ },
  { name: 'Infinity', text: '{"points":[{"id":"a","vector":[1,-Infinity]}]}', code: 'ERR_JSON_SYNTAX', message: /NaN and Infinity/ },
  { name: 'single quotes', text: "{'points':[]}", code: 'ERR_JSON_SYNTAX', message: /invalid JSON/ },
  { name: 'two documents', text: '{"points":[]} {}', code: 'ERR_JSON_SYNTAX', message: /invalid JSON/ },
  { name: 'raw control char in string', text: '{"points":[{"id":"a\u0001","vector":[1]}]}', code: 'ERR_JSON_SYNTAX', message: /unescaped/i },
  { name: 'invalid UTF-8', text: Uint8Array.from([...bytesOf('{"points":[{"id":"'), 0xff, 0xfe, ...bytesOf('","vector":[1]}]}')]), code: 'ERR_JSON_SYNTAX', message: /UTF-8/ },
  { name: 'lone surrogate escape', text: '{"points":[{"id":"\\ud800","vector":[1]}]}', code: 'ERR_JSON_SYNTAX', message: /string/i },
  { name: 'extremely deep nesting', text: point(`{"id":"d","vector":[1,2,3],"payload":{"x":${deep(5000)}}}`), code: 'ERR_JSON_SYNTAX', message: /^invalid JSON: points\[1\]\.payload: .*too deep.*limit 1023 levels/ },
  { name: 'extremely deep vector', text: point(`{"id":"d","vector":${deep(1100)}}`), code: 'ERR_JSON_SYNTAX', message: /^invalid JSON: points\[1\]\.vector: .*too deep/ },
  { name: 'extremely deep outside the points', text: `{"other":${deep(1100)}}`, code: 'ERR_JSON_SYNTAX', message: /^invalid JSON: The JSON document was too deep/ },
  { name: 'huge integer with leading zero', text: '{"points":[{"id":"a","vector":[0123456789012345678901]}]}', code: 'ERR_JSON_SYNTAX', message: /number/ },
  { name: 'top level not an object', text: '[{"id":"a","vector":[1]}]', code: 'ERR_JSON_POINT', message: /^batch: expected an object .*got array$/ },
  { name: 'missing points', text: '{}', code: 'ERR_JSON_POINT', message: /^points: missing$/ },
  { name: 'unknown top-level field', text: '{"point":[]}', code: 'ERR_JSON_POINT', message: /^batch: unknown field "point"/ },
  { name: 'duplicate points', text: '{"points":[],"points":[]}', code: 'ERR_JSON_POINT', message: /^points: duplicate field$/ },
  { name: 'points not an array', text: '{"points":{"id":"a"}}', code: 'ERR_JSON_POINT', message: /^points: expected an array, got object$/ },
  { name: 'point not an object', text: point('[1,2,3]'), code: 'ERR_JSON_POINT', message: /^points\[1\]: expected an object, got array$/ },
  { name: 'missing id', text: '{"points":[{"vector":[1]}]}', code: 'ERR_JSON_POINT', message: /^points\[0\]\.id: missing$/ },
  { name: 'empty id', text: point('{"id":"","vector":[1,2,3]}'), code: 'ERR_JSON_POINT', message: /^points\[1\]\.id: empty string$/ },
  { name: 'id object', text: point('{"id":{},"vector":[1,2,3]}'), code: 'ERR_JSON_POINT', message: /^points\[1\]\.id: expected a string or a non-negative integer, got object$/ },
  { name: 'id negative', text: point('{"id":-1,"vector":[1,2,3]}'), code: 'ERR_JSON_POINT', message: /^points\[1\]\.id: .*got negative integer$/ },
  { name: 'id float', text: point('{"id":1.5,"vector":[1,2,3]}'), code: 'ERR_JSON_POINT', message: /^points\[1\]\.id: .*got number with fraction or exponent$/ },
  { name: 'id null', text: point('{"id":null,"vector":[1,2,3]}'), code: 'ERR_JSON_POINT', message: /^points\[1\]\.id: .*got null$/ },
  { name: 'id too long', text: point('{"id":"abcde","vector":[1,2,3]}'), options: { maxIdBytes: 4 }, code: 'ERR_JSON_POINT', message: /^points\[1\]\.id: 5 bytes, limit 4$/ },
  { name: 'duplicate id', text: point('{"id":"a","id":"b","vector":[1,2,3]}'), code: 'ERR_JSON_POINT', message: /^points\[1\]\.id: duplicate field$/ },
  { name: 'missing vector', text: point('{"id":"b"}'), code: 'ERR_JSON_POINT', message: /^points\[1\]\.vector: missing$/ },
  { name: 'vector not an array', text: point('{"id":"b","vector":"1,2,3"}'), code: 'ERR_JSON_POINT', message: /^points\[1\]\.vector: expected an array of numbers, got string$/ },
  { name: 'short vector', text: point('{"id":"b","vector":[1,2]}'), code: 'ERR_JSON_POINT', message: /^points\[1\]\.vector: expected 3 numbers, got 2$/ },
  { name: 'long vector', text: point('{"id":"b","vector":[1,2,3,4]}'), code: 'ERR_JSON_POINT', message: /^points\[1\]\.vector: expected 3 numbers, got 4$/ },
  { name: 'wrong expected dimension', text: '{"points":[{"id":"a","vector":[1,2,3]}]}', options: { dimension: 768 }, code: 'ERR_JSON_POINT', message: /^points\[0\]\.vector: expected 768 numbers, got 3$/ },
  { name: 'empty first vector', text: '{"points":[{"id":"a","vector":[]}]}', code: 'ERR_JSON_POINT', message: /^points\[0\]\.vector: expected at least 1 number, got 0$/ },
  { name: 'string element', text: point('{"id":"b","vector":[1,"x",3]}'), code: 'ERR_JSON_POINT', message: /^points\[1\]\.vector\[1\]: expected a number, got string$/ },
  { name: 'nested array element', text: point('{"id":"b","vector":[1,2,[3]]}'), code: 'ERR_JSON_POINT', message: /^points\[1\]\.vector\[2\]: expected a number, got array$/ },
  { name: 'null element', text: point('{"id":"b","vector":[null,2,3]}'), code: 'ERR_JSON_POINT', message: /^points\[1\]\.vector\[0\]: expected a number, got null$/ },
  { name: 'out of float32 range', text: point('{"id":"b","vector":[1,2,1e39]}'), code: 'ERR_JSON_POINT', message: /^points\[1\]\.vector\[2\]: 1e\+39 is out of float32 range$/ },
  { name: 'halfway to 2^128 rounds to Infinity', text: point('{"id":"b","vector":[1,2,3.4028235677973366e38]}'), code: 'ERR_JSON_POINT', message: /^points\[1\]\.vector\[2\]: 3\.4028235677973366e\+38 is out of float32 range$/ },
  { name: 'huge number', text: point('{"id":"b","vector":[1,-1e300,3]}'), code: 'ERR_JSON_POINT', message: /^points\[1\]\.vector\[1\]: -1e\+300 is out of float32 range$/ },
  { name: 'huge integer digits', text: point(`{"id":"b","vector":[1,${'9'.repeat(50)},3]}`), code: 'ERR_JSON_POINT', message: /^points\[1\]\.vector\[1\]: 1e\+50 is out of float32 range$/ },
  { name: 'number beyond double', text: point('{"id":"b","vector":[1,1e400,3]}'), code: 'ERR_JSON_SYNTAX', message: /number/ },
  { name: 'too many points', text: point('{"id":"b","vector":[1,2,3]}'), options: { maxPoints: 1 }, code: 'ERR_JSON_POINT', message: /^points: 2 points, limit 1$/ },
  { name: 'payload too large', text: point('{"id":"b","vector":[1,2,3],"payload":{"k":"0123456789"}}'), options: { maxPayloadBytes: 15 }, code: 'ERR_JSON_POINT', message: /^points\[1\]\.payload: 18 bytes, limit 15$/ },
  { name: 'payload an array', text: point('{"id":"b","vector":[1,2,3],"payload":[1]}'), code: 'ERR_JSON_POINT', message: /^points\[1\]\.payload: expected an object or null, got array$/ },
  { name: 'payload a string', text: point('{"id":"b","vector":[1,2,3],"payload":"{}"}'), code: 'ERR_JSON_POINT', message: /^points\[1\]\.payload: expected an object or null, got string$/ },
  { name: 'duplicate payload', text: point('{"id":"b","vector":[1,2,3],"payload":{},"payload":null}'), code: 'ERR_JSON_POINT', message: /^points\[1\]\.payload: duplicate field$/ },
  { name: 'unknown point field', text: point('{"id":"b","vectors":[1,2,3]}'), code: 'ERR_JSON_POINT', message: /^points\[1\]: unknown field "vectors" \(allowed: "id", "vector", "payload"\)$/ },
  { name: 'unknown field with escapes', text: point('{"id":"b","vector":[1,2,3],"\\"x\\n":1}'), code: 'ERR_JSON_POINT', message: /^points\[1\]: unknown field "\\"x\\u000a"/ },
  { name: 'input too large', text: '{"points":[]}', options: { maxInputBytes: 12 }, code: 'ERR_JSON_POINT', message: /^batch: 13 bytes, limit 12$/ },
];

test(`${malformed.length} malformed batches each give a precise error`, () => {
  const parser = new JsonPointsParser();
  const good = parser.parse(bytesOf(point('{"id":"b","vector":[4,5,6]}')));
  for (const c of malformed) {
    const input = typeof c.text === 'string' ? bytesOf(c.text) : c.text;
    assert.throws(
      () => parser.parse(input, c.options),
      (err: unknown) => {
        assert.ok(err instanceof VrepError, `${c.name}: not a VrepError: ${String(err)}`);
        assert.equal(err.code, c.code, `${c.name}: code (${err.message})`);
        assert.match(err.message, c.message, c.name);
        return true;
      },
      c.name,
    );
  }
  // Errors leave nothing behind: the same parser still gives the same answer.
  const again = parser.parse(bytesOf(point('{"id":"b","vector":[4,5,6]}')));
  assert.deepEqual(again, good);
});

test('limits are inclusive: exactly at a limit passes', () => {
  const text = point('{"id":"abcd","vector":[1,2,3],"payload":{"k":"0123456789"}}');
  const batch = parseText(text, {
    maxPoints: 2,
    maxIdBytes: 4,
    maxPayloadBytes: 18,
    maxInputBytes: bytesOf(text).length,
  });
  assert.equal(batch.count, 2);
  assert.equal(pointPayloadText(batch, 1), '{"k":"0123456789"}');
  const depth = 1000; // under simdjson's 1024 levels
  const deepBatch = parseText(point(`{"id":"d","vector":[1,2,3],"payload":{"x":${deep(depth)}}}`));
  assert.equal(pointPayloadText(deepBatch, 1), `{"x":${deep(depth)}}`);
});

test('wrapper arguments are checked with precise TypeError/RangeError messages', () => {
  const ok = bytesOf('{"points":[]}');
  const bad: [() => unknown, RegExp][] = [
    [
      () => parseJsonPoints('{"points":[]}' as unknown as Uint8Array),
      /parse\(bytes\): expected a Uint8Array/,
    ],
    [
      () => parseJsonPoints(new Float32Array(4) as unknown as Uint8Array),
      /expected a Uint8Array .*got Float32Array/,
    ],
    [() => parseJsonPoints(ok, 5 as unknown as JsonPointsOptions), /parse\(options\): expected an object/],
    [
      () => parseJsonPoints(ok, { dimensions: 3 } as unknown as JsonPointsOptions),
      /unknown option "dimensions"/,
    ],
    [() => parseJsonPoints(ok, { dimension: -1 }), /options\.dimension.*out of range/],
    [() => parseJsonPoints(ok, { dimension: 65_537 }), /options\.dimension.*out of range/],
    [() => parseJsonPoints(ok, { maxPoints: 1.5 }), /options\.maxPoints.*expected an integer/],
    [() => parseJsonPoints(ok, { maxIdBytes: 0 }), /options\.maxIdBytes.*out of range/],
    [() => parseJsonPoints(ok, { maxInputBytes: 2 ** 32 }), /options\.maxInputBytes.*out of range/],
    [
      () => parseJsonPoints(ok, { maxPayloadBytes: '5' as unknown as number }),
      /options\.maxPayloadBytes.*expected an integer/,
    ],
  ];
  for (const [fn, message] of bad) assert.throws(fn, message);
  const batch = parseJsonPoints(bytesOf('{"points":[{"id":"a","vector":[1]}]}'));
  assert.throws(() => pointVector(batch, 1), RangeError);
  assert.throws(() => pointPayloadText(parseJsonPoints(ok), 0), /no points/);
});

test('the raw native parser rejects wrong arguments with errors, never a crash', () => {
  const native = new binding.JsonPointsParser();
  const parse = native.parse.bind(native) as unknown as (...args: unknown[]) => unknown;
  const ok = bytesOf('{"points":[]}');
  const limits = [0, 10, 10, 10, 100];
  const calls: unknown[][] = [
    [],
    [ok],
    [ok, ...limits, 1],
    ['text', ...limits],
    [new Uint16Array(4), ...limits],
    [new Uint8ClampedArray(4), ...limits],
    [{ length: 3 }, ...limits],
    [ok, -1, 10, 10, 10, 100],
    [ok, 0, Number.NaN, 10, 10, 100],
    [ok, 0, 10, Infinity, 10, 100],
    [ok, 0, 10, 10, 0, 100],
    [ok, 0, 10, 10, 10, 2 ** 40],
    [ok, 0.5, 10, 10, 10, 100],
    [ok, 0, 10, 10, 10, '100'],
    [ok, 0, 2 ** 31, 10, 10, 100],
  ];
  for (const args of calls) {
    assert.throws(
      () => parse(...args),
      (err: unknown) => err instanceof VrepError && err.code === 'ERR_INVALID_ARG',
      `args ${args.length}`,
    );
  }
  assert.throws(() => native.parse.call({} as never, ok, 0, 10, 10, 10, 100), TypeError);
  const Ctor = binding.JsonPointsParser as unknown as () => unknown;
  assert.throws(() => Ctor(), TypeError);
  // A detached buffer reads as empty input.
  const detached = new Uint8Array(new ArrayBuffer(16));
  structuredClone(detached.buffer, { transfer: [detached.buffer] });
  assert.throws(() => native.parse(detached, 0, 10, 10, 10, 100), /Empty/);
  // A view into the middle of a larger buffer reads only its own bytes.
  const big = bytesOf('xx{"points":[{"id":"a","vector":[7]}]}yy');
  const batch = native.parse(big.subarray(2, big.length - 2), 0, 10, 10, 10, 100);
  assert.deepEqual(batch.ids, ['a']);
});

function expectResultOrJsonError(parser: JsonPointsParser, input: Uint8Array): void {
  try {
    const batch = parser.parse(input, { maxPoints: 1000 });
    assert.equal(batch.vectors.length, batch.count * batch.dimension);
    assert.equal(batch.payloadOffsets.length, batch.count + 1);
    assert.equal(batch.payloadOffsets[batch.count], batch.payloadBytes.length);
  } catch (err) {
    if (!(err instanceof VrepError) || !['ERR_JSON_SYNTAX', 'ERR_JSON_POINT'].includes(err.code)) throw err;
    assert.doesNotMatch(err.message, /internal error/);
  }
}

test('random garbage and mutated batches give a result or a JSON error, never a crash', () => {
  const parser = new JsonPointsParser();
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => expectResultOrJsonError(parser, bytes)),
    { numRuns: long ? 20_000 : 500 },
  );
  const seed = bytesOf(
    '{"points":[{"id":"a\\"b","vector":[1,-0,2e3],"payload":{"x":[1,{"y":"\\\\"}],"z":null}},{"id":7,"vector":[1,2,3]}]}',
  );
  const mutation = fc.record({
    at: fc.nat({ max: seed.length - 1 }),
    byte: fc.constantFrom(...bytesOf('{}[]",:\\ 0-e.x'), 0, 0xc3, 0xff),
    mode: fc.constantFrom('replace', 'insert', 'delete', 'truncate'),
  });
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
      let bytes = Array.from(seed);
      for (const m of mutations) {
        const at = m.at % Math.max(1, bytes.length);
        if (m.mode === 'replace') bytes[at] = m.byte;
        else if (m.mode === 'insert') bytes.splice(at, 0, m.byte);
        else if (m.mode === 'delete') bytes.splice(at, 1);
        else bytes = bytes.slice(0, at);
      }
      const input = Uint8Array.from(bytes);
      expectResultOrJsonError(parser, input);
      // Whenever JSON.parse accepts a batch of the right shape, so do we.
      let reference: unknown;
      try {
        reference = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(input));
      } catch {
        return;
      }
      const points = (reference as { points?: unknown } | null)?.points;
      if (!Array.isArray(points)) return;
      const well = points.every(
        (p: unknown) =>
          typeof p === 'object' &&
          p !== null &&
          Object.keys(p).every((k) => ['id', 'vector', 'payload'].includes(k)) &&
          (typeof (p as GenPoint).id === 'string'
            ? (p as GenPoint).id !== ''
            : Number.isSafeInteger((p as GenPoint).id) && ((p as GenPoint).id as number) >= 0) &&
          Array.isArray((p as GenPoint).vector) &&
          (p as GenPoint).vector.length === 3 &&
          (p as GenPoint).vector.every((x) => typeof x === 'number' && Number.isFinite(Math.fround(x))) &&
          ((p as GenPoint).payload === undefined ||
            (typeof (p as GenPoint).payload === 'object' && !Array.isArray((p as GenPoint).payload))),
      );
      if (!well || Object.keys(reference as object).length !== 1) return;
      let batch: JsonPointsBatch;
      try {
        batch = parser.parse(input);
      } catch (err) {
        // JSON.parse keeps the last of duplicate keys; vrep rejects them.
        if (err instanceof VrepError && /: duplicate field$/.test(err.message)) return;
        throw err;
      }
      assert.deepEqual(
        batch.ids,
        points.map((p: GenPoint) => String(p.id)),
      );
      assertFloatBits(
        batch.vectors,
        Float32Array.from(points.flatMap((p: GenPoint) => p.vector.map(Math.fround))),
      );
    }),
    { numRuns: long ? 20_000 : 1000 },
  );
});

test('a parser works in a worker thread (per-instance addon state)', async () => {
  const { Worker } = await import('node:worker_threads');
  const addonPath = new URL('../../build/Release/vrep.node', import.meta.url).pathname;
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    const b = require(workerData);
    const p = new b.JsonPointsParser();
    const r = p.parse(Buffer.from('{"points":[{"id":"w","vector":[1.5,2]}]}'), 0, 10, 10, 10, 1000);
    parentPort.postMessage({ ids: r.ids, vectors: Array.from(r.vectors) });`;
  const worker = new Worker(source, { eval: true, workerData: process.env['VREP_ADDON_PATH'] ?? addonPath });
  const message = await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  assert.deepEqual(message, { ids: ['w'], vectors: [1.5, 2] });
});

// ---- parseJsonPointsAsync: the same parse on libuv's thread pool ----

test('parseJsonPointsAsync gives what the synchronous parse gives, on random valid batches', async () => {
  const texts = fc.sample(batchArb, long ? 2000 : 200).map(({ dim, points, styles, spaces, pretty }) => ({
    dim,
    text: writeBatch(points, styles, spaces, pretty),
  }));
  const parser = new JsonPointsParser();
  // All at once: more than the parse slots and the native decoder pool, so decoders are shared out and reused.
  const results = await Promise.all(texts.map(({ text }) => parseJsonPointsAsync(bytesOf(text))));
  texts.forEach(({ text }, i) => {
    const expected = parser.parse(bytesOf(text));
    const got = results[i] as JsonPointsBatch;
    assert.equal(got.count, expected.count);
    assert.equal(got.dimension, expected.dimension);
    assert.deepEqual(got.ids, expected.ids);
    assertFloatBits(got.vectors, expected.vectors);
    assert.deepEqual(got.payloadBytes, expected.payloadBytes);
    assert.deepEqual(got.payloadOffsets, expected.payloadOffsets);
  });
});

test("parseJsonPointsAsync rejects each malformed batch with the synchronous parse's code and message", async () => {
  const parser = new JsonPointsParser();
  const outcomes = await Promise.allSettled(
    malformed.map((c) =>
      parseJsonPointsAsync(typeof c.text === 'string' ? bytesOf(c.text) : c.text, c.options),
    ),
  );
  malformed.forEach((c, i) => {
    const outcome = outcomes[i] as PromiseSettledResult<JsonPointsBatch>;
    assert.equal(outcome.status, 'rejected', c.name);
    const err = (outcome as PromiseRejectedResult).reason as unknown;
    assert.ok(err instanceof VrepError, `${c.name}: not a VrepError: ${String(err)}`);
    assert.equal(err.code, c.code, `${c.name}: code (${err.message})`);
    assert.match(err.message, c.message, c.name);
    const input = typeof c.text === 'string' ? bytesOf(c.text) : c.text;
    assert.throws(() => parser.parse(input, c.options), { message: err.message }, c.name);
  });
});

test('parseJsonPointsAsync checks its arguments (rejecting), the raw native call throws at once', async () => {
  const ok = bytesOf('{"points":[]}');
  await assert.rejects(
    parseJsonPointsAsync('{"points":[]}' as unknown as Uint8Array),
    /parseJsonPointsAsync\(bytes\): expected a Uint8Array/,
  );
  await assert.rejects(parseJsonPointsAsync(ok, { dimension: -1 }), /options\.dimension.*out of range/);
  await assert.rejects(
    parseJsonPointsAsync(ok, { maxPoint: 3 } as unknown as JsonPointsOptions),
    /unknown option "maxPoint"/,
  );
  const raw = binding.parseJsonPointsAsync as unknown as (...args: unknown[]) => unknown;
  for (const args of [
    [],
    [ok],
    ['text', 0, 10, 10, 10, 100],
    [ok, 0, 10, 10, 0, 100],
    [ok, 0.5, 10, 10, 10, 100],
  ]) {
    assert.throws(
      () => raw(...args),
      (err: unknown) => err instanceof VrepError && err.code === 'ERR_INVALID_ARG',
      `args ${args.length}`,
    );
  }
});

test('parseJsonPointsAsync results own their memory: no two share a buffer, none shares the input', async () => {
  const text = '{"points":[{"id":"a","vector":[1,2],"payload":{"k":1}}]}';
  const input = bytesOf(text);
  const [first, second] = await Promise.all([parseJsonPointsAsync(input), parseJsonPointsAsync(input)]);
  assert.ok(first && second);
  assert.notEqual(first.vectors.buffer, second.vectors.buffer);
  assert.notEqual(first.payloadBytes.buffer, input.buffer);
  first.vectors[0] = 99;
  first.payloadBytes[0] = 0;
  assert.deepEqual([...second.vectors], [1, 2]);
  assert.equal(pointPayloadText(second, 0), '{"k":1}');
  assert.ok(MAX_PARALLEL_PARSES >= 1 && MAX_PARALLEL_PARSES < 4, 'leaves libuv threads for file I/O');
});

test('a large batch with room after it in its buffer is parsed in place: the bytes after it are never taken as text', async () => {
  const dim = 64;
  const points = Array.from({ length: 1200 }, (_, i) => ({
    id: `p${i}`,
    vector: Array.from({ length: dim }, (_, j) => Math.fround(Math.sin(i * dim + j))),
    payload: { i },
  }));
  const text = bytesOf(JSON.stringify({ points }));
  assert.ok(text.length >= 1 << 20, 'large enough to be parsed in place');
  const expected = new JsonPointsParser().parse(text.slice());
  // Room after the batch holding text that would continue or break it, and none at all.
  for (const tail of [
    '',
    ',{"id":"x","vector":[1]}]}',
    ']}garbage"\\',
    '\u0000'.repeat(100),
    'x'.repeat(4096),
  ]) {
    const tailBytes = bytesOf(tail);
    const holder = new Uint8Array(text.length + tailBytes.length + 3);
    holder.set(text, 3);
    holder.set(tailBytes, 3 + text.length);
    const view = holder.subarray(3, 3 + text.length);
    for (const batch of [new JsonPointsParser().parse(view), await parseJsonPointsAsync(view)]) {
      assert.equal(batch.count, expected.count, `tail ${JSON.stringify(tail.slice(0, 10))}`);
      assert.deepEqual(batch.ids, expected.ids);
      assertFloatBits(batch.vectors, expected.vectors);
      assert.deepEqual(batch.payloadBytes, expected.payloadBytes);
    }
    // An error names the same place with room after the text as without.
    const cut = holder.subarray(3, 3 + text.length - 2);
    assert.throws(() => new JsonPointsParser().parse(cut), /invalid JSON/);
    await assert.rejects(parseJsonPointsAsync(cut), /invalid JSON/);
  }
});
