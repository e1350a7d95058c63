/**
 * A simulated cluster: N nodes (production core, runtime, codec and apply)
 * on a simulated network and disks, a client that writes at One, Quorum
 * and All and records what it was told, an operator that fails over by
 * hand (demote, promote the most up-to-date node, re-point the others), and
 * a fault schedule, all from one seed. `runSimulation` returns what the
 * checkers found.
 *
 * Network: messages take 1-25 ms, and may be dropped, duplicated or held
 * back (reordered); partitions cut pairs of nodes; a link the core declares
 * silent is closed and redialled once the pair can talk. Disks complete
 * operations in order after 0-8 ms; a crash loses what is not complete,
 * but for a torn tail (the first records of the append being written when
 * it struck, up to all of them, may be on the disk whole though nobody was
 * told they were durable; WAL recovery keeps them and cuts a torn one);
 * a full disk refuses
 * appends for a while. Clocks: each node's runs at its own rate (0.8x to
 * 1.25x), and a node can be paused (SIGSTOP): it neither ticks nor hears
 * anything until it resumes.
 *
 * With `elections` (role auto) there is no operator: the nodes elect their
 * leader, the client writes to whichever node leads (and now and then to
 * another), also writes registers at Quorum / All and reads them
 * linearizably, and the operator's faults become a leadership transfer, a
 * leader crash, and a leader cut off from all but one follower.
 */
import type { CoreEvent, CoreFaults } from '../../src/consensus/core.ts';
import type { Entry, Outgoing, RecordsMessage } from '../../src/consensus/messages.ts';
import type { Membership } from '../../src/consensus/membership.ts';
import type { Level } from '../../src/consensus/quorum.ts';
import { encodeRecord, Op } from '../../src/log/record.ts';
import { TermHistory } from '../../src/consensus/term-history.ts';
import { Rng } from './rng.ts';
import { Scheduler } from './scheduler.ts';
import { configOf, SimNode, type Durable, type SimSnapshot } from './node.ts';
import { Checker, type WriteRecord } from './checkers.ts';
import { ElectionChecker } from './election-checks.ts';
import { checkLinearizable, type RegisterOp } from './linearizability.ts';

export type FaultKind =
  | 'crash-follower'
  | 'crash-primary'
  | 'partition'
  | 'isolate-primary'
  | 'pause'
  | 'failover'
  | 'disk-full'
  | 'old-primary-returns'
  | 'lossy-network'
  | 'compact'
  | 'failover-primary-unreachable';

export interface Fault {
  atMs: number;
  kind: FaultKind;
  /** Which node (index) or pair it hits, drawn from the seed. */
  pick: number;
  durationMs: number;
}

export interface SimOptions {
  seed: number;
  nodes: number;
  /** Virtual duration of the faulty part, before healing. */
  durationMs: number;
  /** Client writes per virtual second. */
  writesPerSec: number;
  faults?: Fault[];
  faultCount?: number;
  /** Deliberate defects to prove the checkers (see CoreFaults). */
  coreFaults?: Partial<CoreFaults>;
  /** A defect outside the core: the leader counts toward Quorum before its disk has the record. */
  verbose?: boolean;
  /** Role auto: the nodes elect their leader (no operator). */
  elections?: boolean;
}

export interface SimResult {
  seed: number;
  ok: boolean;
  violations: string[];
  faults: Fault[];
  writes: { ok: number; failed: number; indeterminate: number; byLevel: Record<Level, number> };
  stats: {
    steps: number;
    virtualMs: number;
    messages: number;
    applied: number;
    truncations: number;
    fullSyncs: number;
    /** Records that came alongside a snapshot and went into the follower's log at its install. */
    alongside: number;
    failovers: number;
    /** Crashes that left whole records of the append being written (never reported durable). */
    tornTails: number;
    /** Elections: campaigns (real, after a pre-vote) and register operations checked for linearizability. */
    campaigns: number;
    registerOps: number;
  };
}

const TICK_MS = 10;
const WRITE_TIMEOUT_TICKS = 300;
const DIM = 4;
/** Elections: a voter waits 30 to 60 ticks (300-600 ms at the nominal rate) for a leader. */
const ELECTION_TICKS = 30;
/** The slowest clock's tick (0.8x). */
const SLOWEST_TICK_MS = TICK_MS / 0.8;
const REGISTER_KEYS = 8;
/** How often the election checker samples the world. */
const SAMPLE_MS = 10;
const FAULT_KINDS: FaultKind[] = [
  'crash-follower',
  'crash-primary',
  'partition',
  'isolate-primary',
  'pause',
  'failover',
  'disk-full',
  'old-primary-returns',
  'lossy-network',
  'compact',
  'failover-primary-unreachable',
];

