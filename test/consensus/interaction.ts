/**
 * The interaction environment transcripts run in (etcd raft's rafttest
 * InteractionEnv, for our core): a few nodes, each the production
 * ReplicationCore over an in-memory disk, and a network that holds every
 * message until a command delivers or drops it. Nothing happens unless a
 * command says so, so every message in and out, every Ready and every disk
 * completion shows in the transcript, in order.
 *
 * A node handles a Ready the way src/replication/runtime.ts does, in the
 * same order: truncate the log (the cut is durable at once), roll back,
 * persist the hard state and term history, install a received snapshot,
 * start the append (it is durable only when `persist` completes it), send
 * the messages (an append request goes to the node's transport, which packs
 * RECORDS from its log and reports appendSent, as test/sim/world.ts does),
 * close links, offer snapshots, apply. A crash keeps what is durable (the
 * hard state, the term history, the durable records) and loses the rest.
 *
 * Commands (nodes are n1, n2, ...; `[...]` is optional):
 *   add-nodes N [leader=n1] [primary=n1|none] [heartbeat=2] [timeout=8] [seed=1] [frame=K]
 *       N nodes; `leader` starts as primary, the others as followers of the
 *       primary at their configured address (`primary`; none: they trust the
 *       members of their log, or anyone while their log is empty). `frame`:
 *       records per RECORDS frame at most (default: all requested), as a
 *       real frame's byte limit cuts a request short.
 *   add-nodes N elections=true [election=10] [heartbeat=2] [timeout=8] [seed=1] [frame=K]
 *       N nodes that elect their leader (the core's ElectionOptions): each
 *       starts as a follower of nobody, the bootstrap voters are the N nodes,
 *       and a new leader's no-op is a Config record (src/log/record.ts, as
 *       test/sim/node.ts builds it). `election`: electionTicks (a node
 *       campaigns after a timeout drawn in [K, 2K) ticks without a leader).
 *   connect A B [C ...]         opens a link between every pair named
 *   disconnect A B              closes the link (messages on it are lost)
 *   propose N [DATA ...] [count=K]  one batch of records (DATA as payloads)
 *   configure N M1 M2 ...       a config record: the members are M1, M2, ...
 *   promote N                   operator: N becomes primary (a new term)
 *   campaign N                  (elections) N campaigns now: promote() with elections,
 *                               a forced campaign without a pre-vote
 *   transfer N TO               (elections) leader N hands leadership to TO
 *   read N                      (elections) a linearizable read on N (readIndex); reads
 *                               are named r1, r2, ... and settle in a Ready's `read` lines
 *   follow N [primary=P|none]   operator: N follows (P at its configured address;
 *                               a link's "configured" flag is fixed when it opens)
 *   force-full N P              operator: N's next sync of P is a full one
 *   tick N [N2 ...] [K] [until=ready]  K ticks (default 1); until=ready: stops after
 *                               the first tick that leaves one of them with a Ready
 *   ready N [hold]              prints N's Ready and handles it (hold: prints
 *                               it and keeps it for `advance`)
 *   advance N                   handles the Ready `ready N hold` kept
 *   persist N [N2 ...]          N's disk completes its appends (localDurable)
 *   refuse N                    N's disk refuses its appends in flight (localFailed)
 *   deliver [N ...] [from=P] [type=T] [nth=K]  delivers queued messages, in order
 *                               (nth: only the K-th of those that match)
 *   drop [N ...] [from=P] [type=T] [nth=K]     loses them
 *   stabilize [N ...]           ready / persist / deliver until nothing moves
 *   crash N                     N stops; what is not durable is gone
 *   restart N [role=leader|follower] [primary=P|none]  starts N from its disk
 *   compact N LSN               N's log no longer holds records up to LSN
 *   starve N [count=1]          N's transport sends nothing for its next request(s)
 *                               (its view of the log lags the core's)
 *   status N | held N | log N   what N knows
 *
 * Printed names: history ids are h1, h2, ... and probe ids p1, p2, ... in
 * the order they first appear (the core draws them from a seeded rng).
 * A heartbeat, ack or position prints `read=K` when its ReadIndex round K
 * is not 0 (only reads start rounds). With elections a Ready prints the
 * reads it settles (`read rK served at LSN`, or failed), `log` marks the
 * records the node knows committed, and an elected leader's no-op (a
 * Config record) shows as `no-op (config MEMBERS)`.
 */
import {
  CoreError,
  ReplicationCore,
  type ConfigEntry,
  type CoreEvent,
  type CoreFaults,
  type HardState,
  type Ready,
} from '../../src/consensus/core.ts';
import type { Entry, Incoming, Outgoing, RecordsMessage } from '../../src/consensus/messages.ts';
import type { Membership } from '../../src/consensus/membership.ts';
import type { Epoch } from '../../src/consensus/term-history.ts';
import { decodeRecord, encodeRecord, Op } from '../../src/log/record.ts';
import { Rng } from '../sim/rng.ts';
import type { Command } from './transcript.ts';

interface Snapshot {
  lsn: number;
  records: Entry[];
  history: Epoch[];
  configs: ConfigEntry[];
}

/** The leader's transport streaming a pinned snapshot (in the harness, one message). */
interface SnapshotData {
  type: 'snapshotData';
  from: string;
  to: string;
  term: number;
  snapshot: Snapshot;
}

type WireMessage = Incoming | SnapshotData;

export interface EnvOptions {
  /** Deliberate defects of the core (see CoreFaults): a transcript must then fail. */
  faults?: Partial<CoreFaults>;
}

