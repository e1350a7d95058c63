/**
 * A linearizability checker for a history of reads and writes on registers,
 * one register per key, after porcupine and Knossos:
 * - P-compositionality: a history is linearizable iff each key's
 *   sub-history is, so every key is checked on its own (Herlihy & Wing).
 * - Wing & Gong's search: walk the calls and returns in time order, try to
 *   linearize each op whose call comes before the first pending return,
 *   backtrack when that return is reached with its op still unplaced.
 * - Lowe's memoization: two search paths that reach the same set of
 *   linearized ops with the same register value have the same future, so
 *   each (set, value) pair is explored once.
 * On top of these, a few moves and cuts that only a register allows (each
 * argued where it is made) keep a few dozen concurrent ops and unanswered
 * writes per key from multiplying the search; test/sim/linearizability.test.ts
 * holds them against a brute-force search.
 *
 * Ops that were never answered return at +infinity: such a write may take
 * effect at any time after its call, or never (linearized after everything,
 * where nothing observes it). A read that was never answered constrains
 * nothing and is dropped.
 *
 * Two intervals that only touch (one returns at t, the other is called at t)
 * count as concurrent: virtual clocks tick coarsely, and a checker should
 * not reject a history for an order it cannot see.
 *
 * Deterministic and iterative: no clock, no randomness, no recursion.
 */

export interface RegisterOp {
  /** Who issued it (for messages). */
  client: string;
  key: string;
  kind: 'write' | 'read';
  /** write: the value written; read: the value observed, null = the key was absent. */
  value: number | null;
  /** Virtual time the call was made. */
  callMs: number;
  /** Virtual time the answer came; null = never answered (indeterminate: it may have taken effect at any time after callMs, or never). */
  returnMs: number | null;
}

export type LinearizabilityResult =
  | { ok: true; keys: number; ops: number }
  | { ok: false; key: string; explanation: string }
  | { ok: 'unknown'; key: string; reason: string };

/** Search steps allowed per key before the answer is 'unknown'. */
export const DEFAULT_MAX_STEPS = 5_000_000;

/** How many ops a failure message lists before it says "and N more". */
const MESSAGE_OPS = 8;

type KeyResult =
  | { ok: true }
  | { ok: false; key: string; explanation: string }
  | { ok: 'unknown'; key: string; reason: string };

/**
 * Checks that the history has a linearization in which every key behaves as
 * a register starting absent (null). `maxSteps` bounds the search of each key.
 */
export function checkLinearizable(
  ops: readonly RegisterOp[],
  opts: { maxSteps?: number } = {},
): LinearizabilityResult {
  const maxSteps = opts.maxSteps ?? DEFAULT_MAX_STEPS;
  const byKey = new Map<string, RegisterOp[]>();
  for (const op of ops) {
    validate(op);
    let list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, (list = []));
    list.push(op);
  }
  // Sorted so that which failing key is reported does not depend on input order.
  const keys = [...byKey.keys()].sort();
  let firstUnknown: KeyResult | null = null;
  for (const key of keys) {
    const result = checkKey(key, byKey.get(key)!, maxSteps);
    // A definite violation on any key outranks a key whose search gave up.
    if (result.ok === false) return result;
    if (result.ok === 'unknown' && firstUnknown === null) firstUnknown = result;
  }
  if (firstUnknown !== null && firstUnknown.ok === 'unknown') return firstUnknown;
  return { ok: true, keys: keys.length, ops: ops.length };
}

function validate(op: RegisterOp): void {
  if (!Number.isFinite(op.callMs)) throw new RangeError(`callMs must be finite: ${formatOp(op)}`);
  if (op.returnMs !== null && !(op.returnMs >= op.callMs)) {
    throw new RangeError(`returnMs must be null or at least callMs: ${formatOp(op)}`);
  }
}

/** An op as the search sees it. */
interface SearchOp {
  op: RegisterOp;
  /** When it must have taken effect by; for an unanswered write, see checkKey. */
  returnMs: number;
  /** The op's value as a small integer: 0 is null (absent). */
  valueId: number;
  isWrite: boolean;
  /** An unanswered write that may, at returnMs, be declared to have never happened. */
  mayBeVoid: boolean;
}

