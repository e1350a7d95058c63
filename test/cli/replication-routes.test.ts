/**
 * The replication routes over HTTP (a real `vrep serve`), and the mapping of
 * the node's errors onto statuses (501 for what this build cannot do, 409
 * with the primary's address for a write to a replica).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { startCli } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';
import { errorToReply } from '../../src/server/http-api.ts';
import { configureChange } from '../../src/server/replication-api.ts';
import { messageOf, VrepError } from '../../src/errors.ts';

const TOKEN = 'route-test-token';

async function call(
  base: string,
  method: string,
  path: string,
  body?: string,
  contentType = 'application/json',
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` };
  if (body !== undefined) headers['content-type'] = contentType;
  const res = await fetch(`${base}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function codeOf(a: { body: Record<string, unknown> }): string {
  return (a.body['error'] as { code: string }).code;
}

test('replication routes: documented shapes, 400/415 for bad bodies, 501 for what the node cannot do, token guard', async (t) => {
  const node = startCli([
    'serve',
    '--http',
    '127.0.0.1:0',
    '--node-id',
    'r-1',
    '--data-dir',
    tempDir(t),
    '--token',
    TOKEN,
  ]);
  t.after(() => node.kill());
  const m = await node.waitForLine(/"http":"127\.0\.0\.1:(\d+)"/, 30_000);
  const base = `http://127.0.0.1:${m[1]}`;

  const status = await call(base, 'GET', '/replication/status');
  assert.equal(status.status, 200);
  for (const key of ['role', 'enabled', 'node_id', 'term', 'stats', 'replicas', 'last_lsn'])
    assert.ok(key in status.body, `status.${key}`);
  assert.equal(status.body['role'], 'standalone');
  assert.equal(status.body['node_id'], 'r-1');

  const stats = await call(base, 'GET', '/replication/stats');
  assert.equal(stats.status, 200);
  for (const key of [
    'role',
    'lag_ms',
    'bytes_sent',
    'bytes_received',
    'last_sync',
    'operations_pending',
    'snapshot_size',
    'snapshots_taken',
    'connected_replicas',
    'master_offset',
    'replica_offset',
    'lag_operations',
    'total_replicated',
    'full_syncs',
    'partial_syncs',
  ])
    assert.equal(typeof stats.body[key], key === 'role' ? 'string' : 'number', `stats.${key}`);
  assert.deepEqual(stats.body, status.body['stats']);

  assert.deepEqual((await call(base, 'GET', '/replication/replicas')).body, { replicas: [], count: 0 });

  const promote = await call(base, 'POST', '/replication/promote');
  assert.equal(promote.status, 409, 'a standalone node has nothing to be promoted from');
  assert.equal(codeOf(promote), 'ERR_ROLE');
  assert.match((promote.body['error'] as { message: string }).message, /promote/);

  const transfer = await call(base, 'POST', '/replication/transfer', '{"to":"n2"}');
  assert.equal(transfer.status, 501);
  const configure = await call(base, 'POST', '/replication/configure', '{"role":"multi-master"}');
  assert.equal(configure.status, 501);
  assert.equal(codeOf(configure), 'ERR_UNSUPPORTED');

  for (const [path, body, code] of [
    ['/replication/configure', '{"role":"boss"}', 'ERR_INVALID_INPUT'],
    ['/replication/configure', '{"master_address":"nohost"}', 'ERR_INVALID_INPUT'],
    ['/replication/configure', '{"colour":"blue"}', 'ERR_INVALID_INPUT'],
    ['/replication/configure', '{}', 'ERR_INVALID_INPUT'],
    ['/replication/configure', '{"role":', 'ERR_JSON_SYNTAX'],
    ['/replication/transfer', '{}', 'ERR_INVALID_INPUT'],
    ['/replication/transfer', '{"to":7}', 'ERR_INVALID_INPUT'],
    ['/replication/promote', '{"now":true}', 'ERR_INVALID_INPUT'],
  ] as const) {
    const a = await call(base, 'POST', path, body);
    assert.equal(a.status, 400, `${path} ${body}: ${JSON.stringify(a.body)}`);
    assert.equal(codeOf(a), code, `${path} ${body}`);
  }
  const wrongType = await call(base, 'POST', '/replication/transfer', '{"to":"n2"}', 'text/plain');
  assert.equal(wrongType.status, 415);
  assert.equal((await call(base, 'GET', '/replication/promote')).status, 405);

  const anonymous = await fetch(`${base}/replication/status`);
  assert.equal(anonymous.status, 401);
  await anonymous.arrayBuffer();
});

test('configure bodies: role synonyms, master_address or primary_address, null clears', () => {
  assert.deepEqual(configureChange({ role: 'master' }), { role: 'primary' });
  assert.deepEqual(configureChange({ role: 'replica', primary_address: 'p:7001' }), {
    role: 'replica',
    masterAddress: 'p:7001',
  });
  assert.deepEqual(configureChange({ master_address: null }), { masterAddress: null });
  assert.throws(() => configureChange({ master_address: 'a:1', primary_address: 'b:1' }), /synonyms/);
  assert.throws(() => configureChange({ role: 5 }), /role: expected one of/);
});

test('ERR_READ_ONLY is 409 and carries the primary address; ERR_UNSUPPORTED is 501', () => {
  const logger = pino({ level: 'silent' });
  const readOnly = errorToReply(
    new VrepError('ERR_READ_ONLY', 'this node is a replica of n1', { primary: '127.0.0.1:15002' }),
    logger,
  );
  assert.equal(readOnly.status, 409);
  assert.deepEqual(readOnly.body, {
    error: { code: 'ERR_READ_ONLY', message: 'this node is a replica of n1', primary: '127.0.0.1:15002' },
  });
  const unknownPrimary = errorToReply(new VrepError('ERR_READ_ONLY', 'replica', { primary: null }), logger);
  assert.deepEqual((unknownPrimary.body as { error: Record<string, unknown> }).error['primary'], null);
  const unsupported = errorToReply(new VrepError('ERR_UNSUPPORTED', 'not yet'), logger);
  assert.equal(unsupported.status, 501);
  assert.deepEqual(unsupported.body, { error: { code: 'ERR_UNSUPPORTED', message: 'not yet' } });
});

test('ERR_NOT_LEADER is 409 naming the leader as ERR_READ_ONLY does; ERR_WAL_IO is 503', () => {
  const logger = pino({ level: 'silent' });
  const why = 'this node is no longer the primary';
  const notLeader = errorToReply(
    new VrepError('ERR_NOT_LEADER', messageOf('ERR_NOT_LEADER', why, '10.0.0.2:15002'), {
      primary: '10.0.0.2:15002',
    }),
    logger,
  );
  assert.equal(notLeader.status, 409);
  assert.deepEqual(notLeader.body, {
    error: {
      code: 'ERR_NOT_LEADER',
      message: 'this node is no longer the primary; write to the primary at http://10.0.0.2:15002',
      primary: '10.0.0.2:15002',
    },
  });
  const unknown = errorToReply(
    new VrepError('ERR_NOT_LEADER', messageOf('ERR_NOT_LEADER', why, null), { primary: null }),
    logger,
  );
  assert.deepEqual(unknown.body, { error: { code: 'ERR_NOT_LEADER', message: why, primary: null } });
  assert.equal(errorToReply(new VrepError('ERR_WAL_IO', 'disk full'), logger).status, 503);
  // A code that never answers a request by design is a bug if it does: 500 under its own code.
  const internal = errorToReply(new VrepError('ERR_CORRUPT_FRAME', 'bad frame'), logger);
  assert.equal(internal.status, 500);
  assert.deepEqual(internal.body, { error: { code: 'ERR_CORRUPT_FRAME', message: 'bad frame' } });
});
