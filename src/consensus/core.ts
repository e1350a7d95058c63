/**
 * The replication core of one node: every protocol decision, and nothing
 * else. In the shape of etcd raft's RawNode: inputs come in through
 * `step()` (messages, and what the node's disk and transport report),
 * `tick()` (time, as a count) and `propose()`; `ready()` hands out what the
 * node must now do (persist the hard state, truncate, append, send, apply),
 * in that order; `advance()` acknowledges it. No sockets, files, timers,
 * clocks, randomness or process state in here: ids come from the `rng`
 * passed in, time from ticks. The deterministic simulator (test/sim/) runs
 * this same code.
 *
 * Roles, set by the operator (manual failover; elections come later):
 * - leader (primary): takes writes, assigns (term, LSN), feeds followers;
 * - follower (replica, or observer when not a member): follows one leader;
 * - fenced: a leader that learned of a newer term; takes no writes.
 *
 * The log's identity is (epoch, LSN) (term-history.ts). Every leader
 * start begins a new epoch with a new term, so a restarted primary's new
 * records never pose as the old ones a follower may still hold beyond what
 * the primary made durable: the follower drops those when it syncs.
 *
 * Safety rules, each tied to a check below:
 * - a term counts only from a member or the primary this node was told to
 *   follow (a stranger's message changes nothing);
 * - a follower persists the leader's term before answering it, and follows
 *   one leader per term;
 * - a follower never drops records it knows to be committed (`diverged`),
 *   nor records it acknowledged in this term;
 * - the leader counts its own records only once its disk has them;
 * - the commit point counts records of the leader's own epoch (Raft §5.4.2).
 */
import { assert } from './assert.ts';
// Types only: the codes are the registry's; nothing of errors.ts runs here.
import type { ErrorCodeSubset } from '../errors.ts';
import { TermHistory, type Epoch } from './term-history.ts';
import {
  checkMembership,
  isMember,
  votersNeeded,
  leaderOnly,
  MAX_MEMBERS,
  onlyResolves,
  sameMembership,
  type Membership,
} from './membership.ts';
import { heldBy, levelMet, memberPositions, type Level } from './quorum.ts';
import { Progress, type ProgressState } from './progress.ts';
import type {
  AckMessage,
  Entry,
  HeartbeatMessage,
  Incoming,
  Outgoing,
  PositionMessage,
  ProbeMessage,
  RecordsMessage,
  RefusalCode,
  RefuseMessage,
  SnapshotAcceptMessage,
  SnapshotOfferMessage,
  SyncMessage,
} from './messages.ts';

export type Role = 'leader' | 'follower' | 'fenced';

export interface HardState {
  term: number;
  /** The leader this node accepted (or is) in `term`. */
  votedFor: string | null;
  /** A commit point this node has seen; it never drops records at or below it. */
  commit: number;
}

export interface ConfigEntry {
  lsn: number;
  membership: Membership;
}

export interface CoreLog {
  /** Last record in the log (all durable when the node starts). */
  lastLsn: number;
  /** Oldest record the log can still send (older ones only via a snapshot). */
  firstLsn: number;
  history: Epoch[];
  /** Config records in the log, oldest first (the one a snapshot carries included). */
  configs: ConfigEntry[];
  /** Records applied to the state. */
  appliedLsn: number;
}

export interface CoreOptions {
  id: string;
  role: 'leader' | 'follower';
  hardState: HardState;
  log: CoreLog;
  /** Random numbers in [0, 1): history ids. The simulator passes a seeded one. */
  rng: () => number;
  /** Ticks between heartbeats to each peer. */
  heartbeatTicks: number;
  /** A peer silent this many ticks is disconnected. */
  timeoutTicks: number;
  /** Follower with a configured primary: it follows only the node reached at that address. */
  followsConfiguredPrimary: boolean;
  /** Deliberate defects, for proving the simulator's checkers catch them. Never set in production. */
  faults?: Partial<CoreFaults>;
  /**
   * Told synchronously whenever the log's content changes (records added,
   * records dropped, a snapshot put in their place), for in-memory views
   * that must follow the head of the log (the schema new writes are checked
   * against). Not for I/O: that is what Ready is for.
   */
  onLogChange?: (change: LogChange) => void;
}

export type LogChange =
  | { type: 'append'; entries: readonly Entry[] }
  | { type: 'truncate'; afterLsn: number }
  | { type: 'snapshot'; snapshotLsn: number };

/** Defects the simulator switches in to show its checkers fail (test/sim/). */
export interface CoreFaults {
  /**
   * The old LSN-reuse bug: records are sent before the leader's own disk has
   * them, and a restarted leader keeps its term and epoch.
   */
  ringBeforeWal: boolean;
  /** Records from an older term are taken. */
  acceptStaleRecords: boolean;
  /** A divergent tail is kept instead of dropped. */
  keepDivergentTail: boolean;
  /**
   * The leader takes its own records as durable once appended: it counts
   * them toward Quorum, sends and applies them before its disk has them.
   */
  countUndurableLeader: boolean;
  /** A follower acknowledges records as soon as they are appended, before its disk has them. */
  ackBeforeDurable: boolean;
  /** Applied records are reported committed (log readers would see records the quorum lacks). */
  commitAtApply: boolean;
  /** Records the disk refused stay applied (the state keeps writes the log does not have). */
  keepRefusedApplied: boolean;
}

export type CoreEvent =
  | { type: 'roleChanged'; role: Role; term: number; leader: string | null }
  /** Leader: a follower synced (partial: from the match point; full: a snapshot installed). */
  | { type: 'synced'; peer: string; mode: 'partial' | 'full'; lsn: number }
  /** Follower: this node synced with its leader. */
  | { type: 'followed'; leader: string; mode: 'partial' | 'full'; lsn: number }
  | { type: 'fullSyncOffered'; peer: string }
  | { type: 'refused'; peer: string; code: RefusalCode; reason: string; byMe: boolean }
  | { type: 'fenced'; by: string; term: number }
  | { type: 'truncated'; afterLsn: number; droppedFrom: number; droppedTo: number }
  | { type: 'peerSilent'; peer: string };

export interface Ready {
  /** Persist (fsync) before any message of this Ready is sent. */
  hardState: HardState | null;
  /** Persist with the hard state, after `truncateAfter`, before `append`. */
  history: Epoch[] | null;
  /** Drop log records above this LSN, before appending. */
  truncateAfter: number | null;
  /** Applied state holds records above this LSN that are gone: rebuild it up to here. */
  rollbackTo: number | null;
  /** Replace state and log with the received snapshot at this LSN. */
  installSnapshot: number | null;
  /** Records to append, with the generation their durability is reported under. */
  append: { entries: Entry[]; generation: number } | null;
  messages: Outgoing[];
  /** Links to close (a silent peer), with the reason. */
  disconnect: { peer: string; reason: string }[];
  /** Full syncs to offer: the transport pins a snapshot and reports snapshotOffered. */
  offerSnapshot: { to: string; probeId: number; force: boolean }[];
  /** Apply records (appliedLsn, applyThrough]. */
  applyThrough: number;
  /** The log's generation after this Ready: durability is reported under it (see LocalInput). */
  generation: number;
  events: CoreEvent[];
}