function checkKey(key: string, ops: readonly RegisterOp[], maxSteps: number): KeyResult {
  const answeredReads = ops.filter((op) => op.kind === 'read' && op.returnMs !== null);
  const readReturnsByValue = new Map<number | null, number[]>();
  for (const read of answeredReads) {
    let list = readReturnsByValue.get(read.value);
    if (list === undefined) readReturnsByValue.set(read.value, (list = []));
    list.push(read.returnMs!);
  }
  const writersOf = new Map<number | null, number>();
  const firstWriteCallMs = new Map<number | null, number>();
  for (const op of ops) {
    if (op.kind !== 'write') continue;
    writersOf.set(op.value, (writersOf.get(op.value) ?? 0) + 1);
    firstWriteCallMs.set(op.value, Math.min(firstWriteCallMs.get(op.value) ?? Infinity, op.callMs));
  }

  // A read of a value no write could have produced yet needs no search, and
  // says so more plainly than a search's dead end would.
  for (const read of answeredReads) {
    if (read.value === null) continue;
    const firstCallMs = firstWriteCallMs.get(read.value);
    if (firstCallMs === undefined) {
      return { ok: false, key, explanation: `${formatOp(read)}, a value no write to this key wrote` };
    }
    if (firstCallMs > read.returnMs!) {
      return {
        ok: false,
        key,
        explanation: `${formatOp(read)}, before any write of ${read.value} was called (the first at ${firstCallMs} ms)`,
      };
    }
  }

  const valueIds = new Map<number | null, number>([[null, 0]]);
  const idOf = (value: number | null): number => {
    let id = valueIds.get(value);
    if (id === undefined) valueIds.set(value, (id = valueIds.size));
    return id;
  };

  const searchOps: SearchOp[] = [];
  for (const op of ops) {
    const isWrite = op.kind === 'write';
    if (op.returnMs !== null) {
      searchOps.push({ op, returnMs: op.returnMs, valueId: idOf(op.value), isWrite, mayBeVoid: false });
      continue;
    }
    if (!isWrite) continue;
    // An unanswered write that some linearization places after every read
    // of its value can move to the end there, as if it never happened: no
    // read saw it. So either it never happened, or it precedes a read of its
    // value, which it can only do by that read's answer.
    const readerReturns = (readReturnsByValue.get(op.value) ?? []).filter((ms) => ms >= op.callMs);
    if (readerReturns.length === 0) continue;
    if (op.value !== null && writersOf.get(op.value) === 1) {
      // The only writer of a value some read saw did happen, before every such read.
      searchOps.push({
        op,
        returnMs: readerReturns.reduce((a, b) => Math.min(a, b)),
        valueId: idOf(op.value),
        isWrite,
        mayBeVoid: false,
      });
    } else {
      searchOps.push({
        op,
        returnMs: readerReturns.reduce((a, b) => Math.max(a, b)),
        valueId: idOf(op.value),
        isWrite,
        mayBeVoid: true,
      });
    }
  }
  return searchKey(key, searchOps, maxSteps);
}

/** How an op got onto the search stack. */
const Move = {
  /** One of several open ops tried in turn: on backtracking, try the next. */
  Choice: 0,
  /** The only move worth trying here: on backtracking, undo further. */
  Forced: 1,
  /** An unanswered write declared never to have happened, at its deadline: nothing is left to try here either. */
  Void: 2,
} as const;
type Move = (typeof Move)[keyof typeof Move];

/**
 * The search over one key's ops. Calls and returns sit in a doubly linked
 * list in time order; placing an op unlinks its call and return, and
 * backtracking links them back in reverse (dancing links), so each step is
 * O(1) apart from the memo lookup and a scan of the open ops.
 */
