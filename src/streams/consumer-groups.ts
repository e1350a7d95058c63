/**
 * Consumer groups (docs/change-streams.md, "Consumer groups"): members of
 * one group share a node's change stream, each handling its part, and the
 * group's committed position is a record in the log (Op.GroupPosition), so
 * replicas hold it and it fails over with the leader.
 *
 * - Work is shared by id hash (default) or by collection: with n members,
 *   member k handles the events whose key hashes to k mod n. The members of
 *   a group read from one node, the leader: a group is served only where
 *   writes are taken, since its commits are writes.
 * - A member joining or leaving rebalances the group: every member starts
 *   over from the group's committed position with its new share (Kafka's
 *   eager rebalance). Events after that position may come again, to the
 *   member that now owns them: at-least-once, duplicates only after the
 *   last committed position.
 * - The group's position is the oldest of its members': a member that has
 *   committed everything it was handed counts at the last record its stream
 *   went past (its share of the records in between is empty), so an idle
 *   member does not hold the group back.
 * - Commits are proposed one at a time per group (the newest target
 *   replaces a waiting one), at Quorum: a commit that resolved survives a
 *   failover.
 */
import { VrepError } from '../errors.ts';
import type { GroupPosition } from '../log/record.ts';
import type { AppliedGroup } from '../store/state.ts';
import {
  checkStreamOptions,
  type ChangeStream,
  type ChangeStreamOptions,
  type ChangeStreams,
} from './change-stream.ts';
import {
  comparePositions,
  eventPosition,
  formatGroupPosition,
  maxPosition,
  startFromPosition,
  wholeRecord,
  type ChangeEvent,
  type Position,
} from './change-event.ts';

export const ConsumerGroupLimits = {
  /** Groups a cluster keeps positions for (each pins the WAL, within streams.max_retained_bytes). */
  maxGroups: 256,
  /** Members of one group on a node. */
  maxMembers: 64,
  /** Auto-commit defaults: every this many events handled, or this often. */
  autoCommitEvents: 1000,
  autoCommitIntervalMs: 1000,
  /** Bounds of the auto-commit settings. */
  minAutoCommitIntervalMs: 10,
  maxAutoCommitIntervalMs: 3_600_000,
  maxAutoCommitEvents: 10_000_000,
  /** How long a commit may wait for its record to be held by a quorum. */
  commitTimeoutMs: 10_000,
} as const;

/** Same spelling as a collection name. */
const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

export type PartitionBy = 'id' | 'collection';

export interface GroupStreamOptions extends ChangeStreamOptions {
  group: string;
  /** How members share the work: by id hash (default) or by collection. */
  partitionBy?: PartitionBy;
  /**
   * Commits the events handled (those handed out before the consumer asked
   * for more) every `everyEvents` events or `everyMs` ms; false: only
   * explicit `commit()`. Default on: 1000 events or 1000 ms.
   */
  autoCommit?: false | { everyEvents?: number; everyMs?: number };
}

/** A group's state as status shows it. */
export interface GroupStatus {
  name: string;
  /** The committed position (null: the group has members but nothing committed yet). */
  position: (Position & { index: number | null }) | null;
  /** Members reading on this node now. */
  members: number;
  /** Its position is before the earliest the log holds: resuming it is ERR_POSITION_EVICTED. */
  laggedOut: boolean;
}

export interface ConsumerGroupDeps {
  streams: ChangeStreams;
  /** The applied positions (the store's state): the one owner of what is committed. */
  positions(): ReadonlyMap<string, AppliedGroup>;
  /** The earliest LSN the log holds. */
  firstLsn(): number;
  /** Throws the node's refusal (not the leader, read-only replica, stopped) when it takes no writes. */
  assertWritable(): void;
  /**
   * Resolves once this node has applied every record committed before the
   * call (a linearizable read's barrier): a new leader may not have applied
   * the group positions its predecessor committed yet.
   */
  caughtUp(): Promise<void>;
  /** Proposes a group position record at Quorum (null deletes the group); resolves once held by the quorum. */
  setPosition(group: string, position: GroupPosition | null, timeoutMs: number): Promise<void>;
  warn(fields: Record<string, unknown>, message: string): void;
}

