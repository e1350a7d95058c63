/**
 * The linearizability checker (test/sim/linearizability.ts): hand-made
 * histories for each rule, a brute-force reference on small random
 * histories, simulated registers that must pass and one-read mutations of
 * them that must fail, and a few thousand ops that must finish.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkLinearizable, type LinearizabilityResult, type RegisterOp } from './linearizability.ts';

function write(
  client: string,
  key: string,
  value: number | null,
  callMs: number,
  returnMs: number | null,
): RegisterOp {
  return { client, key, kind: 'write', value, callMs, returnMs };
}

function read(
  client: string,
  key: string,
  value: number | null,
  callMs: number,
  returnMs: number | null,
): RegisterOp {
  return { client, key, kind: 'read', value, callMs, returnMs };
}

function assertOk(result: LinearizabilityResult): void {
  assert.equal(result.ok, true, JSON.stringify(result));
}

function assertViolation(result: LinearizabilityResult, key: string): string {
  assert.equal(result.ok, false, JSON.stringify(result));
  assert.ok(result.ok === false);
  assert.equal(result.key, key);
  return result.explanation;
}

/** mulberry32: a tiny seeded generator, so every history here replays. */
function seededRandom(seed: number): { below: (n: number) => number; chance: (p: number) => boolean } {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  return { below: (n) => Math.floor(next() * n), chance: (p) => next() < p };
}

test('sequential histories are linearizable', () => {
  const ops = [
    read('a', 'x', null, 0, 1),
    write('a', 'x', 1, 2, 3),
    read('b', 'x', 1, 4, 5),
    write('b', 'x', 2, 6, 7),
    read('a', 'x', 2, 8, 9),
    write('a', 'x', null, 10, 11),
    read('b', 'x', null, 12, 13),
  ];
  assert.deepEqual(checkLinearizable(ops), { ok: true, keys: 1, ops: 7 });
  assert.deepEqual(checkLinearizable([]), { ok: true, keys: 0, ops: 0 });
});

test('a read concurrent with two overlapping writes may see either value', () => {
  for (const seen of [1, 2]) {
    assertOk(
      checkLinearizable([write('a', 'x', 1, 0, 10), write('b', 'x', 2, 0, 10), read('c', 'x', seen, 5, 15)]),
    );
  }
  // The two writes ordered differently for two readers in turn: 1 then 2 is one order.
  assertOk(
    checkLinearizable([
      write('a', 'x', 1, 0, 10),
      write('b', 'x', 2, 0, 10),
      read('c', 'x', 1, 1, 3),
      read('d', 'x', 2, 4, 6),
    ]),
  );
  // A read during the writes may still see the key absent.
  assertOk(
    checkLinearizable([write('a', 'x', 1, 0, 10), write('b', 'x', 2, 0, 10), read('c', 'x', null, 5, 15)]),
  );
});

