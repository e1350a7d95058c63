import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import {
  authProof,
  checkSecret,
  encodeAuthFields,
  newNonce,
  NonceRegistry,
  verifyProof,
  type AuthProofInput,
} from '../../src/transport/peer-auth.ts';
import { isVrepError } from '../../src/errors.ts';

const SECRET = 'correct horse battery staple';

/** One side of a handshake: what it announced in its HELLO. */
interface Hello {
  nodeId: string;
  clusterId: string;
  term: number;
  nonce: Uint8Array;
}

function hello(nodeId: string, term: number, clusterId = 'prod'): Hello {
  return { nodeId, clusterId, term, nonce: newNonce() };
}

/** The proof input for `from` proving itself to `to`, as both sides compute it. */
function inputFor(
  secret: string,
  from: Hello,
  to: Hello,
  direction: AuthProofInput['direction'],
  clusterId = to.clusterId,
): AuthProofInput {
  return {
    secret,
    clusterId,
    senderNodeId: from.nodeId,
    receiverNodeId: to.nodeId,
    senderNonce: from.nonce,
    receiverNonce: to.nonce,
    senderTerm: from.term,
    direction,
  };
}

test('the right secret is accepted in both directions', () => {
  const dialer = hello('node-a', 7);
  const listener = hello('node-b', 7);
  const dialerProof = authProof(inputFor(SECRET, dialer, listener, 'dialer-to-listener'));
  const listenerProof = authProof(inputFor(SECRET, listener, dialer, 'listener-to-dialer'));
  assert.equal(dialerProof.byteLength, 32);
  assert.equal(verifyProof(inputFor(SECRET, dialer, listener, 'dialer-to-listener'), dialerProof), true);
  assert.equal(verifyProof(inputFor(SECRET, listener, dialer, 'listener-to-dialer'), listenerProof), true);
});

test('a proof made with another secret is refused', () => {
  const dialer = hello('node-a', 1);
  const listener = hello('node-b', 1);
  const forged = authProof(inputFor('not the cluster secret!', dialer, listener, 'dialer-to-listener'));
  const expected = inputFor(SECRET, dialer, listener, 'dialer-to-listener');
  assert.equal(verifyProof(expected, forged), false);
});

test('a missing, empty, truncated or padded proof is refused', () => {
  const dialer = hello('node-a', 1);
  const listener = hello('node-b', 1);
  const input = inputFor(SECRET, dialer, listener, 'dialer-to-listener');
  const good = authProof(input);
  assert.equal(verifyProof(input, undefined), false);
  assert.equal(verifyProof(input, new Uint8Array(0)), false);
  assert.equal(verifyProof(input, good.subarray(0, 31)), false);
  assert.equal(verifyProof(input, Buffer.concat([good, Buffer.of(0)])), false);
  // Not a Uint8Array at all (a decoder that produced the wrong type).
  assert.equal(verifyProof(input, 'x'.repeat(32) as unknown as Uint8Array), false);
});

test('a proof replayed from an earlier exchange is refused: the verifier nonce is fresh', () => {
  const dialer = hello('node-a', 3);
  const firstListener = hello('node-b', 3);
  const recorded = authProof(inputFor(SECRET, dialer, firstListener, 'dialer-to-listener'));
  // Later, an attacker replays the dialer's HELLO (same nonce) and AUTH on a new connection.
  const laterListener = { ...firstListener, nonce: newNonce() };
  const replayInput = inputFor(SECRET, dialer, laterListener, 'dialer-to-listener');
  assert.equal(verifyProof(replayInput, recorded), false);
  // And the listener's registry refuses the repeated HELLO nonce before any proof is checked.
  const seen = new NonceRegistry({ capacity: 16, maxAgeMs: 60_000 });
  assert.equal(seen.remember(dialer.nonce, 1000), true);
  assert.equal(seen.remember(dialer.nonce, 2000), false);
});

test('a reflected proof (the verifier own proof sent back) is refused', () => {
  const dialer = hello('node-a', 2);
  const listener = hello('node-b', 2);
  const listenerProof = authProof(inputFor(SECRET, listener, dialer, 'listener-to-dialer'));
  assert.equal(verifyProof(inputFor(SECRET, dialer, listener, 'dialer-to-listener'), listenerProof), false);
  // Same nodes and nonces, only the direction differs.
  assert.equal(verifyProof(inputFor(SECRET, listener, dialer, 'dialer-to-listener'), listenerProof), false);
});