/** What the node's disk and transport tell the core. */
export type LocalInput =
  | { type: 'connected'; peer: string; viaConfiguredPrimary: boolean }
  | { type: 'disconnected'; peer: string }
  /** The WAL holds records up to `lsn` durably (per its fsync policy). */
  | { type: 'localDurable'; lsn: number; generation: number }
  /** The WAL refused records from `fromLsn` on: they are not in the log. */
  | { type: 'localFailed'; fromLsn: number; generation: number }
  /**
   * The transport sent the frame of the append request from `firstLsn`,
   * holding records up to `lastLsn` (`bytes` 0: it had nothing to send, and
   * the follower waits for the log to grow or the next heartbeat).
   */
  | { type: 'appendSent'; to: string; term: number; requestId: number; lastLsn: number; bytes: number }
  /** The transport cannot read the records of that request any more (compacted): a full sync is needed. */
  | { type: 'appendUnavailable'; to: string; term: number; requestId: number }
  /** The transport pinned a snapshot at `snapshotLsn` and sent the offer. */
  | { type: 'snapshotOffered'; to: string; term: number; snapshotLsn: number }
  /** Follower: every chunk of the accepted snapshot arrived and checks out. */
  | { type: 'snapshotReceived'; from: string; term: number; snapshotLsn: number }
  /** Follower: the snapshot is installed (state, log and history replaced). */
  | { type: 'snapshotInstalled'; snapshotLsn: number; history: Epoch[]; configs: ConfigEntry[] };

export type Input = Incoming | LocalInput;

/** Snapshot offer the follower accepted, until it is installed. */
interface Receiving {
  leader: string;
  term: number;
  /** The probe the offer answered. */
  probeId: number;
  snapshotLsn: number;
  history: Epoch[];
  commit: number;
}

export class CoreError extends Error {
  constructor(
    readonly code: ErrorCodeSubset<'ERR_NOT_LEADER' | 'ERR_CONFIG_PENDING'>,
    message: string,
    readonly leader: string | null = null,
  ) {
    super(message);
    this.name = 'CoreError';
  }
}

function hex32(rng: () => number): string {
  let out = '';
  for (let i = 0; i < 32; i++) out += Math.floor(rng() * 16).toString(16);
  return out;
}

export class ReplicationCore {
  readonly id: string;
  private roleNow: Role;
  private hs: HardState;
  private hsDirty = false;
  private historyDirty = false;
  private readonly history: TermHistory;
  private configs: ConfigEntry[];
  private lastLsn: number;
  private firstLsn: number;
  private durableLsn: number;
  private appliedLsn: number;
  /** Apply limit: what this node may make visible (leader: its durable records; follower: the leader's). */
  private applyLimit = 0;
  /** Bumped by every truncation and snapshot install: durability reports of older appends are void. */
  private generation = 0;
  private readonly rng: () => number;
  private readonly heartbeatTicks: number;
  private readonly timeoutTicks: number;
  private followsConfiguredPrimary: boolean;
  private readonly faults: CoreFaults;
  private readonly onLogChange: (change: LogChange) => void;
  /** Commit point last handed out in a hard state (it is persisted lazily). */
  private persistedCommit: number;

  // Links the transport has open, and whether each is to the configured primary.
  private readonly links = new Map<string, { viaConfiguredPrimary: boolean; silentTicks: number }>();
  private ticksSinceHeartbeat = 0;

  // Leader.
  private readonly progress = new Map<string, Progress>();
  /** Followers whose next sync is a forced full one (kept across reconnects until it happened). */
  private readonly forceFull = new Set<string>();
  private nextProbeId = 1;
  private nextRequestId = 1;

  // Follower.
  private leaderId: string | null = null;
  /** The leader's commit point as last heard (this node commits what of it its own disk holds). */
  private leaderCommit = 0;
  /** The leader's last LSN as last heard (for lag). */
  private leaderLast = 0;
  private synced = false;
  private answeredProbe: number | null = null;
  /** The probe whose sync this follower took: a full sync offered under it is still this leader's. */
  private syncedProbe: number | null = null;
  /** Highest probe id answered for the current leader and term. */
  private lastProbeId = 0;
  /** Highest LSN acknowledged to the leader in this term: never dropped in this term. */
  private ackedThisTerm = 0;
  private ackDue = false;
  private receiving: Receiving | null = null;
  private installing: Receiving | null = null;
  /** The operator promoted this node while a snapshot was being installed: it leads once the install is done. */
  private promoteAfterInstall = false;

  // Output being gathered for the next Ready.
  private out: Omit<Ready, 'hardState' | 'history' | 'applyThrough' | 'generation'> =
    ReplicationCore.emptyOut();

  constructor(opts: CoreOptions) {
    this.id = opts.id;
    // A commit point beyond the log (a disk that lost its tail) protects nothing that is there.
    this.hs = { ...opts.hardState, commit: Math.min(opts.hardState.commit, opts.log.lastLsn) };
    this.history = new TermHistory(opts.log.history);
    this.configs = opts.log.configs.map((c) => ({ lsn: c.lsn, membership: c.membership }));
    this.lastLsn = opts.log.lastLsn;
    this.firstLsn = opts.log.firstLsn;
    this.durableLsn = opts.log.lastLsn;
    this.appliedLsn = opts.log.appliedLsn;
    this.rng = opts.rng;
    this.heartbeatTicks = opts.heartbeatTicks;
    this.timeoutTicks = opts.timeoutTicks;
    this.followsConfiguredPrimary = opts.followsConfiguredPrimary;
    this.onLogChange = opts.onLogChange ?? (() => {});
    this.persistedCommit = opts.hardState.commit;
    this.faults = {
      ringBeforeWal: false,
      acceptStaleRecords: false,
      keepDivergentTail: false,
      countUndurableLeader: false,
      ackBeforeDurable: false,
      commitAtApply: false,
      keepRefusedApplied: false,
      ...opts.faults,
    };
    assert(
      opts.heartbeatTicks >= 1 && opts.timeoutTicks > opts.heartbeatTicks,
      'timeout must exceed heartbeat',
    );
    assert(
      this.appliedLsn <= this.lastLsn,
      `applied ${this.appliedLsn} beyond the log's last ${this.lastLsn}`,
    );
    const last = this.history.epochAt(this.lastLsn);
    const cfg = this.configs.at(-1)?.membership;
    if (
      last?.leaderId === this.id &&
      (cfg === undefined || (cfg.members.length === 1 && cfg.members[0]?.id === this.id))
    ) {
      // Its own log as the only member: every record on its disk was committed.
      this.hs = { ...this.hs, commit: this.lastLsn };
    }
    this.roleNow = 'follower';
    // Probe ids start anywhere: a restarted leader's first probes are not mistaken for old ones.
    this.nextProbeId = 1 + Math.floor(this.rng() * 2 ** 30);
    if (opts.role === 'leader') this.becomeLeader();
    else this.applyLimit = this.appliedLsn;
  }

