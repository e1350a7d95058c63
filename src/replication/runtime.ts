/**
 * Runs a node's replication core against its disk, state and peers: turns
 * each Ready into I/O in the order the core's contract requires, feeds what
 * the I/O reports back as steps, and keeps the writes waiting for their
 * consistency level. The same class runs in the server (ports backed by the
 * store and the peer sessions) and in the simulator (ports backed by
 * simulated disks and a simulated network).
 *
 * Order within one Ready (etcd raft's Ready contract, with truncation and
 * rollback added):
 *   1. truncate the log (then everything up to the cut is durable);
 *   2. roll the state back, when applied records were dropped;
 *   3. persist the hard state and the term history (fsync);
 *   4. install a received snapshot;
 *   5. append records (asynchronous: durability is reported as a step);
 *   6. send messages (only now: a reply may depend on step 3);
 *   7. apply records up to applyThrough; settle waiting writes and reads.
 * One Ready is handled at a time; steps that arrive meanwhile go into the
 * core and come out in the next one.
 *
 * Nothing here reads a clock: time is `tick()`, called by whoever owns time.
 */
import {
  CoreError,
  ReplicationCore,
  type CoreEvent,
  type HardState,
  type Input,
  type Ready,
} from '../consensus/core.ts';
import type { Entry, Outgoing } from '../consensus/messages.ts';
import { isVrepError, messageOf, type ErrorCodeSubset } from '../errors.ts';
import type { Epoch } from '../consensus/term-history.ts';
import type { ConfigEntry } from '../consensus/core.ts';
import type { Level } from '../consensus/quorum.ts';
import { votersNeeded, type Membership } from '../consensus/membership.ts';
import { FlowControl } from './flow-control.ts';

export type Done = (err: Error | null) => void;

/** The I/O a runtime drives. Every callback may come later (real I/O) or at once. */
export interface RuntimePorts {
  /** Durably record the hard state and, when given, the term history. */
  saveHardState(hs: HardState, history: Epoch[] | null, done: Done): void;
  /** Drop log records above `afterLsn`. */
  truncateLog(afterLsn: number, done: Done): void;
  /** Append records; `done` once they are durable per the fsync policy (or refused). */
  appendLog(entries: Entry[], done: Done): void;
  /** Records (fromLsn, ..] still in the log, for applying what is not held in memory. */
  readLog(fromLsn: number, toLsn: number, done: (err: Error | null, entries: Entry[]) => void): void;
  /** Apply records in LSN order (synchronous: in-memory state). */
  apply(entries: readonly Entry[]): void;
  /** Rebuild the state as of `lsn` (records above it were dropped). */
  rollback(lsn: number, done: Done): void;
  /** Replace the state and the log with the received snapshot. */
  installSnapshot(
    lsn: number,
    done: (err: Error | null, installed?: { history: Epoch[]; configs: ConfigEntry[] }) => void,
  ): void;
  send(message: Outgoing): void;
  disconnect(peer: string, reason: string): void;
  offerSnapshot(to: string, term: number, probeId: number, force: boolean): void;
  event(event: CoreEvent): void;
  /** Records up to `lsn` are committed and applied here (log readers other than the feed stop there). */
  committed?(lsn: number): void;
  /** A step of the Ready failed (disk I/O): the node cannot go on safely. */
  fatal(err: Error): void;
}

export interface WriteOutcome {
  firstLsn: number;
  lastLsn: number;
  term: number;
}

interface Waiter {
  lsn: number;
  term: number;
  /** The log generation the record was proposed in (see ReplicationCore.logGeneration). */
  generation: number;
  level: Level;
  deadlineTick: number;
  done: (err: Error | null, result?: WriteOutcome) => void;
  result: WriteOutcome;
  /** The tick its level first held while a streaming follower still lacked it (flow control; null: not yet). */
  heldSinceTick: number | null;
}

/** Why a waiting write failed; the node maps these onto VrepErrors. */
export class WriteError extends Error {
  constructor(
    readonly code: ErrorCodeSubset<
      | 'ERR_CONSISTENCY_TIMEOUT'
      | 'ERR_NOT_LEADER'
      | 'ERR_WAL_IO'
      | 'ERR_OVERLOADED'
      | 'ERR_NODE_STOPPED'
      | 'ERR_TRANSFER_IN_PROGRESS'
    >,
    message: string,
    readonly leader: string | null = null,
  ) {
    super(message);
    this.name = 'WriteError';
  }
}

