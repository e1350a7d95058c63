/** Per-write consistency: how many nodes' WALs must hold a write before it is acknowledged. */
export const ConsistencyLevel = {
  /** The node that took the write. */
  One: 'one',
  /** A majority of the cluster, this node included. */
  Quorum: 'quorum',
  /** Every node of the cluster. */
  All: 'all',
} as const;
export type ConsistencyLevel = (typeof ConsistencyLevel)[keyof typeof ConsistencyLevel];
