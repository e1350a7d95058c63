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
 * Roles, set by the operator (manual failover) or, with `elections`, by
 * votes (Raft §5.2, PreVote and CheckQuorum of the thesis §9.6, §6.2):
 * - leader (primary): takes writes, assigns (term, LSN), feeds followers;
 * - follower (replica, or observer when not a member): follows one leader;
 * - candidate (elections): asks the voters for their (pre-)votes;
 * - fenced (manual roles): a leader that learned of a newer term; takes no
 *   writes until the operator points it at a primary. With elections a
 *   leader that sees a newer term steps down to follower instead.
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
 * - the commit point counts records of the leader's own epoch (Raft §5.4.2);
 *   an elected leader's first record is a config record of its own term
 *   (its no-op), so earlier records commit without waiting for a write;
 * - elections: one vote per term, fsynced before it is sent (the Ready
 *   contract), only for a log at least as up to date (election.ts); no vote
 *   and no pre-vote while the voter hears a leader (unless forced by a
 *   transfer); a leader that has not heard a majority for an election
 *   timeout steps down (CheckQuorum);
 * - a linearizable read is answered at the commit point once a majority
 *   confirmed this leader after the read came in (etcd's ReadIndex), and
 *   only once a record of its own term is committed.
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
  soleVoter,
  voterChanges,
  type Membership,
} from './membership.ts';
import { heldBy, levelMet, memberPositions, type Level } from './quorum.ts';
import { majorityOf, randomizedTimeout, upToDate, voterIds, VoteTally, type LogEnd } from './election.ts';
import { MAX_PENDING_READS, ReadIndex } from './read-index.ts';
import { MAX_HELD_ALONGSIDE_BYTES, Progress, type ProgressState } from './progress.ts';
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
  TimeoutNowMessage,
  VoteMessage,
  VoteRequestMessage,
} from './messages.ts';

export type Role = 'leader' | 'follower' | 'candidate' | 'fenced';

/** Automatic failover: the voters elect the leader. */
export interface ElectionOptions {
  /** Ticks without a leader before a voter campaigns (drawn in [electionTicks, 2 * electionTicks)). */
  electionTicks: number;
  /** The voters while the log holds no config record (a new cluster). */
  bootstrap: Membership;
  /**
   * Builds the config record a new leader appends as its first record (its
   * no-op, Raft §8): with it, records of earlier terms commit without
   * waiting for a client write.
   */
  encodeConfig: (lsn: number, term: number, membership: Membership) => Uint8Array;
}

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
  /** Elections instead of operator-set roles (`role` must then be 'follower'). */
  elections?: ElectionOptions | null;
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
  /** A vote is granted whatever the candidate's log (no §5.4.1 check). */
  voteWithoutLogCheck: boolean;
  /** Voters campaign at once, without a pre-vote. */
  noPreVote: boolean;
  /** A leader cut off from the majority goes on leading. */
  skipCheckQuorum: boolean;
  /** The commit point counts records of earlier terms held by a majority (no §5.4.2 rule). */
  commitOldTermByCount: boolean;
  /** A linearizable read is answered from the local state, with no ReadIndex round. */
  readWithoutRound: boolean;
  /** A leader whose disk refused its no-op does not append it again. */
  noNoopRetry: boolean;
  /** A follower acknowledges the records that came alongside its snapshot before it has installed it. */
  ackAlongsideBeforeInstall: boolean;
}

export type CoreEvent =
  | { type: 'roleChanged'; role: Role; term: number; leader: string | null }
  /** Leader: a follower synced (partial: from the match point; full: a snapshot installed). */
  | { type: 'synced'; peer: string; mode: 'partial' | 'full'; lsn: number }
  /**
   * Follower: this node synced with its leader (full: `alongside` records
   * after the snapshot came while it did, and are in the log now).
   */
  | { type: 'followed'; leader: string; mode: 'partial' | 'full'; lsn: number; alongside: number }
  | { type: 'fullSyncOffered'; peer: string }
  | { type: 'refused'; peer: string; code: RefusalCode; reason: string; byMe: boolean }
  | { type: 'fenced'; by: string; term: number }
  | { type: 'truncated'; afterLsn: number; droppedFrom: number; droppedTo: number }
  | { type: 'peerSilent'; peer: string }
  /** Elections: this node asks for (pre-)votes for `term`. */
  | { type: 'campaign'; term: number; preVote: boolean; force: boolean }
  /** Elections: this leader steps down (a newer term, or it lost the majority: CheckQuorum). */
  | { type: 'steppedDown'; term: number; reason: string }
  /** Leadership transfer: handed over (TimeoutNow sent), or given up. */
  | { type: 'transfer'; to: string; outcome: 'handedOver' | 'aborted'; reason: string };

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
  /** Linearizable reads settled: serve once applied through `index`; null: this node no longer leads. */
  reads: { id: number; index: number | null }[];
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
  /** Records after the snapshot that came alongside it, in a row from snapshotLsn + 1: appended at install. */
  alongside: Entry[];
  alongsideBytes: number;
  /** Records were missing from the row (lost frames) or past MAX_HELD_ALONGSIDE_BYTES: the ack after install names the gap. */
  alongsideCut: boolean;
  /** The leader's commit point and apply limit as they came with those records. */
  commit: number;
  applyLimit: number;
}