const invalid = (message: string): VrepError => new VrepError('ERR_INVALID_INPUT', message);

/** FNV-1a over UTF-16 code units: the same share on every node and across restarts. */
function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function checkGroupOptions(opts: GroupStreamOptions): { everyEvents: number; everyMs: number } | null {
  if (typeof opts.group !== 'string' || !GROUP_NAME.test(opts.group))
    throw invalid(
      `group: expected 1-255 of [A-Za-z0-9_.-] starting with a letter or digit, got ${JSON.stringify(opts.group)}`,
    );
  if (opts.partitionBy !== undefined && opts.partitionBy !== 'id' && opts.partitionBy !== 'collection')
    throw invalid(`partitionBy: expected "id" or "collection", got ${JSON.stringify(opts.partitionBy)}`);
  const auto = opts.autoCommit;
  if (auto === false) return null;
  if (auto !== undefined && (typeof auto !== 'object' || auto === null))
    throw invalid('autoCommit: expected false or {everyEvents?, everyMs?}');
  const L = ConsumerGroupLimits;
  const everyEvents = auto?.everyEvents ?? L.autoCommitEvents;
  const everyMs = auto?.everyMs ?? L.autoCommitIntervalMs;
  if (!Number.isSafeInteger(everyEvents) || everyEvents < 1 || everyEvents > L.maxAutoCommitEvents)
    throw invalid(`autoCommit.everyEvents: expected an integer in [1, ${L.maxAutoCommitEvents}]`);
  if (
    !Number.isSafeInteger(everyMs) ||
    everyMs < L.minAutoCommitIntervalMs ||
    everyMs > L.maxAutoCommitIntervalMs
  )
    throw invalid(
      `autoCommit.everyMs: expected an integer in [${L.minAutoCommitIntervalMs}, ${L.maxAutoCommitIntervalMs}]`,
    );
  return { everyEvents, everyMs };
}

interface CommitWaiter {
  upTo: GroupPosition;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** One group's members on this node, and its commits. */
class Group {
  readonly members: GroupConsumer[] = [];
  generation = 0;
  /** The position a new group starts after, until its first commit is applied. */
  private startedAfter: GroupPosition | null = null;
  /** The highest position a commit of this node made durable (the state may apply it a moment later). */
  private resolvedTo: GroupPosition | null = null;
  private inFlight: Promise<void> | null = null;
  /** The newest position asked for and not yet proposed. */
  private wanted: GroupPosition | null = null;
  private waiters: CommitWaiter[] = [];

  constructor(
    readonly name: string,
    private readonly deps: ConsumerGroupDeps,
  ) {}

  /** The committed position, or where a new group started (its first commit on its way). */
  get position(): GroupPosition | null {
    return this.durable ?? this.startedAfter;
  }

  /** What a quorum holds: applied here, or resolved for this node's last commit. */
  private get durable(): GroupPosition | null {
    const applied = this.deps.positions().get(this.name)?.position ?? null;
    if (applied === null || this.resolvedTo === null) return applied ?? this.resolvedTo;
    return maxPosition(applied, this.resolvedTo);
  }

  join(member: GroupConsumer): void {
    this.members.push(member);
    this.rebalance();
  }

  leave(member: GroupConsumer): void {
    const at = this.members.indexOf(member);
    if (at < 0) return;
    this.members.splice(at, 1);
    if (this.members.length > 0) this.rebalance();
  }

  /** Every member starts over from the committed position, with its share of the new member count. */
  private rebalance(): void {
    this.generation++;
    for (const m of this.members) m.rebalanced();
  }

  shareOf(member: GroupConsumer): { index: number; of: number } {
    return { index: this.members.indexOf(member), of: this.members.length };
  }

  /** A new group: the first member's stream start is its first committed position. */
  started(after: GroupPosition): void {
    if (this.position !== null) return;
    this.startedAfter = after;
    this.request(this.startedAfter);
  }

