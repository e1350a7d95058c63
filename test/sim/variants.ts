/**
 * Broken variants: each switches in one deliberate defect, and the
 * simulator's checkers must catch every one within a bounded number of
 * seeds (test/sim/sim.test.ts). A checker that no variant can fail proves
 * nothing.
 */
import type { CoreFaults } from '../../src/consensus/core.ts';

export const VARIANTS = {
  /** The old bug: a restarted primary keeps its term and epoch, so LSNs are reused under one identity. */
  'ring-before-wal-lsn-reuse': { ringBeforeWal: true },
  /** A replica acknowledges records before its WAL append is durable. */
  'ack-before-wal-append': { ackBeforeDurable: true },
  /** RECORDS from an older term are taken. */
  'stale-records-accepted': { acceptStaleRecords: true },
  /** A follower keeps a divergent tail instead of dropping it. */
  'divergent-tail-kept': { keepDivergentTail: true },
  /** Records are reported committed once applied: committed log readers see what a truncation drops. */
  'commit-reported-at-apply': { commitAtApply: true },
  /** Quorum counted without the leader's own durability. */
  'quorum-without-leader-durability': { countUndurableLeader: true },
  /** A follower applies before its disk has the records and keeps them applied when the disk refuses them. */
  'refused-records-stay-applied': { keepRefusedApplied: true },
} satisfies Record<string, Partial<CoreFaults>>;

export type VariantName = keyof typeof VARIANTS;
