/**
 * What the core says and hears. Each message names its sender, its
 * receiver and the sender's term; the transport turns them into frames
 * (src/replication/wire.ts) and back, and may lose, delay, duplicate or
 * reorder them: the core checks every message against its own state and
 * ignores what is stale.
 *
 * Leader → follower: probe (I lead this term; where are you?), sync (what
 * you must drop, and where we continue), snapshotOffer (a full sync), append
 * (records; the core names the range, the transport packs the bytes),
 * heartbeat, timeoutNow (campaign now: a leadership transfer). Follower →
 * leader: position (my log), ack (what I hold durably), snapshotAccept,
 * refuse (why I will not follow). Between voters (elections): voteRequest
 * and vote, each a pre-vote (would you?) or a real one.
 */
import type { Epoch } from './term-history.ts';
import type { Membership } from './membership.ts';

interface Base {
  from: string;
  to: string;
  term: number;
}

export interface ProbeMessage extends Base {
  type: 'probe';
  /** Echoed by the follower's position, so an old answer is recognized as old. */
  probeId: number;
  commit: number;
  applyLimit: number;
  lastLsn: number;
}

export interface PositionMessage extends Base {
  type: 'position';
  probeId: number;
  lastLsn: number;
  history: Epoch[];
  /** What the follower knows to be committed: it will not drop records up to here. */
  commit: number;
  /** The highest ReadIndex round heard from this leader in this term. */
  readSeq: number;
}

export interface SyncMessage extends Base {
  type: 'sync';
  probeId: number;
  /** The follower keeps its log up to here (drops what is above) and receives from match + 1. */
  match: number;
  /** The leader's term history; the follower's log above `match` follows it. */
  history: Epoch[];
  commit: number;
  applyLimit: number;
  lastLsn: number;
}

export interface SnapshotOfferMessage extends Base {
  type: 'snapshotOffer';
  probeId: number;
  snapshotLsn: number;
  /** Term history up to the snapshot's LSN. */
  history: Epoch[];
  /** The operator asked for it: accepted even where it drops committed records. */
  force: boolean;
}

export interface SnapshotAcceptMessage extends Base {
  type: 'snapshotAccept';
  snapshotLsn: number;
}

/** Leader's core → its transport: send records from `firstLsn`, as many as one frame holds, up to `maxLsn`. */
export interface AppendRequest extends Base {
  type: 'append';
  /** Echoed in appendSent: a report for a request made before a reset is told apart. */
  requestId: number;
  firstLsn: number;
  maxLsn: number;
  commit: number;
  applyLimit: number;
}

/** One record as the follower's transport hands it over (header fields read, checksum verified). */
export interface Entry {
  lsn: number;
  term: number;
  bytes: Uint8Array;
  /** Set for a config record: the membership it sets. */
  config: Membership | null;
}

/** Follower's transport → its core: the records of one RECORDS frame. */
export interface RecordsMessage extends Base {
  type: 'records';
  entries: Entry[];
  commit: number;
  applyLimit: number;
}

export interface HeartbeatMessage extends Base {
  type: 'heartbeat';
  commit: number;
  applyLimit: number;
  lastLsn: number;
  /** The leader's latest ReadIndex round: echoed in acks, it confirms the leader still leads. */
  readSeq: number;
}

export interface AckMessage extends Base {
  type: 'ack';
  /** Highest LSN held durably that matches the leader's log (0 while not synced). */
  match: number;
  /** False until the follower has taken this leader's sync: the leader asks its position again. */
  synced: boolean;
  /** Records arrived after a gap: the follower needs them from this LSN (frames were lost). */
  gap: number | null;
  /** A full sync is coming in (offered and accepted, not installed yet). */
  receivingSnapshot: boolean;
  /** The highest ReadIndex round heard from this leader in this term. */
  readSeq: number;
}

/**
 * A candidate asks for a vote (Raft §5.2), or, as a pre-vote (thesis §9.6),
 * whether it would get one: `term` is then the term it would stand in, and
 * no voter changes its own term for it.
 */
export interface VoteRequestMessage extends Base {
  type: 'voteRequest';
  preVote: boolean;
  /** The candidate's log end (Raft §5.4.1). */
  lastLsn: number;
  lastTerm: number;
  /** A leadership transfer or the operator's forced election: granted even while the voter hears a leader. */
  force: boolean;
}

export interface VoteMessage extends Base {
  type: 'vote';
  preVote: boolean;
  granted: boolean;
}

/** The leader hands over: the receiver campaigns at once, without a pre-vote (thesis §3.10). */
export interface TimeoutNowMessage extends Base {
  type: 'timeoutNow';
}

export type RefusalCode =
  /** Not a member, and not the primary this node was told to follow. */
  | 'untrusted'
  /** The sender's term is older than this node's. */
  | 'stale-term'
  /** This node follows another leader in that same term. */
  | 'term-taken'
  /** Following would drop records this node knows to be committed (or a history it does not descend from). */
  | 'diverged'
  /** Already following another leader. */
  | 'busy';

export interface RefuseMessage extends Base {
  type: 'refuse';
  code: RefusalCode;
  reason: string;
  /** For term-taken: the leader this node follows in that term. */
  leader: string | null;
}

export type Message =
  | ProbeMessage
  | PositionMessage
  | SyncMessage
  | SnapshotOfferMessage
  | SnapshotAcceptMessage
  | AppendRequest
  | RecordsMessage
  | HeartbeatMessage
  | AckMessage
  | RefuseMessage
  | VoteRequestMessage
  | VoteMessage
  | TimeoutNowMessage;

/** Messages the core sends (an AppendRequest goes to the transport, which sends records). */
export type Outgoing = Exclude<Message, RecordsMessage>;
/** Messages the core receives. */
export type Incoming = Exclude<Message, AppendRequest>;