/** Writes waiting for their level at once, at most. */
export const MAX_WAITING_WRITES = 100_000;

/** A linearizable read: confirmed at `index` (null until its ReadIndex round is done), served once applied there. */
interface ReadWaiter {
  index: number | null;
  deadlineTick: number;
  done: (err: Error | null, index?: number) => void;
}
/** Bytes of appended records held in memory until applied, at most; past it new writes are refused. */
export const MAX_UNAPPLIED_BYTES = 1024 * 1024 * 1024;

export class ReplicationRuntime {
  readonly core: ReplicationCore;
  private readonly ports: RuntimePorts;
  private busy = false;
  private stopped = false;
  private ticks = 0;
  private waiters: Waiter[] = [];
  /** Appended records not applied yet, by LSN (the same bytes the log holds). */
  private readonly unapplied = new Map<number, Entry>();
  private unappliedBytes = 0;
  /** What has been handed to ports.apply. */
  private appliedTo = 0;
  private reportedCommit = -1;
  /** Lowest LSN whose append is in flight per generation (to refuse the writes of a failed one). */
  private readonly inFlight: { firstLsn: number; lastLsn: number; generation: number }[] = [];
  private readonly reads = new Map<number, ReadWaiter>();
  private nextReadId = 1;
  /** Holds One acknowledgements while a streaming follower is too far behind (flow-control.ts). */
  private readonly flow = new FlowControl();

  constructor(core: ReplicationCore, ports: RuntimePorts) {
    this.core = core;
    this.ports = ports;
  }

  get tickCount(): number {
    return this.ticks;
  }

  get waitingWrites(): number {
    return this.waiters.length;
  }

  step(input: Input): void {
    if (this.stopped) return;
    this.core.step(input);
    this.pump();
  }

  tick(): void {
    if (this.stopped) return;
    this.ticks++;
    this.core.tick();
    this.expireWaiters();
    this.pump();
  }

  /**
   * Proposes `count` records (leader only) and calls `done` once `level`
   * holds the last of them, or with a WriteError (not the leader, a
   * deadline in ticks passed: indeterminate, the disk refused it).
   */
  propose(
    count: number,
    encode: (lsn: number, term: number, index: number) => Uint8Array,
    opts: { level: Level; timeoutTicks: number; config?: Membership | null },
    done: (err: Error | null, result?: WriteOutcome) => void,
  ): void {
    if (this.stopped) {
      done(new WriteError('ERR_NODE_STOPPED', messageOf('ERR_NODE_STOPPED')));
      return;
    }
    if (this.waiters.length >= MAX_WAITING_WRITES) {
      done(
        new WriteError(
          'ERR_OVERLOADED',
          `too many writes waiting for acknowledgement (${MAX_WAITING_WRITES})`,
        ),
      );
      return;
    }
    if (this.unappliedBytes > MAX_UNAPPLIED_BYTES) {
      done(
        new WriteError(
          'ERR_OVERLOADED',
          `${this.unappliedBytes} bytes of records wait to be applied; retry later`,
        ),
      );
      return;
    }
    let result: WriteOutcome;
    try {
      result = this.core.propose(count, encode, opts.config ?? null);
    } catch (err) {
      if (err instanceof CoreError) {
        done(coreRefusal(err));
        return;
      }
      throw err;
    }
    this.waiters.push({
      lsn: result.lastLsn,
      term: result.term,
      generation: this.core.logGeneration,
      level: opts.level,
      deadlineTick: this.ticks + opts.timeoutTicks,
      done,
      result,
      heldSinceTick: null,
    });
    this.pump();
  }

  /**
   * A linearizable read (leader only): `done(null, index)` once this leader
   * confirmed it still leads after the call and has applied through the
   * commit point `index`; the caller then reads its state. ERR_NOT_LEADER
   * when it does not (or stops) lead; ERR_CONSISTENCY_TIMEOUT past the
   * deadline in ticks.
   */
  read(timeoutTicks: number, done: (err: Error | null, index?: number) => void): void {
    if (this.stopped) {
      done(new WriteError('ERR_NODE_STOPPED', messageOf('ERR_NODE_STOPPED')));
      return;
    }
    const id = this.nextReadId++;
    try {
      this.core.readIndex(id);
    } catch (err) {
      if (err instanceof CoreError) {
        done(coreRefusal(err));
        return;
      }
      throw err;
    }
    this.reads.set(id, { index: null, deadlineTick: this.ticks + timeoutTicks, done });
    this.pump();
  }