class HarnessError extends Error {
  override name = 'HarnessError';
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

class Node {
  alive = true;
  core!: ReplicationCore;
  /** Records in the log, durable or on their way to the disk. */
  log: Entry[] = [];
  /** The first `durableLen` records of `log` are on disk. */
  durableLen = 0;
  hardState: HardState = { term: 0, votedFor: null, commit: 0 };
  history: Epoch[] = [];
  /** Records applied to the state (as far as the harness handed them out). */
  applied = 0;
  /** Records below this LSN are gone from the log (compacted): only a snapshot has them. */
  firstLsn = 1;
  /** Appends handed to the disk, not complete yet. */
  writing: { entries: Entry[]; generation: number }[] = [];
  /** A Ready printed by `ready N hold`, not handled yet. */
  held: Ready | null = null;
  /** Snapshots this leader pinned and offered, by follower. */
  readonly offered = new Map<string, Snapshot>();
  /** A snapshot that arrived, waiting to be installed. */
  received: Snapshot | null = null;
  /** The snapshot installed last (0: none). */
  snapshotLsn = 0;
  /** Append requests the transport answers with nothing sent (`starve`). */
  starved = 0;

  constructor(
    readonly id: string,
    public role: 'leader' | 'follower',
    public primary: string | null,
    readonly rng: Rng,
    /** Elections instead of operator-set roles (`add-nodes elections=true`). */
    readonly elections: { electionTicks: number; voters: string[] } | null = null,
  ) {}
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

/** A ReadIndex round a message carries, when there is one (manual roles never start one). */
function readRound(seq: number): string {
  return seq > 0 ? ` read=${seq}` : '';
}

function range(first: number, last: number): string {
  return first === last ? `${first}` : `${first}..${last}`;
}

export class InteractionEnv {
  private readonly nodes = new Map<string, Node>();
  private readonly links = new Set<string>();
  /** Messages on the wire, oldest first. */
  private queue: WireMessage[] = [];
  private readonly faults: Partial<CoreFaults>;
  private heartbeatTicks = 2;
  private timeoutTicks = 8;
  /** Records per RECORDS frame at most (`add-nodes frame=K`). */
  private recordsPerFrame = Infinity;
  private readonly historyNames = new Map<string, string>();
  private readonly probeNames = new Map<number, string>();
  /** Linearizable reads are r1, r2, ... (the id passed to readIndex). */
  private nextReadId = 1;

  constructor(opts: EnvOptions = {}) {
    this.faults = opts.faults ?? {};
  }

  handle(cmd: Command): string[] {
    switch (cmd.name) {
      case 'add-nodes':
        return this.addNodes(cmd);
      case 'connect':
        return this.connectAll(cmd.positional.map((id) => this.node(id)));
      case 'disconnect': {
        const [a, b] = this.nodesOf(cmd, 2);
        return this.breakLink(a as Node, b as Node);
      }
      case 'propose':
        return this.propose(cmd);
      case 'configure':
        return this.configure(cmd);
      case 'promote': {
        const n = this.running(cmd);
        if (n.elections) throw new HarnessError(`${n.id} elects its role: campaign ${n.id}, not promote`);
        n.role = 'leader';
        n.primary = null;
        n.core.promote();
        return [
          n.core.role === 'leader'
            ? `${n.id} is primary in term ${n.core.term}`
            : `${n.id} leads once its snapshot install is done (now ${n.core.role} in term ${n.core.term})`,
        ];
      }
      case 'campaign':
        return this.campaignCommand(this.running(cmd));
      case 'transfer':
        return this.transfer(cmd);
      case 'read':
        return this.read(this.running(cmd));
      case 'follow': {
        const n = this.running(cmd);
        if (n.elections) throw new HarnessError(`${n.id} elects its role: follow is for manual roles`);
        const primary = cmd.named.get('primary') ?? 'none';
        n.role = 'follower';
        n.primary = primary === 'none' ? null : this.node(primary).id;
        n.core.follow(n.primary !== null);
        return [
          `${n.id} follows ${n.primary === null ? 'a member' : `the primary at ${n.primary}'s address`}`,
        ];
      }
      case 'force-full': {
        const [n, peer] = this.nodesOf(cmd, 2);
        (n as Node).core.forceFullSync((peer as Node).id);
        return ['ok'];
      }
      case 'tick':
        return this.tick(cmd);
      case 'ready':
        return this.readyCommand(cmd);
      case 'advance': {
        const n = this.running(cmd);
        if (n.held === null) throw new HarnessError(`${n.id} holds no Ready`);
        const rd = n.held;
        n.held = null;
        const out: string[] = [];
        this.handleReady(n, rd, out, false);
        return out;
      }
      case 'persist': {
        const out: string[] = [];
        for (const n of this.nodesOf(cmd)) this.persist(n, out);
        return out.length > 0 ? out : ['nothing to persist'];
      }
      case 'refuse':
        return this.refuse(this.running(cmd));
      case 'deliver':
        return this.deliverCommand(cmd, false);
      case 'drop':
        return this.deliverCommand(cmd, true);
      case 'stabilize':
        return this.stabilize(cmd.positional.length > 0 ? this.nodesOf(cmd) : [...this.nodes.values()]);
      case 'crash':
        return this.crash(this.running(cmd));
      case 'restart':
        return this.restart(cmd);
      case 'starve': {
        const n = this.running(cmd);
        n.starved += Number(cmd.named.get('count') ?? '1');
        return [`${n.id}'s transport finds nothing to send for its next ${n.starved} request(s)`];
      }
      case 'compact': {
        const n = this.running(cmd);
        const upTo = Number(cmd.positional[1]);
        if (!Number.isInteger(upTo) || upTo < 0) throw new HarnessError('compact N LSN');
        n.firstLsn = Math.max(n.firstLsn, upTo + 1);
        return [`${n.id}'s log holds records from ${n.firstLsn}`];
      }
      case 'status':
        return this.status(this.running(cmd));
      case 'held':
        return [this.held(this.running(cmd))];
      case 'log':
        return this.logOf(this.node(cmd.positional[0] ?? ''));
      default:
        throw new HarnessError(`unknown command ${cmd.name}`);
    }
  }

