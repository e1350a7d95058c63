/**
 * One / Quorum / All as pure functions of the members' durable positions:
 * the leader's own WAL and each member's acknowledged match. Nothing else
 * counts: an observer's acks, or the leader's records still on their way to
 * its disk, make no write safer.
 */
import { voters, votersNeeded, type Membership } from './membership.ts';

export type Level = 'one' | 'quorum' | 'all';

/** Durable positions of the members, in membership order (0: not heard, or its id unknown). */
export function memberPositions(
  m: Membership,
  selfId: string,
  selfDurable: number,
  matchOf: (id: string) => number,
): number[] {
  return voters(m).map((member) => {
    if (member.id === null) return 0;
    return member.id === selfId ? selfDurable : matchOf(member.id);
  });
}

/** The highest LSN that `needed` of `positions` hold. */
export function heldBy(positions: readonly number[], needed: number): number {
  if (needed <= 0) return Infinity;
  if (needed > positions.length) return 0;
  const sorted = [...positions].sort((a, b) => b - a);
  return sorted[needed - 1] as number;
}

/** True when `lsn` meets `level`. */
export function levelMet(
  level: Level,
  lsn: number,
  m: Membership,
  selfId: string,
  selfDurable: number,
  matchOf: (id: string) => number,
): boolean {
  if (level === 'one') return selfDurable >= lsn;
  const positions = memberPositions(m, selfId, selfDurable, matchOf);
  return heldBy(positions, votersNeeded(m, level)) >= lsn;
}