  promote(): void {
    this.core.promote();
    this.pump();
  }

  /** Elections: the bootstrap voter at `address` answered as `id` (see ReplicationCore.resolveBootstrap). */
  resolveBootstrap(address: string, id: string): void {
    this.core.resolveBootstrap(address, id);
    this.pump();
  }

  /** Leader with elections: hands leadership to the voter `to` (see ReplicationCore.transferLeadership). */
  transfer(to: string): void {
    this.core.transferLeadership(to);
    this.pump();
  }

  follow(followsConfiguredPrimary: boolean): void {
    this.core.follow(followsConfiguredPrimary);
    this.failWaiters(
      new WriteError(
        'ERR_NOT_LEADER',
        'this node stopped being the primary before the write reached its level; it is indeterminate',
      ),
    );
    this.pump();
  }

  forceFullSync(peer: string): void {
    this.core.forceFullSync(peer);
    this.pump();
  }

  /** Stops taking work; waiting writes and reads fail with `reason`. */
  stop(reason: Error): void {
    this.stopped = true;
    this.failWaiters(reason);
  }

  // ------------------------------------------------------------------ Ready

  private pump(): void {
    if (this.busy || this.stopped) return;
    while (!this.stopped && this.core.hasReady()) {
      const rd = this.core.ready();
      this.busy = true;
      let sync = true;
      let finished = false;
      this.handle(rd, () => {
        this.core.advance();
        this.busy = false;
        finished = true;
        // Finished later (after real I/O): continue with what came in meanwhile.
        if (!sync) this.pump();
      });
      sync = false;
      if (!finished) return;
    }
    this.settleWaiters();
  }

  private handle(rd: Ready, done: () => void): void {
    const fail = (err: Error | null): boolean => {
      if (err === null) return false;
      this.stopped = true;
      this.failWaiters(new WriteError('ERR_WAL_IO', `the node stopped: ${err.message}`));
      this.ports.fatal(err);
      return true;
    };
    const afterTruncate = (): void => {
      if (rd.rollbackTo === null) return afterRollback();
      this.dropUnappliedAbove(rd.rollbackTo);
      this.ports.rollback(rd.rollbackTo, (err) => {
        if (!fail(err)) afterRollback();
      });
    };
    const afterRollback = (): void => {
      if (rd.hardState === null && rd.history === null) return afterPersist();
      this.ports.saveHardState(rd.hardState ?? this.core.hardState, rd.history, (err) => {
        if (!fail(err)) afterPersist();
      });
    };
    const afterPersist = (): void => {
      if (rd.installSnapshot === null) return afterInstall();
      const lsn = rd.installSnapshot;
      this.dropUnappliedAbove(0);
      this.ports.installSnapshot(lsn, (err, installed) => {
        if (fail(err) || !installed) return;
        this.appliedTo = lsn;
        this.core.step({
          type: 'snapshotInstalled',
          snapshotLsn: lsn,
          history: installed.history,
          configs: installed.configs,
        });
        afterInstall();
      });
    };
    const afterInstall = (): void => {
      if (rd.append) this.appendEntries(rd.append.entries, rd.append.generation);
      for (const m of rd.messages) this.ports.send(m);
      for (const d of rd.disconnect) this.ports.disconnect(d.peer, d.reason);
      for (const o of rd.offerSnapshot) this.ports.offerSnapshot(o.to, this.core.term, o.probeId, o.force);
      for (const e of rd.events) this.ports.event(e);
      for (const r of rd.reads) this.readConfirmed(r.id, r.index);
      if (rd.installSnapshot !== null) done();
      else this.applyThrough(rd.applyThrough, done);
    };
    if (rd.truncateAfter === null) return afterTruncate();
    const cut = rd.truncateAfter;
    this.dropUnappliedAbove(cut);
    this.ports.truncateLog(cut, (err) => {
      if (fail(err)) return;
      // The WAL waited for appends in flight and fsynced the cut: all up to it is durable.
      this.core.step({ type: 'localDurable', lsn: cut, generation: rd.generation });
      afterTruncate();
    });
  }

