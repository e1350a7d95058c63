/**
 * What a simulated run with elections (role auto) must never show, beyond
 * checkers.ts:
 * - election safety: two leaders of one term;
 * - leader completeness: a new leader whose log lacks a write acknowledged
 *   at Quorum or All before it was elected;
 * - state-machine safety: two nodes that applied different records at one
 *   LSN (with elections only committed records are applied);
 * - PreVote: a real campaign (not a transfer) into a term past a steady
 *   leader's: it has led, and a majority of voters has followed it over
 *   links that worked, for longer than any voter's lease. (A campaign in
 *   the leader's own term deposes nobody: its voters voted in that term
 *   already. A node paused after its pre-vote was granted campaigns so when
 *   it resumes, before it hears of the newer term: seed 922.)
 * - CheckQuorum: a running leader that could not reach a majority for
 *   longer than two CheckQuorum periods and still leads;
 * - liveness: no leader a bounded time after the network healed.
 *
 * The world samples what it knows (links, cuts, pauses) every `stepMs`; the
 * checks use only that and the nodes' cores, never the core's own view of
 * its peers.
 */
import type { Entry } from '../../src/consensus/messages.ts';
import type { SimNode } from './node.ts';
import type { WriteRecord } from './checkers.ts';

export interface ElectionBounds {
  /** Longer than any voter's lease (election timeout at the slowest clock, plus a heartbeat and a delay). */
  steadyMs: number;
  /** Two CheckQuorum periods at the slowest clock, plus slack. */
  checkQuorumMs: number;
  /** A leader must exist this long after healing. */
  leaderAfterHealMs: number;
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

export class ElectionChecker {
  private readonly leaders = new Map<number, string>();
  /** Since when each pair could talk without a break (absent: it cannot now). */
  private readonly pairUpSince = new Map<string, number>();
  /** Since when each node has followed its current leader. */
  private readonly following = new Map<string, { leader: string; since: number }>();
  private readonly leaderSince = new Map<string, { term: number; since: number }>();
  /** Running time each leader has spent unable to reach a majority. */
  private readonly cutOffMs = new Map<string, number>();
  private readonly reported = new Set<string>();
  private lossFreeSince = 0;
  private healedAtMs: number | null = null;
  private leaderSeenAfterHeal = false;

  constructor(
    private readonly violation: (message: string) => void,
    private readonly bounds: ElectionBounds,
    private readonly voters: readonly string[],
  ) {}

  private get majority(): number {
    return Math.floor(this.voters.length / 2) + 1;
  }

  /** `node` became leader of `term`: the only one, holding every acknowledged Quorum / All write. */
  onLeader(node: SimNode, term: number, writes: readonly WriteRecord[]): void {
    const known = this.leaders.get(term);
    if (known !== undefined && known !== node.id) {
      this.violation(`election safety: ${known} and ${node.id} both lead term ${term}`);
    }
    this.leaders.set(term, node.id);
    for (const w of writes) {
      if (w.status !== 'ok' || w.level === 'one' || w.term >= term) continue;
      const e = node.log[w.lsn - 1] as Entry | undefined;
      if (e === undefined || e.term !== w.term) {
        this.violation(
          `leader completeness: ${node.id} leads term ${term} without write ${w.id} acknowledged at ${w.level} (LSN ${w.lsn}, term ${w.term}); its log ends at ${node.log.length}`,
        );
      }
    }
  }

  /** A real campaign: only when no leader is steady (PreVote and the voters' lease see to it). */
  onCampaign(node: SimNode, term: number, force: boolean, nowMs: number, nodes: readonly SimNode[]): void {
    if (force) return;
    const steady = this.steadyLeader(nowMs, nodes);
    if (steady !== null && steady.id !== node.id && term > steady.core.term) {
      this.violation(
        `PreVote: ${node.id} campaigns in term ${term} at ${nowMs} ms while ${steady.id} leads term ${steady.core.term} with a majority following it for over ${this.bounds.steadyMs} ms`,
      );
    }
  }

