/**
 * `vrep status`: fetches GET /replication/status and prints a readable
 * summary (role, term, LSN; with role auto the election, the leader and the
 * members; a replica's link and lag; a primary's replicas; the last truncation),
 * with a progress bar for every full sync under way.
 */
import type { ElectionStatus, ReplicaInfo, ReplicationStatus, SyncProgress } from '../node/types.ts';
import { bytes, duration, progressBar, table } from './format.ts';
import { callNode, NodeUnavailable } from './node-client.ts';

export interface StatusOptions {
  url: string;
  token?: string;
  timeoutMs?: number;
}

/** GET /replication/status; NodeUnavailable when the node does not answer one. */
export async function fetchStatus(opts: StatusOptions): Promise<ReplicationStatus> {
  const { body } = await callNode({
    url: opts.url,
    path: '/replication/status',
    ...(opts.token !== undefined ? { token: opts.token } : {}),
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
  });
  if (typeof body !== 'object' || body === null || typeof (body as { role?: unknown }).role !== 'string')
    throw new NodeUnavailable(`${opts.url}/replication/status did not answer a replication status`);
  return body as ReplicationStatus;
}

function syncLine(sync: SyncProgress): string {
  const eta = sync.eta_ms === null ? '' : `, ${duration(sync.eta_ms)} left`;
  const resumed = sync.resumed_from_chunk > 0 ? `, resumed at chunk ${sync.resumed_from_chunk}` : '';
  return `full sync ${progressBar(sync.percent)} ${bytes(sync.bytes_done)} of ${bytes(sync.bytes_total)}${eta}${resumed}`;
}

function replicaRows(replicas: readonly ReplicaInfo[]): string[] {
  const lines = table(
    ['ID', 'ADDRESS', 'STATUS', 'OFFSET', 'LAG OPS', 'LAG MS'],
    replicas.map((r) => [
      r.id,
      r.address,
      r.status,
      String(r.offset),
      String(r.lag_operations),
      String(r.lag_ms),
    ]),
  );
  const out = [`  ${lines[0] ?? ''}`];
  replicas.forEach((r, i) => {
    out.push(`  ${lines[i + 1] ?? ''}`);
    if (r.sync) out.push(`    ${syncLine(r.sync)}`);
  });
  return out;
}

/** The summary as lines of text. */
export function renderStatus(s: ReplicationStatus): string[] {
  const out = [`node ${s.node_id}  role ${s.role}  term ${s.term}  last LSN ${s.last_lsn}`];
  if (s.role === 'standalone') {
    out.push('replication: off (standalone node)');
    return out;
  }
  const stats = s.stats;
  if (s.election) out.push(...electionLines(s, s.election));
  if (s.master) {
    const m = s.master;
    const who = [
      m.node_id !== null ? `node ${m.node_id}` : null,
      m.http_address ? `http ${m.http_address}` : null,
    ]
      .filter((x) => x !== null)
      .join(', ');
    out.push(`primary: ${m.address}${who === '' ? '' : ` (${who})`}  link ${m.status}`);
    if (m.refused !== null) out.push(`refused: ${m.refused}`);
    out.push(
      `lag: ${stats.lag_operations} operations, ${stats.lag_ms} ms  (primary at LSN ${stats.master_offset})`,
    );
    if (m.sync) out.push(syncLine(m.sync));
  }
  const replicas = s.replicas ?? [];
  if (replicas.length > 0 || (s.role === 'primary' && !s.master)) {
    const connected = replicas.filter((r) => r.status !== 'Disconnected').length;
    out.push(`replicas: ${replicas.length} (${connected} connected)`);
    if (replicas.length > 0) out.push(...replicaRows(replicas));
  }
  out.push(
    `synced: ${stats.full_syncs} full, ${stats.partial_syncs} partial; ${stats.total_replicated} operations replicated`,
  );
  const f = s.last_full_sync;
  if (f) {
    out.push(
      `last full sync: snapshot at LSN ${f.snapshot_lsn}, ${f.alongside} records written meanwhile came alongside it, at ${new Date(f.at).toISOString()}`,
    );
  }
  const t = s.last_truncation;
  if (t !== null) {
    out.push(
      `last truncation: ${t.records} records, LSN ${t.from_lsn}..${t.to_lsn}, at ${new Date(t.at).toISOString()}, listed in ${t.file}`,
    );
  }
  return out;
}

/** Role auto: the election's state, who leads, and each member's position. */
function electionLines(s: ReplicationStatus, e: ElectionStatus): string[] {
  const leader = s.leader
    ? `${s.leader.node_id}${s.leader.http_address ? ` (http ${s.leader.http_address})` : ''}`
    : 'none known';
  const out = [
    `state ${s.state}  leader ${leader}  commit LSN ${s.commit_lsn}  applied LSN ${s.applied_lsn}`,
    `election: timeout ${e.election_timeout_ms} ms, last ${e.last_election ?? 'not since start'}; ${e.campaigns} campaigns, ${e.step_downs} step-downs`,
  ];
  const rows = table(
    ['ID', 'ADDRESS', 'KIND', 'MATCH LSN'],
    s.members.map((m) => [
      `${m.id ?? '?'}${m.self ? ' (self)' : ''}`,
      m.address ?? '-',
      m.kind,
      m.match_lsn === null ? '-' : String(m.match_lsn),
    ]),
  );
  out.push(`members: ${s.members.length}`, ...rows.map((r) => `  ${r}`));
  return out;
}
