import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderStatus } from '../../src/cli/status.ts';
import { progressBar, table } from '../../src/cli/format.ts';
import type { ReplicationStats, ReplicationStatus } from '../../src/node/types.ts';

const stats = (over: Partial<ReplicationStats> = {}): ReplicationStats => ({
  role: 'primary',
  lag_ms: 0,
  bytes_sent: 0,
  bytes_received: 0,
  last_sync: 0,
  operations_pending: 0,
  snapshot_size: 0,
  snapshots_taken: 0,
  connected_replicas: 0,
  master_offset: 0,
  replica_offset: 0,
  lag_operations: 0,
  total_replicated: 0,
  full_syncs: 0,
  partial_syncs: 0,
  frames_rejected: 0,
  slow_peer_disconnects: 0,
  truncated_records: 0,
  lost_files: 0,
  compression_saving: null,
  compression_skipped: 0,
  ...over,
});

const base = {
  enabled: true,
  node_id: 'n1',
  term: 3,
  history_id: 'h',
  history: [],
  last_lsn: 120,
  state: 'leader' as const,
  commit_lsn: 120,
  applied_lsn: 120,
  writable: { ok: true, reason: null },
  leader: null,
  members: [],
  last_truncation: null,
  last_full_sync: null,
  retention: { first_lsn: 1, first_term: 1, max_retained_bytes: 4 * 1024 ** 3 },
  groups: [],
};

test('progress bars and tables', () => {
  assert.equal(progressBar(0, 10), '[----------]   0%');
  assert.equal(progressBar(50, 10), '[#####-----]  50%');
  assert.equal(progressBar(250, 10), '[##########] 100%');
  assert.equal(progressBar(Number.NaN, 4), '[----]   0%');
  assert.deepEqual(table(['A', 'BB'], [['xxx', 'y']]), ['A    BB', 'xxx  y']);
});

test('a primary: its replicas in a table, a bar under each replica in full sync', () => {
  const status: ReplicationStatus = {
    ...base,
    role: 'primary',
    stats: stats({ connected_replicas: 2, full_syncs: 1, total_replicated: 99 }),
    replicas: [
      {
        id: 'n2',
        host: '127.0.0.1',
        port: 15103,
        address: '127.0.0.1:15103',
        status: 'Connected',
        lag_ms: 3,
        last_heartbeat: 1,
        operations_synced: 120,
        offset: 120,
        lag_operations: 0,
        member: true,
        refused: null,
      },
      {
        id: 'n3',
        host: '127.0.0.1',
        port: 15104,
        address: '127.0.0.1:15104',
        status: 'Syncing',
        lag_ms: 900,
        last_heartbeat: 1,
        operations_synced: 0,
        offset: 0,
        lag_operations: 120,
        member: true,
        refused: null,
        sync: {
          bytes_done: 512 * 1024,
          bytes_total: 2 * 1024 * 1024,
          percent: 25,
          eta_ms: 3000,
          resumed_from_chunk: 2,
        },
      },
    ],
  };
  const text = renderStatus(status).join('\n');
  assert.equal(
    text,
    [
      'node n1  role primary  term 3  last LSN 120',
      'replicas: 2 (2 connected)',
      '  ID  ADDRESS          STATUS     OFFSET  LAG OPS  LAG MS',
      '  n2  127.0.0.1:15103  Connected  120     0        3',
      '  n3  127.0.0.1:15104  Syncing    0       120      900',
      `    full sync ${progressBar(25)} 512.0 KiB of 2.0 MiB, 3.0 s left, resumed at chunk 2`,
      'synced: 1 full, 0 partial; 99 operations replicated',
    ].join('\n'),
  );
});

test('a replica: its primary, link state, lag and sync progress', () => {
  const status: ReplicationStatus = {
    ...base,
    node_id: 'n2',
    role: 'replica',
    master: {
      address: '127.0.0.1:15102',
      http_address: '127.0.0.1:15002',
      node_id: 'n1',
      status: 'Syncing',
      refused: null,
      sync: { bytes_done: 10, bytes_total: 100, percent: 10, eta_ms: null, resumed_from_chunk: 0 },
    },
    stats: stats({ role: 'replica', lag_operations: 40, lag_ms: 250, master_offset: 160 }),
    replicas: [],
  };
  const lines = renderStatus(status);
  assert.deepEqual(lines.slice(0, 4), [
    'node n2  role replica  term 3  last LSN 120',
    'primary: 127.0.0.1:15102 (node n1, http 127.0.0.1:15002)  link Syncing',
    'lag: 40 operations, 250 ms  (primary at LSN 160)',
    `full sync ${progressBar(10)} 10 B of 100 B`,
  ]);
  const refused = renderStatus({
    ...status,
    master: { ...status.master!, refused: 'unknown history', status: 'Disconnected' },
  });
  assert.ok(refused.includes('refused: unknown history'));
});

test('a standalone node: one line and a note', () => {
  assert.deepEqual(
    renderStatus({
      ...base,
      enabled: false,
      role: 'standalone',
      stats: stats({ role: 'standalone' }),
      replicas: [],
    }),
    ['node n1  role standalone  term 3  last LSN 120', 'replication: off (standalone node)'],
  );
});

test('role auto: the state, the leader, the election, each member with its match LSN, the last full sync and truncation', () => {
  const status: ReplicationStatus = {
    ...base,
    role: 'primary',
    commit_lsn: 118,
    applied_lsn: 118,
    leader: { node_id: 'n1', http_address: '127.0.0.1:8081' },
    election: {
      election_timeout_ms: 1000,
      campaigns: 2,
      step_downs: 1,
      last_election: '2026-12-02T10:00:00.000Z',
    },
    members: [
      { id: 'n1', address: null, self: true, kind: 'voter', match_lsn: 120 },
      { id: 'n2', address: '127.0.0.1:7002', self: false, kind: 'voter', match_lsn: 118 },
      { id: null, address: '127.0.0.1:7004', self: false, kind: 'learner', match_lsn: null },
    ],
    stats: stats({ full_syncs: 0, partial_syncs: 2, total_replicated: 10 }),
    replicas: [],
    last_full_sync: { snapshot_lsn: 90, alongside: 12, at: Date.UTC(2026, 11, 2, 8) },
    last_truncation: {
      file: 'lost/lost-3-100.jsonl',
      from_lsn: 101,
      to_lsn: 104,
      records: 4,
      at: Date.UTC(2026, 11, 2, 9),
    },
  };
  assert.deepEqual(renderStatus(status), [
    'node n1  role primary  term 3  last LSN 120',
    'state leader  leader n1 (http 127.0.0.1:8081)  commit LSN 118  applied LSN 118',
    'election: timeout 1000 ms, last 2026-12-02T10:00:00.000Z; 2 campaigns, 1 step-downs',
    'members: 3',
    '  ID         ADDRESS         KIND     MATCH LSN',
    '  n1 (self)  -               voter    120',
    '  n2         127.0.0.1:7002  voter    118',
    '  ?          127.0.0.1:7004  learner  -',
    'replicas: 0 (0 connected)',
    'synced: 0 full, 2 partial; 10 operations replicated',
    'last full sync: snapshot at LSN 90, 12 records written meanwhile came alongside it, at 2026-12-02T08:00:00.000Z',
    'last truncation: 4 records, LSN 101..104, at 2026-12-02T09:00:00.000Z, listed in lost/lost-3-100.jsonl',
  ]);
});