  // ------------------------------------------------------------------ nodes

  private node(id: string): Node {
    const n = this.nodes.get(id);
    if (!n) throw new HarnessError(`no node ${id}`);
    return n;
  }

  private nodesOf(cmd: Command, count?: number): Node[] {
    const ids = cmd.positional.filter((p) => !/^\d+$/.test(p));
    if (count !== undefined && ids.length !== count) {
      throw new HarnessError(`${cmd.name} takes ${count} nodes`);
    }
    return ids.map((id) => this.node(id));
  }

  private running(cmd: Command): Node {
    const n = this.node(cmd.positional[0] ?? '');
    if (!n.alive) throw new HarnessError(`${n.id} is not running`);
    return n;
  }

  private addNodes(cmd: Command): string[] {
    if (cmd.named.get('elections') === 'true') return this.addElectingNodes(cmd);
    const count = Number(cmd.positional[0]);
    const leader = cmd.named.get('leader') ?? 'n1';
    const primary = cmd.named.get('primary') ?? leader;
    const seed = Number(cmd.named.get('seed') ?? '1');
    this.heartbeatTicks = Number(cmd.named.get('heartbeat') ?? this.heartbeatTicks);
    this.timeoutTicks = Number(cmd.named.get('timeout') ?? this.timeoutTicks);
    this.recordsPerFrame = Number(cmd.named.get('frame') ?? this.recordsPerFrame);
    const out: string[] = [];
    for (let i = 1; i <= count; i++) {
      const id = `n${this.nodes.size + 1}`;
      const isLeader = id === leader;
      const n = new Node(
        id,
        isLeader ? 'leader' : 'follower',
        isLeader || primary === 'none' ? null : primary,
        new Rng(seed, 100 + this.nodes.size),
      );
      this.nodes.set(id, n);
      this.boot(n);
      out.push(
        `${id}: ${isLeader ? 'primary' : n.primary === null ? 'follower (of a member)' : `follower of the primary at ${n.primary}'s address`}`,
      );
    }
    return out;
  }

  /** `add-nodes N elections=true`: N voters, each a follower of nobody, the bootstrap membership all of them. */
  private addElectingNodes(cmd: Command): string[] {
    const count = Number(cmd.positional[0]);
    const seed = Number(cmd.named.get('seed') ?? '1');
    const electionTicks = Number(cmd.named.get('election') ?? '10');
    this.heartbeatTicks = Number(cmd.named.get('heartbeat') ?? this.heartbeatTicks);
    this.timeoutTicks = Number(cmd.named.get('timeout') ?? this.timeoutTicks);
    this.recordsPerFrame = Number(cmd.named.get('frame') ?? this.recordsPerFrame);
    const first = this.nodes.size + 1;
    const voters: string[] = [];
    for (let i = 0; i < count; i++) voters.push(`n${first + i}`);
    const out: string[] = [];
    for (const id of voters) {
      const n = new Node(id, 'follower', null, new Rng(seed, 100 + this.nodes.size), {
        electionTicks,
        voters,
      });
      this.nodes.set(id, n);
      this.boot(n);
      out.push(
        `${id}: follower, elections (voters ${voters.join(' ')}, election timeout ${electionTicks} ticks)`,
      );
    }
    return out;
  }

  /** Starts the node's core from what is on its disk (as test/sim/node.ts boots). */
  private boot(n: Node): void {
    n.alive = true;
    n.log = n.log.slice(0, n.durableLen);
    n.writing = [];
    n.held = null;
    n.offered.clear();
    n.received = null;
    // With elections only committed records are applied (recovery replays up to the commit point).
    n.applied = n.elections ? Math.min(n.hardState.commit, n.log.length) : n.log.length;
    const configs: ConfigEntry[] = [];
    for (const e of n.log) if (e.config) configs.push({ lsn: e.lsn, membership: e.config });
    n.core = new ReplicationCore({
      id: n.id,
      role: n.role,
      hardState: { ...n.hardState },
      log: {
        lastLsn: n.log.length,
        firstLsn: n.firstLsn,
        history: n.history.map((e) => ({ ...e })),
        configs,
        appliedLsn: n.applied,
      },
      rng: () => n.rng.next(),
      heartbeatTicks: this.heartbeatTicks,
      timeoutTicks: this.timeoutTicks,
      followsConfiguredPrimary: n.role === 'follower' && n.primary !== null,
      faults: this.faults,
      elections: n.elections && {
        electionTicks: n.elections.electionTicks,
        bootstrap: { members: n.elections.voters.map((id) => ({ id, address: null })) },
        encodeConfig: (lsn, term, membership) =>
          encodeRecord({
            lsn,
            term,
            hlcMs: 0,
            hlcLogical: 0,
            origin: n.id,
            collection: '',
            op: Op.Config,
            members: membership.members,
          }),
      },
    });
  }

  private crash(n: Node): string[] {
    const out: string[] = [];
    for (const other of this.nodes.values()) {
      if (other !== n && this.links.has(pairKey(n.id, other.id))) out.push(...this.breakLink(n, other));
    }
    const lost = n.log.length - n.durableLen;
    n.alive = false;
    n.writing = [];
    n.held = null;
    n.log = n.log.slice(0, n.durableLen);
    out.push(
      `${n.id} crashed: ${lost > 1 ? `records ${range(n.durableLen + 1, n.durableLen + lost)} were not durable and are gone` : lost === 1 ? `record ${n.durableLen + 1} was not durable and is gone` : 'every record was durable'}`,
    );
    return out;
  }