  private static emptyOut(): Omit<Ready, 'hardState' | 'history' | 'applyThrough' | 'generation'> {
    return {
      truncateAfter: null,
      rollbackTo: null,
      installSnapshot: null,
      append: null,
      messages: [],
      disconnect: [],
      offerSnapshot: [],
      events: [],
    };
  }

  // ------------------------------------------------------------------ queries

  get role(): Role {
    return this.roleNow;
  }

  get term(): number {
    return this.hs.term;
  }

  get hardState(): HardState {
    return { ...this.hs };
  }

  /** The leader this node follows (or is); null when it knows none. */
  get leader(): string | null {
    return this.roleNow === 'leader' ? this.id : this.leaderId;
  }

  get log(): { firstLsn: number; lastLsn: number; durableLsn: number; appliedLsn: number } {
    return {
      firstLsn: this.firstLsn,
      lastLsn: this.lastLsn,
      durableLsn: this.durableLsn,
      appliedLsn: this.appliedLsn,
    };
  }

  get commit(): number {
    return this.faults.commitAtApply ? Math.max(this.hs.commit, this.appliedLsn) : this.hs.commit;
  }

  /** Bumped whenever records are dropped from the log: LSNs of an older generation may now name other records. */
  get logGeneration(): number {
    return this.generation;
  }

  get termHistory(): Epoch[] {
    return this.history.list();
  }

  /** Follower: the leader's last LSN as last heard. */
  get leaderLastLsn(): number {
    return this.leaderLast;
  }

  get isSynced(): boolean {
    return this.roleNow === 'follower' && this.synced;
  }

  /** The membership in force: the last config record in the log, else the leader alone. */
  get membership(): Membership {
    const last = this.configs.at(-1);
    if (last) return last.membership;
    const leader = this.leader ?? this.history.epochAt(this.lastLsn)?.leaderId ?? this.id;
    return leaderOnly(leader);
  }

  /** True while a config record is not yet committed (a second change must wait). */
  get configPending(): boolean {
    const last = this.configs.at(-1);
    return last !== undefined && last.lsn > this.hs.commit;
  }

  /** A follower's progress as this leader tracks it. */
  peer(id: string): Readonly<Progress> | undefined {
    return this.progress.get(id);
  }

  peers(): string[] {
    return [...this.progress.keys()];
  }

  /** True when `lsn` (written by this leader) meets `level` now. */
  levelMet(lsn: number, level: Level): boolean {
    const durable = this.faults.countUndurableLeader ? this.lastLsn : this.durableLsn;
    return levelMet(level, lsn, this.membership, this.id, durable, (id) => this.progress.get(id)?.match ?? 0);
  }

  /**
   * The highest LSN that meets `level` now: every write at or below it
   * does (positions only grow within a term). One pass over the members.
   */
  heldThrough(level: Level): number {
    const durable = this.faults.countUndurableLeader ? this.lastLsn : this.durableLsn;
    if (level === 'one') return durable;
    const m = this.membership;
    const positions = memberPositions(m, this.id, durable, (id) => this.progress.get(id)?.match ?? 0);
    return heldBy(positions, votersNeeded(m, level));
  }

  /** How many members hold `lsn` durably (the leader included). */
  holders(lsn: number): number {
    return memberPositions(
      this.membership,
      this.id,
      this.durableLsn,
      (id) => this.progress.get(id)?.match ?? 0,
    ).filter((p) => p >= lsn).length;
  }

  /** Addresses of members whose node id is not known yet (the node dials them to learn it). */
  unresolvedMembers(): string[] {
    return this.membership.members
      .filter((m) => m.id === null && m.address !== null)
      .map((m) => m.address as string);
  }

  // ------------------------------------------------------------------ inputs

  /**
   * Assigns the next `count` LSNs of this leader's term to new records and
   * appends them: `encode(lsn, term, i)` builds record i (pure). A config
   * record passes its membership. Throws CoreError ERR_NOT_LEADER on any
   * other role.
   */
  propose(
    count: number,
    encode: (lsn: number, term: number, index: number) => Uint8Array,
    config: Membership | null = null,
  ): { firstLsn: number; lastLsn: number; term: number } {
    if (this.roleNow !== 'leader') {
      throw new CoreError(
        'ERR_NOT_LEADER',
        this.roleNow === 'fenced'
          ? `this node was primary in term ${this.epochTerm()} but term ${this.hs.term} has begun${this.leaderId ? ` (led by ${this.leaderId})` : ''}; it takes no writes`
          : `this node is not the primary${this.leaderId ? ` (${this.leaderId} is)` : ''}`,
        this.leaderId,
      );
    }
    assert(Number.isInteger(count) && count >= 1, `propose(${count})`);
    if (config !== null) {
      assert(count === 1, 'a config record goes alone');
      checkMembership(config);
      if (this.configPending && !onlyResolves(this.membership, config)) {
        throw new CoreError(
          'ERR_CONFIG_PENDING',
          'a membership change is still being committed; retry once it is',
        );
      }
    }
    const term = this.hs.term;
    const firstLsn = this.lastLsn + 1;
    const entries: Entry[] = [];
    for (let i = 0; i < count; i++) {
      const lsn = firstLsn + i;
      entries.push({ lsn, term, bytes: encode(lsn, term, i), config: i === 0 ? config : null });
    }
    this.appendLocal(entries);
    if (config !== null) this.advanceCommit();
    return { firstLsn, lastLsn: this.lastLsn, term };
  }

  /** Operator: this node becomes the primary, in a new term (manual failover). */
  promote(): void {
    if (this.roleNow === 'leader') return;
    if (this.installing !== null) {
      // The install replaces the log: an epoch begun now would start on the log it replaces.
      this.promoteAfterInstall = true;
      return;
    }
    this.becomeLeader();
  }

  /** Operator: this node follows (a configured primary when `viaConfiguredPrimary`). */
  follow(followsConfiguredPrimary: boolean): void {
    this.followsConfiguredPrimary = followsConfiguredPrimary;
    this.promoteAfterInstall = false;
    if (this.roleNow !== 'follower') this.becomeFollower(null);
    this.leaderId = null;
    this.synced = false;
    this.answeredProbe = null;
    this.receiving = null;
  }

  /**
   * Operator: the next sync of `peer` is a full one, accepted even over its
   * own data (now, or when it next connects).
   */
  forceFullSync(peer: string): void {
    this.forceFull.add(peer);
    const p = this.progress.get(peer);
    if (p) {
      p.forceFull = true;
      this.probe(p);
    }
  }

