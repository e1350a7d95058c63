/**
 * One simulated node: the production core and runtime, the real record
 * codec and the store's apply (NodeState), over a simulated disk. The disk
 * completes operations in order after a latency the world draws; a crash
 * loses every operation not completed (what was not durable) and the
 * process's memory.
 */
import {
  ReplicationCore,
  type ConfigEntry,
  type CoreEvent,
  type CoreFaults,
  type HardState,
} from '../../src/consensus/core.ts';
import type { Entry, Outgoing } from '../../src/consensus/messages.ts';
import type { Epoch } from '../../src/consensus/term-history.ts';
import type { Membership } from '../../src/consensus/membership.ts';
import { ReplicationRuntime, type RuntimePorts } from '../../src/replication/runtime.ts';
import { decodeRecord, encodeRecord, Op } from '../../src/log/record.ts';
import { NodeState } from '../../src/store/state.ts';
import type { Rng } from './rng.ts';
import type { Scheduler } from './scheduler.ts';

export interface DiskOp {
  kind: string;
  complete(): void;
  /** A crash while this append is being written: some of its first records reach the disk whole. */
  tear?(pick: (count: number) => number): void;
}

/** Elections (role auto): the voters, and the ticks a voter waits for a leader. */
export interface SimElections {
  voters: string[];
  electionTicks: number;
}

/** What survives a crash: the durable records and the hard state. */
export interface Durable {
  log: Entry[];
  hardState: HardState;
  history: Epoch[];
}

export interface SimHooks {
  send(from: SimNode, message: Outgoing): void;
  disconnect(from: SimNode, peer: string, reason: string): void;
  /** Snapshot data (the records up to its LSN) shipped after the follower accepted. */
  sendSnapshotData(from: SimNode, to: string, snapshot: SimSnapshot): void;
  event(node: SimNode, event: CoreEvent): void;
  /** An invariant broke inside the node (apply out of order, an assertion). */
  violation(node: SimNode, message: string): void;
  diskLatencyMs(node: SimNode): number;
  diskFull(node: SimNode): boolean;
  /** How many of the `count` records of an append cut by a crash are on the disk whole (0 to count: a torn tail). */
  tornRecords(node: SimNode, count: number): number;
}

export interface SimSnapshot {
  lsn: number;
  records: Entry[];
  history: Epoch[];
  configs: ConfigEntry[];
}

export function configOf(bytes: Uint8Array): Membership | null {
  if (bytes[9] !== Op.Config) return null;
  const r = decodeRecord(bytes);
  return r.op === Op.Config ? { members: r.members } : null;
}

export class SimNode {
  readonly id: string;
  alive = true;
  pausedUntilMs = 0;
  role: 'leader' | 'follower';
  configuredPrimary: string | null;
  core!: ReplicationCore;
  runtime!: ReplicationRuntime;
  readonly state = new NodeState();
  /** Records in the log (durable or on their way). */
  log: Entry[] = [];
  private durableLen = 0;
  private durable: Durable;
  private ops: DiskOp[] = [];
  /** Completions that came while paused, waiting for the pause to end (in order). */
  private deferred: (() => void)[] = [];
  private opBusy = false;
  /** Pinned snapshots this leader offered, by follower. */
  readonly offered = new Map<string, SimSnapshot>();
  /** A snapshot received from the leader, waiting to be installed. */
  received: SimSnapshot | null = null;
  /** Bumped at each restart: callbacks of an earlier incarnation are dropped. */
  incarnation = 0;
  /** The first LSN this leader can still send; older ones only by snapshot (simulated compaction). */
  compactedTo = 1;
  appliedCount = 0;
  /**
   * The highest committed watermark the runtime reported (what log cursors
   * may have handed out, across restarts): no truncation may reach below it.
   */
  committedLsn = 0;
  /** Bumped when the disk refuses an append: appends queued before that fail too (as the WAL does). */
  private appendFailures = 0;

  constructor(
    id: string,
    role: 'leader' | 'follower',
    configuredPrimary: string | null,
    private readonly sched: Scheduler,
    private readonly rng: Rng,
    private readonly hooks: SimHooks,
    private readonly faults: Partial<CoreFaults>,
    private readonly elections: SimElections | null = null,
    genesis: Durable | null = null,
  ) {
    this.id = id;
    this.role = role;
    this.configuredPrimary = configuredPrimary;
    this.durable = genesis ?? { log: [], hardState: { term: 0, votedFor: null, commit: 0 }, history: [] };
    this.boot();
  }

  get paused(): boolean {
    return this.sched.nowMs < this.pausedUntilMs;
  }