  private restart(cmd: Command): string[] {
    const n = this.node(cmd.positional[0] ?? '');
    if (n.alive) throw new HarnessError(`${n.id} is running`);
    const role = cmd.named.get('role');
    if (n.elections && role !== undefined) throw new HarnessError(`${n.id} elects its role: no role=`);
    if (role === 'leader' || role === 'follower') n.role = role;
    const primary = cmd.named.get('primary');
    if (primary !== undefined) n.primary = primary === 'none' ? null : this.node(primary).id;
    if (n.role === 'leader') n.primary = null;
    this.boot(n);
    const hs = n.hardState;
    return [
      `${n.id} restarted as ${n.role === 'leader' ? 'primary' : 'follower'}${n.elections ? ` (applied ${n.applied})` : ''}: log ${n.firstLsn}..${n.log.length}, durable hard state term=${hs.term} vote=${hs.votedFor ?? '-'} commit=${hs.commit}`,
    ];
  }

  // ------------------------------------------------------------------ links

  private connectAll(nodes: Node[]): string[] {
    if (nodes.length < 2) throw new HarnessError('connect takes two nodes or more');
    const out: string[] = [];
    for (let i = 0; i < nodes.length; i++) {
      for (let j = i + 1; j < nodes.length; j++) {
        const a = nodes[i] as Node;
        const b = nodes[j] as Node;
        if (!a.alive || !b.alive) throw new HarnessError(`${a.alive ? b.id : a.id} is not running`);
        const key = pairKey(a.id, b.id);
        if (this.links.has(key)) throw new HarnessError(`${a.id} and ${b.id} are connected already`);
        this.links.add(key);
        for (const [x, y] of [
          [a, b],
          [b, a],
        ] as const) {
          x.core.step({ type: 'connected', peer: y.id, viaConfiguredPrimary: x.primary === y.id });
        }
        const flag = (x: Node, y: Node): string =>
          x.primary === y.id ? ` (${x.id}'s configured primary)` : '';
        out.push(`${a.id}<->${b.id} connected${flag(a, b)}${flag(b, a)}`);
      }
    }
    return out;
  }

  /** Closes the link: both ends hear it, and what was on the wire between them is lost. */
  private breakLink(a: Node, b: Node): string[] {
    const key = pairKey(a.id, b.id);
    if (!this.links.delete(key)) return [`${a.id} and ${b.id} are not connected`];
    const out = [`${a.id}<->${b.id} disconnected`];
    this.queue = this.queue.filter((m) => {
      if (pairKey(m.from, m.to) !== key) return true;
      out.push(`  lost ${this.describe(m)}`);
      return false;
    });
    for (const [x, y] of [
      [a, b],
      [b, a],
    ] as const) {
      if (x.alive) x.core.step({ type: 'disconnected', peer: y.id });
    }
    return out;
  }

  private send(m: WireMessage, out: string[]): void {
    if (!this.links.has(pairKey(m.from, m.to))) {
      out.push(`lost: no link ${m.from}<->${m.to}`);
      return;
    }
    this.queue.push(m);
  }

  // ------------------------------------------------------------------ writes

  private propose(cmd: Command): string[] {
    const n = this.running(cmd);
    const data = cmd.positional.slice(1);
    const count = data.length > 0 ? data.length : Number(cmd.named.get('count') ?? '1');
    try {
      const r = n.core.propose(count, (lsn, _term, i) => encoder.encode(data[i] ?? `r${lsn}`));
      return [`${n.id} appends ${range(r.firstLsn, r.lastLsn)} in term ${r.term}`];
    } catch (err) {
      if (err instanceof CoreError) return [`${n.id} refuses: ${err.code}: ${err.message}`];
      throw err;
    }
  }

  private configure(cmd: Command): string[] {
    const n = this.running(cmd);
    const members: Membership = { members: cmd.positional.slice(1).map((id) => ({ id, address: null })) };
    try {
      const r = n.core.propose(
        1,
        () => encoder.encode(`config ${cmd.positional.slice(1).join(',')}`),
        members,
      );
      return [`${n.id} appends config record ${r.firstLsn} in term ${r.term}`];
    } catch (err) {
      if (err instanceof CoreError) return [`${n.id} refuses: ${err.code}: ${err.message}`];
      throw err;
    }
  }

  // ------------------------------------------------------------------ elections

  private electing(n: Node): Node {
    if (!n.elections) throw new HarnessError(`${n.id} does not run elections (add-nodes elections=true)`);
    return n;
  }

  /** promote() with elections: a forced campaign, without a pre-vote. */
  private campaignCommand(n: Node): string[] {
    this.electing(n).core.promote();
    const c = n.core;
    return [
      c.role === 'leader'
        ? `${n.id} leads term ${c.term}`
        : `${n.id} is ${c.role} in term ${c.term}${c.role === 'candidate' ? ' (votes to be asked in its Ready)' : ''}`,
    ];
  }

  private transfer(cmd: Command): string[] {
    const [n, to] = this.nodesOf(cmd, 2) as [Node, Node];
    try {
      this.electing(n).core.transferLeadership(to.id);
    } catch (err) {
      if (err instanceof CoreError) return [`${n.id} refuses: ${err.code}: ${err.message}`];
      throw err;
    }
    return [`${n.id} hands leadership to ${to.id}: no writes until it takes over`];
  }

  private read(n: Node): string[] {
    const id = this.nextReadId;
    try {
      this.electing(n).core.readIndex(id);
    } catch (err) {
      if (err instanceof CoreError) return [`${n.id} refuses: ${err.code}: ${err.message}`];
      throw err;
    }
    this.nextReadId++;
    return [`${n.id} takes read r${id} (reads waiting for their round: ${n.core.pendingReadCount})`];
  }