/** The fault schedule a seed gives (its own stream, so a shrunk schedule keeps the rest of the run). */
export function faultSchedule(seed: number, count: number, durationMs: number): Fault[] {
  const rng = new Rng(seed, 7);
  const faults: Fault[] = [];
  for (let i = 0; i < count; i++) {
    faults.push({
      atMs: rng.int(500, durationMs - 500),
      kind: rng.pick(FAULT_KINDS),
      pick: rng.int(0, 1 << 20),
      durationMs: rng.int(200, 3000),
    });
  }
  return faults.sort((a, b) => a.atMs - b.atMs);
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

export class World {
  readonly sched = new Scheduler();
  readonly nodes: SimNode[] = [];
  readonly checker: Checker;
  private readonly net: Rng;
  private readonly disk: Rng;
  private readonly client: Rng;
  private readonly links = new Set<string>();
  private readonly cut = new Map<string, number>();
  private lossyUntilMs = 0;
  private readonly diskFullUntil = new Map<string, number>();
  primary: string;
  /**
   * Elections: the leader of the newest term seen. A leader of an older term that has not heard
   * of the newer one yet still takes One writes, which the newer log replaces (seed 2086).
   */
  private newestLeader: { id: string; term: number } | null = null;
  private writeSeq = 0;
  private healing = false;
  /** Followers that refuse the primary as diverged (the operator reads it in their status). */
  private readonly refusing = new Set<string>();
  /**
   * Epochs begun by the primary the operator announced, in order (historyId → order): the
   * operator knows whom it promoted, and reads each node's history in its status.
   */
  private readonly announced = new Map<string, number>();
  stats = {
    messages: 0,
    truncations: 0,
    fullSyncs: 0,
    alongside: 0,
    failovers: 0,
    tornTails: 0,
    campaigns: 0,
    registerOps: 0,
  };
  /** Elections: the checks of election-checks.ts, and the register history for linearizability. */
  private readonly electionChecker: ElectionChecker | null;
  private readonly registerOps: RegisterOp[] = [];
  private readonly refusedOps = new Set<RegisterOp>();

  constructor(readonly opts: SimOptions) {
    this.net = new Rng(opts.seed, 1);
    this.disk = new Rng(opts.seed, 2);
    this.client = new Rng(opts.seed, 3);
    this.checker = new Checker();
    const ids = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`);
    this.primary = ids[0] as string;
    const elections = opts.elections === true;
    const electionMs = ELECTION_TICKS * SLOWEST_TICK_MS;
    this.electionChecker = elections
      ? new ElectionChecker(
          (m) => this.checker.violation(m),
          {
            // A voter's lease, plus a heartbeat interval and a message's delay, with slack.
            steadyMs: 2 * electionMs,
            checkQuorumMs: 2 * electionMs + 250,
            leaderAfterHealMs: 4000,
          },
          ids,
        )
      : null;
    for (const id of ids) {
      const leader = id === this.primary && !elections;
      this.nodes.push(
        new SimNode(
          id,
          leader ? 'leader' : 'follower',
          leader || elections ? null : this.primary,
          this.sched,
          new Rng(opts.seed, 100 + this.nodes.length),
          {
            send: (from, m) => this.send(from, m),
            disconnect: (from, peer) => this.breakLink(from.id, peer),
            sendSnapshotData: (from, to, snap) => this.deliverSnapshot(from, to, snap),
            event: (node, e) => {
              if (this.electionChecker) this.electionEvent(node, e, this.electionChecker);
              if (e.type === 'refused' && e.byMe && e.code === 'diverged') this.refusing.add(node.id);
              if (e.type === 'roleChanged' && e.role === 'leader' && node.id === this.primary) {
                const epoch = node.core.termHistory.at(-1);
                if (epoch && !this.announced.has(epoch.historyId))
                  this.announced.set(epoch.historyId, this.announced.size + 1);
              }
              if (e.type === 'synced') this.refusing.delete(e.peer);
              if (e.type === 'truncated') this.stats.truncations++;
              if (e.type === 'fullSyncOffered') this.stats.fullSyncs++;
              if (e.type === 'followed') this.stats.alongside += e.alongside;
              this.checker.onEvent(node.id, e);
            },
            violation: (node, msg) => this.checker.violation(`${node.id}: ${msg}`),
            diskLatencyMs: () => this.disk.int(0, 8),
            diskFull: (node) => (this.diskFullUntil.get(node.id) ?? 0) > this.sched.nowMs,
            tornRecords: (_node, count) => {
              const kept = this.disk.chance(0.5) ? this.disk.int(0, count) : 0;
              if (kept > 0) this.stats.tornTails++;
              return kept;
            },
          },
          opts.coreFaults ?? {},
          elections ? { voters: ids, electionTicks: ELECTION_TICKS } : null,
          elections ? genesis() : null,
        ),
      );
    }
  }

  /** Elections: what the checks need to hear of a node's events. */
  private electionEvent(node: SimNode, e: CoreEvent, checks: ElectionChecker): void {
    if (e.type === 'roleChanged' && e.role === 'leader') {
      checks.onLeader(node, e.term, this.checker.writes);
      this.primary = node.id;
      if (this.newestLeader === null || e.term > this.newestLeader.term)
        this.newestLeader = { id: node.id, term: e.term };
      this.stats.failovers++;
      this.checker.failoverAt(this.sched.nowMs);
    }
    if (e.type === 'campaign' && !e.preVote) {
      this.stats.campaigns++;
      checks.onCampaign(node, e.term, e.force, this.sched.nowMs, this.nodes);
    }
  }

  /** The node that leads now (the highest term among those that believe they do), if any. */
  private currentLeader(): SimNode | null {
    let best: SimNode | null = null;
    for (const n of this.nodes) {
      if (!n.alive || n.core.role !== 'leader') continue;
      if (best === null || n.core.term > best.core.term) best = n;
    }
    return best;
  }

  node(id: string): SimNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  // ------------------------------------------------------------------ network

  private canTalk(a: string, b: string): boolean {
    return (this.cut.get(pairKey(a, b)) ?? 0) <= this.sched.nowMs;
  }

  private send(from: SimNode, m: Outgoing): void {
    // An acknowledgement is a promise that a crash keeps the records: the disk must hold them.
    if (m.type === 'ack' && m.synced && m.match > from.durableLastLsn) {
      this.checker.violation(
        `${from.id} acknowledged LSN ${m.match} to ${m.to} while its disk held up to ${from.durableLastLsn}`,
      );
    }
    if (m.type === 'append') {
      this.sendRecords(from, m);
      return;
    }
    this.transmit(from.id, m.to, () => {
      const to = this.node(m.to);
      if (m.type === 'snapshotAccept') {
        // The leader's transport streams the pinned snapshot once accepted.
        const snap = to.offered.get(m.from);
        if (snap && snap.lsn === m.snapshotLsn) this.deliverSnapshot(to, m.from, snap);
      }
      to.runtime.step(m);
    });
  }

  /** The transport's half of an append request: pack records from the log, send, report. */
  private sendRecords(from: SimNode, m: Extract<Outgoing, { type: 'append' }>): void {
    if (m.firstLsn < from.compactedTo) {
      from.runtime.step({ type: 'appendUnavailable', to: m.to, term: m.term, requestId: m.requestId });
      return;
    }
    const entries: Entry[] = [];
    let bytes = 0;
    for (let lsn = m.firstLsn; lsn <= Math.min(m.maxLsn, from.log.length); lsn++) {
      const e = from.log[lsn - 1] as Entry;
      if (entries.length > 0 && bytes + e.bytes.length > 16 * 1024) break;
      entries.push(e);
      bytes += e.bytes.length;
    }
    if (entries.length === 0) {
      from.runtime.step({
        type: 'appendSent',
        to: m.to,
        term: m.term,
        requestId: m.requestId,
        lastLsn: m.firstLsn - 1,
        bytes: 0,
      });
      return;
    }
    const records: RecordsMessage = {
      type: 'records',
      from: from.id,
      to: m.to,
      term: m.term,
      entries: entries.map((e) => ({ lsn: e.lsn, term: e.term, bytes: e.bytes, config: configOf(e.bytes) })),
      commit: m.commit,
      applyLimit: m.applyLimit,
    };
    const lastLsn = (entries.at(-1) as Entry).lsn;
    this.transmit(from.id, m.to, () => this.node(m.to).runtime.step(records));
    from.runtime.step({ type: 'appendSent', to: m.to, term: m.term, requestId: m.requestId, lastLsn, bytes });
  }

  private deliverSnapshot(from: SimNode, to: string, snap: SimSnapshot): void {
    // The stream runs over one connection: losing it fails the link, as a broken TCP stream
    // does (peers.ts fails the session when streaming fails); it is never silently short.
    // It takes a while: the records the leader streams alongside it arrive meanwhile.
    this.transmit(
      from.id,
      to,
      () => {
        const node = this.node(to);
        node.received = snap;
        node.runtime.step({
          type: 'snapshotReceived',
          from: from.id,
          term: from.core.term,
          snapshotLsn: snap.lsn,
        });
      },
      () => this.breakLink(from.id, to),
      this.net.int(5, 50) + Math.min(500, Math.ceil(snap.records.length / 20)),
    );
  }

  /**
   * One message over the link from → to: delayed, maybe lost, duplicated or
   * held back. `transferMs`: the time its bytes take on top (a snapshot).
   */
  private transmit(from: string, to: string, deliver: () => void, onLost?: () => void, transferMs = 0): void {
    const key = pairKey(from, to);
    if (!this.links.has(key)) return;
    this.stats.messages++;
    const lossy = this.lossyUntilMs > this.sched.nowMs;
    if (lossy && this.net.chance(0.05)) {
      onLost?.();
      return;
    }
    const copies = lossy && this.net.chance(0.03) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay =
        transferMs + this.net.int(1, 25) + (lossy && this.net.chance(0.05) ? this.net.int(20, 200) : 0);
      const receiver = this.node(to);
      const sent = receiver.incarnation;
      this.sched.after(delay, () => {
        if (!this.links.has(key)) return;
        if (!this.canTalk(from, to)) {
          onLost?.();
          return;
        }
        if (!receiver.alive || receiver.incarnation !== sent) return;
        if (receiver.paused) {
          this.sched.at(receiver.pausedUntilMs, () => {
            if (this.links.has(key) && receiver.alive && receiver.incarnation === sent) deliver();
          });
          return;
        }
        deliver();
      });
    }
  }

  private connect(a: SimNode, b: SimNode): void {
    const key = pairKey(a.id, b.id);
    if (this.links.has(key)) return;
    this.links.add(key);
    for (const [x, y] of [
      [a, b],
      [b, a],
    ] as const) {
      x.runtime.step({ type: 'connected', peer: y.id, viaConfiguredPrimary: x.configuredPrimary === y.id });
    }
  }

  breakLink(a: string, b: string): void {
    const key = pairKey(a, b);
    if (!this.links.delete(key)) return;
    for (const [x, y] of [
      [a, b],
      [b, a],
    ] as const) {
      const n = this.node(x);
      if (n.alive) n.runtime.step({ type: 'disconnected', peer: y });
    }
  }

  private breakAllOf(id: string): void {
    for (const n of this.nodes) if (n.id !== id) this.breakLink(id, n.id);
  }

  /** Redials: every pair of running nodes that can talk gets a link (as dialers with backoff do). */
  private redial(): void {
    for (let i = 0; i < this.nodes.length; i++) {
      for (let j = i + 1; j < this.nodes.length; j++) {
        const a = this.nodes[i] as SimNode;
        const b = this.nodes[j] as SimNode;
        if (!a.alive || !b.alive || a.paused || b.paused || !this.canTalk(a.id, b.id)) continue;
        if (!this.links.has(pairKey(a.id, b.id)) && this.net.chance(0.5)) this.connect(a, b);
      }
    }
  }

  // ------------------------------------------------------------------ time

  private startClocks(): void {
    // Each node's clock runs at its own rate (skew: 0.8x to 1.25x), from its own stream.
    const rates = new Rng(this.opts.seed, 4);
    for (const n of this.nodes) {
      const periodMs = Math.round((TICK_MS * 100) / rates.int(80, 125));
      const tick = (): void => {
        if (n.alive && !n.paused) n.runtime.tick();
        this.sched.after(periodMs, tick);
      };
      this.sched.after(periodMs, tick);
    }
    const redialAll = (): void => {
      this.redial();
      this.sched.after(100, redialAll);
    };
    this.sched.after(20, redialAll);
    const observe = (): void => {
      this.checker.observeCommits(this.nodes);
      if (this.electionChecker) this.checker.observeApplied(this.nodes);
      this.sched.after(50, observe);
    };
    this.sched.after(50, observe);
    const checks = this.electionChecker;
    if (checks) {
      const sample = (): void => {
        const canTalk = (a: SimNode, b: SimNode): boolean =>
          this.links.has(pairKey(a.id, b.id)) && this.canTalk(a.id, b.id);
        checks.sample(this.nodes, this.sched.nowMs, SAMPLE_MS, canTalk, this.lossyUntilMs > this.sched.nowMs);
        this.sched.after(SAMPLE_MS, sample);
      };
      this.sched.after(SAMPLE_MS, sample);
    }
  }

  // ------------------------------------------------------------------ client

  /** The cluster's membership and the collection, written once by the first primary. */
  private bootstrap(): void {
    if (this.electionChecker) return; // the genesis log holds the collection
    const p = this.node(this.primary);
    const members = this.nodes.map((n) => ({ id: n.id, address: null }));
    p.runtime.propose(
      1,
      (lsn, term) =>
        encodeRecord({
          lsn,
          term,
          hlcMs: 0,
          hlcLogical: 0,
          origin: p.id,
          collection: '',
          op: Op.Config,
          members,
        }),
      { level: 'one', timeoutTicks: WRITE_TIMEOUT_TICKS, config: { members } },
      () => {},
    );
    p.runtime.propose(
      1,
      (lsn, term) =>
        encodeRecord({
          lsn,
          term,
          hlcMs: 0,
          hlcLogical: 1,
          origin: p.id,
          collection: 'c',
          op: Op.CreateCollection,
          dimension: DIM,
          metric: 'l2',
        }),
      { level: 'one', timeoutTicks: WRITE_TIMEOUT_TICKS },
      () => {},
    );
  }

  private clientLoop(untilMs: number): void {
    const gapMs = Math.max(1, Math.round(1000 / this.opts.writesPerSec));
    const next = (): void => {
      if (this.sched.nowMs >= untilMs) return;
      this.write();
      this.sched.after(this.client.int(1, 2 * gapMs), next);
    };
    this.sched.after(200, next);
  }

  private write(): void {
    const seq = ++this.writeSeq;
    // Most writes go to the primary the operator announced (with elections: the node that
    // leads); a confused client now and then writes to another node (an old primary that came
    // back, say).
    const leader = this.electionChecker ? this.currentLeader() : this.node(this.primary);
    const target = leader && this.client.chance(0.9) ? leader : this.client.pick(this.nodes);
    // With elections, some operations are on registers: Quorum / All writes and linearizable reads.
    const register = this.electionChecker !== null && this.client.chance(0.3);
    if (register && this.client.chance(0.5)) {
      this.linearizableRead(target, `k${this.client.int(0, REGISTER_KEYS - 1)}`);
      return;
    }
    const level = register
      ? this.client.pick<Level>(['quorum', 'quorum', 'all'])
      : this.client.pick<Level>(['one', 'one', 'quorum', 'quorum', 'all']);
    const rec: WriteRecord = {
      seq,
      id: register ? `k${this.client.int(0, REGISTER_KEYS - 1)}` : `w${seq}`,
      register,
      level,
      node: target.id,
      status: 'pending',
      lsn: 0,
      term: 0,
      atMs: this.sched.nowMs,
      ackMs: 0,
      byPrimary: this.electionChecker
        ? target.id === this.newestLeader?.id && target.core.term === this.newestLeader.term
        : target.id === this.primary,
    };
    if (!target.alive || target.paused || target.core.role !== 'leader') {
      rec.status = 'failed';
      rec.reason = 'not a running primary';
      this.checker.recordWrite(rec);
      return;
    }
    this.checker.recordWrite(rec);
    const op: RegisterOp | null = register
      ? {
          client: target.id,
          key: rec.id,
          kind: 'write',
          value: seq,
          callMs: this.sched.nowMs,
          returnMs: null,
        }
      : null;
    if (op) this.registerOps.push(op);
    const vec = Float32Array.from({ length: DIM }, (_, i) => seq + i / 10);
    const incarnation = target.incarnation;
    target.runtime.propose(
      1,
      (lsn, term) => {
        rec.lsn = lsn;
        rec.term = term;
        return encodeRecord({
          lsn,
          term,
          hlcMs: seq,
          hlcLogical: 0,
          origin: target.id,
          collection: 'c',
          op: Op.Upsert,
          dimension: DIM,
          ids: [rec.id],
          vectors: vec,
          payloads: [new Uint8Array(0)],
        });
      },
      { level, timeoutTicks: WRITE_TIMEOUT_TICKS },
      (err) => {
        if (incarnation !== target.incarnation && err === null) return;
        rec.ackMs = this.sched.nowMs;
        if (err === null) rec.status = 'ok';
        else {
          const code = (err as { code?: string }).code;
          rec.status =
            code === 'ERR_WAL_IO' ||
            code === 'ERR_TRANSFER_IN_PROGRESS' ||
            (code === 'ERR_NOT_LEADER' && rec.lsn === 0)
              ? 'failed'
              : 'indeterminate';
          rec.reason = `${code}: ${err.message}`;
        }
        if (op) {
          // A refused write took no effect: it is no operation at all. An indeterminate one never returns.
          if (rec.status === 'ok') op.returnMs = this.sched.nowMs;
          else if (rec.status === 'failed') this.refusedOps.add(op);
        }
        this.checker.writeSettled(rec);
      },
    );
  }

  /** A linearizable read of register `key` at `target`: recorded only when it is answered. */
  private linearizableRead(target: SimNode, key: string): void {
    if (!target.alive || target.paused) return;
    const callMs = this.sched.nowMs;
    const incarnation = target.incarnation;
    target.runtime.read(WRITE_TIMEOUT_TICKS, (err) => {
      if (err !== null || incarnation !== target.incarnation) return;
      const point = target.state.collections.get('c')?.get(key) ?? null;
      this.registerOps.push({
        client: target.id,
        key,
        kind: 'read',
        value: point === null ? null : (point.vector[0] as number),
        callMs,
        returnMs: this.sched.nowMs,
      });
    });
  }

  // ------------------------------------------------------------------ operator

  /** A manual failover, as a runbook: demote the old primary, promote the most up-to-date running node, re-point the rest. */
  failover(refusers: readonly string[] = []): boolean {
    const running = this.nodes.filter((n) => n.alive);
    // Promoting without a majority of the members running could lose what a majority acknowledged.
    if (running.length <= this.nodes.length / 2) return false;
    const old = this.node(this.primary);
    if (old.alive) {
      old.role = 'follower';
      old.runtime.follow(false);
    }
    // As operations.md says: the node whose log reaches furthest in the epochs of the primaries
    // the operator announced (a rogue old primary's own epoch does not count, what it got from
    // the real primaries does), never one whose log lacks what a running node reports committed.
    // When followers refuse the primary because it lacks records they committed, the one that
    // committed the most (the refusal message names the LSN).
    const refusing = running.filter((n) => refusers.includes(n.id));
    const eligible = running.filter((c) => running.every((n) => holdsCommitted(c, n)));
    const candidates = refusing.length > 0 ? refusing : eligible;
    if (candidates.length === 0) return false;
    const rank =
      refusing.length > 0
        ? (n: SimNode) => n.core.commit * 1e6 + n.core.log.durableLsn
        : (n: SimNode) => this.lineageReach(n);
    const best = candidates.reduce((a, b) => (rank(b) > rank(a) ? b : a));
    this.promoteAndRepoint(best, this.nodes);
    return true;
  }

  /** Promotes `best` and points the running nodes of `others` (those the operator reaches) at it. */
  private promoteAndRepoint(best: SimNode, others: readonly SimNode[]): void {
    // Step 2 of the runbook: every node it reaches that acts as a primary (one it could not
    // reach at an earlier failover, say, and `best` itself) follows nobody first, so the one
    // promoted begins a new epoch, announced now, that no stale epoch can outrank.
    for (const n of others) {
      if (n.alive && (n.role === 'leader' || n.core.role !== 'follower')) {
        n.role = 'follower';
        n.runtime.follow(false);
      }
    }
    this.stats.failovers++;
    this.checker.failoverAt(this.sched.nowMs);
    this.primary = best.id;
    best.role = 'leader';
    best.configuredPrimary = null;
    best.runtime.promote();
    for (const n of others) {
      if (n === best) continue;
      n.role = 'follower';
      n.configuredPrimary = best.id;
      if (n.alive) {
        n.runtime.follow(true);
        // Re-pointing restarts the peer links.
        this.breakAllOf(n.id);
      }
    }
  }

  /** How far `n`'s durable log reaches in the announced epochs: (latest announced epoch it holds records of, LSN). */
  private lineageReach(n: SimNode): number {
    const durable = n.core.log.durableLsn;
    const epochs = n.core.termHistory;
    let best = 0;
    for (let i = 0; i < epochs.length; i++) {
      const e = epochs[i] as (typeof epochs)[number];
      const order = this.announced.get(e.historyId);
      if (order === undefined || e.firstLsn > durable) continue;
      const end = Math.min(durable, (epochs[i + 1]?.firstLsn ?? Infinity) - 1);
      best = Math.max(best, order * 1e9 + end);
    }
    return best;
  }

  private crash(n: SimNode): void {
    if (!n.alive) return;
    n.crash();
    this.breakAllOf(n.id);
  }

  private restart(n: SimNode): void {
    if (n.alive || this.healing) return;
    n.boot();
  }

  private applyFault(f: Fault): void {
    if (this.healing) return;
    if (this.electionChecker) this.applyElectionFault(f);
    else this.applyManualFault(f);
  }

  /** A fault on the cluster the operator runs (and, for the kinds they share, on an elected one). */
  private applyManualFault(f: Fault): void {
    const others = this.nodes.filter((n) => n.id !== this.primary);
    const pick = <T>(items: T[]): T => items[f.pick % items.length] as T;
    const primary = this.node(this.primary);
    switch (f.kind) {
      case 'crash-follower': {
        const n = pick(others);
        this.crash(n);
        this.sched.after(f.durationMs, () => this.restart(n));
        return;
      }
      case 'crash-primary': {
        this.crash(primary);
        this.sched.after(f.durationMs, () => this.restart(primary));
        return;
      }
      case 'partition': {
        const a = pick(this.nodes);
        const b = pick(this.nodes.filter((n) => n !== a));
        this.cut.set(pairKey(a.id, b.id), this.sched.nowMs + f.durationMs);
        return;
      }
      case 'isolate-primary': {
        for (const n of others) this.cut.set(pairKey(primary.id, n.id), this.sched.nowMs + f.durationMs);
        return;
      }
      case 'pause': {
        const n = pick(this.nodes);
        n.pausedUntilMs = Math.max(n.pausedUntilMs, this.sched.nowMs + f.durationMs);
        return;
      }
      case 'failover':
        this.failover();
        return;
      case 'disk-full': {
        const n = pick(this.nodes);
        this.diskFullUntil.set(n.id, this.sched.nowMs + Math.min(f.durationMs, 1000));
        return;
      }
      case 'old-primary-returns': {
        // The primary dies, the operator fails over, and the old primary comes back with its old config.
        const old = primary;
        this.crash(old);
        if (!this.failover()) {
          this.sched.after(f.durationMs, () => this.restart(old));
          return;
        }
        this.sched.after(f.durationMs, () => {
          if (old.alive || this.healing) return;
          old.role = 'leader';
          old.configuredPrimary = null;
          old.boot();
          // Later the operator notices and points it at the real primary.
          this.sched.after(f.durationMs, () => {
            if (!old.alive || this.primary === old.id || this.healing) return;
            old.role = 'follower';
            old.configuredPrimary = this.primary;
            old.runtime.follow(true);
            this.breakAllOf(old.id);
          });
        });
        return;
      }
      case 'lossy-network':
        this.lossyUntilMs = Math.max(this.lossyUntilMs, this.sched.nowMs + f.durationMs);
        return;
      case 'failover-primary-unreachable': {
        // The operator cannot reach the old primary: it is cut off from the rest but for one
        // follower, keeps its role and goes on writing; the others fail over without it.
        const old = primary;
        const running = this.nodes.filter((n) => n.alive && n !== old);
        // Only with the old primary running and a majority without it.
        if (!old.alive || running.length < 2) return;
        // The runbook among the nodes it can reach: never one lacking what another reports committed.
        const eligible = running.filter((c) => running.every((n) => holdsCommitted(c, n)));
        if (eligible.length === 0) return;
        const kept = pick(others);
        for (const n of others)
          if (n !== kept) this.cut.set(pairKey(old.id, n.id), this.sched.nowMs + f.durationMs);
        const best = eligible.reduce((a, b) => (this.lineageReach(b) > this.lineageReach(a) ? b : a));
        this.promoteAndRepoint(best, running);
        old.role = 'follower';
        old.configuredPrimary = best.id;
        // Reached at last: the operator points it at the new primary.
        this.sched.after(f.durationMs, () => {
          if (!old.alive || this.healing || this.primary === old.id) return;
          old.runtime.follow(true);
          this.breakAllOf(old.id);
        });
        return;
      }
      case 'compact': {
        // The primary's oldest records are gone from its log: lagging followers need a full sync.
        primary.compactedTo = Math.max(primary.compactedTo, primary.state.appliedLsn - 5);
        return;
      }
    }
  }

  /** Elections: no operator. Its faults become a transfer, a leader crash, a leader cut off from all but one. */
  private applyElectionFault(f: Fault): void {
    const leader = this.currentLeader();
    const pick = <T>(items: T[]): T => items[f.pick % items.length] as T;
    switch (f.kind) {
      case 'failover': {
        if (leader === null) return;
        const to = pick(this.nodes.filter((n) => n !== leader));
        try {
          leader.runtime.transfer(to.id);
        } catch {
          // not the leader any more (it stepped down meanwhile)
        }
        return;
      }
      case 'old-primary-returns': {
        // With elections: a membership cycle instead (no operator brings an old primary back).
        const others = this.nodes.filter((n) => n !== leader);
        if (leader && this.membershipCycle === null) this.startMembershipCycle(pick(others));
        return;
      }
      case 'failover-primary-unreachable': {
        if (leader === null) return;
        const others = this.nodes.filter((n) => n !== leader);
        const kept = pick(others);
        for (const n of others)
          if (n !== kept) this.cut.set(pairKey(leader.id, n.id), this.sched.nowMs + f.durationMs);
        return;
      }
      case 'compact': {
        if (leader) leader.compactedTo = Math.max(leader.compactedTo, leader.state.appliedLsn - 5);
        return;
      }
      default:
        // The faults that name "the primary" hit the node that leads now.
        if (leader) this.primary = leader.id;
        this.applyManualFault(f);
    }
  }

  // ------------------------------------------------------------------ run

  run(): SimResult {
    const faults =
      this.opts.faults ?? faultSchedule(this.opts.seed, this.opts.faultCount ?? 12, this.opts.durationMs);
    const maxSteps = 50_000_000;
    for (const n of this.nodes) for (const m of this.nodes) if (n !== m) this.connect(n, m);
    this.startClocks();
    this.bootstrap();
    this.clientLoop(this.opts.durationMs);
    for (const f of faults) this.sched.at(f.atMs, () => this.applyFault(f));
    let finished: boolean;
    try {
      finished = this.runPhases(maxSteps);
    } catch (err) {
      this.checker.violation(`threw: ${(err as Error).stack ?? String(err)}`);
      finished = true;
    }
    if (!finished) this.checker.violation(`the simulation ran past ${maxSteps} steps`);
    if (this.electionChecker) this.primary = this.currentLeader()?.id ?? this.primary;
    this.checker.finish(this.nodes, this.node(this.primary));
    if (this.electionChecker) this.checkRegisters();
    const writes = this.checker.summary();
    return {
      seed: this.opts.seed,
      ok: this.checker.violations.length === 0,
      violations: this.checker.violations,
      faults,
      writes,
      stats: {
        steps: this.sched.steps,
        virtualMs: this.sched.nowMs,
        messages: this.stats.messages,
        applied: this.nodes.reduce((n, x) => n + x.appliedCount, 0),
        truncations: this.stats.truncations,
        fullSyncs: this.stats.fullSyncs,
        alongside: this.stats.alongside,
        failovers: this.stats.failovers,
        tornTails: this.stats.tornTails,
        campaigns: this.stats.campaigns,
        registerOps: this.stats.registerOps,
      },
    };
  }

  /** Quorum / All register writes and linearizable reads: linearizable per key (linearizability.ts). */
  private checkRegisters(): void {
    const ops = this.registerOps.filter((op) => !this.refusedOps.has(op));
    this.stats.registerOps = ops.length;
    const r = checkLinearizable(ops);
    if (r.ok === false) this.checker.violation(`linearizability: key ${r.key}: ${r.explanation}`);
    else if (r.ok === 'unknown')
      this.checker.violation(`linearizability: key ${r.key} undecided: ${r.reason}`);
  }

  private runPhases(maxSteps: number): boolean {
    const finished = this.sched.runUntil(this.opts.durationMs, maxSteps);
    if (this.electionChecker) {
      // Heal: every fault ends and every node runs again; the nodes elect and catch up alone.
      this.sched.at(this.sched.nowMs + 1, () => this.healElections());
      return finished && this.sched.runUntil(this.sched.nowMs + 6000, maxSteps);
    }
    // Heal: every fault ends, every node runs again, followers point at the primary. An
    // operator who then sees followers refuse the primary (it lacks what they committed)
    // fails over to the most up-to-date node, as the refusal message tells them to.
    const healMs = this.sched.nowMs + 6000;
    this.sched.at(this.sched.nowMs + 1, () => this.heal());
    for (const delay of [1500, 3000]) {
      this.sched.at(this.sched.nowMs + delay, () => {
        if (this.refusing.size === 0) return;
        const refusers = [...this.refusing];
        this.refusing.clear();
        this.healing = false;
        this.failover(refusers);
        this.heal();
      });
    }
    return finished && this.sched.runUntil(healMs, maxSteps);
  }

  /** A member the cluster removes, adds back as a learner and promotes again, one committed change at a time. */
  private membershipCycle: { node: string; step: 'remove' | 'learner' | 'voter' } | null = null;

  private startMembershipCycle(node: SimNode): void {
    this.membershipCycle = { node: node.id, step: 'remove' };
    const attempt = (): void => {
      const cycle = this.membershipCycle;
      if (cycle === null) return;
      this.sched.after(100, attempt);
      const leader = this.currentLeader();
      if (leader === null || leader.core.configPending) return;
      if (leader.id === cycle.node) {
        // It leads now (a voter again, or never removed): the cycle is over, or it picks another.
        const other = this.nodes.find((n) => n !== leader);
        if (cycle.step === 'remove' && other) cycle.node = other.id;
        else this.membershipCycle = null;
        return;
      }
      const members = leader.core.membership.members;
      const has = members.find((m) => m.id === cycle.node);
      // The step before this one is committed: take the next.
      if (cycle.step === 'remove' && !has) cycle.step = 'learner';
      else if (cycle.step === 'learner' && has?.learner === true) cycle.step = 'voter';
      else if (cycle.step === 'voter' && has !== undefined && has.learner !== true) {
        this.membershipCycle = null;
        return;
      }
      let next: Membership;
      if (cycle.step === 'remove') next = { members: members.filter((m) => m.id !== cycle.node) };
      else if (cycle.step === 'learner')
        next = { members: [...members, { id: cycle.node, address: null, learner: true }] };
      else {
        // A voter again once it holds what is committed (as the node's promoteLearner waits for).
        if ((leader.core.peer(cycle.node)?.match ?? 0) < leader.core.commit) return;
        next = { members: members.map((m) => (m.id === cycle.node ? { id: m.id, address: m.address } : m)) };
      }
      leader.runtime.propose(
        1,
        (lsn, term) =>
          encodeRecord({
            lsn,
            term,
            hlcMs: 0,
            hlcLogical: 0,
            origin: leader.id,
            collection: '',
            op: Op.Config,
            members: next.members,
          }),
        { level: 'one', timeoutTicks: WRITE_TIMEOUT_TICKS, config: next },
        () => {},
      );
    };
    attempt();
  }

  private healElections(): void {
    this.healing = true;
    this.cut.clear();
    this.lossyUntilMs = 0;
    this.diskFullUntil.clear();
    for (const n of this.nodes) {
      n.resume();
      if (!n.alive) n.boot();
    }
    this.electionChecker?.healed(this.sched.nowMs);
  }

  private heal(): void {
    this.healing = true;
    this.cut.clear();
    this.lossyUntilMs = 0;
    this.diskFullUntil.clear();
    for (const n of this.nodes) n.resume();
    const primary = this.node(this.primary);
    if (!primary.alive) {
      // Restart it rather than fail over: what it acknowledged is on its disk.
      primary.role = 'leader';
      primary.boot();
    } else if (primary.core.role !== 'leader') {
      primary.role = 'leader';
      primary.runtime.promote();
    }
    for (const n of this.nodes) {
      if (n === primary) continue;
      const wasConfused = n.role === 'leader' || n.configuredPrimary !== primary.id;
      n.role = 'follower';
      n.configuredPrimary = primary.id;
      if (!n.alive) n.boot();
      else if (wasConfused || n.core.role !== 'follower') {
        n.runtime.follow(true);
        this.breakAllOf(n.id);
      }
    }
  }
}

/** Whether `c`'s durable log holds every record `n` reports committed (same LSNs, same epochs). */
function holdsCommitted(c: SimNode, n: SimNode): boolean {
  const commit = Math.min(n.core.commit, n.core.log.durableLsn);
  if (c === n || commit === 0) return true;
  const mine = new TermHistory(c.core.termHistory);
  return mine.matchPoint(c.core.log.durableLsn, new TermHistory(n.core.termHistory), commit) >= commit;
}

/**
 * Elections: every node starts from one log holding the collection, written
 * in term 1 by n1 and committed; the voters elect the first leader from there.
 */
function genesis(): Durable {
  const record = encodeRecord({
    lsn: 1,
    term: 1,
    hlcMs: 0,
    hlcLogical: 0,
    origin: 'n1',
    collection: 'c',
    op: Op.CreateCollection,
    dimension: DIM,
    metric: 'l2',
  });
  return {
    log: [{ lsn: 1, term: 1, bytes: record, config: null }],
    hardState: { term: 1, votedFor: null, commit: 1 },
    history: [{ term: 1, historyId: '0'.repeat(31) + '1', leaderId: 'n1', firstLsn: 1 }],
  };
}

export function runSimulation(opts: SimOptions): SimResult {
  return new World(opts).run();
}