export class CoreError extends Error {
  constructor(
    readonly code: ErrorCodeSubset<
      'ERR_NOT_LEADER' | 'ERR_CONFIG_PENDING' | 'ERR_TRANSFER_IN_PROGRESS' | 'ERR_OVERLOADED'
    >,
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
  /** The highest ReadIndex round heard from the leader in this term (echoed in acks). */
  private leaderReadSeq = 0;

  // Elections (null: manual roles).
  private readonly elections: ElectionOptions | null;
  /** The voters while the log holds no config record, ids filled in as they answer (resolveBootstrap). */
  private bootstrap: Membership | null;
  /**
   * Ticks since this follower last heard its leader (or granted a vote), or
   * since this leader last checked its quorum. Within `electionTicks` of a
   * leader's message a voter is "in lease": it gives no vote to anyone.
   */
  private electionElapsed = 0;
  private electionTimeout = 0;
  private campaignState: { term: number; preVote: boolean; force: boolean; tally: VoteTally } | null = null;
  /** Leader: voters heard from in the current CheckQuorum period. */
  private readonly recentlyActive = new Set<string>();
  /** Leader: a transfer in progress (no writes meanwhile). */
  private transferTo: { to: string; elapsedTicks: number; handedOver: boolean } | null = null;

  /** Leader: linearizable reads waiting for their round. */
  private readonly reads = new ReadIndex();

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
      voteWithoutLogCheck: false,
      noPreVote: false,
      skipCheckQuorum: false,
      commitOldTermByCount: false,
      readWithoutRound: false,
      noNoopRetry: false,
      ackAlongsideBeforeInstall: false,
      ...opts.faults,
    };
    this.elections = opts.elections ?? null;
    this.bootstrap = this.elections?.bootstrap ?? null;
    if (this.elections) {
      assert(opts.role === 'follower', 'with elections every node starts as a follower');
      assert(!opts.followsConfiguredPrimary, 'with elections no node follows a configured primary');
      assert(
        this.elections.electionTicks > opts.heartbeatTicks,
        'the election timeout must exceed the heartbeat interval',
      );
      checkMembership(this.elections.bootstrap);
    }
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
      (cfg === undefined ? this.elections === null : soleVoter(cfg, this.id))
    ) {
      // Its own log as the only member: every record on its disk was committed.
      this.hs = { ...this.hs, commit: this.lastLsn };
    }
    this.roleNow = 'follower';
    // Probe ids start anywhere: a restarted leader's first probes are not mistaken for old ones.
    this.nextProbeId = 1 + Math.floor(this.rng() * 2 ** 30);
    this.resetElectionTimer();
    if (opts.role === 'leader') this.becomeLeader(this.hs.term + 1);
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
      reads: [],
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

  /** Follower: the LSN of the snapshot being received or installed (the records after it are held alongside), else null. */
  get snapshotComing(): number | null {
    return (this.receiving ?? this.installing)?.snapshotLsn ?? null;
  }

  get isSynced(): boolean {
    return this.roleNow === 'follower' && this.synced;
  }

  /** The membership in force: the last config record in the log, else the bootstrap voters (elections) or the leader alone. */
  get membership(): Membership {
    const last = this.configs.at(-1);
    if (last) return last.membership;
    if (this.bootstrap) return this.bootstrap;
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

  /** Elections decide the roles (role auto). */
  get electionsOn(): boolean {
    return this.elections !== null;
  }

  /**
   * What this node makes visible is committed (elections): its state never
   * holds a record a failover could drop, so a One write is acknowledged at
   * the leader's disk before it is visible.
   */
  get appliesCommittedOnly(): boolean {
    return this.elections !== null;
  }

  /** Leader: the voter leadership is being handed to, if a transfer runs. */
  get transferTarget(): string | null {
    return this.transferTo?.to ?? null;
  }

  /** Linearizable reads waiting for their ReadIndex round. */
  get pendingReadCount(): number {
    return this.reads.waiting;
  }

  /**
   * Elections, while the log holds no config record: the bootstrap voter
   * known by `address` is node `id` (it answered there). Its vote counts
   * from now on; the first leader's no-op records the ids known then, and
   * the leader records the others as they answer (a config change).
   */
  resolveBootstrap(address: string, id: string): void {
    const m = this.bootstrap;
    if (m === null || this.configs.length > 0 || m.members.some((x) => x.id === id)) return;
    if (!m.members.some((x) => x.id === null && x.address === address)) return;
    this.bootstrap = {
      members: m.members.map((x) => (x.id === null && x.address === address ? { id, address } : x)),
    };
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
    if (this.transferTo !== null) {
      throw new CoreError(
        'ERR_TRANSFER_IN_PROGRESS',
        `leadership is being handed to ${this.transferTo.to}: no writes until it takes over (or the transfer is given up)`,
      );
    }
    assert(Number.isInteger(count) && count >= 1, `propose(${count})`);
    if (config !== null) {
      assert(count === 1, 'a config record goes alone');
      checkMembership(config);
      // Elections: one voter in or out at a time, so any two majorities overlap (thesis §4.1).
      assert(
        this.elections === null || voterChanges(this.membership, config) <= 1,
        'a membership change adds, removes or promotes one voter at a time',
      );
      if (this.configPending && !onlyResolves(this.membership, config)) {
        throw new CoreError(
          'ERR_CONFIG_PENDING',
          'a membership change is still being committed; retry once it is',
        );
      }
      // A new leader may not know of a change an earlier leader began (it is in others' logs, not
      // in its own); one from it now could leave two majorities that do not overlap. Once a record
      // of its own term is committed, any such change is either in its log or gone for good
      // (Ongaro, raft-dev 2015, the fix to single-server changes).
      if (this.elections !== null && !onlyResolves(this.membership, config) && !this.ownTermCommitted()) {
        throw new CoreError(
          'ERR_CONFIG_PENDING',
          'this primary has not committed a record of its own term yet; retry the membership change shortly',
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

  /**
   * Operator: this node becomes the primary, in a new term (manual
   * failover). With elections: it campaigns now, without a pre-vote and
   * heard even by voters that hear a leader (the voters' log check still
   * holds: a node lacking committed records cannot win).
   */
  promote(): void {
    if (this.roleNow === 'leader') return;
    if (this.installing !== null) {
      // The install replaces the log: an epoch begun now would start on the log it replaces.
      this.promoteAfterInstall = true;
      return;
    }
    this.takeOver();
  }

  private takeOver(): void {
    if (this.elections) this.campaign(false, true);
    else this.becomeLeader(this.hs.term + 1);
  }

  /**
   * Leader (elections): hands leadership to the voter `to` (Raft thesis
   * §3.10). No writes meanwhile; once `to` holds the whole log it gets
   * TimeoutNow and campaigns at once. Given up after an election timeout.
   */
  transferLeadership(to: string): void {
    if (this.roleNow !== 'leader') {
      throw new CoreError('ERR_NOT_LEADER', `this node is not the primary`, this.leaderId);
    }
    assert(this.elections !== null, 'a leadership transfer needs elections');
    assert(to !== this.id && voterIds(this.membership).includes(to), `${to} is not another voter`);
    this.transferTo = { to, elapsedTicks: 0, handedOver: false };
    this.maybeHandOver();
  }

  /**
   * Leader: a linearizable read `id` (etcd's ReadIndex, ReadOnlySafe). It is
   * settled in a later Ready's `reads`: at the commit point once a majority
   * of voters confirmed this leader after the read came in, or with null
   * once this node no longer leads. Throws CoreError ERR_NOT_LEADER on any
   * other role.
   */
  readIndex(id: number): void {
    if (this.roleNow !== 'leader') {
      throw new CoreError('ERR_NOT_LEADER', `this node is not the primary`, this.leaderId);
    }
    if (this.reads.waiting >= MAX_PENDING_READS) {
      throw new CoreError('ERR_OVERLOADED', `${MAX_PENDING_READS} linearizable reads wait already`);
    }
    if (this.faults.readWithoutRound) {
      this.out.reads.push({ id, index: this.appliedLsn });
      return;
    }
    // Reads that come in while a round is out join the next one (one round per batch of reads).
    if (this.reads.add(id, this.membership, this.id)) this.beginReadRound();
    this.confirmReads();
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
    if (this.elections) this.tickElection(this.elections);
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
      // The disk refused the no-op (and whatever followed it): nothing of this term commits the
      // earlier terms' records, and no write may come to. Try again once a heartbeat (sim seed 5155).
      if (this.elections && !this.ownTermInLog() && !this.faults.noNoopRetry) this.appendNoop(this.elections);
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
      o.reads.length > 0 ||
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

  /** Leads `term` (manual roles: the term after this node's; elections: the term it won). */
  private becomeLeader(newTerm: number): void {
    // The defect keeps the old term and epoch across a restart (LSNs reused under one identity).
    const reuse = this.faults.ringBeforeWal && this.history.length > 0;
    const term = reuse ? Math.max(this.hs.term, 1) : newTerm;
    this.setHardState({ term, votedFor: this.id });
    this.campaignState = null;
    this.transferTo = null;
    this.electionElapsed = 0;
    this.recentlyActive.clear();
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
    this.applyLimit = this.leaderApplyLimit();
    this.progress.clear();
    this.out.events.push({ type: 'roleChanged', role: 'leader', term, leader: this.id });
    if (this.elections) this.appendNoop(this.elections);
    for (const [peer] of this.links) this.addProgress(peer);
  }

  /**
   * A leader's no-op (Raft §8): a record of its own term, so what earlier
   * terms left commits now. It records the membership as it stands (a config
   * record changing nothing).
   */
  private appendNoop(e: ElectionOptions): void {
    const lsn = this.lastLsn + 1;
    const term = this.hs.term;
    const membership = this.membership;
    this.appendLocal([{ lsn, term, bytes: e.encodeConfig(lsn, term, membership), config: membership }]);
  }

  /** Whether the log holds a record of this node's term (its epoch begins at or below the log's end). */
  private ownTermInLog(): boolean {
    const last = this.history.last;
    return last !== undefined && last.term === this.hs.term && last.firstLsn <= this.lastLsn;
  }

  /** What a leader makes visible: its durable records, or with elections only what is committed too. */
  private leaderApplyLimit(): number {
    return this.elections ? Math.min(this.durableLsn, this.hs.commit) : this.durableLsn;
  }

  private becomeFollower(leader: string | null): void {
    const was = this.roleNow;
    if (was === 'leader') this.failReads();
    this.campaignState = null;
    this.transferTo = null;
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
    this.failReads();
    this.roleNow = 'fenced';
    this.leaderId = leader;
    for (const p of this.progress.values()) p.reset('refused', p.next);
    this.out.events.push({ type: 'fenced', by, term });
    this.out.events.push({ type: 'roleChanged', role: 'fenced', term: this.hs.term, leader });
  }

  // ------------------------------------------------------------------ elections

  private resetElectionTimer(): void {
    this.electionElapsed = 0;
    if (this.elections) this.electionTimeout = randomizedTimeout(this.elections.electionTicks, this.rng);
  }

  private isVoter(id: string): boolean {
    return voterIds(this.membership).includes(id);
  }

  private logEnd(): LogEnd {
    return { lastTerm: this.history.termAt(this.lastLsn), lastLsn: this.lastLsn };
  }

  /** A leader was heard within the election timeout: this voter gives no vote (thesis §9.6). */
  private inLease(electionTicks: number): boolean {
    if (this.roleNow === 'leader') return true;
    return this.leaderId !== null && this.electionElapsed < electionTicks;
  }

  private tickElection(e: ElectionOptions): void {
    this.electionElapsed++;
    if (this.roleNow === 'leader') {
      const t = this.transferTo;
      if (t && ++t.elapsedTicks >= e.electionTicks) {
        this.transferTo = null;
        this.out.events.push({
          type: 'transfer',
          to: t.to,
          outcome: 'aborted',
          reason: `${t.to} did not take over within ${e.electionTicks} ticks; this node takes writes again`,
        });
      }
      if (this.electionElapsed < e.electionTicks) return;
      // CheckQuorum (thesis §6.2): a leader the majority no longer hears must not act as one.
      this.electionElapsed = 0;
      const m = this.membership;
      const active = voterIds(m).filter((id) => id === this.id || this.recentlyActive.has(id)).length;
      this.recentlyActive.clear();
      if (active < majorityOf(m) && !this.faults.skipCheckQuorum) {
        this.stepDown(
          this.hs.term,
          `heard from ${active} of the ${majorityOf(m)} voters a majority needs within an election timeout (CheckQuorum)`,
        );
      }
      return;
    }
    if (this.roleNow === 'fenced' || this.installing !== null || !this.isVoter(this.id)) return;
    if (this.electionElapsed >= this.electionTimeout) this.campaign(!this.faults.noPreVote, false);
  }

  /** Asks the voters for pre-votes (would they elect this node?) or votes, in the next term. */
  private campaign(preVote: boolean, force: boolean): void {
    const term = this.hs.term + 1;
    this.resetElectionTimer();
    // A real campaign: the term and the vote for itself go to disk before any request (Ready).
    if (!preVote) this.setHardState({ term, votedFor: this.id });
    const was = this.roleNow;
    this.roleNow = 'candidate';
    this.progress.clear();
    this.leaderId = null;
    this.synced = false;
    this.answeredProbe = null;
    this.receiving = null;
    this.campaignState = { term, preVote, force, tally: new VoteTally(this.membership, this.id) };
    if (was !== 'candidate') {
      this.out.events.push({ type: 'roleChanged', role: 'candidate', term: this.hs.term, leader: null });
    }
    this.out.events.push({ type: 'campaign', term, preVote, force });
    const end = this.logEnd();
    for (const to of voterIds(this.membership)) {
      if (to === this.id) continue;
      this.out.messages.push({
        type: 'voteRequest',
        from: this.id,
        to,
        term,
        preVote,
        lastLsn: end.lastLsn,
        lastTerm: end.lastTerm,
        force,
      } satisfies VoteRequestMessage);
    }
    this.countVotes();
  }

  private countVotes(): void {
    const c = this.campaignState;
    if (c === null || this.roleNow !== 'candidate') return;
    const outcome = c.tally.outcome;
    if (outcome === 'won') {
      if (c.preVote) this.campaign(false, c.force);
      else this.becomeLeader(c.term);
    } else if (outcome === 'lost') {
      // Waits for a leader, or its next timeout.
      this.becomeFollower(null);
    }
  }

  /** Elections: follows nobody for now in `term` (a newer term seen, or CheckQuorum). */
  private stepDown(term: number, reason: string): void {
    if (term > this.hs.term) this.setHardState({ term, votedFor: null });
    if (this.roleNow === 'leader') this.out.events.push({ type: 'steppedDown', term: this.hs.term, reason });
    this.becomeFollower(null);
    this.resetElectionTimer();
  }

  private onVoteRequest(m: VoteRequestMessage): void {
    const e = this.elections;
    // A candidate outside this node's last config still gets an answer (thesis §4.1: that config
    // may be a change its leader is about to drop); a stranger does not. The lease below keeps a
    // removed node from disrupting the cluster.
    if (e === null || !this.trusted(m.from)) return;
    // A vote now would depose a leader this node still hears: ignored (thesis §9.6), unless forced.
    if (m.term > this.hs.term && !m.force && this.inLease(e.electionTicks)) return;
    if (m.term < this.hs.term) {
      this.replyVote(m, false, this.hs.term);
      return;
    }
    if (!m.preVote && m.term > this.hs.term) this.stepDown(m.term, `${m.from} campaigns in term ${m.term}`);
    const canVote =
      this.hs.votedFor === m.from ||
      (this.hs.votedFor === null && this.leaderId === null && this.roleNow !== 'leader') ||
      (m.preVote && m.term > this.hs.term);
    const logOk = this.faults.voteWithoutLogCheck || upToDate(m, this.logEnd());
    if (!canVote || !logOk) {
      this.replyVote(m, false, this.hs.term);
      return;
    }
    if (!m.preVote) {
      this.setHardState({ votedFor: m.from });
      this.resetElectionTimer();
    }
    this.replyVote(m, true, m.term);
  }

  private replyVote(m: VoteRequestMessage, granted: boolean, term: number): void {
    this.out.messages.push({
      type: 'vote',
      from: this.id,
      to: m.from,
      term,
      preVote: m.preVote,
      granted,
    } satisfies VoteMessage);
  }

  private onVote(m: VoteMessage): void {
    const c = this.campaignState;
    if (c === null || this.roleNow !== 'candidate' || m.preVote !== c.preVote) return;
    // A grant is for this campaign's term; a pre-vote refusal carries the voter's (lower) term.
    if (m.granted ? m.term !== c.term : m.term > c.term || (!c.preVote && m.term !== c.term)) return;
    c.tally.record(m.from, m.granted);
    this.countVotes();
  }

  private onTimeoutNow(m: TimeoutNowMessage): void {
    if (this.elections === null || !this.fromLeader(m) || !this.isVoter(this.id)) return;
    this.campaign(false, true);
  }

  /** Transfer: the target holds the whole log, so it can win: tell it to campaign now. */
  private maybeHandOver(): void {
    const t = this.transferTo;
    if (t === null || t.handedOver || this.roleNow !== 'leader') return;
    const p = this.progress.get(t.to);
    if (p === undefined || p.state !== 'replicate' || p.match < this.lastLsn) return;
    t.handedOver = true;
    this.out.messages.push({ type: 'timeoutNow', from: this.id, to: t.to, term: this.hs.term });
    this.out.events.push({
      type: 'transfer',
      to: t.to,
      outcome: 'handedOver',
      reason: `${t.to} holds the log through LSN ${p.match}`,
    });
  }

  /** Elections: a leader's message in this node's term, from one it does not follow yet (it was a candidate, or knew none). */
  private adoptLeader(from: string, term: number): void {
    if (this.hs.votedFor === null) this.setHardState({ votedFor: from });
    this.campaignState = null;
    this.roleNow = 'follower';
    this.leaderId = from;
    this.leaderCommit = 0;
    this.leaderLast = 0;
    this.leaderReadSeq = 0;
    this.synced = false;
    this.answeredProbe = null;
    this.lastProbeId = 0;
    // Not synced: the ack says so, and the leader probes this node's position.
    this.ackDue = true;
    this.out.events.push({ type: 'roleChanged', role: 'follower', term, leader: from });
  }

  // ------------------------------------------------------------------ reads

  private ownTermCommitted(): boolean {
    const m = this.membership;
    const single = soleVoter(m, this.id);
    return single || this.hs.commit >= (this.history.last?.firstLsn ?? 1);
  }

  private beginReadRound(): void {
    this.reads.begin();
    for (const p of this.progress.values()) if (this.isVoter(p.peer)) this.sendHeartbeat(p.peer);
  }

  private confirmReads(): void {
    if (this.roleNow !== 'leader' || this.reads.waiting === 0) return;
    // Until a record of this term commits, the commit point may lag what earlier leaders committed.
    if (!this.ownTermCommitted()) return;
    const { ids, beginNext } = this.reads.settle(this.membership, this.id);
    for (const id of ids) this.out.reads.push({ id, index: this.hs.commit });
    if (beginNext) this.beginReadRound();
  }

  private failReads(): void {
    for (const id of this.reads.drain()) this.out.reads.push({ id, index: null });
  }

  private setHardState(change: Partial<HardState>): void {
    const next = { ...this.hs, ...change };
    if (next.term !== this.hs.term) this.ackedThisTerm = 0;
    if (next.term !== this.hs.term || next.votedFor !== this.hs.votedFor || next.commit !== this.hs.commit) {
      this.hs = next;
      this.hsDirty = true;
    }
  }

  /**
   * Whether a term claimed by `peer` may change this node's (a member, or
   * the configured primary). With elections, a member of any config this
   * log holds: its last one may be a change not committed, that the leader
   * (whom it leaves out, say) is about to drop.
   */
  private trusted(peer: string): boolean {
    if (isMember(this.membership, peer)) return true;
    if (this.elections !== null) {
      if (this.configs.some((c) => isMember(c.membership, peer))) return true;
      if (this.bootstrap !== null && isMember(this.bootstrap, peer)) return true;
    }
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
      readSeq: this.reads.currentRound,
    } satisfies HeartbeatMessage);
  }

  /** A follower in this term says which ReadIndex round it heard: it still follows this leader. */
  private readConfirmedBy(peer: string, readSeq: number): void {
    if (this.reads.echo(peer, readSeq)) this.confirmReads();
  }

  private onPosition(m: PositionMessage): void {
    const p = this.progress.get(m.from);
    if (p && m.term === this.hs.term) this.readConfirmedBy(m.from, m.readSeq);
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
    this.readConfirmedBy(m.from, m.readSeq);
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
      // Synced and past the snapshot: stream on (a full sync again if its position is compacted).
      const installed =
        (p.snapshotLsn > 0 || p.snapshotAccepted) && m.match >= p.snapshotLsn && !m.receivingSnapshot;
      if (!installed) return;
      p.installed(m.match);
      p.forceFull = false;
      this.forceFull.delete(m.from);
      this.out.events.push({ type: 'synced', peer: m.from, mode: 'full', lsn: m.match });
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
    this.maybeHandOver();
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
    if (p.state === 'snapshot') {
      // The records after the snapshot went while it was being sent: the snapshot goes on
      // without them, and the follower asks for what it lacks once it is installed.
      p.sending = false;
      p.alongside = false;
      return;
    }
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
    const held = Math.min(heldBy(positions, majorityOf(m)), this.lastLsn);
    const ownEpochStart = this.history.last?.firstLsn ?? 1;
    const single = soleVoter(m, this.id);
    const countsOld = this.faults.commitOldTermByCount;
    if (held > this.hs.commit && (single || held >= ownEpochStart || countsOld)) {
      this.setCommit(held);
      this.applyLimit = Math.max(this.applyLimit, this.leaderApplyLimit());
      this.confirmReads();
    }
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
      this.applyLimit = this.leaderApplyLimit();
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
    if (this.roleNow === 'candidate' && term >= this.hs.term) {
      // Someone won this term (or a later one): the campaign is over. (An older term is refused below.)
      this.campaignState = null;
      this.roleNow = 'follower';
    }
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
    // A new node follows whoever leads first (manual roles); with elections only a member.
    const emptyLog = this.lastLsn === 0 && this.hs.commit === 0 && this.elections === null;
    const member = this.elections !== null ? this.trusted(from) : isMember(this.membership, from);
    if (this.followsConfiguredPrimary ? !viaConfigured : !(emptyLog || member)) {
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
    // With elections a term has one leader (the votes see to it); a vote this node gave
    // another candidate of that term does not make this leader less of one.
    if (
      this.elections === null &&
      term === this.hs.term &&
      this.hs.votedFor !== null &&
      this.hs.votedFor !== from &&
      !viaConfigured
    ) {
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
    if (this.leaderId !== from || term !== this.hs.term) {
      this.lastProbeId = 0;
      this.leaderReadSeq = 0;
    }
    if (term > this.hs.term) this.setHardState({ term, votedFor: from });
    else if (this.hs.votedFor !== from && (this.elections === null || this.hs.votedFor === null)) {
      this.setHardState({ votedFor: from });
    }
    if (this.leaderId !== from) {
      this.leaderId = from;
      this.leaderCommit = 0;
      this.leaderLast = 0;
      this.synced = false;
      this.out.events.push({ type: 'roleChanged', role: 'follower', term, leader: from });
    }
    this.electionElapsed = 0;
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
      readSeq: this.leaderReadSeq,
    } satisfies PositionMessage);
  }

  /** A message of the current leader in the current term (after it was accepted by a probe): the election timer restarts. */
  private fromLeader(m: { from: string; term: number }): boolean {
    const ok = this.roleNow === 'follower' && m.from === this.leaderId && m.term === this.hs.term;
    if (ok) this.electionElapsed = 0;
    return ok;
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
    this.out.events.push({ type: 'followed', leader: m.from, mode: 'partial', lsn: match, alongside: 0 });
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
    const r = this.receiving ?? this.installing;
    if (r !== null) {
      if (r.leader === m.from && r.term === m.term) this.holdAlongside(r, m);
      return;
    }
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

  /**
   * Records after the snapshot, streamed while it comes in: held in memory,
   * in a row from its LSN, until it is installed. Nothing is appended or
   * acknowledged meanwhile: the log still is the old one.
   */
  private holdAlongside(r: Receiving, m: RecordsMessage): void {
    r.commit = Math.max(r.commit, m.commit);
    r.applyLimit = Math.max(r.applyLimit, m.applyLimit);
    if (r.alongsideCut) return;
    let next = r.snapshotLsn + r.alongside.length + 1;
    for (const e of m.entries) {
      if (e.lsn < next) continue; // a copy of a frame already held
      if (e.lsn > next || r.alongsideBytes + e.bytes.length > MAX_HELD_ALONGSIDE_BYTES) {
        r.alongsideCut = true;
        return;
      }
      r.alongside.push(e);
      r.alongsideBytes += e.bytes.length;
      next++;
    }
  }

  /** The snapshot is installed: the records held alongside it go into the log after it (their count). */
  private appendAlongside(r: Receiving): number {
    const held: Entry[] = [];
    for (const e of r.alongside) {
      const epoch = this.history.epochAt(e.lsn);
      if (epoch === undefined || epoch.term !== e.term) {
        // Not the leader's log as its offer described it: ask again.
        this.synced = false;
        break;
      }
      held.push(e);
    }
    r.alongside = [];
    if (held.length > 0) this.appendLocal(held);
    if (!this.synced) return held.length;
    // The leader's points as they came with those records (none came: the next message brings them).
    if (r.commit > 0 || r.applyLimit > 0) this.takeLeaderPoints(r.commit, r.applyLimit);
    // Cut short (lost frames, or more than it holds): the leader sends again from here.
    if (r.alongsideCut) this.sendAck(this.lastLsn + 1);
    return held.length;
  }

  private onHeartbeat(m: HeartbeatMessage): void {
    if (!this.fromLeader(m)) return;
    this.leaderReadSeq = Math.max(this.leaderReadSeq, m.readSeq);
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
    const r = this.receiving ?? this.installing;
    if (this.faults.ackAlongsideBeforeInstall && r !== null && r.alongside.length > 0) {
      // The defect: records held in memory alongside the snapshot acknowledged as if durable.
      this.out.messages.push({
        type: 'ack',
        from: this.id,
        to: this.leaderId,
        term: this.hs.term,
        match: r.snapshotLsn + r.alongside.length,
        synced: true,
        gap,
        receivingSnapshot: false,
        readSeq: this.leaderReadSeq,
      } satisfies AckMessage);
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
      readSeq: this.leaderReadSeq,
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
      alongside: [],
      alongsideBytes: 0,
      alongsideCut: false,
      commit: 0,
      applyLimit: 0,
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
      const alongside = this.appendAlongside(r);
      this.out.events.push({ type: 'followed', leader: r.leader, mode: 'full', lsn: snapshotLsn, alongside });
    }
    if (this.promoteAfterInstall) {
      this.promoteAfterInstall = false;
      this.takeOver();
    }
  }

  private onRefuse(m: RefuseMessage): void {
    this.out.events.push({ type: 'refused', peer: m.from, code: m.code, reason: m.reason, byMe: false });
    if (this.roleNow !== 'leader') return;
    const p = this.progress.get(m.from);
    if (this.elections) {
      // A newer term deposed this leader before this point (onMessage); the operator's word does not apply.
      if (p) {
        p.reset('refused', p.next);
        p.refusal = `${m.code}: ${m.reason}`;
      }
      return;
    }
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
      this.becomeLeader(this.hs.term + 1);
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
    if (this.elections) {
      if (!this.electionTermRules(m)) return;
      if (this.roleNow === 'leader' && m.term === this.hs.term) this.recentlyActive.add(m.from);
    }
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
        // The transport streams the snapshot, and the core the records after it; the core waits
        // for the follower's ack of its install.
        const p = this.progress.get(m.from);
        // Only the offer outstanding now counts (an older one's answer is void).
        if (p && p.state === 'snapshot' && m.term === this.hs.term && m.snapshotLsn === p.snapshotLsn) {
          if (!p.snapshotAccepted) p.streamAlongside(p.snapshotLsn);
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
      case 'voteRequest':
        return this.onVoteRequest(m);
      case 'vote':
        return this.onVote(m);
      case 'timeoutNow':
        return this.onTimeoutNow(m);
    }
  }

  /**
   * Elections: what a message's term does before it is handled (Raft §5.1).
   * A member's newer term makes this node a follower of nobody in it (a vote
   * request decides for itself: the lease may ignore it); a leader's message
   * in this term makes a candidate, or a node that knew no leader, its
   * follower. False: the message is done with.
   */
  private electionTermRules(m: Incoming): boolean {
    if (!this.trusted(m.from)) return true;
    const fromLeader =
      m.type === 'heartbeat' || m.type === 'records' || m.type === 'sync' || m.type === 'snapshotOffer';
    const preVoteGrant = m.type === 'vote' && m.preVote && m.granted;
    if (m.term > this.hs.term && m.type !== 'voteRequest' && !preVoteGrant) {
      this.stepDown(m.term, `${m.from} is in term ${m.term}`);
    }
    if (
      fromLeader &&
      m.term === this.hs.term &&
      (this.roleNow === 'candidate' || (this.roleNow === 'follower' && this.leaderId === null))
    ) {
      this.adoptLeader(m.from, m.term);
    }
    return true;
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