  // ------------------------------------------------------------------ time

  private tick(cmd: Command): string[] {
    const count = Number(cmd.positional.find((p) => /^\d+$/.test(p)) ?? cmd.named.get('count') ?? '1');
    const nodes = this.nodesOf(cmd);
    const until = cmd.named.get('until');
    if (until !== undefined && until !== 'ready') throw new HarnessError('tick ... until=ready');
    for (let i = 1; i <= count; i++) {
      for (const n of nodes) if (n.alive) n.core.tick();
      const busy = nodes.filter((n) => n.alive && n.core.hasReady()).map((n) => n.id);
      if (until !== undefined && busy.length > 0) return [`${i} tick(s), then a Ready on ${busy.join(', ')}`];
    }
    return until === undefined ? ['ok'] : [`${count} tick(s), and no Ready`];
  }

  // ------------------------------------------------------------------ Ready

  private readyCommand(cmd: Command): string[] {
    const n = this.running(cmd);
    if (n.held !== null) throw new HarnessError(`${n.id} holds a Ready: advance it first`);
    if (!n.core.hasReady()) return ['no Ready'];
    const rd = n.core.ready();
    const out: string[] = [];
    if (cmd.positional.includes('hold')) {
      this.printReady(n, rd, out);
      n.held = rd;
      out.push('(held: nothing of it is done until advance)');
      return out;
    }
    this.handleReady(n, rd, out, true);
    return out;
  }

  /**
   * The Ready, in the order the runtime does the work; `notes` are what the
   * node's transport did with each message and offer, printed under it.
   */
  private printReady(
    n: Node,
    rd: Ready,
    out: string[],
    notes?: { messages: string[][]; offers: string[][] },
  ): void {
    const under = (lines: readonly string[] | undefined): void => {
      for (const l of lines ?? []) out.push(`  ${l}`);
    };
    if (rd.truncateAfter !== null) out.push(`truncate after ${rd.truncateAfter}`);
    if (rd.rollbackTo !== null) out.push(`roll state back to ${rd.rollbackTo}`);
    if (rd.hardState) out.push(`hard state ${this.describeHardState(rd.hardState)}`);
    if (rd.history) out.push(`history ${this.describeHistory(rd.history)}`);
    if (rd.installSnapshot !== null) out.push(`install snapshot ${rd.installSnapshot}`);
    if (rd.append) {
      const first = rd.append.entries[0] as Entry;
      const last = rd.append.entries.at(-1) as Entry;
      out.push(`append ${range(first.lsn, last.lsn)} ${this.describeTerms(rd.append.entries)}`);
    }
    rd.messages.forEach((m, i) => {
      out.push(`send ${this.describe(m)}`);
      under(notes?.messages[i]);
    });
    for (const d of rd.disconnect) out.push(`disconnect ${d.peer}: ${d.reason}`);
    rd.offerSnapshot.forEach((o, i) => {
      out.push(`offer snapshot to ${o.to} probe=${this.probe(o.probeId)}${o.force ? ' force' : ''}`);
      under(notes?.offers[i]);
    });
    // Applied from the state as it stands after a rollback (or the snapshot's).
    const from =
      rd.installSnapshot !== null ? rd.installSnapshot : Math.min(n.applied, rd.rollbackTo ?? Infinity);
    if (rd.applyThrough > from) out.push(`apply ${range(from + 1, rd.applyThrough)}`);
    for (const r of rd.reads) {
      out.push(
        r.index === null
          ? `read r${r.id} fails: ${n.id} no longer leads`
          : `read r${r.id} served at ${r.index}`,
      );
    }
    for (const e of rd.events) out.push(`event ${this.describeEvent(e)}`);
    if (out.length === 0) out.push('(empty)');
  }

  /** Does what the Ready asks, in the runtime's order; prints it (and what the transport did). */
  private handleReady(n: Node, rd: Ready, out: string[], print: boolean): void {
    const notes = { messages: [] as string[][], offers: [] as string[][] };
    const core = n.core;
    if (rd.truncateAfter !== null) {
      // The WAL waits for the appends in flight, then cuts and fsyncs: all up to the cut is durable.
      this.completeWrites(n);
      const cut = rd.truncateAfter;
      n.log.length = Math.min(n.log.length, cut);
      n.durableLen = Math.min(n.durableLen, cut);
      core.step({ type: 'localDurable', lsn: cut, generation: rd.generation });
    }
    if (rd.hardState !== null || rd.history !== null) {
      n.hardState = { ...(rd.hardState ?? core.hardState) };
      if (rd.history) n.history = rd.history.map((e) => ({ ...e }));
    }
    if (rd.installSnapshot !== null) {
      const snap = n.received;
      if (snap === null || snap.lsn !== rd.installSnapshot) {
        throw new HarnessError(`${n.id} installs snapshot ${rd.installSnapshot}, which it did not receive`);
      }
      n.received = null;
      n.writing = [];
      n.log = snap.records.slice();
      n.durableLen = n.log.length;
      n.history = snap.history.map((e) => ({ ...e }));
      n.firstLsn = snap.lsn + 1;
      n.snapshotLsn = snap.lsn;
      core.step({
        type: 'snapshotInstalled',
        snapshotLsn: snap.lsn,
        history: snap.history,
        configs: snap.configs,
      });
    }
    if (rd.append) {
      const first = rd.append.entries[0] as Entry;
      if (first.lsn !== n.log.length + 1) {
        throw new HarnessError(`${n.id} appends ${first.lsn} after ${n.log.length}`);
      }
      n.log.push(...rd.append.entries);
      n.writing.push({ entries: rd.append.entries, generation: rd.append.generation });
    }
    for (const m of rd.messages) {
      const note: string[] = [];
      if (m.type === 'append') this.transmitRecords(n, m, note);
      else this.send(m, note);
      notes.messages.push(note);
    }
    const closed: string[] = [];
    for (const d of rd.disconnect) {
      const peer = this.nodes.get(d.peer);
      if (peer) closed.push(...this.breakLink(n, peer));
    }
    for (const o of rd.offerSnapshot) {
      const note: string[] = [];
      this.offerSnapshot(n, o.to, o.probeId, o.force, note);
      notes.offers.push(note);
    }
    core.advance();
    if (print) this.printReady(n, rd, out, notes);
    else for (const note of [...notes.messages, ...notes.offers]) out.push(...note);
    if (rd.rollbackTo !== null) n.applied = Math.min(n.applied, rd.rollbackTo);
    if (rd.installSnapshot !== null) n.applied = rd.installSnapshot;
    n.applied = Math.max(n.applied, rd.applyThrough);
    out.push(...closed);
  }