  tick(): void {
    for (const [peer, link] of this.links) {
      // Only a relationship expects traffic: the leader hears its followers, a follower its leader.
      const related = this.roleNow === 'leader' ? this.progress.has(peer) : peer === this.leaderId;
      if (!related) continue;
      link.silentTicks++;
      if (link.silentTicks > this.timeoutTicks) {
        this.out.disconnect.push({ peer, reason: `peer silent for more than ${this.timeoutTicks} ticks` });
        this.out.events.push({ type: 'peerSilent', peer });
        link.silentTicks = 0;
      }
    }
    this.ticksSinceHeartbeat++;
    if (this.ticksSinceHeartbeat < this.heartbeatTicks) return;
    this.ticksSinceHeartbeat = 0;
    // The commit point goes to disk once a heartbeat at most (it is a floor: late is safe).
    if (this.hs.commit !== this.persistedCommit) this.hsDirty = true;
    if (this.roleNow === 'leader') {
      for (const p of this.progress.values()) {
        p.stateTicks += this.heartbeatTicks;
        p.waitingForLog = false;
        if (p.state === 'snapshot' && !p.snapshotAccepted && p.stateTicks > this.timeoutTicks) {
          this.probe(p); // the offer (or its answer) was lost: ask again
          continue;
        }
        if (p.state === 'probe') this.sendProbe(p);
        else if (p.state !== 'refused') this.sendHeartbeat(p.peer);
        if (
          p.state === 'replicate' &&
          p.inflightFrames > 0 &&
          (p.stalledTicks += this.heartbeatTicks) > 4 * this.heartbeatTicks
        ) {
          // Heartbeats come back but the frames are never acknowledged: they were lost; send again.
          p.reset('replicate', p.match + 1);
        }
      }
    } else if (this.roleNow === 'follower' && this.leaderId !== null && this.links.has(this.leaderId)) {
      this.ackDue = true;
    }
  }

  step(input: Input): void {
    switch (input.type) {
      case 'connected':
        return this.onConnected(input.peer, input.viaConfiguredPrimary);
      case 'disconnected':
        return this.onDisconnected(input.peer);
      case 'localDurable':
        return this.onLocalDurable(input.lsn, input.generation);
      case 'localFailed':
        return this.onLocalFailed(input.fromLsn, input.generation);
      case 'appendSent':
        return this.onAppendSent(input);
      case 'appendUnavailable':
        return this.onAppendUnavailable(input.to, input.term, input.requestId);
      case 'snapshotOffered':
        return this.onSnapshotOffered(input.to, input.term, input.snapshotLsn);
      case 'snapshotReceived':
        return this.onSnapshotReceived(input.from, input.term, input.snapshotLsn);
      case 'snapshotInstalled':
        return this.onSnapshotInstalled(input.snapshotLsn, input.history, input.configs);
      default:
        return this.onMessage(input);
    }
  }

  // ------------------------------------------------------------------ output

  hasReady(): boolean {
    const o = this.out;
    return (
      this.hsDirty ||
      this.historyDirty ||
      this.ackDue ||
      o.truncateAfter !== null ||
      o.rollbackTo !== null ||
      o.installSnapshot !== null ||
      o.append !== null ||
      o.messages.length > 0 ||
      o.disconnect.length > 0 ||
      o.offerSnapshot.length > 0 ||
      o.events.length > 0 ||
      this.applyThroughNow() > this.appliedLsn ||
      this.appendsDue()
    );
  }

  /**
   * What the node must do now, in order: persist `hardState` and `history`
   * (after `truncateAfter`), truncate, roll back, install, append, then send
   * `messages` and apply through `applyThrough`. Call `advance()` when done.
   */
  ready(): Ready {
    this.fillAppends();
    if (this.ackDue) {
      this.ackDue = false;
      this.sendAck();
    }
    const ready: Ready = {
      ...this.out,
      hardState: this.hsDirty ? { ...this.hs } : null,
      history: this.historyDirty ? this.history.list() : null,
      // Nothing is applied on top of a state that a snapshot is about to replace.
      applyThrough: this.out.installSnapshot !== null ? this.appliedLsn : this.applyThroughNow(),
      generation: this.generation,
    };
    this.out = ReplicationCore.emptyOut();
    if (ready.hardState) this.persistedCommit = ready.hardState.commit;
    this.hsDirty = false;
    this.historyDirty = false;
    if (ready.applyThrough > this.appliedLsn) this.appliedLsn = ready.applyThrough;
    return ready;
  }

  /** The node has done everything the last Ready asked for. */
  advance(): void {
    // Everything is accounted for when ready() hands it out; the call marks
    // the boundary for the driver (and keeps the RawNode contract).
  }

  // ------------------------------------------------------------------ roles

  private epochTerm(): number {
    return this.history.last?.term ?? 0;
  }

  private becomeLeader(): void {
    // The defect keeps the old term and epoch across a restart (LSNs reused under one identity).
    const reuse = this.faults.ringBeforeWal && this.history.length > 0;
    const term = reuse ? Math.max(this.hs.term, 1) : this.hs.term + 1;
    this.setHardState({ term, votedFor: this.id });
    this.roleNow = 'leader';
    this.leaderId = null;
    this.synced = false;
    this.receiving = null;
    if (!reuse) {
      // Epochs adopted from an earlier leader that wrote nothing here yet end with this log.
      this.history.truncateAfter(this.lastLsn);
      this.history.begin({ term, historyId: hex32(this.rng), leaderId: this.id, firstLsn: this.lastLsn + 1 });
      this.historyDirty = true;
    }
    this.applyLimit = this.durableLsn;
    this.progress.clear();
    for (const [peer] of this.links) this.addProgress(peer);
    this.out.events.push({ type: 'roleChanged', role: 'leader', term, leader: this.id });
  }

  private becomeFollower(leader: string | null): void {
    const was = this.roleNow;
    this.roleNow = 'follower';
    this.progress.clear();
    this.leaderId = leader;
    this.synced = false;
    this.answeredProbe = null;
    if (was !== 'follower') {
      this.out.events.push({ type: 'roleChanged', role: 'follower', term: this.hs.term, leader });
    }
  }

  private fence(by: string, term: number, leader: string | null): void {
    if (term > this.hs.term) this.setHardState({ term, votedFor: leader });
    this.roleNow = 'fenced';
    this.leaderId = leader;
    for (const p of this.progress.values()) p.reset('refused', p.next);
    this.out.events.push({ type: 'fenced', by, term });
    this.out.events.push({ type: 'roleChanged', role: 'fenced', term: this.hs.term, leader });
  }

  private setHardState(change: Partial<HardState>): void {
    const next = { ...this.hs, ...change };
    if (next.term !== this.hs.term) this.ackedThisTerm = 0;
    if (next.term !== this.hs.term || next.votedFor !== this.hs.votedFor || next.commit !== this.hs.commit) {
      this.hs = next;
      this.hsDirty = true;
    }
  }

  /** Whether a term claimed by `peer` may change this node's (a member, or the configured primary). */
  private trusted(peer: string): boolean {
    if (isMember(this.membership, peer)) return true;
    return this.links.get(peer)?.viaConfiguredPrimary === true;
  }

  // ------------------------------------------------------------------ links

  private onConnected(peer: string, viaConfiguredPrimary: boolean): void {
    assert(peer !== this.id, 'a link to itself');
    if (!this.links.has(peer) && this.links.size >= MAX_MEMBERS * 2) {
      this.out.disconnect.push({ peer, reason: `more than ${MAX_MEMBERS * 2} peer links` });
      return;
    }
    this.links.set(peer, { viaConfiguredPrimary, silentTicks: 0 });
    if (this.roleNow === 'leader') this.addProgress(peer);
  }