function searchKey(key: string, ops: readonly SearchOp[], maxSteps: number): KeyResult {
  const opCount = ops.length;
  if (opCount === 0) return { ok: true };

  // Entry 0 is the list head; entries 1..2n are calls and returns in time order.
  const events: SearchEvent[] = [];
  ops.forEach((op, opIndex) => {
    events.push({ timeMs: op.op.callMs, isCall: true, opIndex });
    events.push({ timeMs: op.returnMs, isCall: false, opIndex });
  });
  // Calls before returns at equal times: touching intervals are concurrent.
  // Array.prototype.sort is stable, so ties keep input order: deterministic.
  events.sort((a, b) => a.timeMs - b.timeMs || Number(b.isCall) - Number(a.isCall));

  const NIL = -1;
  const entryCount = events.length + 1;
  const next = new Int32Array(entryCount);
  const prev = new Int32Array(entryCount);
  const entryOp = new Int32Array(entryCount);
  const entryIsCall = new Uint8Array(entryCount);
  const callEntryOf = new Int32Array(opCount);
  const returnEntryOf = new Int32Array(opCount);
  for (let entry = 0; entry < entryCount; entry++) {
    next[entry] = entry + 1 < entryCount ? entry + 1 : NIL;
    prev[entry] = entry - 1;
  }
  events.forEach((event, i) => {
    const entry = i + 1;
    entryOp[entry] = event.opIndex;
    entryIsCall[entry] = event.isCall ? 1 : 0;
    if (event.isCall) callEntryOf[event.opIndex] = entry;
    else returnEntryOf[event.opIndex] = entry;
  });
  const unlink = (entry: number): void => {
    const before = prev[entry]!;
    const after = next[entry]!;
    next[before] = after;
    if (after !== NIL) prev[after] = before;
  };
  const relink = (entry: number): void => {
    const before = prev[entry]!;
    const after = next[entry]!;
    next[before] = entry;
    if (after !== NIL) prev[after] = entry;
  };

  const words = Math.ceil(opCount / 32);
  const linearized = new Uint32Array(words);
  // Zobrist hashing: the set's hash is the XOR of its members' codes, so
  // adding or removing an op updates it in O(1).
  const codeA = new Int32Array(opCount);
  const codeB = new Int32Array(opCount);
  for (let i = 0; i < opCount; i++) {
    codeA[i] = mix32(2 * i + 1);
    codeB[i] = mix32(2 * i + 2);
  }
  let hashA = 0;
  let hashB = 0;
  const flip = (opIndex: number): void => {
    linearized[opIndex >>> 5]! ^= 1 << (opIndex & 31);
    hashA ^= codeA[opIndex]!;
    hashB ^= codeB[opIndex]!;
  };
  const isPlaced = (opIndex: number): boolean => (linearized[opIndex >>> 5]! & (1 << (opIndex & 31))) !== 0;
  const seen = new SeenStates(words);

  // How many unplaced reads want each value, and how many unplaced writes
  // could still produce it. A value no unplaced read wants is as good as any
  // other such value: the memo files them all as DEAD.
  let valueCount = 1;
  for (const op of ops) valueCount = Math.max(valueCount, op.valueId + 1);
  const DEAD = valueCount;
  const readsWanting = new Int32Array(valueCount);
  const writesLeft = new Int32Array(valueCount);
  for (const op of ops) {
    if (op.isWrite) writesLeft[op.valueId]!++;
    else readsWanting[op.valueId]!++;
  }

  // Per value, its reads by answer and its writes by call, for the cut in place().
  const readsOf: number[][] = Array.from({ length: valueCount }, () => []);
  const writesOf: number[][] = Array.from({ length: valueCount }, () => []);
  ops.forEach((op, opIndex) => (op.isWrite ? writesOf : readsOf)[op.valueId]!.push(opIndex));
  for (const list of readsOf) list.sort((a, b) => ops[a]!.returnMs - ops[b]!.returnMs);
  for (const list of writesOf) list.sort((a, b) => ops[a]!.op.callMs - ops[b]!.op.callMs);
  /** Whether the value, once overwritten, can come back for the unplaced read of it that answers first. */
  const canComeBack = (valueId: number): boolean => {
    const reader = readsOf[valueId]!.find((opIndex) => !isPlaced(opIndex));
    if (reader === undefined) return true;
    const writer = writesOf[valueId]!.find((opIndex) => !isPlaced(opIndex));
    return writer !== undefined && ops[writer]!.op.callMs <= ops[reader]!.returnMs;
  };

  // Unanswered writes of one value with one deadline differ only in their
  // calls, and the one called earlier may go wherever a later one may: so
  // they are placed in order of call (twinBefore: the one called just
  // before), and the search never tries the orders of a few dozen of them.
  const twinBefore = new Int32Array(opCount).fill(-1);
  const lastTwin = new Map<string, number>();
  const byCall = ops.map((_, i) => i).sort((a, b) => ops[a]!.op.callMs - ops[b]!.op.callMs);
  for (const opIndex of byCall) {
    const op = ops[opIndex]!;
    if (!op.mayBeVoid) continue;
    const twinKey = `${op.valueId}@${op.returnMs}`;
    twinBefore[opIndex] = lastTwin.get(twinKey) ?? -1;
    lastTwin.set(twinKey, opIndex);
  }
  const twinPlaced = (opIndex: number): boolean => {
    const twin = twinBefore[opIndex]!;
    return twin === -1 || isPlaced(twin);
  };

  // The explicit stack: which call was placed at each depth, the value
  // before it, and how it got there.
  const stackEntry = new Int32Array(opCount);
  const stackValue = new Int32Array(opCount);
  const stackMove = new Uint8Array(opCount);
  let depth = 0;
  let value = 0;
  let longest: Prefix = { entries: new Int32Array(0), moves: new Uint8Array(0), valueId: 0 };

  /**
   * Places the op of a call entry, unless the (set, value) it leads to was
   * seen before, or a write would overwrite a value that an unplaced read
   * wants and no unplaced write called by that read's answer can bring
   * back: the read could never be placed, and finding that out only at its
   * return is what makes searches blow up.
   */
  const place = (entry: number, move: Move): boolean => {
    const opIndex = entryOp[entry]!;
    const op = ops[opIndex]!;
    if (move === Move.Choice && op.mayBeVoid && !readCanFollow(op.valueId)) return false;
    const valueAfter = op.isWrite && move !== Move.Void ? op.valueId : value;
    if (valueAfter !== value && readsWanting[value]! > 0) {
      if (writesLeft[value] === 0) return false;
      flip(opIndex);
      const strands = !canComeBack(value);
      flip(opIndex);
      if (strands) return false;
    }
    if (op.isWrite) writesLeft[op.valueId]!--;
    else readsWanting[op.valueId]!--;
    flip(opIndex);
    if (!seen.add(linearized, hashA, hashB, readsWanting[valueAfter] === 0 ? DEAD : valueAfter)) {
      flip(opIndex);
      if (op.isWrite) writesLeft[op.valueId]!++;
      else readsWanting[op.valueId]!++;
      return false;
    }
    stackEntry[depth] = entry;
    stackValue[depth] = value;
    stackMove[depth] = move;
    depth++;
    value = valueAfter;
    unlink(entry);
    unlink(returnEntryOf[opIndex]!);
    if (depth > longest.entries.length) {
      longest = { entries: stackEntry.slice(0, depth), moves: stackMove.slice(0, depth), valueId: value };
    }
    return true;
  };
  /**
   * Whether a read of the value could come right after a write of it, with
   * at most unanswered writes declared void in between. If none can, an
   * unanswered write of it taking effect now is overwritten unseen: the
   * same as its never happening, which its deadline offers anyway.
   */
  const readCanFollow = (valueId: number): boolean => {
    for (let entry = next[0]!; entry !== NIL; entry = next[entry]!) {
      const op = ops[entryOp[entry]!]!;
      if (entryIsCall[entry] === 1) {
        if (!op.isWrite && op.valueId === valueId) return true;
      } else if (!op.mayBeVoid) return false;
    }
    return false;
  };
  /** Undoes the last placement; returns its call entry. */
  const unplace = (): number => {
    depth--;
    const entry = stackEntry[depth]!;
    const opIndex = entryOp[entry]!;
    const op = ops[opIndex]!;
    value = stackValue[depth]!;
    flip(opIndex);
    if (op.isWrite) writesLeft[op.valueId]!++;
    else readsWanting[op.valueId]!++;
    relink(returnEntryOf[opIndex]!);
    relink(entry);
    return entry;
  };
  /**
   * An open op (called before the first unplaced return) that some full
   * order, if any exists, places next, so no alternative needs trying:
   * - a read of the current value: moved to the front of any full order,
   *   every op still sees the same value, and nothing unplaced returned
   *   before its call;
   * - when no unplaced read wants the current value, a write whose value
   *   none wants either: moved to the front, no read sees a different value.
   */
  const forcedMove = (): number => {
    const valueDead = readsWanting[value] === 0;
    for (let entry = next[0]!; entryIsCall[entry] === 1; entry = next[entry]!) {
      const opIndex = entryOp[entry]!;
      const op = ops[opIndex]!;
      if (op.isWrite) {
        if (valueDead && readsWanting[op.valueId] === 0 && twinPlaced(opIndex)) return entry;
      } else if (op.valueId === value) return entry;
    }
    return NIL;
  };

  let steps = 0;
  // NIL: a configuration just entered; otherwise the entry to try next in it.
  let entry = NIL;
  while (next[0] !== NIL) {
    if (++steps > maxSteps) {
      return {
        ok: 'unknown',
        key,
        reason:
          `key "${key}": the search gave up after ${maxSteps} steps over ${opCount} ops ` +
          `(${seen.size} states seen; the longest linearizable prefix orders ${longest.entries.length})`,
      };
    }
    let exhausted = false;
    if (entry === NIL) {
      const forced = forcedMove();
      if (forced !== NIL) {
        if (place(forced, Move.Forced)) continue;
        exhausted = true;
      } else entry = next[0]!;
    }
    if (!exhausted) {
      // No open read fits (it would have been forced): branch on the open writes in turn.
      while (entryIsCall[entry] === 1 && !(ops[entryOp[entry]!]!.isWrite && twinPlaced(entryOp[entry]!))) {
        entry = next[entry]!;
      }
      if (entryIsCall[entry] === 1) {
        if (place(entry, Move.Choice)) entry = NIL;
        else entry = next[entry]!;
        continue;
      }
      // The first unplaced return: an unanswered write may still have never happened.
      if (ops[entryOp[entry]!]!.mayBeVoid && place(callEntryOf[entryOp[entry]!]!, Move.Void)) {
        entry = NIL;
        continue;
      }
    }
    // A return whose op is not placed: nothing later may go first. Undo down
    // to the last choice that has alternatives.
    for (;;) {
      if (depth === 0) return { ok: false, key, explanation: explainFailure(key, ops, events, longest) };
      const move = stackMove[depth - 1];
      const placed = unplace();
      if (move === Move.Choice) {
        entry = next[placed]!;
        break;
      }
    }
  }
  return { ok: true };
}

