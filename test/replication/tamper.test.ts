/**
 * A proxy between a replica and its primary corrupts, truncates, inflates
 * and replays frames in both directions. Each bad frame must be refused
 * (never applied), the link closed with a logged reason, and replication
 * must recover to identical state.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ReplicationNode } from '../../src/node/replication-node.ts';
import { WsProxy, type Direction, type Mutator } from '../transport/ws-proxy.ts';
import { tempDir } from '../helpers/tmp.ts';
import { until } from '../helpers/node-proc.ts';

interface Logged {
  obj: Record<string, unknown>;
  msg: string;
}

function memoryLogger(lines: Logged[]): {
  info: (o: object, m: string) => void;
  warn: (o: object, m: string) => void;
  error: (o: object, m: string) => void;
} {
  const push = (obj: object, msg: string): void => {
    lines.push({ obj: obj as Record<string, unknown>, msg });
  };
  return { info: push, warn: push, error: push };
}

const cases: { name: string; direction: Direction; mutate: Mutator; reason: RegExp }[] = [
  {
    name: 'a flipped payload byte, primary to replica',
    direction: 'toClient',
    mutate: (p) => {
      const q = Buffer.from(p);
      q[q.length - 1]! ^= 0x10;
      return [q];
    },
    reason: /bad-crc/,
  },
  {
    name: 'a truncated frame, primary to replica',
    direction: 'toClient',
    mutate: (p) => [p.subarray(0, Math.max(1, p.length - 3))],
    reason: /truncated/,
  },
  {
    name: 'a frame declaring more than the limit, primary to replica',
    direction: 'toClient',
    mutate: (p) => {
      const q = Buffer.from(p);
      q.writeUInt32LE(0xfffffff0, 16);
      return [q];
    },
    reason: /too-large/,
  },
  {
    name: 'a replayed frame, primary to replica',
    direction: 'toClient',
    mutate: (p) => [p, p],
    reason: /bad-seq/,
  },
  {
    name: 'a flipped byte in an ACK, replica to primary',
    direction: 'toServer',
    mutate: (p) => {
      const q = Buffer.from(p);
      q[30 % q.length]! ^= 0x01;
      return [q];
    },
    reason: /bad-crc/,
  },
];

test(
  'tampered frames between replica and primary are refused, logged, and replication recovers',
  { timeout: 120_000 },
  async (t) => {
    const dir = tempDir(t);
    const logs: Logged[] = [];
    const timing = { heartbeatIntervalMs: 100, replicaTimeoutMs: 5000, reconnectIntervalMs: 200 };
    const primary = await ReplicationNode.start({
      nodeId: 'p',
      dataDir: path.join(dir, 'p'),
      logger: memoryLogger(logs),
      replication: { role: 'primary', bindAddress: '127.0.0.1:0', ...timing },
    });
    t.after(() => primary.stop());
    const proxy = await WsProxy.start(primary.peerPort as number);
    t.after(() => proxy.close());
    const replica = await ReplicationNode.start({
      nodeId: 'r',
      dataDir: path.join(dir, 'r'),
      logger: memoryLogger(logs),
      replication: {
        role: 'replica',
        bindAddress: '127.0.0.1:0',
        masterAddress: `127.0.0.1:${proxy.port}`,
        ...timing,
      },
    });
    t.after(() => replica.stop());
    await primary.createCollection('c', { dimension: 16, metric: 'cosine' });
    let next = 0;
    const writeSome = async (): Promise<void> => {
      const points = Array.from({ length: 50 }, (_, i) => ({
        id: `p${next + i}`,
        vector: Float32Array.from({ length: 16 }, (_, j) => Math.sin(next + i + j) + 1.5),
        payload: { n: next + i },
      }));
      next += 50;
      await primary.write('c', points);
    };
    const converged = (): Promise<boolean> =>
      until(
        async () =>
          replica.lastLsn === primary.lastLsn &&
          replica.collections().length === 1 &&
          replica.digest('c') === primary.digest('c'),
        30_000,
        'the replica to converge',
      );
    await writeSome();
    await converged();

    for (const c of cases) {
      const rejectedBefore =
        replica.replicationStats().frames_rejected + primary.replicationStats().frames_rejected;
      const connectionsBefore = proxy.connections;
      proxy.tamperNext(c.direction, c.mutate);
      // Traffic in both directions (records out, acks back) carries the tampered frame.
      await writeSome();
      await until(async () => proxy.connections > connectionsBefore, 20_000, `${c.name}: a reconnect`);
      await writeSome();
      await converged();
      const rejected =
        replica.replicationStats().frames_rejected + primary.replicationStats().frames_rejected;
      assert.ok(rejected > rejectedBefore, `${c.name}: no frame was counted as rejected`);
      assert.ok(
        logs.some((l) => /frame rejected/.test(l.msg) && c.reason.test(String(l.obj['reason']))),
        `${c.name}: no log line gives the reason ${c.reason}`,
      );
    }
    assert.equal(replica.digest('c'), primary.digest('c'));
    assert.equal((await replica.get('c', 'p0'))?.payload?.['n'], 0);
  },
);