  /** Nothing in flight: no disk operation, no Ready to handle (the log and the core agree now). */
  get quiescent(): boolean {
    return (
      this.alive &&
      !this.paused &&
      this.deferred.length === 0 &&
      this.ops.length === 0 &&
      !this.opBusy &&
      !this.core.hasReady()
    );
  }

  /** The last LSN on the disk (what a crash now would keep). */
  get durableLastLsn(): number {
    return this.durable.log.length;
  }

  /** Starts the process from what is durable (a fresh start or a restart after a crash). */
  boot(): void {
    this.incarnation++;
    this.alive = true;
    this.ops = [];
    this.deferred = [];
    this.opBusy = false;
    this.offered.clear();
    this.received = null;
    this.log = this.durable.log.slice();
    this.durableLen = this.log.length;
    this.state.reset(0);
    // With elections only committed records are applied (recovery replays up to the commit point).
    const lastLsn = this.log.length;
    const appliedLsn = this.elections ? Math.min(this.durable.hardState.commit, lastLsn) : lastLsn;
    for (const e of this.log.slice(0, appliedLsn)) this.applyOne(e);
    const configs: ConfigEntry[] = [];
    for (const e of this.log) if (e.config) configs.push({ lsn: e.lsn, membership: e.config });
    this.core = new ReplicationCore({
      id: this.id,
      role: this.elections ? 'follower' : this.role,
      hardState: this.durable.hardState,
      log: {
        lastLsn,
        firstLsn: this.compactedTo,
        history: this.durable.history,
        configs,
        appliedLsn,
      },
      rng: () => this.rng.next(),
      heartbeatTicks: 5,
      timeoutTicks: 40,
      followsConfiguredPrimary:
        !this.elections && this.role === 'follower' && this.configuredPrimary !== null,
      faults: this.faults,
      elections: this.elections && {
        electionTicks: this.elections.electionTicks,
        bootstrap: { members: this.elections.voters.map((v) => ({ id: v, address: null })) },
        encodeConfig: (lsn, term, membership) =>
          encodeRecord({
            lsn,
            term,
            hlcMs: 0,
            hlcLogical: 0,
            origin: this.id,
            collection: '',
            op: Op.Config,
            members: membership.members,
          }),
      },
    });
    this.runtime = new ReplicationRuntime(this.core, this.ports());
    this.runtime.initApplied(appliedLsn);
  }

  crash(): void {
    // The append being written when the power goes may leave some of its records whole
    // (recovery keeps those and cuts the torn one): records nobody was told are durable.
    const writing = this.opBusy ? this.ops[0] : undefined;
    writing?.tear?.((count) => this.hooks.tornRecords(this, count));
    this.alive = false;
    this.incarnation++;
    this.runtime.stop(new Error('crashed'));
    this.ops = [];
  }

  private applyOne(e: Entry): void {
    const record = decodeRecord(e.bytes);
    try {
      this.state.apply(record);
      this.appliedCount++;
    } catch (err) {
      this.hooks.violation(this, `apply: ${(err as Error).message}`);
    }
  }

  private enqueue(kind: string, complete: () => void, tear?: DiskOp['tear']): void {
    const incarnation = this.incarnation;
    this.ops.push({
      kind,
      complete: () => {
        if (incarnation === this.incarnation) complete();
      },
      ...(tear ? { tear } : {}),
    });
    this.kick();
  }

  private kick(): void {
    if (this.opBusy || this.ops.length === 0) return;
    this.opBusy = true;
    const incarnation = this.incarnation;
    this.sched.after(this.hooks.diskLatencyMs(this), () => {
      if (incarnation !== this.incarnation) return;
      this.opBusy = false;
      const op = this.ops.shift();
      op?.complete();
      this.kick();
    });
  }

  /**
   * Calls `fn` now, or once a pause ends, in the order the calls came (the
   * disk's completions reach a stopped process in order when it resumes);
   * nothing after a crash.
   */
  private whenRunning(fn: () => void): void {
    const incarnation = this.incarnation;
    const run = (): void => {
      if (incarnation === this.incarnation && this.alive) fn();
    };
    if (!this.paused && this.deferred.length === 0) return run();
    this.deferred.push(run);
    if (this.deferred.length === 1) this.sched.at(this.pausedUntilMs, () => this.flushDeferred());
  }

  private flushDeferred(): void {
    while (this.deferred.length > 0) {
      if (this.paused) {
        this.sched.at(this.pausedUntilMs, () => this.flushDeferred());
        return;
      }
      (this.deferred.shift() as () => void)();
    }
  }

  /** The pause ends now (healing): what waited for it runs, in order. */
  resume(): void {
    this.pausedUntilMs = 0;
    this.flushDeferred();
  }

