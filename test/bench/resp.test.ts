/**
 * The replication bench's hand-written RESP client (bench/lib/redis.ts):
 * replies parse whole or not at all, whatever the TCP chunking; commands
 * encode byte for byte as Redis expects.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  encodeCommand,
  encodeSetBatch,
  parseReply,
  RedisReplyError,
  type Reply,
} from '../../bench/lib/redis.ts';
import { batchIds, vectorPool } from '../../bench/lib/seeded.ts';

function encodeReply(r: Reply): Buffer {
  if (r === null) return Buffer.from('$-1\r\n');
  if (typeof r === 'number') return Buffer.from(`:${r}\r\n`);
  if (typeof r === 'string') return Buffer.from(`+${r}\r\n`);
  if (r instanceof RedisReplyError) return Buffer.from(`-${r.message}\r\n`);
  if (Buffer.isBuffer(r)) return Buffer.concat([Buffer.from(`$${r.length}\r\n`), r, Buffer.from('\r\n')]);
  return Buffer.concat([Buffer.from(`*${r.length}\r\n`), ...r.map(encodeReply)]);
}

const simple = fc.stringMatching(/^[A-Za-z0-9 _:=]{0,20}$/);
const reply: fc.Arbitrary<Reply> = fc.letrec<{ r: Reply }>((tie) => ({
  r: fc.oneof(
    { depthSize: 'small' },
    simple,
    fc.integer(),
    fc.constant(null),
    fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
    simple.map((m) => new RedisReplyError(m)),
    fc.array(tie('r'), { maxLength: 4 }),
  ),
})).r;

function normalize(r: Reply): unknown {
  if (r instanceof RedisReplyError) return { error: r.message };
  if (Buffer.isBuffer(r)) return { bulk: r.toString('hex') };
  if (Array.isArray(r)) return r.map(normalize);
  return r;
}

test('parseReply: a prefix of a reply parses to nothing, the whole reply to itself', () => {
  fc.assert(
    fc.property(reply, fc.nat(), (r, cutSeed) => {
      const bytes = encodeReply(r);
      const cut = cutSeed % bytes.length;
      assert.equal(parseReply(bytes.subarray(0, cut), 0), undefined);
      const parsed = parseReply(bytes, 0);
      assert.ok(parsed);
      assert.equal(parsed.end, bytes.length);
      assert.deepEqual(normalize(parsed.value), normalize(r));
    }),
  );
});

test('parseReply: an unknown type byte is an error, not a hang', () => {
  assert.throws(() => parseReply(Buffer.from('!x\r\n'), 0), /unexpected type byte/);
});

test('encodeCommand and encodeSetBatch: RESP arrays of bulk strings with the vector bytes', () => {
  assert.equal(
    encodeCommand(['WAIT', '1', '100']).toString(),
    '*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$3\r\n100\r\n',
  );
  const dim = 3;
  const [vectors] = vectorPool(7, dim, 2);
  assert.ok(vectors);
  const ids = batchIds('v', 1, 2);
  assert.deepEqual(ids, ['v2', 'v3']);
  const buf = encodeSetBatch(ids, vectors, dim);
  const value = (i: number): Buffer => Buffer.from(vectors.buffer, i * dim * 4, dim * 4);
  const expected = Buffer.concat(ids.map((id, i) => Buffer.concat([encodeCommand(['SET', id, value(i)])])));
  assert.deepEqual(buf, expected);
});

test('vectorPool: same seed, same bytes; another seed, other bytes', () => {
  const a = vectorPool(1, 8, 4);
  assert.deepEqual(a, vectorPool(1, 8, 4));
  assert.notDeepEqual(a[0], vectorPool(2, 8, 4)[0]);
  for (const v of a) for (const x of v) assert.ok(x >= -1 && x < 1);
});
