/**
 * Broken variants: each switches in one deliberate defect, and the
 * simulator's checkers must catch every one within a bounded number of
 * seeds (test/sim/sim.test.ts), in the mode whose rules it breaks. A checker
 * that no variant can fail proves nothing.
 */
import type { CoreFaults } from '../../src/consensus/core.ts';
import type { SimMode } from './run.ts';

interface Variant {
  faults: Partial<CoreFaults>;
  mode: SimMode;
}

export const VARIANTS = {
  /** The old bug: a restarted primary keeps its term and epoch, so LSNs are reused under one identity. */
  'ring-before-wal-lsn-reuse': { faults: { ringBeforeWal: true }, mode: 'manual' },
  /** A replica acknowledges records before its WAL append is durable. */
  'ack-before-wal-append': { faults: { ackBeforeDurable: true }, mode: 'manual' },
  /** RECORDS from an older term are taken. */
  'stale-records-accepted': { faults: { acceptStaleRecords: true }, mode: 'manual' },
  /** A follower keeps a divergent tail instead of dropping it. */
  'divergent-tail-kept': { faults: { keepDivergentTail: true }, mode: 'manual' },
  /** Records are reported committed once applied: committed log readers see what a truncation drops. */
  'commit-reported-at-apply': { faults: { commitAtApply: true }, mode: 'manual' },
  /** Quorum counted without the leader's own durability. */
  'quorum-without-leader-durability': { faults: { countUndurableLeader: true }, mode: 'manual' },
  /** A follower applies before its disk has the records and keeps them applied when the disk refuses them. */
  'refused-records-stay-applied': { faults: { keepRefusedApplied: true }, mode: 'manual' },
  /** A follower acknowledges the records streamed alongside its snapshot before installing it (they live only in its memory). */
  'ack-alongside-before-install': { faults: { ackAlongsideBeforeInstall: true }, mode: 'manual' },
  /** A vote for any candidate, whatever its log (no Raft §5.4.1 check). */
  'vote-without-log-check': { faults: { voteWithoutLogCheck: true }, mode: 'elections' },
  /** Campaigns without a pre-vote: a node back from a partition deposes a healthy leader. */
  'no-pre-vote': { faults: { noPreVote: true }, mode: 'elections' },
  /** A leader cut off from the majority goes on leading. */
  'leader-skips-check-quorum': { faults: { skipCheckQuorum: true }, mode: 'elections' },
  /** A linearizable read answered from the leader's state with no ReadIndex round. */
  'read-without-read-index': { faults: { readWithoutRound: true }, mode: 'elections' },
} satisfies Record<string, Variant>;

export type VariantName = keyof typeof VARIANTS;