  /** The leader's transport: packs the requested records from its log into one RECORDS frame. */
  private transmitRecords(n: Node, m: Extract<Outgoing, { type: 'append' }>, out: string[]): void {
    const base = { to: m.to, term: m.term, requestId: m.requestId };
    if (m.firstLsn < n.firstLsn) {
      out.push(`transport: records from ${m.firstLsn} to ${m.to} are compacted away (appendUnavailable)`);
      n.core.step({ type: 'appendUnavailable', ...base });
      return;
    }
    const entries = n.log.slice(
      m.firstLsn - 1,
      Math.min(m.maxLsn, n.log.length, m.firstLsn - 1 + this.recordsPerFrame),
    );
    if (n.starved > 0) {
      n.starved--;
      entries.length = 0;
      out.push(`transport: nothing to send to ${m.to} (appendSent, 0 bytes)`);
    }
    if (entries.length === 0) {
      n.core.step({ type: 'appendSent', ...base, lastLsn: m.firstLsn - 1, bytes: 0 });
      return;
    }
    const records: RecordsMessage = {
      type: 'records',
      from: n.id,
      to: m.to,
      term: m.term,
      entries: entries.map((e) => ({ ...e })),
      commit: m.commit,
      applyLimit: m.applyLimit,
    };
    out.push(`transport: ${this.describe(records)}`);
    this.send(records, out);
    const bytes = entries.reduce((s, e) => s + e.bytes.length, 0);
    n.core.step({ type: 'appendSent', ...base, lastLsn: (entries.at(-1) as Entry).lsn, bytes });
  }

  /** The leader's transport pins a snapshot (its applied state) and sends the offer, as the simulator's does. */
  private offerSnapshot(n: Node, to: string, probeId: number, force: boolean, out: string[]): void {
    const lsn = n.core.log.appliedLsn;
    const records = n.log.slice(0, lsn);
    const configs: ConfigEntry[] = [];
    for (const e of records) if (e.config) configs.push({ lsn: e.lsn, membership: e.config });
    const history = n.core.termHistory.filter((e) => e.firstLsn <= Math.max(lsn, 1));
    const snapshot: Snapshot = { lsn, records, history, configs };
    n.offered.set(to, snapshot);
    const offer: Incoming = {
      type: 'snapshotOffer',
      from: n.id,
      to,
      term: n.core.term,
      probeId,
      snapshotLsn: lsn,
      // The snapshot's history ends at its LSN; the offer carries the leader's whole history.
      history: n.core.termHistory,
      force,
    };
    out.push(`transport: pins snapshot ${lsn}, ${this.describe(offer)}`);
    this.send(offer, out);
    n.core.step({ type: 'snapshotOffered', to, term: n.core.term, snapshotLsn: lsn });
  }

  // ------------------------------------------------------------------ disk

  /** The disk completes the node's appends in order; each is reported as localDurable. */
  private persist(n: Node, out: string[]): void {
    if (!n.alive || n.writing.length === 0) return;
    for (const w of n.writing) {
      const first = (w.entries[0] as Entry).lsn;
      const last = (w.entries.at(-1) as Entry).lsn;
      out.push(`${n.id} disk: ${range(first, last)} durable`);
    }
    this.completeWrites(n);
  }

  /** The disk refuses every append in flight (a full disk): the WAL cuts them off, from the first. */
  private refuse(n: Node): string[] {
    const writes = n.writing;
    const first = writes[0]?.entries[0];
    if (first === undefined) return ['nothing to refuse'];
    n.writing = [];
    n.log.length = Math.min(n.log.length, first.lsn - 1);
    const last = (writes.at(-1)?.entries.at(-1) as Entry).lsn;
    for (const w of writes) {
      n.core.step({ type: 'localFailed', fromLsn: (w.entries[0] as Entry).lsn, generation: w.generation });
    }
    return [`${n.id} disk: ${range(first.lsn, last)} refused`];
  }

  private completeWrites(n: Node): void {
    const writes = n.writing;
    n.writing = [];
    for (const w of writes) {
      const last = (w.entries.at(-1) as Entry).lsn;
      if (n.log.length >= last) n.durableLen = Math.max(n.durableLen, last);
      n.core.step({ type: 'localDurable', lsn: last, generation: w.generation });
    }
  }

  // ------------------------------------------------------------------ network

  private filterOf(cmd: Command): (m: WireMessage) => boolean {
    const to = new Set(this.nodesOf(cmd).map((n) => n.id));
    const from = cmd.named.get('from');
    const type = cmd.named.get('type');
    return (m) =>
      (to.size === 0 || to.has(m.to)) &&
      (from === undefined || m.from === from) &&
      (type === undefined || this.typeName(m).toLowerCase() === type.toLowerCase());
  }