  private onDisconnected(peer: string): void {
    this.links.delete(peer);
    this.progress.delete(peer);
    if (this.roleNow === 'follower' && this.leaderId === peer) {
      // A new link starts a new conversation: probe ids of the old one mean nothing now.
      this.synced = false;
      this.answeredProbe = null;
      this.syncedProbe = null;
      this.lastProbeId = 0;
      this.receiving = null;
    }
  }

  private heard(peer: string): void {
    const link = this.links.get(peer);
    if (link) link.silentTicks = 0;
  }

  // ------------------------------------------------------------------ leader

  private addProgress(peer: string): void {
    const p = new Progress(peer, this.lastLsn + 1);
    p.forceFull = this.forceFull.has(peer);
    this.progress.set(peer, p);
    this.probe(p);
  }

  private probe(p: Progress): void {
    p.reset('probe', this.lastLsn + 1);
    p.probeId = this.nextProbeId++;
    this.sendProbe(p);
  }

  private sendProbe(p: Progress): void {
    this.out.messages.push({
      type: 'probe',
      from: this.id,
      to: p.peer,
      term: this.hs.term,
      probeId: p.probeId,
      commit: this.hs.commit,
      applyLimit: this.applyLimit,
      lastLsn: this.lastLsn,
    } satisfies ProbeMessage);
  }

  private sendHeartbeat(peer: string): void {
    this.out.messages.push({
      type: 'heartbeat',
      from: this.id,
      to: peer,
      term: this.hs.term,
      commit: this.hs.commit,
      applyLimit: this.applyLimit,
      lastLsn: this.lastLsn,
    } satisfies HeartbeatMessage);
  }

  private onPosition(m: PositionMessage): void {
    const p = this.progress.get(m.from);
    if (!p || m.probeId !== p.probeId || m.term !== this.hs.term) return;
    const theirs = new TermHistory(m.history);
    const match = this.history.matchPoint(this.lastLsn, theirs, m.lastLsn);
    if (p.state === 'replicate') {
      // Our sync was lost, or records did not fit the history the follower had (it asks again
      // with the same position): send it again, and the records after it.
      p.reset('replicate', match + 1);
      this.sendSync(p, m.from, match);
      return;
    }
    if (p.state !== 'probe') return;
    const sharesNothing = match === 0 && m.lastLsn > 0;
    if (p.forceFull || sharesNothing || match + 1 < this.firstLsn) {
      p.reset('snapshot', this.lastLsn + 1);
      this.out.offerSnapshot.push({ to: m.from, probeId: p.probeId, force: p.forceFull });
      this.out.events.push({ type: 'fullSyncOffered', peer: m.from });
      return;
    }
    p.reset('replicate', match + 1);
    p.acked(0);
    this.sendSync(p, m.from, match);
    this.out.events.push({ type: 'synced', peer: m.from, mode: 'partial', lsn: match });
  }

  private sendSync(p: Progress, to: string, match: number): void {
    this.out.messages.push({
      type: 'sync',
      from: this.id,
      to,
      term: this.hs.term,
      probeId: p.probeId,
      match,
      history: this.history.list(),
      commit: this.hs.commit,
      applyLimit: this.applyLimit,
      lastLsn: this.lastLsn,
    } satisfies SyncMessage);
  }

  private onAck(m: AckMessage): void {
    const p = this.progress.get(m.from);
    if (!p || m.term !== this.hs.term) return;
    if (!m.synced) {
      // It lost track of this leader's log (its records did not fit the history it was
      // given, a full sync that went away): ask its position again. (A follower still
      // waiting for our sync repeats its position instead: onPosition.)
      const lost =
        p.state === 'replicate' || (p.state === 'snapshot' && p.snapshotAccepted && !m.receivingSnapshot);
      if (lost) this.probe(p);
      return;
    }
    if (p.state === 'snapshot') {
      // Synced and past the snapshot: stream from its position (a full sync again if that is compacted).
      if ((p.snapshotLsn > 0 || p.snapshotAccepted) && m.match >= p.snapshotLsn && !m.receivingSnapshot) {
        p.reset('replicate', m.match + 1);
        p.acked(m.match);
        p.forceFull = false;
        this.forceFull.delete(m.from);
        this.out.events.push({ type: 'synced', peer: m.from, mode: 'full', lsn: m.match });
      }
      return;
    }
    if (p.state !== 'replicate') return;
    if (m.match > this.lastLsn) return; // not from this log (a stale message)
    p.acked(m.match);
    if (m.gap !== null && m.gap < p.next && !p.sending) {
      // Frames were lost on the way: resend from what it expects (its log is a prefix of ours).
      p.reset('replicate', Math.max(m.gap, p.match + 1));
      p.resending = true;
    }
    this.advanceCommit();
  }

  private onAppendSent(input: {
    to: string;
    term: number;
    requestId: number;
    lastLsn: number;
    bytes: number;
  }): void {
    const p = this.progress.get(input.to);
    // Only the request outstanding now: one made before a reset of this follower's progress is void.
    if (
      !p ||
      input.term !== this.hs.term ||
      this.roleNow !== 'leader' ||
      !p.sending ||
      input.requestId !== p.requestId
    )
      return;
    p.sent(input.lastLsn, input.bytes);
  }

  private onAppendUnavailable(to: string, term: number, requestId: number): void {
    const p = this.progress.get(to);
    if (!p || term !== this.hs.term || this.roleNow !== 'leader' || !p.sending || p.requestId !== requestId)
      return;
    p.reset('snapshot', this.lastLsn + 1);
    this.out.offerSnapshot.push({ to, probeId: p.probeId, force: false });
    this.out.events.push({ type: 'fullSyncOffered', peer: to });
  }

  private onSnapshotOffered(to: string, term: number, snapshotLsn: number): void {
    const p = this.progress.get(to);
    if (!p || term !== this.hs.term || p.state !== 'snapshot') return;
    p.snapshotLsn = snapshotLsn;
  }

  private sendableLsn(): number {
    return this.faults.ringBeforeWal || this.faults.countUndurableLeader ? this.lastLsn : this.durableLsn;
  }

  /**
   * A follower's window has room for records it lacks: the next Ready asks
   * for a frame. Without this, a frame reported sent (or an acknowledgement
   * that opened the window) waited for the next tick or message to be
   * followed by another: one frame per heartbeat once writes stop.
   */
  private appendsDue(): boolean {
    if (this.roleNow !== 'leader') return false;
    const sendable = this.sendableLsn();
    for (const p of this.progress.values()) if (p.canSend(sendable)) return true;
    return false;
  }

  /**
   * Records go out only once this leader's own disk has them: a follower
   * never holds a record its leader could lose in a crash, or that the
   * leader's disk refused (the write then changed nothing anywhere).
   */
  private fillAppends(): void {
    if (this.roleNow !== 'leader') return;
    const sendable = this.sendableLsn();
    for (const p of this.progress.values()) {
      if (!p.canSend(sendable)) continue;
      p.sending = true;
      p.requestId = this.nextRequestId++;
      this.out.messages.push({
        type: 'append',
        from: this.id,
        to: p.peer,
        term: this.hs.term,
        requestId: p.requestId,
        firstLsn: p.next,
        maxLsn: sendable,
        commit: this.hs.commit,
        applyLimit: this.applyLimit,
      });
    }
  }

