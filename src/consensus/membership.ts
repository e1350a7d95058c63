/**
 * Who counts: the members of the cluster, whose durable acknowledgements
 * make a write Quorum or All. Membership is data in the log (a config
 * record), so it is durable, replicated with everything else and the same
 * on every node that holds the record; a peer that merely connects is an
 * observer (fed, never counted).
 *
 * A member is known by its node id, or, until the node first answers at the
 * address the operator gave, by that address alone (it counts toward the
 * majority from the start, and can acknowledge nothing until its id is
 * known). With no config record in the log, the cluster is its leader alone.
 *
 * A learner (elections) is a member that is fed and never counted: it does
 * not vote, and Quorum and All are of the voters. A new node joins as one,
 * catches up, and is then made a voter (etcd's learners). A change adds,
 * removes or promotes one member at a time (single-server changes, Raft
 * thesis §4.1), and the next waits until it is committed.
 */
import { assert } from './assert.ts';

export interface Member {
  /** Node id; null until the node at `address` has answered once. */
  id: string | null;
  /** Peer address (HOST:PORT) the leader dials; null when the member dials in. */
  address: string | null;
  /** Fed, never counted (absent: a voter). */
  learner?: true;
}

export interface Membership {
  members: Member[];
}

/** Members at most (each is a peer link and a Progress). */
export const MAX_MEMBERS = 64;

export function checkMembership(m: Membership): void {
  assert(m.members.length <= MAX_MEMBERS, `membership of ${m.members.length} nodes, limit ${MAX_MEMBERS}`);
  const ids = new Set<string>();
  const addresses = new Set<string>();
  for (const member of m.members) {
    assert(member.id !== null || member.address !== null, 'a member needs an id or an address');
    if (member.id !== null) {
      assert(!ids.has(member.id), `member ${member.id} listed twice`);
      ids.add(member.id);
    }
    if (member.address !== null) {
      assert(!addresses.has(member.address), `member address ${member.address} listed twice`);
      addresses.add(member.address);
    }
  }
  assert(m.members.length === 0 || voters(m).length > 0, 'a membership needs a voter');
}

/** `id` is the only voter: what its disk holds is committed. */
export function soleVoter(m: Membership, id: string): boolean {
  const v = voters(m);
  return v.length === 1 && v[0]?.id === id;
}

/** The members that vote and count toward Quorum and All. */
export function voters(m: Membership): Member[] {
  return m.members.filter((x) => x.learner !== true);
}

/**
 * Voters that `next` adds or removes against `current` (by id, or address
 * while the id is unknown): a single-server change has at most one.
 */
export function voterChanges(current: Membership, next: Membership): number {
  // The same node: the same id, or the same address (an id filled in is no change).
  const same = (x: Member, y: Member): boolean =>
    (x.id !== null && x.id === y.id) || (x.address !== null && x.address === y.address);
  const a = voters(current);
  const b = voters(next);
  return (
    a.filter((x) => !b.some((y) => same(x, y))).length + b.filter((y) => !a.some((x) => same(x, y))).length
  );
}

/** The implicit membership of a log with no config record: its leader alone. */
export function leaderOnly(leaderId: string): Membership {
  return { members: [{ id: leaderId, address: null }] };
}

export function isMember(m: Membership, id: string): boolean {
  return m.members.some((member) => member.id === id);
}

/** Voters a write must reach for a level, the leader included. */
export function votersNeeded(m: Membership, level: 'quorum' | 'all'): number {
  const n = voters(m).length;
  return level === 'all' ? n : Math.floor(n / 2) + 1;
}

export function sameMembership(a: Membership, b: Membership): boolean {
  if (a.members.length !== b.members.length) return false;
  return a.members.every((m, i) => {
    const o = b.members[i] as Member;
    return o.id === m.id && o.address === m.address && o.learner === m.learner;
  });
}

/**
 * True when `next` only fills in ids of members known by address so far
 * (same members, same count): the majority does not change, so it needs
 * not wait for an earlier change to commit.
 */
export function onlyResolves(current: Membership, next: Membership): boolean {
  if (current.members.length !== next.members.length) return false;
  return current.members.every((m, i) => {
    const n = next.members[i] as Member;
    return (
      m.address === n.address &&
      m.learner === n.learner &&
      (m.id === n.id || (m.id === null && n.id !== null))
    );
  });
}