  private ports(): RuntimePorts {
    return {
      saveHardState: (hs, history, done) =>
        this.enqueue('meta', () => {
          this.durable.hardState = { ...hs };
          if (history) this.durable.history = history.map((e) => ({ ...e }));
          this.whenRunning(() => done(null));
        }),
      truncateLog: (afterLsn, done) => {
        if (afterLsn < this.committedLsn) {
          this.hooks.violation(
            this,
            `truncation after ${afterLsn} drops committed records (through ${this.committedLsn}) a reader may have seen`,
          );
        }
        this.enqueue('truncate', () => {
          this.log.length = Math.min(this.log.length, afterLsn);
          this.durableLen = Math.min(this.durableLen, afterLsn);
          this.durable.log = this.log.slice(0, this.durableLen);
          this.whenRunning(() => done(null));
        });
      },
      committed: (lsn) => {
        this.committedLsn = Math.max(this.committedLsn, lsn);
      },
      appendLog: (entries, done) => {
        const first = entries[0] as Entry;
        if (first.lsn !== this.log.length + 1) {
          // As the WAL does: records that do not follow its end are refused (a failed group was cut off before them).
          const end = this.log.length;
          this.enqueue('append', () =>
            this.whenRunning(() => done(new Error(`LSN ${first.lsn} does not follow ${end}`))),
          );
          return;
        }
        this.log.push(...entries);
        const failuresBefore = this.appendFailures;
        this.enqueue(
          'append',
          () => {
            if (this.hooks.diskFull(this) || failuresBefore !== this.appendFailures) {
              // The WAL cuts a failed group off again, and refuses everything queued after it.
              if (failuresBefore === this.appendFailures) this.appendFailures++;
              this.log.length = Math.min(this.log.length, first.lsn - 1);
              this.whenRunning(() => done(new Error('ENOSPC: no space left on device')));
              return;
            }
            const last = (entries.at(-1) as Entry).lsn;
            if (this.log.length >= last) {
              this.durableLen = Math.max(this.durableLen, last);
              this.durable.log = this.log.slice(0, this.durableLen);
            }
            this.whenRunning(() => done(null));
          },
          (pick) => {
            if (this.hooks.diskFull(this) || failuresBefore !== this.appendFailures) return;
            if (first.lsn !== this.durable.log.length + 1) return;
            this.durable.log = this.durable.log.concat(entries.slice(0, pick(entries.length)));
          },
        );
      },
      readLog: (fromLsn, toLsn, done) => done(null, this.log.slice(fromLsn - 1, toLsn)),
      apply: (entries) => {
        for (const e of entries) this.applyOne(e);
      },
      rollback: (lsn, done) => {
        this.state.reset(0);
        for (const e of this.log.slice(0, lsn)) this.applyOne(e);
        done(null);
      },
      installSnapshot: (lsn, done) => {
        const snap = this.received;
        if (snap === null || snap.lsn !== lsn) {
          this.hooks.violation(this, `install of snapshot ${lsn} that was not received`);
          return;
        }
        this.received = null;
        this.enqueue('install', () => {
          this.log = snap.records.slice();
          this.durableLen = this.log.length;
          this.durable.log = this.log.slice();
          this.durable.history = snap.history.map((e) => ({ ...e }));
          this.state.reset(0);
          for (const e of this.log) this.applyOne(e);
          this.whenRunning(() => done(null, { history: snap.history, configs: snap.configs }));
        });
      },
      send: (message) => this.hooks.send(this, message),
      disconnect: (peer, reason) => this.hooks.disconnect(this, peer, reason),
      offerSnapshot: (to, term, probeId, force) => {
        const lsn = this.state.appliedLsn;
        const records = this.log.slice(0, lsn);
        const configs: ConfigEntry[] = [];
        for (const e of records) if (e.config) configs.push({ lsn: e.lsn, membership: e.config });
        // The snapshot's history ends at its LSN; the offer carries this leader's whole history.
        const history = this.core.termHistory.filter((e) => e.firstLsn <= Math.max(lsn, 1));
        const snapshot: SimSnapshot = { lsn, records, history, configs };
        this.offered.set(to, snapshot);
        this.hooks.send(this, {
          type: 'snapshotOffer',
          from: this.id,
          to,
          term,
          probeId,
          snapshotLsn: lsn,
          history: this.core.termHistory,
          force,
        });
        this.runtime.step({ type: 'snapshotOffered', to, term, snapshotLsn: lsn });
      },
      event: (event) => this.hooks.event(this, event),
      fatal: (err) => this.hooks.violation(this, `fatal: ${err.message}`),
    };
  }
}