  private steadyLeader(nowMs: number, nodes: readonly SimNode[]): SimNode | null {
    const since = nowMs - this.bounds.steadyMs;
    if (this.lossFreeSince > since) return null;
    for (const l of nodes) {
      if (!l.alive || l.paused || l.core.role !== 'leader') continue;
      const led = this.leaderSince.get(l.id);
      if (led === undefined || led.term !== l.core.term || led.since > since) continue;
      let followers = 1;
      for (const v of nodes) {
        if (v === l || !this.voters.includes(v.id)) continue;
        const up = this.pairUpSince.get(pairKey(l.id, v.id));
        const f = this.following.get(v.id);
        if (up !== undefined && up <= since && f?.leader === l.id && f.since <= since) followers++;
      }
      if (followers >= this.majority) return l;
    }
    return null;
  }

  /** One sample of the world, `stepMs` after the last. */
  sample(
    nodes: readonly SimNode[],
    nowMs: number,
    stepMs: number,
    canTalk: (a: SimNode, b: SimNode) => boolean,
    lossy: boolean,
  ): void {
    if (lossy) this.lossFreeSince = Infinity;
    else if (this.lossFreeSince === Infinity) this.lossFreeSince = nowMs;
    for (let i = 0; i < nodes.length; i++) {
      for (let j = i + 1; j < nodes.length; j++) {
        const a = nodes[i] as SimNode;
        const b = nodes[j] as SimNode;
        const key = pairKey(a.id, b.id);
        const up = a.alive && b.alive && !a.paused && !b.paused && canTalk(a, b);
        if (!up) this.pairUpSince.delete(key);
        else if (!this.pairUpSince.has(key)) this.pairUpSince.set(key, nowMs);
      }
    }
    for (const n of nodes) {
      const leader = n.alive && n.core.role === 'follower' ? n.core.leader : null;
      const f = this.following.get(n.id);
      if (leader === null) this.following.delete(n.id);
      else if (f?.leader !== leader) this.following.set(n.id, { leader, since: nowMs });
      if (n.alive && n.core.role === 'leader') {
        const led = this.leaderSince.get(n.id);
        if (led?.term !== n.core.term) this.leaderSince.set(n.id, { term: n.core.term, since: nowMs });
      } else this.leaderSince.delete(n.id);
      this.checkQuorumBound(n, nodes, stepMs, canTalk);
    }
    if (this.healedAtMs !== null && !this.leaderSeenAfterHeal) {
      if (nodes.some((n) => n.alive && n.core.role === 'leader')) this.leaderSeenAfterHeal = true;
      else if (nowMs - this.healedAtMs > this.bounds.leaderAfterHealMs) {
        this.leaderSeenAfterHeal = true;
        this.violation(`liveness: no leader ${this.bounds.leaderAfterHealMs} ms after the network healed`);
      }
    }
  }

  private checkQuorumBound(
    l: SimNode,
    nodes: readonly SimNode[],
    stepMs: number,
    canTalk: (a: SimNode, b: SimNode) => boolean,
  ): void {
    if (!l.alive || l.core.role !== 'leader') {
      this.cutOffMs.delete(l.id);
      return;
    }
    if (l.paused) return; // it cannot step down while stopped
    const reachable =
      1 +
      nodes.filter((v) => v !== l && this.voters.includes(v.id) && v.alive && !v.paused && canTalk(l, v))
        .length;
    if (reachable >= this.majority) {
      this.cutOffMs.delete(l.id);
      return;
    }
    const ms = (this.cutOffMs.get(l.id) ?? 0) + stepMs;
    this.cutOffMs.set(l.id, ms);
    const key = `${l.id}@${l.core.term}`;
    if (ms > this.bounds.checkQuorumMs && !this.reported.has(key)) {
      this.reported.add(key);
      this.violation(
        `CheckQuorum: ${l.id} still leads term ${l.core.term} after ${ms} ms without reaching a majority`,
      );
    }
  }

  healed(nowMs: number): void {
    this.healedAtMs = nowMs;
    this.leaderSeenAfterHeal = false;
  }
}