interface SearchEvent {
  timeMs: number;
  isCall: boolean;
  opIndex: number;
}

/** The deepest the search got: the call entries it had placed, how, and the value they left. */
interface Prefix {
  entries: Int32Array;
  moves: Uint8Array;
  valueId: number;
}

/**
 * The set of (linearized set, register value) pairs the search has entered,
 * stored flat: one arena of bitsets, chained by a Map from a 53-bit hash. A
 * hash hit is confirmed against the stored bitset, since a false hit would
 * prune a live branch and report a linearizable history as not.
 */
class SeenStates {
  size = 0;
  private bits: Uint32Array;
  private values: Int32Array;
  private chain: Int32Array;
  private readonly heads = new Map<number, number>();

  constructor(private readonly words: number) {
    const capacity = 1024;
    this.bits = new Uint32Array(capacity * words);
    this.values = new Int32Array(capacity);
    this.chain = new Int32Array(capacity);
  }

  /** Adds the pair; false if it was already there. */
  add(set: Uint32Array, hashA: number, hashB: number, value: number): boolean {
    const valueCode = mix32(value + 0x51ed);
    const hash = ((hashA ^ valueCode) >>> 0) * 0x200000 + ((hashB ^ Math.imul(valueCode, 0x2c1b3c6d)) >>> 11);
    const head = this.heads.get(hash);
    for (let slot = head ?? -1; slot !== -1; slot = this.chain[slot]!) {
      if (this.values[slot] === value && this.sameSet(slot, set)) return false;
    }
    if (this.size === this.values.length) this.grow();
    const slot = this.size++;
    this.bits.set(set, slot * this.words);
    this.values[slot] = value;
    this.chain[slot] = head ?? -1;
    this.heads.set(hash, slot);
    return true;
  }