test('a proof for another cluster, another node or another term is refused', () => {
  const dialer = hello('node-a', 5, 'staging');
  const listener = hello('node-b', 5, 'prod');
  // The dialer believes it joins "staging"; the listener expects "prod".
  const proof = authProof(inputFor(SECRET, dialer, listener, 'dialer-to-listener', 'staging'));
  assert.equal(verifyProof(inputFor(SECRET, dialer, listener, 'dialer-to-listener', 'prod'), proof), false);
  const impostor = { ...dialer, nodeId: 'node-c' };
  assert.equal(
    verifyProof(inputFor(SECRET, impostor, listener, 'dialer-to-listener', 'staging'), proof),
    false,
  );
  const otherTerm = { ...dialer, term: 6 };
  assert.equal(
    verifyProof(inputFor(SECRET, otherTerm, listener, 'dialer-to-listener', 'staging'), proof),
    false,
  );
});

test('the MAC input is the documented length-prefixed encoding (known answer)', () => {
  const senderNonce = new Uint8Array(32).fill(0x11);
  const receiverNonce = new Uint8Array(32).fill(0x22);
  const input: AuthProofInput = {
    secret: SECRET,
    clusterId: 'prod',
    senderNodeId: 'node-a',
    receiverNodeId: 'node-b',
    senderNonce,
    receiverNonce,
    senderTerm: 258,
    direction: 'dialer-to-listener',
  };
  const field = (bytes: Uint8Array | string): Buffer => {
    const b = typeof bytes === 'string' ? Buffer.from(bytes) : Buffer.from(bytes);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.byteLength);
    return Buffer.concat([len, b]);
  };
  const term = Buffer.from('0000000000000102', 'hex');
  const expected = Buffer.concat([
    field('vrep-peer-auth-v1'),
    field('prod'),
    field('node-a'),
    field('node-b'),
    field(senderNonce),
    field(receiverNonce),
    field(term),
    field('dialer-to-listener'),
  ]);
  assert.deepEqual(encodeAuthFields(input), expected);
  const mac = createHmac('sha256', SECRET).update(expected).digest();
  assert.deepEqual(Buffer.from(authProof(input)), mac);
});

test('field boundaries cannot be shifted: "ab"+"c" and "a"+"bc" give different proofs', () => {
  const base = inputFor(SECRET, hello('c', 1), hello('x', 1), 'dialer-to-listener');
  const one = { ...base, clusterId: 'ab', senderNodeId: 'c' };
  const two = { ...base, clusterId: 'a', senderNodeId: 'bc' };
  assert.notDeepEqual(encodeAuthFields(one), encodeAuthFields(two));
  assert.notDeepEqual(authProof(one), authProof(two));
});

test('property: changing any one input field changes the proof', () => {
  const id = fc.string({ minLength: 1, maxLength: 40 });
  const nonce = fc.uint8Array({ minLength: 32, maxLength: 32 });
  const input = fc.record({
    secret: fc.string({ minLength: 16, maxLength: 64 }),
    clusterId: id,
    senderNodeId: id,
    receiverNodeId: id,
    senderNonce: nonce,
    receiverNonce: nonce,
    senderTerm: fc.maxSafeNat(),
    direction: fc.constantFrom('dialer-to-listener' as const, 'listener-to-dialer' as const),
  });
  const fields = [
    'secret',
    'clusterId',
    'senderNodeId',
    'receiverNodeId',
    'senderNonce',
    'receiverNonce',
    'senderTerm',
    'direction',
  ] as const;
  const change = fc.record({
    field: fc.constantFrom(...fields),
    text: fc.string({ minLength: 1, maxLength: 40 }),
    byteIndex: fc.nat(31),
    bitIndex: fc.nat(7),
    termDelta: fc.integer({ min: 1, max: 1000 }),
  });
  fc.assert(
    fc.property(input, change, (a, c) => {
      const b: AuthProofInput = { ...a };
      switch (c.field) {
        case 'secret':
          b.secret = a.secret + c.text;
          break;
        case 'clusterId':
        case 'senderNodeId':
        case 'receiverNodeId':
          b[c.field] = a[c.field] === c.text ? `${c.text}!` : c.text;
          break;
        case 'senderNonce':
        case 'receiverNonce': {
          const flipped = Uint8Array.from(a[c.field]);
          flipped[c.byteIndex]! ^= 1 << c.bitIndex;
          b[c.field] = flipped;
          break;
        }
        case 'senderTerm':
          b.senderTerm =
            a.senderTerm >= c.termDelta ? a.senderTerm - c.termDelta : a.senderTerm + c.termDelta;
          break;
        case 'direction':
          b.direction = a.direction === 'dialer-to-listener' ? 'listener-to-dialer' : 'dialer-to-listener';
          break;
      }
      const proofA = authProof(a);
      assert.notDeepEqual(authProof(b), proofA);
      assert.equal(verifyProof(b, proofA), false);
      assert.equal(verifyProof(a, proofA), true);
    }),
    { numRuns: 500 },
  );
});