  /** Resolves once the committed position covers what the members have handled now. */
  commitNow(): Promise<void> {
    const target = this.target();
    if (target === null) return this.inFlight ?? Promise.resolve();
    const current = this.durable;
    if (current !== null && comparePositions(target, current) <= 0) return Promise.resolve();
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ upTo: target, resolve, reject }));
    this.request(target);
    return done;
  }

  /** The oldest of the members' handled positions (null: a member has no place yet). */
  private target(): GroupPosition | null {
    let min: GroupPosition | null = null;
    for (const m of this.members) {
      const p = m.handledPosition();
      if (p === null) return null;
      if (min === null || comparePositions(p, min) < 0) min = p;
    }
    return min;
  }

  /** Asks for the position to reach `target`: kept even if the members leave meanwhile. */
  private request(target: GroupPosition): void {
    this.wanted = this.wanted === null ? target : maxPosition(this.wanted, target);
    this.pump();
  }

  /** Proposes the wanted position if it is past the durable one; one proposal at a time. */
  private pump(): void {
    if (this.inFlight !== null) return;
    const current = this.durable;
    const target = this.wanted;
    if (target === null || (current !== null && comparePositions(target, current) <= 0)) {
      this.wanted = null;
      if (current !== null) this.settle(current, null);
      return;
    }
    this.inFlight = this.deps
      .setPosition(this.name, target, ConsumerGroupLimits.commitTimeoutMs)
      .then(
        () => {
          this.resolvedTo = this.resolvedTo === null ? target : maxPosition(this.resolvedTo, target);
          this.settle(this.resolvedTo, null);
        },
        (err: Error) => {
          this.wanted = null;
          this.settle(null, err);
          // The node may have lost the lead: its members read on, but commit nowhere.
          for (const m of [...this.members]) m.commitFailed(err);
        },
      )
      .finally(() => {
        this.inFlight = null;
        this.pump();
      });
  }

  private settle(durable: GroupPosition | null, err: Error | null): void {
    const keep: CommitWaiter[] = [];
    for (const w of this.waiters) {
      if (err !== null) w.reject(err);
      else if (durable !== null && comparePositions(w.upTo, durable) <= 0) w.resolve();
      else keep.push(w);
    }
    this.waiters = keep;
  }
}

/**
 * One member of a consumer group: a change stream over its share, from the
 * group's committed position, with `commit()`. Rebalances are inside: the
 * member's events simply continue from the group position with its new
 * share. Events of one member come in log order.
 */
export class GroupConsumer implements AsyncIterable<ChangeEvent> {
  private inner: ChangeStream | null = null;
  private innerGeneration = -1;
  private closed = false;
  private pulling = false;
  private failure: Error | null = null;
  /** This generation's committed place: where the member's stream started, then its commits. */
  private committed: GroupPosition | null = null;
  /** The last event handed out in any generation (for telling a stale commit from a bogus one). */
  private everHandedOut: GroupPosition | null = null;
  /** Handled but not committed (auto-commit): the last event handed out before the consumer asked for more. */
  private handled: GroupPosition | null = null;
  private handledSinceCommit = 0;
  /** Events of the last batch not yet known handled (the iterator marks them one by one). */
  private outstanding = 0;
  private lastCommitMs = 0;
  private readonly timer: NodeJS.Timeout | null;
  private readonly onAbort = (): void => this.close();
  private markEnded: () => void = () => {};
  /** Resolves once the member ended, however (a WebSocket waiting for credit hears of it). */
  readonly ended = new Promise<void>((resolve) => (this.markEnded = resolve));
  /** Why the node ended the member (its group was deleted); null: the consumer or the node's stop did. */
  endedBecause: VrepError | null = null;

