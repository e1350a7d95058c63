/**
 * One validation for every way points enter a node: the TS API (`write`),
 * packed batches (`writePacked`), the binary batch and the JSON batch (each
 * decoded as the HTTP API does, then `writePacked`). Each path takes the
 * same points and refuses the same points, against ApiLimits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ApiLimits,
  ReplicationNode,
  decodeBinaryBatch,
  encodeBinaryBatch,
  isVrepError,
  parseJsonPoints,
} from '../../src/index.ts';
import { tempDir } from '../helpers/tmp.ts';

const DIM = 2;
const encoder = new TextEncoder();

/** JSON text of a payload whose deepest value sits inside `depth` objects. */
function nestedText(depth: number): string {
  return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

/** JSON text of a payload of exactly `bytes` bytes. */
function sizedText(bytes: number): string {
  return `{"k":"${'x'.repeat(bytes - '{"k":""}'.length)}"}`;
}

interface Case {
  name: string;
  id: string;
  /** The payload's JSON text, or a byte form that no JS object produces. */
  payload: string | Uint8Array;
  /** Undefined: every path accepts it. */
  refused?: RegExp;
}

const cases: Case[] = [
  { name: 'id at the limit (2-byte chars)', id: 'é'.repeat(ApiLimits.maxIdBytes / 2), payload: '{}' },
  {
    name: 'id one byte over',
    id: 'x'.repeat(ApiLimits.maxIdBytes + 1),
    payload: '{}',
    refused: new RegExp(
      `^points\\[0\\]\\.id: ${ApiLimits.maxIdBytes + 1} bytes, limit ${ApiLimits.maxIdBytes}$`,
    ),
  },
  { name: 'deepest payload allowed', id: 'deep', payload: nestedText(ApiLimits.maxPayloadDepth) },
  {
    name: 'payload one level too deep',
    id: 'too-deep',
    payload: nestedText(ApiLimits.maxPayloadDepth + 1),
    refused: new RegExp(`^points\\[0\\]\\.payload: nested deeper than ${ApiLimits.maxPayloadDepth} levels$`),
  },
  { name: 'payload at the size limit', id: 'big', payload: sizedText(ApiLimits.maxPayloadBytes) },
  {
    name: 'payload one byte over',
    id: 'too-big',
    payload: sizedText(ApiLimits.maxPayloadBytes + 1),
    refused: new RegExp(
      `^points\\[0\\]\\.payload: ${ApiLimits.maxPayloadBytes + 1} bytes, limit ${ApiLimits.maxPayloadBytes}$`,
    ),
  },
  {
    name: 'payload an array',
    id: 'arr',
    payload: '[1,2]',
    refused: /^points\[0\]\.payload: expected (a JSON object|an object or null), got array$/,
  },
];

// Byte forms only the packed and binary paths can carry (JSON text and JS objects cannot).
const byteCases: Case[] = [
  {
    name: 'payload not JSON',
    id: 'p',
    payload: encoder.encode('{"a":'),
    refused: /^points\[0\]\.payload: not valid JSON/,
  },
  {
    name: 'payload not UTF-8',
    id: 'p',
    payload: Uint8Array.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]),
    refused: /^points\[0\]\.payload: not valid UTF-8$/,
  },
  {
    name: 'payload nested 5000 deep (used to crash every reader)',
    id: 'p',
    payload: encoder.encode(nestedText(5000)),
    refused: /^points\[0\]\.payload: nested deeper than/,
  },
  {
    name: 'payload two JSON texts',
    id: 'p',
    payload: encoder.encode('{} {}'),
    refused: /^points\[0\]\.payload: not valid JSON/,
  },
];

type Path = (node: ReplicationNode, c: Case) => Promise<unknown>;

const bytesOf = (payload: string | Uint8Array): Uint8Array =>
  typeof payload === 'string' ? encoder.encode(payload) : payload;
const vector = (): Float32Array => Float32Array.of(1, 2);

const paths: Record<string, Path> = {
  'TS API write': async (node, c) =>
    node.write('c', [
      { id: c.id, vector: vector(), payload: JSON.parse(c.payload as string) as Record<string, unknown> },
    ]),
  writePacked: async (node, c) =>
    node.writePacked('c', { ids: [c.id], vectors: vector(), payloads: [bytesOf(c.payload)] }),
  'binary batch': async (node, c) => {
    const body = encodeBinaryBatch({ ids: [c.id], vectors: vector(), dimension: DIM });
    // Splice the payload bytes in as sent (encodeBinaryBatch only takes objects).
    const payload = bytesOf(c.payload);
    const withPayload = new Uint8Array(body.length + payload.length);
    withPayload.set(body);
    withPayload.set(payload, body.length);
    const view = new DataView(withPayload.buffer);
    view.setUint32(16, payload.length, true);
    view.setUint32(20 + 4, payload.length, true);
    return node.writePacked('c', decodeBinaryBatch(withPayload, DIM));
  },
  'JSON batch': async (node, c) => {
    const text = `{"points":[{"id":${JSON.stringify(c.id)},"vector":[1,2],"payload":${c.payload as string}}]}`;
    const batch = parseJsonPoints(encoder.encode(text), { dimension: DIM });
    const payloads = [batch.payloadBytes.subarray(batch.payloadOffsets[0], batch.payloadOffsets[1])];
    return node.writePacked('c', { ids: batch.ids, vectors: batch.vectors, payloads });
  },
};