test('a stale read, after a later write returned, is caught', () => {
  const explanation = assertViolation(
    checkLinearizable([write('a', 'x', 1, 0, 10), write('b', 'x', 2, 20, 30), read('c', 'x', 1, 40, 50)]),
    'x',
  );
  // The message names the read that could not be placed, with its times and value.
  assert.match(explanation, /read saw 1 by c \[40\.\.50 ms\]/);
  assert.match(explanation, /write 2 by b \[20\.\.30 ms\] \(after it the key is never at 1 again/);
  // The key absent after a write returned is stale too.
  assertViolation(checkLinearizable([write('a', 'x', 1, 0, 10), read('c', 'x', null, 11, 12)]), 'x');
});

test('a read that only touches a write is concurrent with it', () => {
  // Returned at 10, called at 10: either order.
  assertOk(checkLinearizable([write('a', 'x', 1, 0, 10), read('b', 'x', null, 10, 20)]));
  assertViolation(checkLinearizable([write('a', 'x', 1, 0, 10), read('b', 'x', null, 11, 20)]), 'x');
});

test('a read of a value never written is caught', () => {
  const explanation = assertViolation(
    checkLinearizable([write('a', 'x', 1, 0, 10), read('b', 'x', 7, 20, 30)]),
    'x',
  );
  assert.match(explanation, /read saw 7 by b \[20\.\.30 ms\], a value no write to this key wrote/);
  // Written only after the read had returned.
  assert.match(
    assertViolation(checkLinearizable([read('b', 'x', 1, 0, 5), write('a', 'x', 1, 6, 10)]), 'x'),
    /before any write of 1 was called/,
  );
});

test('reads going back to an older value are caught', () => {
  const history = (first: number, second: number): RegisterOp[] => [
    write('a', 'x', 1, 0, 10),
    write('b', 'x', 2, 20, 100),
    read('c', 'x', first, 30, 40),
    read('d', 'x', second, 50, 60),
  ];
  assertOk(checkLinearizable(history(1, 2)));
  assertOk(checkLinearizable(history(1, 1)));
  assertOk(checkLinearizable(history(2, 2)));
  assertViolation(checkLinearizable(history(2, 1)), 'x');
});

test('a write that was never answered may have happened or not', () => {
  const before = [write('a', 'x', 1, 0, 10), write('b', 'x', 2, 20, null)];
  assertOk(checkLinearizable([...before, read('c', 'x', 2, 30, 40)]));
  assertOk(checkLinearizable([...before, read('c', 'x', 1, 30, 40)]));
  // It may take effect long after its client gave up on it.
  assertOk(checkLinearizable([...before, read('c', 'x', 1, 30, 40), read('c', 'x', 2, 1000, 1010)]));
  // But never before it was called.
  assertViolation(checkLinearizable([...before, read('c', 'x', 2, 5, 15)]), 'x');
  // A read that was never answered constrains nothing, whatever value it carries.
  assertOk(checkLinearizable([...before, read('c', 'x', 99, 30, null)]));
});

test('a write that was never answered may not have happened, though a read of its value answered after its call', () => {
  // The read of 2 saw a's write (it must precede c's write of 1); d's write of 2 could only
  // take effect after c's, and then the last read would see 2: so it never happened.
  const ops = [
    write('a', 'x', 2, 0, 1),
    read('b', 'x', 2, 1, 10),
    write('c', 'x', 1, 2, 3),
    write('d', 'x', 2, 4, null),
    read('e', 'x', 1, 11, 12),
  ];
  assertOk(checkLinearizable(ops));
  // Had d's write been answered, it did happen, and the history is not linearizable.
  assertViolation(checkLinearizable(ops.map((op) => (op.client === 'd' ? { ...op, returnMs: 5 } : op))), 'x');
});

test('a write that was never answered, seen and then unseen, is caught', () => {
  const seenThenUnseen = [
    write('a', 'x', 1, 0, 10),
    write('b', 'x', 2, 20, null),
    read('c', 'x', 2, 30, 40),
    read('d', 'x', 1, 50, 60),
  ];
  assert.match(
    assertViolation(checkLinearizable(seenThenUnseen), 'x'),
    /write 2 by b \[20\.\.never ms\] \(after it the key is never at 1 again, as read saw 1 by d/,
  );
  // Two unanswered writes of the same value: either could be the one seen, and still neither undoes the other.
  assertViolation(checkLinearizable([...seenThenUnseen, write('e', 'x', 2, 25, null)]), 'x');
  // A second unanswered write of 1, after the read of 2, does explain it.
  assertOk(checkLinearizable([...seenThenUnseen, write('e', 'x', 1, 45, null)]));
});

test('keys are independent', () => {
  // As one register this would be a stale read; as two it is fine.
  assertOk(
    checkLinearizable([write('a', 'x', 1, 0, 10), write('b', 'y', 2, 20, 30), read('c', 'x', 1, 40, 50)]),
  );
  // A value written to another key was never written to this one.
  assertViolation(checkLinearizable([write('a', 'x', 1, 0, 10), read('b', 'y', 1, 20, 30)]), 'y');
  // The failing key is named, whatever order the keys come in.
  const result = checkLinearizable([
    write('a', 'b', 1, 0, 10),
    read('a', 'b', 1, 11, 12),
    write('a', 'a', 1, 0, 10),
    read('a', 'a', null, 11, 12),
    read('a', 'c', null, 11, 12),
  ]);
  assertViolation(result, 'a');
  assert.deepEqual(checkLinearizable([write('a', 'b', 1, 0, 10), read('a', 'c', null, 11, 12)]), {
    ok: true,
    keys: 2,
    ops: 2,
  });
});

test('a search past maxSteps is unknown, and a definite violation on another key outranks it', () => {
  const busy = Array.from({ length: 10 }, (_, i) => write(`c${i}`, 'a', i + 1, 0, 10));
  const unknown = checkLinearizable(busy, { maxSteps: 3 });
  assert.equal(unknown.ok, 'unknown');
  assert.ok(unknown.ok === 'unknown');
  assert.equal(unknown.key, 'a');
  assert.match(unknown.reason, /gave up after 3 steps/);
  const violated = checkLinearizable([...busy, write('a', 'b', 1, 0, 10), read('a', 'b', 2, 20, 30)], {
    maxSteps: 3,
  });
  assertViolation(violated, 'b');
  assertOk(checkLinearizable(busy));
});

test('ops that return before their call are refused', () => {
  assert.throws(() => checkLinearizable([write('a', 'x', 1, 10, 5)]), RangeError);
  assert.throws(() => checkLinearizable([read('a', 'x', 1, NaN, 5)]), RangeError);
});

/**
 * The reference: every order of the ops, one at a time, each op only after
 * all ops that returned before its call, each read seeing the last write.
 * Exponential, so only for a handful of ops.
 */
function bruteForceLinearizable(ops: readonly RegisterOp[]): boolean {
  const live = ops.filter((op) => op.kind === 'write' || op.returnMs !== null);
  const returnMs = (op: RegisterOp): number => op.returnMs ?? Infinity;
  const placed = new Array<boolean>(live.length).fill(false);
  const values = new Map<string, number | null>();
  const search = (count: number): boolean => {
    if (count === live.length) return true;
    for (let i = 0; i < live.length; i++) {
      const op = live[i]!;
      if (placed[i]) continue;
      // Some unplaced op returned before this one was called: it must go first.
      if (live.some((other, j) => !placed[j] && returnMs(other) < op.callMs)) continue;
      const before = values.get(op.key) ?? null;
      if (op.kind === 'read' && op.value !== before) continue;
      placed[i] = true;
      if (op.kind === 'write') values.set(op.key, op.value);
      const found = search(count + 1);
      values.set(op.key, before);
      placed[i] = false;
      if (found) return true;
    }
    return false;
  };
  return search(0);
}

test('small random histories agree with a brute-force search', () => {
  const opArb = fc.record({
    client: fc.constantFrom('a', 'b', 'c'),
    key: fc.constantFrom('x', 'x', 'y'),
    kind: fc.constantFrom<'write' | 'read'>('write', 'read'),
    // 0 stands for null: absent for reads, a delete for writes.
    value: fc.integer({ min: 0, max: 3 }),
    callMs: fc.integer({ min: 0, max: 20 }),
    durationMs: fc.integer({ min: 0, max: 10 }),
    // 0: never answered (a third of them), to exercise the writes that may never have happened.
    answered: fc.integer({ min: 0, max: 2 }),
  });
  let linearizable = 0;
  let notLinearizable = 0;
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 8 }), (drawn) => {
      const ops: RegisterOp[] = drawn.map((d) => ({
        client: d.client,
        key: d.key,
        kind: d.kind,
        value: d.value === 0 ? null : d.value,
        callMs: d.callMs,
        returnMs: d.answered === 0 ? null : d.callMs + d.durationMs,
      }));
      const expected = bruteForceLinearizable(ops);
      const result = checkLinearizable(ops);
      assert.notEqual(result.ok, 'unknown');
      assert.equal(result.ok, expected, JSON.stringify(ops));
      if (expected) linearizable++;
      else notLinearizable++;
    }),
    { seed: 20240611, numRuns: 3000 },
  );
  // Both answers must come up, or the comparison proves little.
  assert.ok(linearizable > 500 && notLinearizable > 500, `${linearizable} / ${notLinearizable}`);
});