  private appendEntries(entries: Entry[], generation: number): void {
    if (entries.length === 0) return;
    for (const e of entries) {
      this.unapplied.set(e.lsn, e);
      this.unappliedBytes += e.bytes.length;
    }
    this.flow.appended(entries);
    const firstLsn = (entries[0] as Entry).lsn;
    const lastLsn = (entries.at(-1) as Entry).lsn;
    const batch = { firstLsn, lastLsn, generation };
    this.inFlight.push(batch);
    this.ports.appendLog(entries, (err) => {
      const i = this.inFlight.indexOf(batch);
      if (i >= 0) this.inFlight.splice(i, 1);
      if (err === null) {
        this.step({ type: 'localDurable', lsn: lastLsn, generation });
        return;
      }
      // The disk refused the records: the writes fail (they changed nothing) and the core forgets them.
      // A WAL too far behind, or closing, says so; anything else is the disk's failure.
      const code = isVrepError(err, 'ERR_OVERLOADED')
        ? 'ERR_OVERLOADED'
        : isVrepError(err, 'ERR_WAL_CLOSED')
          ? 'ERR_NODE_STOPPED'
          : 'ERR_WAL_IO';
      this.refuseWaitersFrom(firstLsn, generation, new WriteError(code, err.message));
      // A report for a log a truncation or install has replaced since (an older generation) is
      // void: that cut dropped those records already, and what is in memory now is the new log's
      // (sim seed 5151: a leader's refused append reported after it followed a new leader made it
      // forget and apply again records it had applied).
      if (generation === this.core.logGeneration) this.dropUnappliedAbove(firstLsn - 1);
      this.step({ type: 'localFailed', fromLsn: firstLsn, generation });
    });
  }

  private applyThrough(lsn: number, done: () => void): void {
    const from = this.appliedTo + 1;
    if (lsn < from) {
      done();
      return;
    }
    const entries: Entry[] = [];
    let missing = -1;
    for (let at = from; at <= lsn; at++) {
      const e = this.unapplied.get(at);
      if (e === undefined) {
        missing = at;
        break;
      }
      entries.push(e);
    }
    const applyList = (list: Entry[], upTo: number): void => {
      if (list.length > 0) this.ports.apply(list);
      for (const e of list) {
        if (this.unapplied.delete(e.lsn)) this.unappliedBytes -= e.bytes.length;
      }
      this.appliedTo = upTo;
    };
    if (missing < 0) {
      applyList(entries, lsn);
      this.settleWaiters();
      done();
      return;
    }
    // Not in memory (appended before this process started): read them back. A read returns
    // a bounded batch: what it did not reach is read next.
    this.ports.readLog(missing, lsn, (err, rest) => {
      if (err) {
        this.stopped = true;
        this.ports.fatal(err);
        return;
      }
      const reached = rest.at(-1)?.lsn ?? missing - 1;
      if (rest.length === 0 || reached >= lsn) {
        // All read; or nothing there: the disk refused those records since (the core rolls the state back next).
        applyList([...entries, ...rest], rest.length === 0 ? missing - 1 : lsn);
        this.settleWaiters();
        done();
        return;
      }
      applyList([...entries, ...rest], reached);
      this.applyThrough(lsn, done);
    });
  }

  /** The state starts out applied up to this LSN (set once, before the first Ready). */
  initApplied(lsn: number): void {
    this.appliedTo = lsn;
  }

  private dropUnappliedAbove(lsn: number): void {
    for (const [at, e] of this.unapplied) {
      if (at > lsn) {
        this.unapplied.delete(at);
        this.unappliedBytes -= e.bytes.length;
      }
    }
    if (this.appliedTo > lsn) this.appliedTo = lsn;
  }

  // ------------------------------------------------------------------ flow control

  /** The lowest match of the followers streaming now (Infinity when none streams). */
  private slowestStreamingMatch(): number {
    let slowest = Infinity;
    for (const id of this.core.peers()) {
      const p = this.core.peer(id);
      if (p !== undefined && p.state === 'replicate' && p.match < slowest) slowest = p.match;
    }
    return slowest;
  }

  /** Whether flow control holds back the acknowledgement of One write `w` (its level already met). */
  private flowHolds(w: Waiter, slowest: number): boolean {
    if (slowest >= w.lsn) return false;
    w.heldSinceTick ??= this.ticks;
    return this.flow.holds(w.lsn, slowest, w.heldSinceTick, this.ticks);
  }

  // ------------------------------------------------------------------ waiters