test('the secret must be a string of at least 16 bytes of UTF-8', () => {
  const refused = (secret: unknown, re: RegExp): void =>
    assert.throws(
      () => checkSecret(secret),
      (err) => isVrepError(err, 'ERR_INVALID_ARG') && re.test(err.message),
    );
  refused('fifteen bytes!!', /at least 16 bytes of UTF-8, got 15/);
  refused('', /at least 16 bytes of UTF-8, got 0/);
  refused(undefined, /must be a string, got undefined/);
  checkSecret('sixteen bytes!!!');
  // Eight two-byte characters are 16 bytes.
  checkSecret('éééééééé');
  const input = inputFor('short', hello('a', 1), hello('b', 1), 'dialer-to-listener');
  assert.throws(() => authProof(input), /at least 16 bytes/);
});

test('malformed inputs are refused with the field named', () => {
  const good = inputFor(SECRET, hello('a', 1), hello('b', 1), 'dialer-to-listener');
  assert.throws(
    () => authProof({ ...good, senderNonce: new Uint8Array(31) }),
    /senderNonce must be 32 bytes, got 31/,
  );
  assert.throws(() => authProof({ ...good, clusterId: '' }), /clusterId must be a non-empty string/);
  assert.throws(() => authProof({ ...good, receiverNodeId: 'x'.repeat(257) }), /receiverNodeId is 257 bytes/);
  assert.throws(
    () => authProof({ ...good, senderTerm: -1 }),
    /senderTerm must be a non-negative safe integer/,
  );
  assert.throws(() => authProof({ ...good, senderTerm: 1.5 }), /senderTerm/);
  assert.throws(
    () => authProof({ ...good, direction: 'sideways' as AuthProofInput['direction'] }),
    /direction must be/,
  );
});

test('newNonce gives 32 fresh random bytes', () => {
  const a = newNonce();
  const b = newNonce();
  assert.equal(a.byteLength, 32);
  assert.notDeepEqual(a, b);
});

test('NonceRegistry refuses a repeated nonce, stays within its capacity and forgets by age', () => {
  const registry = new NonceRegistry({ capacity: 100, maxAgeMs: 10_000 });
  const first = newNonce();
  assert.equal(registry.remember(first, 0), true);
  assert.equal(registry.remember(first, 1), false);
  assert.equal(registry.remember(Uint8Array.from(first), 9_999), false, 'a copy of the same bytes');
  for (let i = 0; i < 1000; i++) {
    assert.equal(registry.remember(newNonce(), 100 + i), true);
    assert.ok(registry.size <= 100);
  }
  assert.equal(registry.size, 100);
  // The newest are still remembered.
  const recent = newNonce();
  registry.remember(recent, 2000);
  assert.equal(registry.remember(recent, 2001), false);
  // Past maxAgeMs everything is forgotten, and the map empties.
  assert.equal(registry.remember(newNonce(), 50_000), true);
  assert.equal(registry.size, 1);
  assert.equal(registry.remember(recent, 50_001), true);
});

test('NonceRegistry checks its limits and its input', () => {
  assert.throws(() => new NonceRegistry({ capacity: 0, maxAgeMs: 1 }), /capacity/);
  assert.throws(() => new NonceRegistry({ capacity: 1.5, maxAgeMs: 1 }), /capacity/);
  assert.throws(() => new NonceRegistry({ capacity: 1, maxAgeMs: 0 }), /maxAgeMs/);
  const registry = new NonceRegistry({ capacity: 1, maxAgeMs: 1 });
  assert.throws(() => registry.remember(new Uint8Array(8), 0), /nonce must be 32 bytes/);
  assert.equal(registry.size, 0);
});