interface SimulatedHistory {
  ops: RegisterOp[];
  /** Reads that were answered: the candidates for a mutation. */
  answeredReads: RegisterOp[];
}

/**
 * Clients issue ops one after another against real registers; each op takes
 * effect at a random moment inside [call, return]. An unanswered write takes
 * effect some time after its call, or never; the client gives up on it and
 * goes on. Written values are unique per history.
 */
function simulateRegisters(
  seed: number,
  shape: {
    clients: number;
    keys: number;
    opsPerClient: number;
    maxDurationMs: number;
    unansweredShare: number;
    /** Draw written values from 1..this (so they repeat), rather than unique ones. */
    valueRange?: number;
  },
): SimulatedHistory {
  const random = seededRandom(seed);
  const ops: RegisterOp[] = [];
  const effects: { atMs: number; order: number; op: RegisterOp }[] = [];
  let nextValue = 1;
  for (let c = 0; c < shape.clients; c++) {
    let nowMs = random.below(5);
    for (let i = 0; i < shape.opsPerClient; i++) {
      const key = `k${random.below(shape.keys)}`;
      const isWrite = random.chance(0.5);
      const durationMs = random.below(shape.maxDurationMs + 1);
      const answered = !random.chance(shape.unansweredShare);
      const op: RegisterOp = {
        client: `c${c}`,
        key,
        kind: isWrite ? 'write' : 'read',
        value: isWrite
          ? shape.valueRange === undefined
            ? nextValue++
            : 1 + random.below(shape.valueRange)
          : null,
        callMs: nowMs,
        returnMs: answered ? nowMs + durationMs : null,
      };
      ops.push(op);
      if (answered)
        effects.push({ atMs: nowMs + random.below(durationMs + 1), order: random.below(1 << 30), op });
      else if (isWrite && random.chance(0.5)) {
        effects.push({
          atMs: nowMs + random.below(4 * shape.maxDurationMs + 1),
          order: random.below(1 << 30),
          op,
        });
      }
      // A client that got no answer gives up after its timeout and goes on.
      nowMs += durationMs + random.below(3);
    }
  }
  effects.sort((a, b) => a.atMs - b.atMs || a.order - b.order);
  const registers = new Map<string, number | null>();
  for (const { op } of effects) {
    if (op.kind === 'write') registers.set(op.key, op.value);
    else op.value = registers.get(op.key) ?? null;
  }
  for (const op of ops) if (op.kind === 'read' && op.returnMs === null) op.value = 424242;
  return { ops, answeredReads: ops.filter((op) => op.kind === 'read' && op.returnMs !== null) };
}