  private readConfirmed(id: number, index: number | null): void {
    const r = this.reads.get(id);
    if (r === undefined) return; // timed out meanwhile
    if (index === null) {
      this.reads.delete(id);
      r.done(
        new WriteError(
          'ERR_NOT_LEADER',
          'this node stopped being the primary before the read was confirmed',
          this.core.leader,
        ),
      );
      return;
    }
    r.index = index;
  }

  private settleReads(): void {
    for (const [id, r] of this.reads) {
      if (r.index === null || this.appliedTo < r.index) continue;
      this.reads.delete(id);
      r.done(null, r.index);
    }
  }

  private settleWaiters(): void {
    const committed = Math.min(this.core.commit, this.appliedTo);
    if (committed !== this.reportedCommit) {
      this.reportedCommit = committed;
      this.ports.committed?.(committed);
    }
    if (this.reads.size > 0) this.settleReads();
    if (this.waiters.length === 0) return;
    const core = this.core;
    // What each level holds now, computed once for all waiters.
    const held = { one: -1, quorum: -1, all: -1 };
    const heldFor = (level: Level): number => {
      if (held[level] < 0) held[level] = core.heldThrough(level);
      return held[level];
    };
    let slowest: number | null = null;
    this.waiters = this.waiters.filter((w) => {
      if (core.role !== 'leader' || core.term !== w.term) {
        w.done(
          new WriteError(
            'ERR_NOT_LEADER',
            `this node stopped being the primary of term ${w.term} before LSN ${w.lsn} reached ${w.level}; the write is indeterminate`,
            core.leader,
          ),
        );
        return false;
      }
      if (heldFor(w.level) < w.lsn) return true;
      if (w.level === 'one' && this.flowHolds(w, (slowest ??= this.slowestStreamingMatch()))) return true;
      // Visible here before the caller hears of it: a read after the write sees it. Where only
      // committed records are visible (elections), One is acknowledged at the disk, before that.
      const visibleFirst = w.level !== 'one' || !core.appliesCommittedOnly;
      if (visibleFirst && this.appliedTo < w.lsn) return true;
      w.done(null, w.result);
      return false;
    });
  }

  private expireWaiters(): void {
    for (const [id, r] of this.reads) {
      if (r.deadlineTick > this.ticks) continue;
      this.reads.delete(id);
      r.done(
        new WriteError(
          'ERR_CONSISTENCY_TIMEOUT',
          r.index === null
            ? 'no majority confirmed this primary in time; the read was not served'
            : `the state did not reach the read's commit point (LSN ${r.index}) in time`,
        ),
      );
    }
    if (this.waiters.length === 0) return;
    // Cheap when nothing is due (the common case): one pass to find the earliest deadline.
    let earliest = Infinity;
    for (const w of this.waiters) if (w.deadlineTick < earliest) earliest = w.deadlineTick;
    if (earliest > this.ticks) return;
    this.waiters = this.waiters.filter((w) => {
      if (w.deadlineTick > this.ticks) return true;
      w.done(
        new WriteError(
          'ERR_CONSISTENCY_TIMEOUT',
          `LSN ${w.lsn} reached ${this.core.holders(w.lsn)} of the ${votersNeeded(this.core.membership, w.level === 'all' ? 'all' : 'quorum')} nodes needed in time; the write is indeterminate (it is in this node's log and may still reach the others)`,
        ),
      );
      return false;
    });
  }

  /** Refuses the writes of a failed append (and those after it in the same generation, which the WAL refused too). */
  private refuseWaitersFrom(firstLsn: number, generation: number, err: WriteError): void {
    this.waiters = this.waiters.filter((w) => {
      if (w.generation !== generation || w.result.lastLsn < firstLsn) return true;
      w.done(err);
      return false;
    });
  }

  private failWaiters(err: Error): void {
    const all = this.waiters;
    this.waiters = [];
    for (const w of all) w.done(err);
    const reads = [...this.reads.values()];
    this.reads.clear();
    for (const r of reads) r.done(err);
  }
}

/** The core refused a proposal or a read: the same refusal as a WriteError. */
function coreRefusal(err: CoreError): WriteError {
  const code =
    err.code === 'ERR_NOT_LEADER' || err.code === 'ERR_TRANSFER_IN_PROGRESS' ? err.code : 'ERR_OVERLOADED';
  return new WriteError(code, err.message, err.leader);
}