  /** Commit point: held by a majority of members, and in this leader's own epoch (Raft §5.4.2). */
  private advanceCommit(): void {
    if (this.roleNow !== 'leader') return;
    const m = this.membership;
    const positions = memberPositions(m, this.id, this.durableLsn, (id) => this.progress.get(id)?.match ?? 0);
    const held = Math.min(heldBy(positions, Math.floor(m.members.length / 2) + 1), this.lastLsn);
    const ownEpochStart = this.history.last?.firstLsn ?? 1;
    const single = m.members.length === 1 && m.members[0]?.id === this.id;
    if (held > this.hs.commit && (single || held >= ownEpochStart)) this.setCommit(held);
  }

  private setCommit(commit: number): void {
    // The commit point is a floor for later truncations; it is persisted
    // with the next hard state (a lower persisted value only protects less).
    this.hs = { ...this.hs, commit };
  }

  private appendLocal(entries: Entry[]): void {
    for (const e of entries) {
      assert(e.lsn === this.lastLsn + 1, `append of LSN ${e.lsn} after ${this.lastLsn}`);
      this.lastLsn = e.lsn;
      if (e.config) this.configs.push({ lsn: e.lsn, membership: e.config });
    }
    const pending = this.out.append;
    if (pending && pending.generation === this.generation) pending.entries.push(...entries);
    else this.out.append = { entries, generation: this.generation };
    this.onLogChange({ type: 'append', entries });
  }

  private onLocalDurable(lsn: number, generation: number): void {
    if (generation !== this.generation) return;
    const durable = Math.min(lsn, this.lastLsn);
    if (durable <= this.durableLsn) return;
    this.durableLsn = durable;
    if (this.roleNow === 'leader') {
      for (const p of this.progress.values()) p.waitingForLog = false;
      this.applyLimit = this.durableLsn;
      this.advanceCommit();
    } else if (this.roleNow === 'follower' && this.synced) {
      this.followCommit();
      this.ackDue = true;
    }
  }

  private onLocalFailed(fromLsn: number, generation: number): void {
    if (generation !== this.generation || fromLsn > this.lastLsn) return;
    // The records are not in the log (the WAL cut them off; the rest of the
    // log must drop them too). None was sent: records go out once durable.
    // A follower may have applied them already (it applies before its disk
    // has them): the state goes back too.
    this.cutLog(fromLsn - 1, !this.faults.keepRefusedApplied);
    for (const p of this.progress.values()) if (p.next > fromLsn) p.reset(p.state, fromLsn);
    if (this.roleNow === 'follower' && this.synced) {
      // Tell the leader now rather than at its next records: not synced, so it
      // probes again and sends from where this log ends (a quiet leader sends none).
      this.synced = false;
      this.ackDue = true;
    }
  }

  /** Forgets records above `lsn` (they are being dropped from the log). */
  private dropAbove(lsn: number): void {
    if (lsn >= this.lastLsn) return;
    this.lastLsn = lsn;
    this.durableLsn = Math.min(this.durableLsn, lsn);
    this.applyLimit = Math.min(this.applyLimit, lsn);
    this.configs = this.configs.filter((c) => c.lsn <= lsn);
    const own = this.roleNow === 'leader' ? this.history.last : undefined;
    this.history.truncateAfter(lsn);
    // A leader's own epoch stays, even when the disk refused its first records.
    if (own && own.firstLsn > lsn) this.history.begin({ ...own, firstLsn: lsn + 1 });
    this.historyDirty = true;
    this.generation++;
    this.onLogChange({ type: 'truncate', afterLsn: lsn });
  }

  // ------------------------------------------------------------------ follower

  private refuse(
    to: string,
    term: number,
    code: RefusalCode,
    reason: string,
    leader: string | null = null,
  ): void {
    this.out.messages.push({
      type: 'refuse',
      from: this.id,
      to,
      term,
      code,
      reason,
      leader,
    } satisfies RefuseMessage);
    this.out.events.push({ type: 'refused', peer: to, code, reason, byMe: true });
  }

  /** Whether this node takes `from` as its leader for `term`; answers the refusal itself when not. */
  private acceptLeader(from: string, term: number): boolean {
    if (this.roleNow === 'leader') {
      if (term > this.hs.term && this.trusted(from)) {
        this.fence(from, term, from);
        return false;
      }
      this.refuse(
        from,
        this.hs.term,
        term < this.hs.term ? 'stale-term' : 'busy',
        `${this.id} is the primary in term ${this.hs.term}`,
      );
      return false;
    }
    if (this.roleNow === 'fenced') {
      if (term > this.hs.term && this.trusted(from)) this.setHardState({ term, votedFor: from });
      this.refuse(
        from,
        this.hs.term,
        'busy',
        `${this.id} was deposed and waits for the operator to point it at a primary`,
      );
      return false;
    }
    const viaConfigured = this.links.get(from)?.viaConfiguredPrimary === true;
    const emptyLog = this.lastLsn === 0 && this.hs.commit === 0;
    if (this.followsConfiguredPrimary ? !viaConfigured : !(emptyLog || isMember(this.membership, from))) {
      this.refuse(
        from,
        this.hs.term,
        'untrusted',
        this.followsConfiguredPrimary
          ? `${this.id} follows the primary at its configured address, not ${from}`
          : `${from} is not a member of this node's cluster`,
      );
      return false;
    }
    if (term < this.hs.term) {
      this.refuse(
        from,
        this.hs.term,
        'stale-term',
        `${from} leads term ${term}, but ${this.id} has seen term ${this.hs.term}`,
        // "You are the primary I was told to follow": it may take a term above ours.
        viaConfigured ? from : null,
      );
      return false;
    }
    // The operator's word (the configured primary) overrides this node's own claim on a term; with
    // manual roles two nodes can claim one term (an old primary restarted after a failover), and the
    // term history still tells their records apart.
    if (term === this.hs.term && this.hs.votedFor !== null && this.hs.votedFor !== from && !viaConfigured) {
      this.refuse(
        from,
        this.hs.term,
        'term-taken',
        `term ${term} is led by ${this.hs.votedFor}, not ${from}`,
        this.hs.votedFor,
      );
      return false;
    }
    if (this.leaderId !== null && this.leaderId !== from && this.links.has(this.leaderId) && this.synced) {
      this.refuse(from, this.hs.term, 'busy', `${this.id} already follows ${this.leaderId}`);
      return false;
    }
    if (this.leaderId !== from || term !== this.hs.term) this.lastProbeId = 0;
    if (term > this.hs.term || this.hs.votedFor !== from) this.setHardState({ term, votedFor: from });
    if (this.leaderId !== from) {
      this.leaderId = from;
      this.leaderCommit = 0;
      this.leaderLast = 0;
      this.synced = false;
      this.out.events.push({ type: 'roleChanged', role: 'follower', term, leader: from });
    }
    return true;
  }