type Mutation = 'overwritten' | 'absent' | 'never written' | 'written later';

/**
 * Gives one answered read a value no linearization allows; returns which
 * kind of impossible, or null if this read has none of them at hand.
 */
function mutateRead(history: SimulatedHistory, target: RegisterOp, prefer: number): Mutation | null {
  const completedWrites = history.ops.filter(
    (op) => op.key === target.key && op.kind === 'write' && op.returnMs !== null,
  );
  const beforeRead = completedWrites.filter((w) => w.returnMs! < target.callMs);
  // A value overwritten for good: its write returned before another write, which returned before the read's call.
  const overwritten = beforeRead.find((b) =>
    completedWrites.some((a) => a.returnMs! < b.callMs && a.value !== target.value),
  );
  const staleValue = overwritten
    ? completedWrites.find((a) => a.returnMs! < overwritten.callMs && a.value !== target.value)!.value
    : undefined;
  const later = history.ops.find(
    (op) => op.key === target.key && op.kind === 'write' && op.callMs > target.returnMs!,
  );
  const options: [Mutation, number | null | undefined][] = [
    ['overwritten', staleValue],
    ['absent', beforeRead.length > 0 && target.value !== null ? null : undefined],
    ['never written', -1],
    ['written later', later?.value],
  ];
  for (let i = 0; i < options.length; i++) {
    const [kind, value] = options[(prefer + i) % options.length]!;
    if (value === undefined) continue;
    target.value = value;
    return kind;
  }
  return null;
}