  private sameSet(slot: number, set: Uint32Array): boolean {
    const base = slot * this.words;
    for (let w = 0; w < this.words; w++) if (this.bits[base + w] !== set[w]) return false;
    return true;
  }

  private grow(): void {
    const capacity = this.values.length * 2;
    const bits = new Uint32Array(capacity * this.words);
    bits.set(this.bits);
    this.bits = bits;
    const values = new Int32Array(capacity);
    values.set(this.values);
    this.values = values;
    const chain = new Int32Array(capacity);
    chain.set(this.chain);
    this.chain = chain;
  }
}

/**
 * Says where the search got furthest: the longest prefix it could order, the
 * key's value there, and the ops that were open at that point (called before
 * the first unplaced return), with why each one cannot go next where it is
 * plain.
 */
function explainFailure(
  key: string,
  ops: readonly SearchOp[],
  events: readonly SearchEvent[],
  longest: Prefix,
): string {
  const placedOps = new Set<number>();
  for (const entry of longest.entries) placedOps.add(events[entry - 1]!.opIndex);
  const open: SearchOp[] = [];
  let blocking: SearchOp | undefined;
  for (const event of events) {
    if (placedOps.has(event.opIndex)) continue;
    if (event.isCall) open.push(ops[event.opIndex]!);
    else {
      blocking = ops[event.opIndex]!;
      break;
    }
  }
  const unplaced = ops.filter((_, i) => !placedOps.has(i));
  const valueId = longest.valueId;
  // A read still waiting for the current value, when no write is left to bring it back.
  const stranded = unplaced.some((op) => op.isWrite && op.valueId === valueId)
    ? undefined
    : unplaced.find((op) => !op.isWrite && op.valueId === valueId);
  const keyValue = valueId === 0 ? null : valueOfId(ops, valueId);
  const prefix = [...longest.entries].map((entry, i) => {
    const op = ops[events[entry - 1]!.opIndex]!.op;
    return longest.moves[i] === Move.Void ? `${formatOp(op)} (never took effect)` : formatOp(op);
  });
  const lines = [
    `key "${key}" is not linearizable.`,
    prefix.length === 0
      ? 'No op can go first (the key starts absent).'
      : `The longest linearizable prefix orders ${prefix.length} of ${ops.length} ops` +
        `${prefix.length > 3 ? ', ending' : ':'} ${prefix.slice(-3).join('; ')}; ` +
        `it leaves the key ${formatState(keyValue)}.`,
    'None of the ops open there leads to a full order:',
  ];
  for (const op of open.slice(0, MESSAGE_OPS)) {
    let why = '';
    if (!op.isWrite && op.valueId !== valueId) why = ` (the key is ${formatState(keyValue)})`;
    else if (op.isWrite && op.valueId !== valueId && stranded !== undefined) {
      why = ` (after it the key is never ${formatState(keyValue)} again, as ${formatOp(stranded.op)} needs)`;
    }
    lines.push(`  ${formatOp(op.op)}${why}`);
  }
  if (open.length > MESSAGE_OPS) lines.push(`  and ${open.length - MESSAGE_OPS} more`);
  if (blocking !== undefined) {
    const bound =
      blocking.op.returnMs === null
        ? `${blocking.returnMs} ms, when ${blocking.mayBeVoid ? 'the last' : 'the first'} read that saw its value returned${blocking.mayBeVoid ? ', or never' : ''}`
        : `${blocking.returnMs} ms`;
    lines.push(
      `and nothing called later may go first: ${formatOp(blocking.op)} had to take effect by ${bound}.`,
    );
  }
  return lines.join('\n');
}

function valueOfId(ops: readonly SearchOp[], valueId: number): number | null {
  for (const op of ops) if (op.valueId === valueId) return op.op.value;
  return null;
}

function formatState(value: number | null): string {
  return value === null ? 'absent' : `at ${value}`;
}

function formatOp(op: RegisterOp): string {
  const what = op.kind === 'write' ? `write ${op.value ?? 'absent'}` : `read saw ${op.value ?? 'absent'}`;
  return `${what} by ${op.client} [${op.callMs}..${op.returnMs ?? 'never'} ms]`;
}

/** splitmix32's finalizer: spreads consecutive integers over 32 bits. */
function mix32(x: number): number {
  let z = Math.imul(x, 0x9e3779b9);
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return z ^ (z >>> 16);
}
