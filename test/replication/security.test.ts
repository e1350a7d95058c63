/**
 * Peer authentication and TLS between real replication nodes: the right
 * secret and certificates replicate; a wrong secret, a missing secret, no
 * client certificate and a certificate from another CA are each refused
 * (and logged), and the refused replica never receives data.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { ReplicationNode, type ReplicationNodeOptions } from '../../src/node/replication-node.ts';
import { tempDir } from '../helpers/tmp.ts';
import { until } from '../helpers/node-proc.ts';
import { makeTestPki } from '../helpers/certs.ts';
import { nonLoopbackIPv4 } from '../helpers/addresses.ts';

const SECRET = 'correct horse battery staple';
const timing = { heartbeatIntervalMs: 100, replicaTimeoutMs: 5000, reconnectIntervalMs: 200 };

interface Logged {
  obj: Record<string, unknown>;
  msg: string;
}
function memoryLogger(lines: Logged[]): NonNullable<ReplicationNodeOptions['logger']> {
  const push = (obj: object, msg: string): void => {
    lines.push({ obj: obj as Record<string, unknown>, msg });
  };
  return { info: push, warn: push, error: push };
}

async function startPrimary(
  t: import('node:test').TestContext,
  dir: string,
  replication: ReplicationNodeOptions['replication'],
  logs: Logged[],
): Promise<ReplicationNode> {
  const node = await ReplicationNode.start({
    nodeId: 'p',
    dataDir: path.join(dir, 'p'),
    logger: memoryLogger(logs),
    replication: { role: 'primary', bindAddress: '127.0.0.1:0', ...timing, ...replication },
  });
  t.after(() => node.stop());
  await node.createCollection('c', { dimension: 4, metric: 'l2' });
  await node.write('c', [{ id: 'a', vector: [1, 2, 3, 4] }]);
  return node;
}

async function startReplica(
  t: import('node:test').TestContext,
  dir: string,
  id: string,
  primary: ReplicationNode,
  replication: ReplicationNodeOptions['replication'],
  logs: Logged[],
): Promise<ReplicationNode> {
  const node = await ReplicationNode.start({
    nodeId: id,
    dataDir: path.join(dir, id),
    logger: memoryLogger(logs),
    replication: {
      role: 'replica',
      bindAddress: '127.0.0.1:0',
      masterAddress: `127.0.0.1:${primary.peerPort}`,
      ...timing,
      ...replication,
    },
  });
  t.after(() => node.stop());
  return node;
}

async function refused(replica: ReplicationNode, logs: Logged[], pattern: RegExp): Promise<void> {
  await until(
    async () => logs.some((l) => pattern.test(`${l.msg} ${JSON.stringify(l.obj)}`)),
    15_000,
    `a log line matching ${pattern}`,
  );
  // Given time to connect several times over, it still has nothing.
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(replica.lastLsn, 0);
  assert.equal(replica.replicationStatus().master?.status, 'Disconnected');
}

test(
  'the same secret replicates; a wrong or missing secret is refused and logged',
  { timeout: 60_000 },
  async (t) => {
    const dir = tempDir(t);
    const logs: Logged[] = [];
    const primary = await startPrimary(t, dir, { secret: SECRET }, logs);
    const good = await startReplica(t, dir, 'good', primary, { secret: SECRET }, logs);
    await until(async () => good.lastLsn === primary.lastLsn, 15_000, 'the authenticated replica to sync');
    assert.equal(good.digest('c'), primary.digest('c'));

    const wrong = await startReplica(t, dir, 'wrong', primary, { secret: 'not the secret at all!' }, logs);
    await refused(wrong, logs, /proof does not match/);

    const none = await startReplica(t, dir, 'none', primary, {}, logs);
    await refused(none, logs, /requires authentication|sent no authentication/);
    assert.ok(
      primary.replicas().every((r) => r.id === 'good'),
      'only the authenticated replica is a member',
    );
  },
);

test(
  'mutual TLS: certificates from the cluster CA replicate; no certificate or another CA is refused',
  { timeout: 60_000 },
  async (t) => {
    const dir = tempDir(t);
    mkdirSync(path.join(dir, 'pki'));
    const pki = makeTestPki(path.join(dir, 'pki'));
    const tlsA = (files: { cert: string; key: string }) => ({
      cert: files.cert,
      key: files.key,
      ca: pki.caA,
    });
    const logs: Logged[] = [];
    const primary = await startPrimary(t, dir, { secret: SECRET, tls: tlsA(pki.serverA) }, logs);
    const good = await startReplica(
      t,
      dir,
      'good',
      primary,
      { secret: SECRET, tls: tlsA(pki.clientA) },
      logs,
    );
    await until(async () => good.lastLsn === primary.lastLsn, 15_000, 'the TLS replica to sync');
    assert.equal(good.digest('c'), primary.digest('c'));

    const plain = await startReplica(t, dir, 'plain', primary, { secret: SECRET }, logs);
    await refused(plain, logs, /TLS: handshake refused/);

    const otherCa = await startReplica(
      t,
      dir,
      'other',
      primary,
      { secret: SECRET, tls: { cert: pki.clientB.cert, key: pki.clientB.key, ca: pki.caA } },
      logs,
    );
    await refused(otherCa, logs, /TLS: handshake refused/);
    assert.ok(primary.replicas().every((r) => r.id === 'good'));
  },
);

test(
  'protected mode: without a secret, a peer from a non-loopback address is refused and logged; insecureNoAuth or a secret let it in',
  { timeout: 60_000 },
  async (t) => {
    const external = nonLoopbackIPv4();
    if (external === undefined) {
      t.skip('this machine has no non-loopback IPv4 address to connect from');
      return;
    }
    const dir = tempDir(t);
    const logs: Logged[] = [];
    const open = { bindAddress: '0.0.0.0:0' };
    const primary = await startPrimary(t, dir, open, logs);
    const viaLoopback = await startReplica(t, dir, 'local', primary, {}, logs);
    await until(async () => viaLoopback.lastLsn === primary.lastLsn, 15_000, 'the loopback replica to sync');

    const remoteOf = (p: ReplicationNode): ReplicationNodeOptions['replication'] => ({
      masterAddress: `${external}:${p.peerPort}`,
    });
    const remote = await startReplica(t, dir, 'remote', primary, remoteOf(primary), logs);
    await refused(remote, logs, /loopback/);
    assert.ok(
      logs.some((l) => /refused/.test(l.msg) && l.obj['remote'] === external),
      'the primary logs the refusal with the address',
    );

    const insecureLogs: Logged[] = [];
    const insecure = await startPrimary(
      t,
      path.join(dir, 'insecure'),
      { ...open, insecureNoAuth: true },
      insecureLogs,
    );
    const remoteOk = await startReplica(t, dir, 'remote-ok', insecure, remoteOf(insecure), insecureLogs);
    await until(
      async () => remoteOk.lastLsn === insecure.lastLsn,
      15_000,
      'insecureNoAuth accepts a remote peer',
    );

    const secretLogs: Logged[] = [];
    const withSecret = await startPrimary(
      t,
      path.join(dir, 'secret'),
      { ...open, secret: SECRET },
      secretLogs,
    );
    const remoteAuth = await startReplica(
      t,
      dir,
      'remote-auth',
      withSecret,
      { ...remoteOf(withSecret), secret: SECRET },
      secretLogs,
    );
    await until(
      async () => remoteAuth.lastLsn === withSecret.lastLsn,
      15_000,
      'a secret admits a remote peer',
    );
  },
);
