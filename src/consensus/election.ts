/**
 * The rules of an election (Raft §5.2, §5.4.1; thesis §9.6), as pure
 * functions and one small tally: who may vote, whose log is up to date, how
 * long a node waits, when a campaign is won or lost. The core
 * (core.ts) decides when to use them.
 */
import { voters, type Membership } from './membership.ts';

/** A log's end as votes compare it: the term of its last record, then its length. */
export interface LogEnd {
  lastTerm: number;
  lastLsn: number;
}

/** Raft §5.4.1: the candidate's log ends in a later term, or in the same term at least as far. */
export function upToDate(candidate: LogEnd, mine: LogEnd): boolean {
  return (
    candidate.lastTerm > mine.lastTerm ||
    (candidate.lastTerm === mine.lastTerm && candidate.lastLsn >= mine.lastLsn)
  );
}

/**
 * Ticks a node waits without hearing a leader before it campaigns: drawn
 * anew in [electionTicks, 2 * electionTicks) each time the timer restarts,
 * so two nodes rarely time out together (split votes).
 */
export function randomizedTimeout(electionTicks: number, rng: () => number): number {
  return electionTicks + Math.floor(rng() * electionTicks);
}

/** Voters with a known id (a member known only by address can vote once its id is known; a learner never). */
export function voterIds(m: Membership): string[] {
  return voters(m)
    .filter((x) => x.id !== null)
    .map((x) => x.id as string);
}

/** Votes a majority needs: of every voter, known by id or not. */
export function majorityOf(m: Membership): number {
  return Math.floor(voters(m).length / 2) + 1;
}

/** One campaign's answers: won with a majority of grants, lost once a majority can no longer grant. */
export class VoteTally {
  private readonly granted = new Set<string>();
  private readonly rejected = new Set<string>();

  constructor(
    private readonly membership: Membership,
    self: string,
  ) {
    this.granted.add(self);
  }

  record(voter: string, granted: boolean): void {
    if (!voterIds(this.membership).includes(voter)) return;
    if (granted) this.granted.add(voter);
    else this.rejected.add(voter);
  }

  get outcome(): 'won' | 'lost' | 'pending' {
    const needed = majorityOf(this.membership);
    if (this.granted.size >= needed) return 'won';
    if (this.rejected.size > voters(this.membership).length - needed) return 'lost';
    return 'pending';
  }

  get grants(): number {
    return this.granted.size;
  }
}