  private onProbe(m: ProbeMessage): void {
    // The answer must describe the log the install leaves: the leader repeats its probe.
    if (this.installing !== null) return;
    if (m.from === this.leaderId && m.term === this.hs.term && this.roleNow === 'follower') {
      // An older probe (late, duplicated) is void; the same one again means our answer was lost,
      // unless its sync or full sync already came (then it is a late copy).
      if (m.probeId < this.lastProbeId) return;
      if (m.probeId === this.lastProbeId) {
        if (this.syncedProbe === m.probeId || this.receiving !== null || this.installing !== null) return;
        this.sendPosition(m.from, m.probeId);
        return;
      }
    }
    if (!this.acceptLeader(m.from, m.term)) return;
    this.lastProbeId = m.probeId;
    this.synced = false;
    this.answeredProbe = m.probeId;
    this.receiving = null;
    this.sendPosition(m.from, m.probeId);
  }

  private sendPosition(to: string, probeId: number): void {
    this.out.messages.push({
      type: 'position',
      from: this.id,
      to,
      term: this.hs.term,
      probeId,
      lastLsn: this.lastLsn,
      history: this.history.list(),
      commit: this.hs.commit,
    } satisfies PositionMessage);
  }

  /** A message of the current leader in the current term (after it was accepted by a probe). */
  private fromLeader(m: { from: string; term: number }): boolean {
    return this.roleNow === 'follower' && m.from === this.leaderId && m.term === this.hs.term;
  }

  private onSync(m: SyncMessage): void {
    if (!this.fromLeader(m) || m.term !== this.hs.term || m.probeId !== this.answeredProbe) return;
    // A late sync for the probe a full sync answered: it describes the log the snapshot replaces.
    if (this.receiving !== null || this.installing !== null) return;
    const theirs = new TermHistory(m.history);
    // Never trust a claimed match beyond what the two histories share.
    const match = Math.min(m.match, this.history.matchPoint(this.lastLsn, theirs, m.lastLsn));
    if (match < this.lastLsn && !this.faults.keepDivergentTail) {
      if (match < this.hs.commit) {
        this.answeredProbe = null;
        this.refuse(
          m.from,
          this.hs.term,
          'diverged',
          `${m.from}'s log does not contain this node's committed records (it shares records up to LSN ${match}, this node has committed up to ${this.hs.commit}); not following it (forceSync on the primary discards this node's data)`,
        );
        return;
      }
      if (match < this.ackedThisTerm) return; // an old answer: those records were acknowledged in this term
      this.truncateTo(match);
    }
    // Above the match point this log follows the leader's history.
    this.history.truncateAfter(match);
    for (const e of theirs.list()) if (e.firstLsn > match || this.history.length === 0) this.adoptEpoch(e);
    this.historyDirty = true;
    this.synced = true;
    this.syncedProbe = m.probeId;
    this.answeredProbe = null;
    this.leaderLast = Math.max(this.leaderLast, m.lastLsn);
    this.takeLeaderPoints(m.commit, m.applyLimit);
    this.out.events.push({ type: 'followed', leader: m.from, mode: 'partial', lsn: match });
    this.ackDue = true;
    // The leader goes on from the match it computed; this log ends below it (its disk refused
    // records after the position was sent, sim seed 4590): say where, or the leader waits forever.
    if (match < m.match) this.sendAck(this.lastLsn + 1);
  }

  private adoptEpoch(e: Epoch): void {
    const last = this.history.last;
    if (last && last.historyId === e.historyId) return;
    if (last && e.firstLsn < last.firstLsn) return;
    this.history.begin(e);
  }

  private truncateTo(lsn: number): void {
    const droppedFrom = lsn + 1;
    const droppedTo = this.lastLsn;
    this.cutLog(lsn, true);
    this.out.events.push({ type: 'truncated', afterLsn: lsn, droppedFrom, droppedTo });
  }

  /** Drops the log above `lsn` (the Ready truncates it) and, with `rollBack`, any state applied above it. */
  private cutLog(lsn: number, rollBack: boolean): void {
    const rollback = rollBack && this.appliedLsn > lsn;
    this.dropAbove(lsn);
    this.out.truncateAfter = this.out.truncateAfter === null ? lsn : Math.min(this.out.truncateAfter, lsn);
    if (this.out.append) {
      // Not handed out yet: what stays is appended under the new generation.
      this.out.append.entries = this.out.append.entries.filter((e) => e.lsn <= lsn);
      this.out.append.generation = this.generation;
      if (this.out.append.entries.length === 0) this.out.append = null;
    }
    if (rollback) {
      this.appliedLsn = lsn;
      this.out.rollbackTo = this.out.rollbackTo === null ? lsn : Math.min(this.out.rollbackTo, lsn);
    }
  }

  private takeLeaderPoints(commit: number, applyLimit: number): void {
    this.leaderCommit = Math.max(this.leaderCommit, commit);
    this.followCommit();
    this.applyLimit = Math.max(this.applyLimit, Math.min(applyLimit, this.lastLsn));
  }

  /** A follower's commit point: the leader's, as far as its own disk holds the records (a floor it can keep after a crash). */
  private followCommit(): void {
    const commitNow = Math.max(this.hs.commit, Math.min(this.leaderCommit, this.durableLsn));
    if (commitNow !== this.hs.commit) this.setCommit(commitNow);
  }

  private onRecords(m: RecordsMessage): void {
    if (this.faults.acceptStaleRecords && this.roleNow === 'follower' && m.term <= this.hs.term) {
      // The defect: records of any sender of an older term appended as they come.
      const fresh = m.entries.filter((e) => e.lsn > this.lastLsn);
      if (fresh[0]?.lsn === this.lastLsn + 1) this.appendLocal(fresh);
      return;
    }
    if (!this.fromLeader(m)) return;
    if (!this.synced) return; // the leader re-probes when it hears we are not synced
    let entries = m.entries;
    const first = entries[0];
    if (first === undefined) return;
    if (first.lsn > this.lastLsn + 1) {
      this.sendAck(this.lastLsn + 1); // a gap: tell it what we expect
      return;
    }
    entries = entries.filter((e) => e.lsn > this.lastLsn);
    for (const e of entries) {
      const epoch = this.history.epochAt(e.lsn);
      if (epoch === undefined || epoch.term !== e.term) {
        // Not the leader's log as it told us at sync: ask again.
        this.synced = false;
        this.ackDue = true;
        return;
      }
    }
    if (entries.length > 0) this.appendLocal(entries);
    this.takeLeaderPoints(m.commit, m.applyLimit);
  }

  private onHeartbeat(m: HeartbeatMessage): void {
    if (!this.fromLeader(m)) return;
    this.leaderLast = Math.max(this.leaderLast, m.lastLsn);
    if (this.synced) this.takeLeaderPoints(m.commit, m.applyLimit);
    this.ackDue = true;
  }

  private sendAck(gap: number | null = null): void {
    if (this.roleNow !== 'follower' || this.leaderId === null) return;
    if (!this.synced && this.answeredProbe !== null && this.receiving === null && this.installing === null) {
      // Still waiting for the leader's answer to our position: say it again (it may be lost).
      this.sendPosition(this.leaderId, this.answeredProbe);
      return;
    }
    // While a snapshot comes in, the ack only says "alive, not synced".
    const synced = this.synced && this.receiving === null && this.installing === null;
    const match = synced ? (this.faults.ackBeforeDurable ? this.lastLsn : this.durableLsn) : 0;
    if (synced && match > this.ackedThisTerm) this.ackedThisTerm = match;
    this.out.messages.push({
      type: 'ack',
      from: this.id,
      to: this.leaderId,
      term: this.hs.term,
      match,
      synced,
      gap,
      receivingSnapshot: this.receiving !== null || this.installing !== null,
    } satisfies AckMessage);
  }

