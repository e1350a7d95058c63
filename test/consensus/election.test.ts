/**
 * The election rules (src/consensus/election.ts) and how the core applies
 * them to one vote: what a voter answers, and that the vote it grants is in
 * the same Ready as the hard state recording it (the runtime persists that
 * hard state before it sends any message of the Ready).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { majorityOf, randomizedTimeout, upToDate, VoteTally } from '../../src/consensus/election.ts';
import { ReplicationCore } from '../../src/consensus/core.ts';
import type { Membership } from '../../src/consensus/membership.ts';
import type { VoteMessage, VoteRequestMessage } from '../../src/consensus/messages.ts';

const three: Membership = {
  members: [
    { id: 'n1', address: null },
    { id: 'n2', address: null },
    { id: 'n3', address: null },
  ],
};

test('a log is up to date by its last term first, then its length', () => {
  assert.equal(upToDate({ lastTerm: 3, lastLsn: 5 }, { lastTerm: 2, lastLsn: 90 }), true);
  assert.equal(upToDate({ lastTerm: 2, lastLsn: 90 }, { lastTerm: 3, lastLsn: 5 }), false);
  assert.equal(upToDate({ lastTerm: 3, lastLsn: 5 }, { lastTerm: 3, lastLsn: 5 }), true);
  assert.equal(upToDate({ lastTerm: 3, lastLsn: 4 }, { lastTerm: 3, lastLsn: 5 }), false);
});

test('a tally is won by a majority of grants and lost once a majority cannot grant', () => {
  const won = new VoteTally(three, 'n1');
  assert.equal(won.outcome, 'pending');
  won.record('n2', true);
  assert.equal(won.outcome, 'won');
  const lost = new VoteTally(three, 'n1');
  lost.record('n2', false);
  assert.equal(lost.outcome, 'pending');
  lost.record('n3', false);
  assert.equal(lost.outcome, 'lost');
  // A stranger's vote counts for nothing.
  const strangers = new VoteTally(three, 'n1');
  strangers.record('x9', true);
  assert.equal(strangers.outcome, 'pending');
  // A member known only by address counts in the majority but cannot vote.
  const half: Membership = { members: [...three.members, { id: null, address: '10.0.0.4:7000' }] };
  assert.equal(majorityOf(half), 3);
  const t = new VoteTally(half, 'n1');
  t.record('n2', true);
  assert.equal(t.outcome, 'pending');
});

test('election timeouts are drawn in [E, 2E)', () => {
  let x = 0;
  const rng = (): number => (x = (x + 0.37) % 1);
  for (let i = 0; i < 100; i++) {
    const t = randomizedTimeout(10, rng);
    assert.ok(t >= 10 && t < 20, String(t));
  }
});

function voter(id: string, lastTerm: number, lastLsn: number): ReplicationCore {
  const history =
    lastLsn > 0 ? [{ term: lastTerm, historyId: 'a'.repeat(32), leaderId: 'n1', firstLsn: 1 }] : [];
  return new ReplicationCore({
    id,
    role: 'follower',
    hardState: { term: lastTerm, votedFor: null, commit: 0 },
    log: { lastLsn, firstLsn: 1, history, configs: [], appliedLsn: 0 },
    rng: () => 0.5,
    heartbeatTicks: 2,
    timeoutTicks: 8,
    followsConfiguredPrimary: false,
    elections: { electionTicks: 10, bootstrap: three, encodeConfig: () => new Uint8Array(0) },
  });
}

function request(over: Partial<VoteRequestMessage>): VoteRequestMessage {
  return {
    type: 'voteRequest',
    from: 'n2',
    to: 'n1',
    term: 3,
    preVote: false,
    lastLsn: 5,
    lastTerm: 2,
    force: false,
    ...over,
  };
}

function votes(core: ReplicationCore): {
  vote: VoteMessage | undefined;
  votedFor: string | null | undefined;
} {
  const rd = core.ready();
  const vote = rd.messages.find((m): m is VoteMessage => m.type === 'vote');
  return { vote, votedFor: rd.hardState?.votedFor };
}

test('a vote is granted to an up-to-date candidate, once per term, with the hard state in the same Ready', () => {
  const n1 = voter('n1', 2, 5);
  n1.step({ type: 'connected', peer: 'n2', viaConfiguredPrimary: false });
  n1.step(request({}));
  const first = votes(n1);
  assert.equal(first.vote?.granted, true);
  assert.equal(first.vote?.term, 3);
  assert.equal(first.votedFor, 'n2', 'the vote goes to disk with the Ready that sends it');
  assert.equal(n1.term, 3);
  // Another candidate of the same term gets no vote.
  n1.step(request({ from: 'n3' }));
  assert.equal(votes(n1).vote?.granted, false);
  // The same candidate asking again (its request or our answer was lost) gets it again.
  n1.step(request({}));
  assert.equal(votes(n1).vote?.granted, true);
});

test('a candidate whose log is behind gets no vote, nor a pre-vote', () => {
  const n1 = voter('n1', 2, 5);
  n1.step(request({ lastLsn: 4 }));
  assert.equal(votes(n1).vote?.granted, false);
  n1.step(request({ term: 4, preVote: true, lastLsn: 4 }));
  assert.equal(votes(n1).vote?.granted, false);
});

test('a pre-vote changes no term; a voter that hears a leader ignores every campaign but a forced one', () => {
  const n1 = voter('n1', 2, 5);
  n1.step(request({ preVote: true }));
  const pre = votes(n1);
  assert.equal(pre.vote?.granted, true);
  assert.equal(pre.vote?.preVote, true);
  assert.equal(n1.term, 2, 'a pre-vote leaves the voter in its term');
  assert.equal(pre.votedFor, undefined);
  // n3 leads term 2: its heartbeat puts n1 in its lease.
  n1.step({ type: 'connected', peer: 'n3', viaConfiguredPrimary: false });
  n1.step({
    type: 'heartbeat',
    from: 'n3',
    to: 'n1',
    term: 2,
    commit: 0,
    applyLimit: 0,
    lastLsn: 5,
    readSeq: 0,
  });
  n1.ready();
  assert.equal(n1.leader, 'n3');
  n1.step(request({ preVote: true }));
  assert.equal(votes(n1).vote, undefined, 'ignored in the lease');
  n1.step(request({}));
  assert.equal(votes(n1).vote, undefined, 'ignored in the lease');
  assert.equal(n1.term, 2);
  n1.step(request({ force: true }));
  assert.equal(votes(n1).vote?.granted, true, 'a transfer is heard in the lease');
  assert.equal(n1.term, 3);
});