  constructor(
    private readonly group: Group,
    private readonly opts: GroupStreamOptions,
    private readonly deps: ConsumerGroupDeps,
    private readonly autoCommit: { everyEvents: number; everyMs: number } | null,
    private readonly onClose: (m: GroupConsumer) => void,
  ) {
    this.lastCommitMs = performance.now();
    this.timer =
      autoCommit === null ? null : setInterval(() => this.autoCommitDue(true), autoCommit.everyMs).unref();
    if (opts.signal?.aborted) this.close();
    else opts.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  get name(): string {
    return this.group.name;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** This member's share now: index of the members (by join order) and how many there are. */
  get share(): { index: number; of: number } {
    return this.group.shareOf(this);
  }

  /** Starts the member's stream from the group's position (idempotent); ERR_POSITION_EVICTED when the group lagged out. */
  async start(): Promise<void> {
    if (this.closed) return;
    if (this.inner === null || this.innerGeneration !== this.group.generation) await this.reopen();
  }

  /**
   * Up to `maxEvents` of this member's events; null once it ended. Calling
   * it says the events handed out before were handled (auto-commit counts
   * them).
   */
  async nextBatch(maxEvents?: number): Promise<ChangeEvent[] | null> {
    if (this.pulling) throw new VrepError('ERR_INVALID_ARG', 'this group member is already being read');
    this.pulling = true;
    try {
      if (this.outstanding > 0) this.handledUpTo(this.inner?.lastHandedOut ?? null, this.outstanding);
      for (;;) {
        if (this.failure !== null) throw this.failure;
        if (this.closed) return null;
        this.deps.assertWritable();
        await this.start();
        if (this.closed) continue; // closed while it waited to start
        const inner = this.inner as ChangeStream;
        const generation = this.innerGeneration;
        const batch = await inner.nextBatch(maxEvents);
        if (batch !== null) {
          const last = inner.lastHandedOut;
          if (last !== null) this.everHandedOut = last;
          this.outstanding = batch.length;
          return batch;
        }
        // The inner stream ended: a rebalance (start over with the new share), or the end.
        if (this.closed || this.group.generation !== generation) continue;
        this.close();
        return null;
      }
    } catch (err) {
      this.close();
      throw err;
    } finally {
      this.pulling = false;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ChangeEvent, void, undefined> {
    try {
      for (;;) {
        const batch = await this.nextBatch();
        if (batch === null) return;
        for (const e of batch) {
          yield e;
          // The consumer asked for the next event: this one was handled.
          this.handledUpTo(eventPosition(e), 1);
        }
      }
    } finally {
      this.close();
    }
  }

  /**
   * Commits: every event handed out to this member up to `upTo` (an event,
   * or a position `{term, lsn, index?}`; default: every event handed out)
   * was handled. Resolves once the group's committed position, the oldest
   * of its members', covers it as far as the other members allow, and is
   * held by a quorum. A position handed out before a rebalance is not
   * committed (its events come again): it resolves without effect.
   */
  async commit(upTo?: ChangeEvent | (Position & { index?: number | null })): Promise<void> {
    if (this.closed) throw new VrepError('ERR_INVALID_ARG', 'this group member is closed');
    const handedOut = this.inner?.lastHandedOut ?? null;
    let p: GroupPosition | null;
    if (upTo === undefined) p = handedOut;
    else if ('count' in upTo && 'index' in upTo) p = eventPosition(upTo);
    else {
      const pos = upTo as Position & { index?: number | null };
      if (!Number.isSafeInteger(pos?.lsn) || !Number.isSafeInteger(pos?.term))
        throw invalid('commit: expected an event or a position {term, lsn, index?}');
      p = { term: pos.term, lsn: pos.lsn, index: pos.index ?? null };
    }
    if (p === null) return this.group.commitNow();
    if (handedOut === null || comparePositions(p, handedOut) > 0) {
      if (this.everHandedOut !== null && comparePositions(p, this.everHandedOut) <= 0) return; // before a rebalance
      throw invalid(`commit: ${formatGroupPosition(p)} was not handed out to this member yet`);
    }
    const base = this.committed;
    if (base !== null && comparePositions(p, base) <= 0) return this.group.commitNow();
    this.committed = p;
    this.handledSinceCommit = 0;
    this.lastCommitMs = performance.now();
    return this.group.commitNow();
  }

  /** Ends the member: its share goes to the others (a rebalance). */
  close(): void {
    if (this.closed) return;
    // Auto-commit: what was handled is committed on the way out (at-least-once, fewer repeats).
    if (this.autoCommit !== null && this.failure === null && this.handled !== null)
      this.commit(this.handled).catch((err: Error) =>
        this.deps.warn({ group: this.group.name, err: err.message }, 'change stream: commit at close failed'),
      );
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.opts.signal?.removeEventListener('abort', this.onAbort);
    this.inner?.close();
    this.onClose(this);
    this.markEnded();
  }

  /** What the member buffers (its stream's bound). */
  get buffered(): { records: number; bytes: number } {
    return this.inner?.buffered ?? { records: 0, bytes: 0 };
  }

  // ------------------------------------------------------------------ for the group

  /** The group rebalanced: the stream starts over at the next read (a read waiting now ends). */
  rebalanced(): void {
    this.inner?.close();
  }

  /** A commit failed (the node lost the lead, a timeout): the member ends with the error at its next read. */
  commitFailed(err: Error): void {
    if (this.closed) return;
    this.failure = err;
    this.inner?.close();
  }

  /**
   * What this member has handled, for the group's position: its last
   * commit, or, when it committed everything it was handed, the last
   * record its stream went past (its share of the records between is
   * empty). Null before its stream started.
   */
  handledPosition(): GroupPosition | null {
    const inner = this.inner;
    if (inner === null || this.committed === null || this.innerGeneration !== this.group.generation)
      return null;
    const handedOut = inner.lastHandedOut;
    if (handedOut !== null && comparePositions(this.committed, handedOut) < 0) return this.committed;
    const passed = inner.passed;
    return passed === null ? this.committed : maxPosition(this.committed, wholeRecord(passed));
  }

  // ------------------------------------------------------------------ internals

  private async reopen(): Promise<void> {
    this.inner?.close();
    // The group's position is read from the applied state: on a leader just elected that may trail
    // what the old one committed (resuming there would repeat committed events, or start a group
    // whose first commits are not applied yet from `from`: a gap). Read it once it covers them.
    await this.deps.caughtUp();
    if (this.closed) return;
    const generation = this.group.generation;
    const share = this.group.shareOf(this);
    const key =
      this.opts.partitionBy === 'collection'
        ? (collection: string): string => collection
        : (collection: string, id: string | null): string => (id === null ? collection : id);
    const from = this.group.position;
    // The member's own signal ends the member; its inner streams end with it (close), not on their own.
    const o = this.opts;
    const inner = this.deps.streams.stream(
      {
        from: from === null ? (o.from ?? 'latest') : startFromPosition(from),
        ...(o.collections !== undefined ? { collections: o.collections } : {}),
        ...(o.ops !== undefined ? { ops: o.ops } : {}),
        ...(o.includeVectors !== undefined ? { includeVectors: o.includeVectors } : {}),
      },
      share.of <= 1 ? null : { assigned: (c, id) => hashKey(key(c, id)) % share.of === share.index },
    );
    this.inner = inner;
    this.innerGeneration = generation;
    try {
      await inner.start();
    } catch (err) {
      inner.close();
      throw this.laggedOut(err as Error, from);
    }
    const started = inner.startedAfter as Position & { index?: number };
    const after: GroupPosition = { term: started.term, lsn: started.lsn, index: started.index ?? null };
    this.committed = from ?? after;
    this.handled = null;
    this.handledSinceCommit = 0;
    this.outstanding = 0;
    if (from === null) this.group.started(after);
  }

  private laggedOut(err: Error, from: GroupPosition | null): Error {
    if (!(err instanceof VrepError) || err.code !== 'ERR_POSITION_EVICTED' || from === null) return err;
    return new VrepError(
      'ERR_POSITION_EVICTED',
      `consumer group ${this.group.name} lagged out: its committed position ${formatGroupPosition(from)} is no longer held (streams.max_retained_bytes, or a full sync, removed the log past it). ${err.message}. Delete the group to start it over`,
    );
  }

  /** Auto-commit bookkeeping: events up to `p` were handled. */
  private handledUpTo(p: GroupPosition | null, events: number): void {
    this.outstanding = Math.max(0, this.outstanding - events);
    if (p === null || this.autoCommit === null) return;
    if (this.handled === null || comparePositions(p, this.handled) > 0) this.handled = p;
    this.handledSinceCommit += events;
    this.autoCommitDue(false);
  }

  private autoCommitDue(byTimer: boolean): void {
    const auto = this.autoCommit;
    if (auto === null || this.closed || this.inner === null) return;
    const due =
      this.handledSinceCommit >= auto.everyEvents ||
      (this.handledSinceCommit > 0 && performance.now() - this.lastCommitMs >= auto.everyMs) ||
      byTimer;
    if (!due) return;
    const upTo = this.handled;
    const commit = upTo === null ? this.group.commitNow() : this.commit(upTo);
    commit.catch((err: Error) =>
      this.deps.warn({ group: this.group.name, err: err.message }, 'change stream: auto-commit failed'),
    );
  }
}

/** The node's consumer groups: members reading here, and the groups' positions (from the state). */
export class ConsumerGroups {
  private readonly groups = new Map<string, Group>();

  constructor(private readonly deps: ConsumerGroupDeps) {}

  /** A new member of `opts.group` (see GroupConsumer); refused where writes are not taken. */
  join(opts: GroupStreamOptions): GroupConsumer {
    checkStreamOptions(opts);
    const auto = checkGroupOptions(opts);
    this.deps.assertWritable();
    let group = this.groups.get(opts.group);
    if (group === undefined) {
      const known = this.deps.positions();
      if (!known.has(opts.group) && known.size >= ConsumerGroupLimits.maxGroups)
        throw new VrepError(
          'ERR_OVERLOADED',
          `${ConsumerGroupLimits.maxGroups} consumer groups exist; delete one first`,
        );
      group = new Group(opts.group, this.deps);
      this.groups.set(opts.group, group);
    }
    if (group.members.length >= ConsumerGroupLimits.maxMembers)
      throw new VrepError(
        'ERR_OVERLOADED',
        `consumer group ${opts.group} has ${ConsumerGroupLimits.maxMembers} members on this node`,
      );
    const g = group;
    const member = new GroupConsumer(g, opts, this.deps, auto, (m) => {
      g.leave(m);
      // Its commits in flight finish on their own (the Group object keeps them).
      if (g.members.length === 0 && this.groups.get(g.name) === g) this.groups.delete(g.name);
    });
    if (!member.isClosed) g.join(member);
    return member;
  }

  /** Every group with a committed position or a member here. */
  list(): GroupStatus[] {
    const positions = this.deps.positions();
    const firstLsn = this.deps.firstLsn();
    const names = new Set([...positions.keys(), ...this.groups.keys()]);
    return [...names].sort().map((name) => {
      const position = this.groups.get(name)?.position ?? positions.get(name)?.position ?? null;
      // The next record the group reads: its position's own when only part of it was handled.
      const next = position === null ? 0 : position.index === null ? position.lsn + 1 : position.lsn;
      return {
        name,
        position,
        members: this.groups.get(name)?.members.length ?? 0,
        laggedOut: position !== null && next < firstLsn,
      };
    });
  }

  /** Deletes a group's position (a record); its members here end. False: no such group. */
  async delete(name: string): Promise<boolean> {
    if (typeof name !== 'string' || !GROUP_NAME.test(name))
      throw invalid(`group: bad name ${JSON.stringify(name)}`);
    this.deps.assertWritable();
    const group = this.groups.get(name);
    if (!this.deps.positions().has(name) && group === undefined) return false;
    for (const m of [...(group?.members ?? [])]) {
      m.endedBecause = new VrepError('ERR_NOT_FOUND', `consumer group ${name} was deleted`);
      m.close();
    }
    await this.deps.setPosition(name, null, ConsumerGroupLimits.commitTimeoutMs);
    return true;
  }

  /** The node stops: every member ends. */
  closeAll(): void {
    for (const g of [...this.groups.values()]) for (const m of [...g.members]) m.close();
  }
}