async function expectRefused(attempt: Promise<unknown>, re: RegExp, label: string): Promise<void> {
  await assert.rejects(attempt, (e: unknown) => {
    // The JSON parser refuses sizes itself (ERR_JSON_POINT); everything else is the store's ERR_INVALID_INPUT.
    assert.ok(
      isVrepError(e, 'ERR_INVALID_INPUT') || isVrepError(e, 'ERR_JSON_POINT'),
      `${label}: ${String(e)}`,
    );
    assert.match((e as Error).message, re, label);
    return true;
  });
}

test('every write path takes the same points and refuses the same points', async (t) => {
  const node = await ReplicationNode.start({ dataDir: tempDir(t) });
  t.after(() => node.stop());
  await node.createCollection('c', { dimension: DIM, metric: 'l2' });
  for (const c of cases) {
    for (const [pathName, write] of Object.entries(paths)) {
      const label = `${c.name} via ${pathName}`;
      if (c.refused === undefined) {
        await write(node, c);
        const got = await node.get('c', c.id);
        assert.deepEqual(got?.payload, JSON.parse(c.payload as string), label);
      } else {
        const before = { lsn: node.lastLsn, digest: node.digest('c') };
        await expectRefused(write(node, c), c.refused, label);
        assert.deepEqual(
          { lsn: node.lastLsn, digest: node.digest('c') },
          before,
          `${label}: nothing written`,
        );
      }
    }
  }
  for (const c of byteCases) {
    for (const pathName of ['writePacked', 'binary batch']) {
      const label = `${c.name} via ${pathName}`;
      const before = { lsn: node.lastLsn, digest: node.digest('c') };
      await expectRefused((paths[pathName] as Path)(node, c), c.refused as RegExp, label);
      assert.deepEqual({ lsn: node.lastLsn, digest: node.digest('c') }, before, `${label}: nothing written`);
    }
  }
});

test('a bad point anywhere in a batch names that point, and the batch writes nothing', async (t) => {
  const node = await ReplicationNode.start({ dataDir: tempDir(t) });
  t.after(() => node.stop());
  await node.createCollection('c', { dimension: DIM, metric: 'l2' });
  const before = node.lastLsn;
  const payloads = [encoder.encode('{"ok":1}'), new Uint8Array(0), encoder.encode(nestedText(100))];
  await expectRefused(
    node.writePacked('c', { ids: ['a', 'b', 'c'], vectors: new Float32Array(3 * DIM), payloads }),
    /^points\[2\]\.payload: nested deeper than 64 levels$/,
    'third point',
  );
  // Payloads are checked a MiB at a time: the index still names the point in a later chunk.
  const many = Array.from({ length: 40 }, () => encoder.encode(sizedText(60_000)));
  many[37] = encoder.encode(nestedText(65));
  await expectRefused(
    node.writePacked('c', {
      ids: many.map((_, i) => `big-${i}`),
      vectors: new Float32Array(many.length * DIM),
      payloads: many,
    }),
    /^points\[37\]\.payload: nested deeper than 64 levels$/,
    'a later chunk',
  );
  // A JS object too deep for the payload limit (JSON.stringify of it may or may not overflow the stack).
  let deep: Record<string, unknown> = { leaf: 1 };
  for (let i = 0; i < 20_000; i++) deep = { a: deep };
  await expectRefused(
    node.write('c', [
      { id: 'a', vector: [1, 2] },
      { id: 'b', vector: [1, 2], payload: deep },
    ]),
    /^points\[1\]\.payload: (nested deeper than 64 levels|not serializable as JSON)/,
    'deep JS object',
  );
  await expectRefused(
    node.write('c', [{ id: 'lone \ud800 surrogate', vector: [1, 2] }]),
    /^points\[0\]\.id: not valid Unicode/,
    'lone surrogate id',
  );
  assert.equal(node.lastLsn, before);
  assert.deepEqual(node.collections(), [{ name: 'c', dimension: DIM, metric: 'l2', count: 0 }]);
});