  private deliverCommand(cmd: Command, drop: boolean): string[] {
    const out: string[] = [];
    let match = this.filterOf(cmd);
    const nth = cmd.named.get('nth');
    if (nth !== undefined) {
      const pick = this.queue.filter(match)[Number(nth) - 1];
      match = (m) => m === pick;
    }
    this.deliver(match, drop, out, '');
    return out.length > 0 ? out : ['no messages'];
  }

  /** Delivers (or drops) the queued messages that match, oldest first; new ones wait for the next round. */
  private deliver(match: (m: WireMessage) => boolean, drop: boolean, out: string[], indent: string): number {
    const now = this.queue.filter(match);
    this.queue = this.queue.filter((m) => !match(m));
    for (const m of now) {
      if (drop) {
        out.push(`${indent}dropped ${this.describe(m)}`);
        continue;
      }
      out.push(`${indent}${this.describe(m)}`);
      const to = this.node(m.to);
      if (!to.alive || !this.links.has(pairKey(m.from, m.to))) {
        out.push(`${indent}  lost: ${to.alive ? 'no link' : `${to.id} is down`}`);
        continue;
      }
      if (m.type === 'snapshotData') {
        to.received = m.snapshot;
        to.core.step({ type: 'snapshotReceived', from: m.from, term: m.term, snapshotLsn: m.snapshot.lsn });
        continue;
      }
      if (m.type === 'snapshotAccept') {
        // The leader's transport streams the snapshot it pinned for this follower.
        const snap = to.offered.get(m.from);
        if (snap && snap.lsn === m.snapshotLsn) {
          const data: SnapshotData = {
            type: 'snapshotData',
            from: to.id,
            to: m.from,
            term: to.core.term,
            snapshot: snap,
          };
          const note = [`transport: streams ${this.describe(data)}`];
          this.send(data, note);
          for (const l of note) out.push(`${indent}  ${l}`);
        }
      }
      to.core.step(m);
    }
    return now.length;
  }

  private stabilize(nodes: Node[]): string[] {
    const out: string[] = [];
    for (let round = 0; ; round++) {
      if (round > 100) throw new HarnessError('stabilize: still busy after 100 rounds');
      let busy = false;
      for (const n of nodes) {
        if (!n.alive || n.held !== null || !n.core.hasReady()) continue;
        busy = true;
        out.push(`> ${n.id} handling Ready`);
        const lines: string[] = [];
        this.handleReady(n, n.core.ready(), lines, true);
        for (const l of lines) out.push(`  ${l}`);
      }
      for (const n of nodes) {
        if (!n.alive || n.writing.length === 0) continue;
        busy = true;
        const lines: string[] = [];
        this.persist(n, lines);
        for (const l of lines) out.push(`> ${l}`);
      }
      for (const n of nodes) {
        if (!this.queue.some((m) => m.to === n.id)) continue;
        busy = true;
        out.push(`> ${n.id} receiving`);
        this.deliver((m) => m.to === n.id, false, out, '  ');
      }
      if (!busy) break;
    }
    return out.length > 0 ? out : ['nothing to do'];
  }

  // ------------------------------------------------------------------ views

  private status(n: Node): string[] {
    const c = n.core;
    const log = c.log;
    const out = [
      `${n.id} ${c.role} term=${c.term} vote=${c.hardState.votedFor ?? '-'} commit=${c.commit} leader=${c.leader ?? '-'}`,
      `  log ${log.firstLsn}..${log.lastLsn} durable=${log.durableLsn} applied=${log.appliedLsn} generation=${c.logGeneration}`,
      `  history ${this.describeHistory(c.termHistory)}`,
      `  members ${c.membership.members.map((m) => m.id ?? m.address).join(' ')}`,
    ];
    if (c.role === 'leader') {
      out.push(`  ${this.held(n)}`);
      if (c.transferTarget !== null) out.push(`  transferring leadership to ${c.transferTarget}`);
      if (c.pendingReadCount > 0) out.push(`  reads waiting for their round: ${c.pendingReadCount}`);
      for (const peer of c.peers().sort()) {
        const p = c.peer(peer);
        if (!p) continue;
        out.push(
          `  peer ${peer} ${p.state} match=${p.match} next=${p.next} inflight=${p.inflightFrames}${p.refusal ? ` refusal="${p.refusal}"` : ''}`,
        );
      }
    } else if (c.role === 'follower') {
      out.push(`  synced=${c.isSynced} leader last=${c.leaderLastLsn}`);
    }
    return out;
  }

  private held(n: Node): string {
    const c = n.core;
    if (c.role !== 'leader') return `${n.id} is not primary (${c.role})`;
    return `held one=${c.heldThrough('one')} quorum=${c.heldThrough('quorum')} all=${c.heldThrough('all')} commit=${c.commit}`;
  }

  private logOf(n: Node): string[] {
    const out: string[] = [];
    const history = n.alive ? n.core.termHistory : n.history;
    const commit = n.alive ? n.core.commit : n.hardState.commit;
    for (const e of n.log) {
      if (e.lsn < n.firstLsn) continue;
      const epoch = history.filter((h) => h.firstLsn <= e.lsn).at(-1);
      const id = epoch ? this.historyName(epoch.historyId) : '-';
      out.push(
        `${e.lsn} t${e.term} ${id} ${this.payload(n, e)}${e.lsn > n.durableLen ? ' (not durable)' : ''}${n.elections && e.lsn <= commit ? ' committed' : ''}`,
      );
    }
    if (out.length === 0 && n.firstLsn === 1) return [`${n.id}: empty log`];
    if (n.firstLsn > 1) {
      const below = n.firstLsn - 1;
      out.unshift(
        n.snapshotLsn === below ? `snapshot ${below} (installed)` : `(records up to ${below} compacted)`,
      );
    }
    return out;
  }

