/**
 * Issue 10 acceptance, on real processes: a stranger's HELLO changes no
 * term and no membership. A raw peer (no node behind it) completes the
 * handshake with a replica and with its primary, claiming term 999, and
 * then says what a primary of term 999 would (to the replica: probe,
 * sync, heartbeat) and what a replica that saw term 999 would (to the
 * primary: a stale-term refusal naming it, acks claiming every record).
 * Afterwards both nodes are in the same term, the membership is the same,
 * the replica still follows its primary, and Quorum writes are acknowledged
 * exactly as before (the member replica holds them; the stranger counts
 * for nothing).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { CallError, until } from '../helpers/node-proc.ts';
import { tempDir } from '../helpers/tmp.ts';
import type { ReplicationNodeOptions, ReplicationStatus } from '../../src/node/types.ts';
import { freePorts, idsOf, missingOn, Procs, sleep, status } from '../helpers/safety.ts';
import { FrameType, RawPeer } from '../helpers/raw-peer.ts';

const TIMING = { heartbeatIntervalMs: 100, replicaTimeoutMs: 5000, reconnectIntervalMs: 200 };
const CLAIMED_TERM = 999;
const BIG_LSN = 1_000_000;

/** What must not change: the term, the membership, whom a replica follows (positions move with writes). */
function identity(s: ReplicationStatus): unknown {
  return {
    role: s.role,
    term: s.term,
    members: s.members.map(({ match_lsn: _, ...member }) => member),
    leader: s.leader?.node_id ?? null,
    master: s.master?.node_id ?? null,
  };
}

test(
  'a stranger claiming term 999 changes no term and no membership; the replica still follows its primary and Quorum is unchanged',
  { timeout: 120_000 },
  async (t) => {
    const dir = tempDir(t);
    const procs = new Procs(t);
    const [pPort, rPort] = (await freePorts(2)) as [number, number];
    const addr = (port: number): string => `127.0.0.1:${port}`;
    const storage = { fsync: 'always' as const };
    const primary = await procs.start({
      nodeId: 'p',
      dataDir: path.join(dir, 'p'),
      storage,
      replication: { role: 'primary', bindAddress: addr(pPort), ...TIMING },
    } satisfies ReplicationNodeOptions);
    const replica = await procs.start({
      nodeId: 'r',
      dataDir: path.join(dir, 'r'),
      storage,
      replication: { role: 'replica', bindAddress: addr(rPort), masterAddress: addr(pPort), ...TIMING },
    } satisfies ReplicationNodeOptions);
    await primary.call('addReplica', { address: addr(rPort) });
    await until(
      async () => (await status(primary)).replicas.some((r) => r.id === 'r' && r.status === 'Connected'),
      30_000,
      'the replica Connected',
    );
    const write = (first: number, consistency: string, timeoutMs = 10_000): Promise<{ lsn: number }> =>
      primary.call('write', { collection: 'c', first, count: 10, dimension: 4, consistency, timeoutMs });
    await primary.call('create', { name: 'c', dimension: 4 });
    await write(0, 'all');
    await until(
      async () => (await status(replica)).last_lsn === (await status(primary)).last_lsn,
      20_000,
      'the replica caught up',
    );
    const before = { p: identity(await status(primary)), r: identity(await status(replica)) };

    // The stranger and the replica: "I lead term 999."
    const toReplica = await RawPeer.connect(rPort);
    t.after(() => toReplica.close());
    toReplica.hello('stranger', 'primary', CLAIMED_TERM, BIG_LSN);
    const replicaHello = await toReplica.waitFor(FrameType.Hello, 5000);
    assert.ok(replicaHello, 'the replica answered no HELLO');
    const fakeHistory = [
      { term: CLAIMED_TERM, historyId: 'f'.repeat(32), leaderId: 'stranger', firstLsn: 1 },
    ];
    const lead = { term: CLAIMED_TERM, commit: BIG_LSN, applyLimit: BIG_LSN, lastLsn: BIG_LSN };
    toReplica.send(FrameType.Probe, { ...lead, probeId: 1 });
    toReplica.send(FrameType.Sync, { ...lead, probeId: 1, match: 0, history: fakeHistory });
    toReplica.send(FrameType.Heartbeat, { ...lead, lagMs: null });

    // The stranger and the primary: "I am a replica." It answers the probe (an observer, fed records) ...
    const toPrimary = await RawPeer.connect(pPort);
    t.after(() => toPrimary.close());
    toPrimary.hello('stranger', 'replica', CLAIMED_TERM, BIG_LSN);
    const primaryHello = await toPrimary.waitFor(FrameType.Hello, 5000);
    assert.ok(primaryHello, 'the primary answered no HELLO');
    const probe = await toPrimary.waitFor(FrameType.Probe, 3000);
    const realTerm = (probe?.body?.['term'] as number | undefined) ?? 0;
    toPrimary.send(FrameType.Position, {
      term: realTerm,
      probeId: (probe?.body?.['probeId'] as number | undefined) ?? 1,
      lastLsn: 0,
      history: [],
      commit: 0,
    });
    await toPrimary.waitFor(FrameType.Sync, 3000);

    // ... and acknowledges records it never had: a Quorum write still needs the member replica.
    const { lsn } = await write(100, 'quorum');
    assert.deepEqual(await missingOn(replica, 'c', idsOf(100, 10)), [], 'the Quorum write is on the replica');
    replica.kill('SIGSTOP');
    try {
      const pending = write(200, 'quorum', 1500);
      const acks = setInterval(() => {
        for (const match of [lsn, lsn + 1]) {
          toPrimary.send(FrameType.Ack, {
            term: realTerm,
            match,
            synced: true,
            gap: null,
            receivingSnapshot: false,
          });
        }
      }, 50);
      await assert
        .rejects(
          pending,
          (err: CallError) => err.code === 'ERR_CONSISTENCY_TIMEOUT',
          'a Quorum write was acknowledged without the member replica (the stranger was counted)',
        )
        .finally(() => clearInterval(acks));
    } finally {
      replica.kill('SIGCONT');
    }

    // Then it claims term 999: a refusal naming the primary as stale, one naming another leader.
    toPrimary.send(FrameType.Refuse, {
      term: CLAIMED_TERM,
      code: 'stale-term',
      reason: 'I have seen term 999',
      leader: 'p',
    });
    toPrimary.send(FrameType.Refuse, {
      term: CLAIMED_TERM,
      code: 'term-taken',
      reason: 'term 999 is led by someone else',
      leader: 'stranger',
    });
    toPrimary.send(FrameType.Ack, {
      term: CLAIMED_TERM,
      match: BIG_LSN,
      synced: true,
      gap: null,
      receivingSnapshot: false,
    });
    await sleep(1000);

    const after = { p: identity(await status(primary)), r: identity(await status(replica)) };
    assert.deepEqual(
      after,
      before,
      'the stranger changed a term, the membership or whom the replica follows',
    );
    const pStatus = await status(primary);
    assert.ok(
      !pStatus.members.some((m) => m.id === 'stranger'),
      `the stranger became a member: ${JSON.stringify(pStatus.members)}`,
    );
    await write(300, 'all');
    assert.deepEqual(await missingOn(replica, 'c', idsOf(300, 10)), [], 'the All write is on the replica');
    assert.deepEqual(identity(await status(primary)), before.p);
    assert.deepEqual(identity(await status(replica)), before.r);
    toReplica.close();
    toPrimary.close();
    await Promise.all([primary.stop(), replica.stop()]);
  },
);
