/**
 * GET /replication/status, computed once from the core (positions, roles,
 * membership), the peers (links, full-sync progress) and the store: the
 * stats, the replica list and the member list come from the same look.
 */
import type { GroupStatus } from '../streams/consumer-groups.ts';
import type { ReplicationCore } from '../consensus/core.ts';
import { isMember } from '../consensus/membership.ts';
import { TermHistory, type Epoch } from '../consensus/term-history.ts';
import type { Peers } from '../replication/peers.ts';
import type { LinkTotals } from '../replication/peer-links.ts';
import type { Store } from '../store/store.ts';
import type {
  MemberInfo,
  ReplicaInfo,
  ReplicaState,
  ReplicationStats,
  ReplicationStatus,
  Role,
  RoleNow,
} from '../replication/types.ts';

export interface StatusSources {
  role: Role;
  /** Role auto: the election's settings and counters. */
  election: { timeoutMs: number; campaigns: number; stepDowns: number; lastElectionAtMs: number } | null;
  core: ReplicationCore;
  store: Store;
  peers: Peers | null;
  lagOf(peer: string): { lagMs: number; lagOps: number };
  lagThresholdOps: number;
  counters: { fullSyncs: number; partialSyncs: number; lastSyncMs: number };
  link: LinkTotals;
  refusedReason: string | null;
  refusedBy: ReadonlyMap<string, string>;
  /** Divergent tails dropped since the node started (records, `lost/` files, the last one). */
  truncation: {
    records: number;
    files: number;
    last: { file: string; fromLsn: number; toLsn: number; records: number; atMs: number } | null;
  };
  /** The last full sync installed as a replica since the node started. */
  lastFullSync: { snapshotLsn: number; alongside: number; atMs: number } | null;
  /** The primary's compression policy, while it feeds replicas. */
  compression: { saving: number | null; skipped: number } | null;
  appliedFromPrimary: number;
  writable: { ok: boolean; reason: string | null };
  /** Consumer groups (src/streams/consumer-groups.ts). */
  groups: GroupStatus[];
}

export function splitAddress(address: string): [string, number] {
  const m = /^(.*):(\d+)$/.exec(address);
  return m ? [m[1] as string, Number(m[2])] : [address, 0];
}

function replicaList(src: StatusSources): ReplicaInfo[] {
  const { core, peers } = src;
  if (core.role !== 'leader' || peers === null) return [];
  const membership = core.membership;
  const ids = new Set<string>();
  for (const m of membership.members) if (m.id !== null && m.id !== core.id) ids.add(m.id);
  for (const p of core.peers()) ids.add(p);
  const out: ReplicaInfo[] = [];
  for (const id of [...ids].sort()) {
    const p = core.peer(id);
    const session = peers.session(id);
    const memberEntry = membership.members.find((m) => m.id === id);
    const address = memberEntry?.address ?? session?.listenAddress ?? '';
    const [host, port] = splitAddress(address);
    const { lagMs, lagOps } = src.lagOf(id);
    let status: ReplicaState = 'Disconnected';
    if (session && !session.link.closed && p) {
      if (p.state === 'snapshot' || p.state === 'probe') status = 'Syncing';
      else if (p.state === 'replicate') status = lagOps > src.lagThresholdOps ? 'Lagging' : 'Connected';
    }
    const sync = peers.outboundProgress(id);
    out.push({
      id,
      host,
      port,
      address,
      status,
      lag_ms: lagMs,
      last_heartbeat: session?.lastHeardMs ?? 0,
      operations_synced: p?.match ?? 0,
      offset: p?.match ?? 0,
      lag_operations: lagOps,
      member: isMember(membership, id),
      refused: src.refusedBy.get(id) ?? p?.refusal ?? null,
      ...(sync ? { sync } : {}),
    });
  }
  return out;
}

/** The earliest position held: its term from the term history (the record itself may sit on disk). */
function retentionOf(
  firstLsn: number,
  lastLsn: number,
  history: readonly Epoch[],
): { first_lsn: number; first_term: number } {
  return {
    first_lsn: firstLsn,
    first_term: firstLsn <= lastLsn ? new TermHistory(history).termAt(firstLsn) : 0,
  };
}

function lastTruncation(last: StatusSources['truncation']['last']): ReplicationStatus['last_truncation'] {
  if (last === null) return null;
  return {
    file: last.file,
    from_lsn: last.fromLsn,
    to_lsn: last.toLsn,
    records: last.records,
    at: last.atMs,
  };
}