  /** A record's payload as text; an elected leader's no-op (a Config record) by its members. */
  private payload(n: Node, e: Entry): string {
    if (n.elections && e.config) {
      try {
        const r = decodeRecord(e.bytes);
        if (r.op === Op.Config) return `no-op (config ${r.members.map((m) => m.id ?? m.address).join(',')})`;
      } catch {
        // Not a record: a config record of the `configure` command, whose payload is text.
      }
    }
    return JSON.stringify(decoder.decode(e.bytes));
  }

  // ------------------------------------------------------------------ printing

  private historyName(id: string): string {
    let name = this.historyNames.get(id);
    if (name === undefined) {
      name = `h${this.historyNames.size + 1}`;
      this.historyNames.set(id, name);
    }
    return name;
  }

  private probe(id: number): string {
    let name = this.probeNames.get(id);
    if (name === undefined) {
      name = `p${this.probeNames.size + 1}`;
      this.probeNames.set(id, name);
    }
    return name;
  }

  private describeHardState(hs: HardState): string {
    return `term=${hs.term} vote=${hs.votedFor ?? '-'} commit=${hs.commit}`;
  }

  private describeHistory(history: readonly Epoch[]): string {
    return `[${history.map((e) => `t${e.term}@${e.firstLsn}(${e.leaderId},${this.historyName(e.historyId)})`).join(' ')}]`;
  }

  private describeTerms(entries: readonly Entry[]): string {
    const terms = [...new Set(entries.map((e) => e.term))];
    const configs = entries.filter((e) => e.config).map((e) => e.lsn);
    return `term=${terms.join(',')}${configs.length > 0 ? ` config@${configs.join(',')}` : ''}`;
  }

  private typeName(m: WireMessage | Outgoing): string {
    return m.type.charAt(0).toUpperCase() + m.type.slice(1);
  }

  private describe(m: WireMessage | Outgoing): string {
    const head = `${m.from}->${m.to} ${this.typeName(m)} term=${m.term}`;
    switch (m.type) {
      case 'probe':
        return `${head} probe=${this.probe(m.probeId)} last=${m.lastLsn} commit=${m.commit} limit=${m.applyLimit}`;
      case 'position':
        return `${head} probe=${this.probe(m.probeId)} last=${m.lastLsn} commit=${m.commit}${readRound(m.readSeq)} history=${this.describeHistory(m.history)}`;
      case 'sync':
        return `${head} probe=${this.probe(m.probeId)} match=${m.match} last=${m.lastLsn} commit=${m.commit} limit=${m.applyLimit} history=${this.describeHistory(m.history)}`;
      case 'snapshotOffer':
        return `${head} probe=${this.probe(m.probeId)} lsn=${m.snapshotLsn}${m.force ? ' force' : ''} history=${this.describeHistory(m.history)}`;
      case 'snapshotAccept':
        return `${head} lsn=${m.snapshotLsn}`;
      case 'append':
        return `${head} req=${m.requestId} first=${m.firstLsn} max=${m.maxLsn} commit=${m.commit} limit=${m.applyLimit}`;
      case 'records': {
        const first = m.entries[0];
        const mixed = m.entries.some((e) => e.term !== m.term);
        return `${head} from=${first?.lsn ?? '-'} count=${m.entries.length}${mixed ? ` ${this.describeTerms(m.entries).replace('term=', 'entry terms=')}` : ''} commit=${m.commit} limit=${m.applyLimit}`;
      }
      case 'heartbeat':
        return `${head} last=${m.lastLsn} commit=${m.commit} limit=${m.applyLimit}${readRound(m.readSeq)}`;
      case 'ack':
        return `${head} match=${m.match} synced=${m.synced}${readRound(m.readSeq)}${m.gap !== null ? ` gap=${m.gap}` : ''}${m.receivingSnapshot ? ' receiving-snapshot' : ''}`;
      case 'refuse':
        return `${head} ${m.code}${m.leader !== null ? ` leader=${m.leader}` : ''} "${m.reason}"`;
      case 'snapshotData':
        return `${head} lsn=${m.snapshot.lsn} records=${m.snapshot.records.length}`;
      case 'voteRequest':
        return `${head}${m.preVote ? ' pre' : ''}${m.force ? ' force' : ''} last=${m.lastLsn}@${m.lastTerm}`;
      case 'vote':
        return `${head}${m.preVote ? ' pre' : ''} ${m.granted ? 'granted' : 'rejected'}`;
      case 'timeoutNow':
        return head;
    }
  }

  private describeEvent(e: CoreEvent): string {
    switch (e.type) {
      case 'roleChanged':
        return `role ${e.role} term=${e.term} leader=${e.leader ?? '-'}`;
      case 'synced':
        return `synced ${e.peer} ${e.mode} at ${e.lsn}`;
      case 'followed':
        return `follows ${e.leader} ${e.mode} from ${e.lsn}${e.alongside > 0 ? ` (+${e.alongside} alongside)` : ''}`;
      case 'fullSyncOffered':
        return `full sync offered to ${e.peer}`;
      case 'refused':
        return e.byMe ? `refused ${e.peer}: ${e.code}` : `refused by ${e.peer}: ${e.code}`;
      case 'fenced':
        return `fenced by ${e.by} (term ${e.term})`;
      case 'truncated':
        return `truncated after ${e.afterLsn}: dropped ${range(e.droppedFrom, e.droppedTo)}`;
      case 'peerSilent':
        return `peer ${e.peer} silent`;
      case 'campaign':
        return `campaign term=${e.term}${e.preVote ? ' pre' : ''}${e.force ? ' force' : ''}`;
      case 'steppedDown':
        return `stepped down (term ${e.term}): ${e.reason}`;
      case 'transfer':
        return `transfer to ${e.to} ${e.outcome}`;
    }
  }
}
