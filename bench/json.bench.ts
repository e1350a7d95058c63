/**
 * JSON vector batches: native simdjson parse (JsonPointsParser) against
 * JSON.parse + Float32Array.from per point, on the same bytes. MB/s is of
 * JSON text; ratios are against the JSON.parse baseline of the same run.
 */
import assert from 'node:assert/strict';
import { emit, isQuick, keep, measure, withRatios, type Row, type Section } from './lib/harness.ts';
import { JsonPointsParser, decodeJsonPoints } from '../src/native/json-points.ts';

interface Shape {
  points: number;
  dimension: number;
}

// Deterministic data (xorshift) so runs compare.
function makeBatch({ points, dimension }: Shape): Uint8Array {
  let state = 0x9e3779b9;
  const random = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const list = [];
  for (let i = 0; i < points; i++) {
    const vector = Array.from({ length: dimension }, () => Math.fround(random() * 2 - 1));
    list.push({ id: `doc-${i}`, vector, payload: { title: `item ${i}`, tags: ['a', 'b'], score: i % 7 } });
  }
  return new TextEncoder().encode(JSON.stringify({ points: list }));
}

const decoder = new TextDecoder();

interface Reference {
  points: { id: string; vector: number[]; payload?: unknown }[];
}

/** The plain-JS way: decode, JSON.parse, copy every vector into one Float32Array. */
function baseline(bytes: Uint8Array): { ids: string[]; vectors: Float32Array } {
  const parsed = JSON.parse(decoder.decode(bytes)) as Reference;
  const dimension = parsed.points[0]?.vector.length ?? 0;
  const vectors = new Float32Array(parsed.points.length * dimension);
  const ids: string[] = new Array(parsed.points.length);
  parsed.points.forEach((p, i) => {
    vectors.set(Float32Array.from(p.vector), i * dimension);
    ids[i] = p.id;
  });
  return { ids, vectors };
}

const shapes: Shape[] = isQuick()
  ? [
      { points: 100, dimension: 768 },
      { points: 1000, dimension: 128 },
    ]
  : [
      { points: 1000, dimension: 768 },
      { points: 10_000, dimension: 128 },
    ];

const parser = new JsonPointsParser();
const sections: Section[] = [];
for (const shape of shapes) {
  const bytes = makeBatch(shape);
  const megabytes = bytes.length / 1e6;
  const options = { dimension: shape.dimension, maxPoints: shape.points };
  // The two paths must agree before their speeds mean anything.
  const native = parser.parse(bytes, options);
  const reference = baseline(bytes);
  assert.deepEqual(native.ids, reference.ids);
  assert.deepEqual(native.vectors, reference.vectors);

  const baseName = 'JSON.parse + Float32Array.from per point';
  const cases: { name: string; fn: () => unknown; note?: string }[] = [
    { name: baseName, fn: () => baseline(bytes) },
    {
      name: 'JSON.parse only (decode + parse, no copy)',
      fn: () => JSON.parse(decoder.decode(bytes)),
      note: 'ceiling of the JS path',
    },
    { name: 'native JsonPointsParser.parse (raw payload bytes)', fn: () => parser.parse(bytes, options) },
    { name: 'native decodeJsonPoints (payloads JSON.parsed)', fn: () => decodeJsonPoints(bytes, options) },
  ];
  // The machine is shared: cases are interleaved over a few rounds and each
  // keeps its best round, so a burst of load hits all of them alike.
  const best = new Map<string, number>();
  for (let round = 0; round < (isQuick() ? 1 : 3); round++) {
    for (const c of cases)
      best.set(c.name, Math.max(best.get(c.name) ?? 0, measure(c.fn).opsPerSec * megabytes));
  }
  const rows: Row[] = cases.map((c) => ({
    name: c.name,
    value: best.get(c.name) ?? 0,
    unit: 'MB/s',
    ...(c.note === undefined ? {} : { note: c.note }),
  }));
  keep(rows);
  sections.push({
    title: `${shape.points} points x ${shape.dimension} dims, small payloads (${megabytes.toFixed(1)} MB of JSON)`,
    rows: withRatios(rows, baseName),
  });
}

emit('json', sections);