test('simulated registers are linearizable, and one impossible read makes them not', () => {
  const caught = new Map<Mutation, number>();
  let runs = 0;
  fc.assert(
    fc.property(
      fc.nat(),
      fc.record({
        clients: fc.integer({ min: 1, max: 6 }),
        keys: fc.integer({ min: 1, max: 3 }),
        opsPerClient: fc.integer({ min: 1, max: 30 }),
        maxDurationMs: fc.integer({ min: 0, max: 20 }),
        unansweredShare: fc.constantFrom(0, 0.05, 0.2, 0.4),
      }),
      // undefined: unique values, which every mutation below relies on.
      fc.constantFrom<number | undefined>(undefined, undefined, undefined, 2, 4),
      fc.nat(),
      (seed, shape, valueRange, pick) => {
        runs++;
        const history = simulateRegisters(seed, valueRange === undefined ? shape : { ...shape, valueRange });
        assertOk(checkLinearizable(history.ops));
        // With values that repeat, no mutation is sure to be impossible.
        if (valueRange !== undefined || history.answeredReads.length === 0) return;
        const target = history.answeredReads[pick % history.answeredReads.length]!;
        const mutation = mutateRead(history, target, pick);
        if (mutation === null) return;
        assertViolation(checkLinearizable(history.ops), target.key);
        caught.set(mutation, (caught.get(mutation) ?? 0) + 1);
      },
    ),
    { seed: 7, numRuns: 400 },
  );
  // Each kind of impossible read came up and was caught, the search-only ones most of all.
  for (const kind of ['overwritten', 'absent', 'never written', 'written later'] as const) {
    assert.ok(
      (caught.get(kind) ?? 0) >= 10,
      `${kind}: ${caught.get(kind) ?? 0} of ${runs} runs, ${JSON.stringify([...caught])}`,
    );
  }
});

test('a few thousand ops on 8 keys, some 20 in flight per key, finish', (t) => {
  // Unique values, as the simulator writes them; ~40 unanswered writes per key.
  const shape = { clients: 160, keys: 8, opsPerClient: 13, maxDurationMs: 40, unansweredShare: 0.3 };
  const history = simulateRegisters(1, shape);
  const unansweredPerKey = history.ops.filter((op) => op.kind === 'write' && op.returnMs === null).length / 8;
  let startMs = performance.now();
  const result = checkLinearizable(history.ops);
  const okMs = performance.now() - startMs;
  assert.deepEqual(result, { ok: true, keys: 8, ops: history.ops.length });

  // The same history with one read pushed back to an overwritten value: a definite no, not 'unknown'.
  const target = history.answeredReads[history.answeredReads.length >> 1]!;
  assert.equal(mutateRead(history, target, 0), 'overwritten');
  startMs = performance.now();
  assertViolation(checkLinearizable(history.ops), target.key);
  const caughtMs = performance.now() - startMs;

  // Values that repeat make the search work harder (no read tells which write it saw).
  const repeating = simulateRegisters(2, { ...shape, valueRange: 50 });
  startMs = performance.now();
  assertOk(checkLinearizable(repeating.ops));
  const repeatingMs = performance.now() - startMs;
  t.diagnostic(
    `${history.ops.length} ops, ~${unansweredPerKey.toFixed(0)} unanswered writes per key: ok in ${okMs.toFixed(0)} ms, ` +
      `one bad read caught in ${caughtMs.toFixed(0)} ms; with repeated values ok in ${repeatingMs.toFixed(0)} ms`,
  );
});