export function buildStatus(src: StatusSources): ReplicationStatus {
  const { core, store, peers } = src;
  const replicas = replicaList(src);
  const log = core.log;
  const leaderId = core.leader;
  const follower = core.role !== 'leader' && (src.role === 'replica' || src.role === 'auto');
  const roleNow = roleNowOf(src.role, core.role);
  let lagMs = 0;
  let lagOps = 0;
  if (core.role === 'leader') {
    for (const r of replicas) {
      lagMs = Math.max(lagMs, r.lag_ms);
      lagOps = Math.max(lagOps, r.lag_operations);
    }
  }
  const masterLastLsn = follower ? Math.max(log.lastLsn, core.leaderLastLsn) : log.lastLsn;
  if (follower) {
    lagOps = Math.max(0, masterLastLsn - log.appliedLsn);
    lagMs = lagOps === 0 ? 0 : (peers?.masterLagMs ?? 0);
  }
  const stats: ReplicationStats = {
    role: roleNow,
    lag_ms: lagMs,
    bytes_sent: src.link.bytesSent,
    bytes_received: src.link.bytesReceived,
    last_sync: src.counters.lastSyncMs,
    operations_pending: lagOps,
    snapshot_size: src.store.snapshotBytes,
    snapshots_taken: src.store.snapshotsBuilt,
    connected_replicas: replicas.filter((r) => r.status !== 'Disconnected').length,
    master_offset: masterLastLsn,
    replica_offset:
      core.role === 'leader'
        ? replicas.reduce((min, r) => Math.min(min, r.offset), replicas.length > 0 ? Infinity : log.lastLsn)
        : log.lastLsn,
    lag_operations: lagOps,
    total_replicated:
      core.role === 'leader'
        ? replicas.reduce((sum, r) => sum + r.operations_synced, 0)
        : src.appliedFromPrimary,
    full_syncs: core.role === 'leader' ? (peers?.counters.fullSyncs ?? 0) : src.counters.fullSyncs,
    partial_syncs: src.counters.partialSyncs,
    frames_rejected: src.link.framesRejected,
    slow_peer_disconnects: src.link.slowPeerDisconnects,
    truncated_records: src.truncation.records,
    lost_files: src.truncation.files,
    compression_saving: src.compression?.saving ?? null,
    compression_skipped: src.compression?.skipped ?? 0,
  };
  const leads = core.role === 'leader';
  const members: MemberInfo[] = core.membership.members.map((m) => ({
    id: m.id,
    address: m.address,
    self: m.id === core.id,
    kind: m.learner === true ? 'learner' : 'voter',
    match_lsn:
      !leads || m.id === null ? null : m.id === core.id ? log.durableLsn : (core.peer(m.id)?.match ?? 0),
  }));
  const history = core.termHistory;
  const status: ReplicationStatus = {
    role: roleNow,
    state: core.role,
    enabled: src.role !== 'standalone',
    ...(src.election
      ? {
          election: {
            election_timeout_ms: src.election.timeoutMs,
            campaigns: src.election.campaigns,
            step_downs: src.election.stepDowns,
            last_election:
              src.election.lastElectionAtMs > 0
                ? new Date(src.election.lastElectionAtMs).toISOString()
                : null,
          },
        }
      : {}),
    node_id: store.nodeId,
    term: core.term,
    history_id: history.at(-1)?.historyId ?? '0'.repeat(32),
    history: history.map((e) => ({
      term: e.term,
      history_id: e.historyId,
      leader: e.leaderId,
      first_lsn: e.firstLsn,
    })),
    last_lsn: log.lastLsn,
    commit_lsn: core.commit,
    applied_lsn: log.appliedLsn,
    writable: src.writable,
    leader:
      leaderId === null
        ? null
        : {
            node_id: leaderId,
            http_address: leaderId === core.id ? null : (peers?.httpAddressOf(leaderId) ?? null),
          },
    members,
    stats,
    replicas,
    last_truncation: lastTruncation(src.truncation.last),
    last_full_sync:
      src.lastFullSync === null
        ? null
        : {
            snapshot_lsn: src.lastFullSync.snapshotLsn,
            alongside: src.lastFullSync.alongside,
            at: src.lastFullSync.atMs,
          },
    retention: {
      ...retentionOf(store.records.firstLsn, log.lastLsn, history),
      max_retained_bytes: store.retainedBytesLimit,
    },
    groups: src.groups.map((g) => ({
      name: g.name,
      position: g.position,
      members: g.members,
      lagged_out: g.laggedOut,
    })),
  };
  if (follower) {
    const primaryId = core.leader;
    const session = primaryId !== null ? peers?.session(primaryId) : undefined;
    let state: ReplicaState = 'Disconnected';
    if (session && !session.link.closed) {
      if (peers?.receivingFrom !== null && peers?.receivingFrom !== undefined) state = 'Syncing';
      else if (!core.isSynced) state = 'Syncing';
      else state = lagOps > src.lagThresholdOps ? 'Lagging' : 'Connected';
    }
    const sync = peers?.inboundProgress() ?? null;
    status.master = {
      address: peers?.configuredPrimaryAddress ?? session?.link.remoteAddress ?? '',
      http_address: peers?.httpAddressOf(primaryId) ?? null,
      node_id: primaryId,
      status: state,
      refused: src.refusedReason,
      ...(sync ? { sync } : {}),
    };
  }
  return status;
}

/** The role a status names: the configured one, or with role auto what the election made this node. */
export function roleNowOf(role: Role, core: ReplicationCore['role']): RoleNow {
  if (role !== 'auto') return role;
  return core === 'leader' ? 'primary' : core === 'candidate' ? 'candidate' : 'replica';
}
