/**
 * WebSocket close codes of the replication layer, one table (the
 * transport's own, 4001-4030 and 4040, are in src/transport/link.ts; this
 * table takes 4030 and 4040 from there rather than defining them again).
 * Before closing, the side that decided sends an ERROR frame {code,
 * message}. docs/replication.md lists them; test/docs/error-tables.test.ts
 * holds the two together.
 */
import { CloseCodes } from '../transport/link.ts';
import type { ErrorCode } from '../errors.ts';

export const ReplicationCloseCodes = {
  /** Peer authentication failed. */
  authFailed: CloseCodes.authFailed,
  /** A bad message, a record that does not apply, a bad chunk. */
  protocol: 4041,
  /** A second link to the same peer (the first one stays). */
  duplicate: 4042,
  /** This node will not follow the peer (diverged history, stale term, not a member): see the REFUSE before it. */
  refused: 4043,
  /** The peer was silent longer than replica_timeout. */
  timeout: 4045,
  /** The operator removed this peer, or re-pointed or reconfigured this node. */
  operator: 4046,
  /** This node is stopping. */
  shutdown: CloseCodes.shutdown,
} as const;

/** The close code for an error that ends a link, by its error code. */
export function closeCodeOf(errorCode: ErrorCode): number {
  switch (errorCode) {
    case 'ERR_AUTH':
      return ReplicationCloseCodes.authFailed;
    case 'ERR_DIVERGED':
      return ReplicationCloseCodes.refused;
    default:
      return ReplicationCloseCodes.protocol;
  }
}