  private onSnapshotOffer(m: SnapshotOfferMessage): void {
    if (!this.fromLeader(m)) return;
    // Offered in answer to our position, or later (the records we need were compacted away).
    if (m.probeId !== this.answeredProbe && !(this.synced && m.probeId === this.syncedProbe)) return;
    // A copy of an offer already installed (or one this log has passed) brings nothing.
    if (this.synced && !m.force && m.snapshotLsn <= this.lastLsn) return;
    const theirs = new TermHistory(m.history);
    const keeps = this.history.matchPoint(this.hs.commit, theirs, m.snapshotLsn) >= this.hs.commit;
    if (!m.force && this.lastLsn > 0 && (!keeps || m.snapshotLsn < this.hs.commit)) {
      this.answeredProbe = null;
      this.refuse(
        m.from,
        this.hs.term,
        'diverged',
        `${m.from} offers a full sync whose history does not contain this node's committed records (up to LSN ${this.hs.commit}): it is not trusted (a wiped or different primary); forceSync on the primary discards this node's data`,
      );
      return;
    }
    this.synced = false;
    this.receiving = {
      leader: m.from,
      term: m.term,
      probeId: m.probeId,
      snapshotLsn: m.snapshotLsn,
      history: m.history,
      commit: 0,
    };
    this.out.messages.push({
      type: 'snapshotAccept',
      from: this.id,
      to: m.from,
      term: this.hs.term,
      snapshotLsn: m.snapshotLsn,
    } satisfies SnapshotAcceptMessage);
  }

  private onSnapshotReceived(from: string, term: number, snapshotLsn: number): void {
    const r = this.receiving;
    if (!r || r.leader !== from || r.term !== term || r.snapshotLsn !== snapshotLsn || term !== this.hs.term)
      return;
    this.receiving = null;
    this.installing = r;
    this.out.installSnapshot = snapshotLsn;
  }

  private onSnapshotInstalled(snapshotLsn: number, history: Epoch[], configs: ConfigEntry[]): void {
    const r = this.installing;
    this.installing = null;
    // The log and state are the snapshot now, whatever was there before.
    this.generation++;
    this.lastLsn = snapshotLsn;
    this.durableLsn = snapshotLsn;
    this.appliedLsn = snapshotLsn;
    this.firstLsn = snapshotLsn + 1;
    this.applyLimit = snapshotLsn;
    const fresh = new TermHistory(history);
    this.history.truncateAfter(0);
    for (const e of fresh.list()) this.history.begin(e);
    // The snapshot's history ends at its LSN; the leader's epochs begun since (its offer carries
    // them) are the ones its next records belong to.
    if (r) {
      for (const e of r.history) {
        const last = this.history.last;
        if (e.firstLsn > snapshotLsn && (last === undefined || e.term > last.term)) this.history.begin(e);
      }
    }
    this.historyDirty = true;
    this.configs = configs.map((c) => ({ ...c }));
    if (this.hs.commit > snapshotLsn) this.setCommit(snapshotLsn);
    this.onLogChange({ type: 'snapshot', snapshotLsn });
    if (r && r.leader === this.leaderId && r.term === this.hs.term) {
      this.synced = true;
      // The full sync answered the probe: a late sync or copy of it is void.
      this.syncedProbe = r.probeId;
      if (this.answeredProbe === r.probeId) this.answeredProbe = null;
      this.ackDue = true;
      this.out.events.push({ type: 'followed', leader: r.leader, mode: 'full', lsn: snapshotLsn });
    }
    if (this.promoteAfterInstall) {
      this.promoteAfterInstall = false;
      this.becomeLeader();
    }
  }

  private onRefuse(m: RefuseMessage): void {
    this.out.events.push({ type: 'refused', peer: m.from, code: m.code, reason: m.reason, byMe: false });
    if (this.roleNow !== 'leader') return;
    const p = this.progress.get(m.from);
    const member = isMember(this.membership, m.from);
    // A higher term, or a follower of another leader in this term, deposes this leader. A node that
    // claims the term for itself (a competing primary) does not.
    const followsAnother =
      m.code === 'term-taken' && m.term === this.hs.term && m.leader !== this.id && m.leader !== m.from;
    if (m.code === 'stale-term' && m.leader === this.id && m.term >= this.hs.term && this.trusted(m.from)) {
      // A follower the operator pointed at this node has seen a later term (it led one itself,
      // say): the operator's word makes this node the primary, so it goes on in a term above.
      // Only a member's word: a term counts only from a member (a stranger's refusal changes nothing).
      this.setHardState({ term: m.term });
      this.becomeLeader();
      return;
    }
    if (member && (m.term > this.hs.term || followsAnother)) {
      this.fence(m.from, m.term, m.leader);
      return;
    }
    if (p) {
      p.reset('refused', p.next);
      p.refusal = `${m.code}: ${m.reason}`;
    }
  }

  private onMessage(m: Incoming): void {
    this.heard(m.from);
    switch (m.type) {
      case 'probe':
        return this.onProbe(m);
      case 'position':
        return this.onPosition(m);
      case 'sync':
        return this.onSync(m);
      case 'snapshotOffer':
        return this.onSnapshotOffer(m);
      case 'snapshotAccept': {
        // The transport streams the snapshot; the core waits for the follower's ack.
        const p = this.progress.get(m.from);
        // Only the offer outstanding now counts (an older one's answer is void).
        if (p && p.state === 'snapshot' && m.term === this.hs.term && m.snapshotLsn === p.snapshotLsn) {
          p.snapshotAccepted = true;
        }
        return;
      }
      case 'records':
        return this.onRecords(m);
      case 'heartbeat':
        return this.onHeartbeat(m);
      case 'ack':
        return this.onAck(m);
      case 'refuse':
        return this.onRefuse(m);
    }
  }

  /**
   * What may be visible now. A leader applies its own records once its disk
   * has them (its apply limit is what it sends). A follower applies what the
   * leader made visible as soon as the records are in its log, without
   * waiting for its own disk: the leader's disk already holds them, its ack
   * still waits for its disk, and a refusal by its disk rolls them back
   * (onLocalFailed). Waiting would turn every stall of the replica's disk
   * into read lag.
   */
  private applyThroughNow(): number {
    if (this.faults.countUndurableLeader && this.roleNow === 'leader') return this.lastLsn;
    const held = this.roleNow === 'leader' ? this.durableLsn : this.lastLsn;
    return Math.max(this.appliedLsn, Math.min(this.applyLimit, held));
  }

  /** For status: a follower's state as this leader sees it. */
  peerState(id: string): ProgressState | undefined {
    return this.progress.get(id)?.state;
  }

  /** Membership changes compare by content. */
  static sameMembership = sameMembership;
}
