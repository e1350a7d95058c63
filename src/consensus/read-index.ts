/**
 * A leader's linearizable reads (etcd's ReadIndex, ReadOnlySafe): which
 * reads wait, which round of heartbeats each waits for, and which rounds a
 * majority of the voters has confirmed. A round is a number the leader's
 * heartbeats carry; a follower echoes the highest it heard from this leader
 * in this term, so an echo of round r says "after round r began, I still
 * followed you in your term". A read that came in while round r was out
 * waits for round r + 1 (begun after it), which starts once r is confirmed:
 * one round serves every read that arrived meanwhile. The core (core.ts)
 * sends the heartbeats and serves the reads at its commit point.
 */
import { heldBy } from './quorum.ts';
import { majorityOf } from './election.ts';
import { voters, type Membership } from './membership.ts';

/** Linearizable reads waiting for their round at once, at most. */
export const MAX_PENDING_READS = 10_000;

export class ReadIndex {
  private round = 0;
  /** The latest round is begun and not confirmed yet. */
  private outstanding = false;
  private readonly pending: { id: number; round: number }[] = [];
  /** Per voter: the highest round it echoed in this term. */
  private readonly echoed = new Map<string, number>();

  /** The latest round begun (what heartbeats carry). */
  get currentRound(): number {
    return this.round;
  }

  get waiting(): number {
    return this.pending.length;
  }

  /** The latest round a majority of `m`'s voters confirmed (`self`, the leader, counts for its own). */
  confirmed(m: Membership, self: string): number {
    const positions = voters(m).map((x) =>
      x.id === null ? 0 : x.id === self ? this.round : (this.echoed.get(x.id) ?? 0),
    );
    return heldBy(positions, majorityOf(m));
  }

  /** A read comes in: it waits for the next round. True when that round must begin now (none is out). */
  add(id: number, m: Membership, self: string): boolean {
    const roundOut = this.outstanding && this.confirmed(m, self) < this.round;
    this.pending.push({ id, round: this.round + 1 });
    return !roundOut;
  }

  /** Begins the next round; returns its number. */
  begin(): number {
    this.outstanding = true;
    return ++this.round;
  }

  /** `peer` echoed `round`; true when that is news. */
  echo(peer: string, round: number): boolean {
    if (round <= (this.echoed.get(peer) ?? 0)) return false;
    this.echoed.set(peer, round);
    return true;
  }

  /**
   * The reads a confirmed round settles, in arrival order, and whether the
   * next round must begin for the reads still waiting.
   */
  settle(m: Membership, self: string): { ids: number[]; beginNext: boolean } {
    const confirmed = this.confirmed(m, self);
    if (confirmed >= this.round) this.outstanding = false;
    const ids: number[] = [];
    while (this.pending.length > 0 && (this.pending[0] as { round: number }).round <= confirmed) {
      ids.push((this.pending.shift() as { id: number }).id);
    }
    return { ids, beginNext: this.pending.length > 0 && confirmed >= this.round };
  }

  /** This node no longer leads (or starts a new term): the waiting reads, which fail. */
  drain(): number[] {
    const ids = this.pending.map((r) => r.id);
    this.pending.length = 0;
    this.echoed.clear();
    this.outstanding = false;
    return ids;
  }
}
