/**
 * Issue 13, acceptance "Failover": three `vrep serve` processes in role
 * auto; Quorum writes to the leader, kept when acknowledged; a consumer-group
 * member over the /changes WebSocket following the leader. The leader is
 * SIGKILLed; the consumer finds the new one (a follower's refusal names it,
 * and the status says who leads), reconnects with the same group and goes on
 * from the group's committed position: no acknowledged write missed, and a
 * repeat only after the last commit answered before the reconnect.
 *
 * Also: a follower refuses a group member with the write refusal
 * (HTTP 409 ERR_NOT_LEADER naming the leader's HTTP address), before the
 * upgrade.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { autoServeArgs, startCli, type Started } from '../helpers/process.ts';
import { until } from '../helpers/node-proc.ts';
import { freePorts } from '../helpers/addresses.ts';
import { tempDir } from '../helpers/tmp.ts';
import {
  checkDeliveries,
  createCollection,
  getJson,
  GroupWsConsumer,
  HttpWriter,
  sleep,
  type Refusal,
  type StatusWire,
} from './group-ws.ts';

const DIM = 8;

/** The upgrade's HTTP answer when it is refused (null: it was taken). */
function refusalOf(address: string, query: string): Promise<Refusal | null> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${address}/changes?${query}`, { handshakeTimeout: 10_000 });
    ws.on('open', () => {
      ws.terminate();
      resolve(null);
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        const e = (JSON.parse(body) as { error: { code: string; message: string; primary?: string } }).error;
        resolve({
          status: res.statusCode ?? 0,
          code: e.code,
          primary: e.primary ?? null,
          message: e.message,
        });
      });
    });
    ws.on('error', reject);
  });
}

test(
  'group failover: the leader is killed; the member finds the new leader, resumes from the group position, misses no acknowledged write',
  { timeout: 180_000 },
  async (t) => {
    const startedMs = Date.now();
    const ports = await freePorts(6);
    const peer = (i: number): string => `127.0.0.1:${ports[i] as number}`;
    const http = (i: number): string => `127.0.0.1:${ports[3 + i] as number}`;
    const dir = tempDir(t, 'vrep-group-failover-');
    const nodes: (Started | null)[] = [0, 1, 2].map((i) =>
      startCli(autoServeArgs(i, [0, 1, 2].map(peer), [0, 1, 2].map(http), dir)),
    );
    t.after(() => {
      for (const n of nodes) n?.kill('SIGKILL');
    });
    const logs = (): string =>
      nodes.map((n) => (n ? n.stdout().slice(-2000) + n.stderr().slice(-1000) : '(killed)')).join('\n---\n');
    await Promise.all(nodes.map((n) => n?.waitForLine(/"msg":"vrep node serving"/, 60_000)));

    /** The leader among the live nodes: the highest term of those that say they lead. */
    const findLeader = async (): Promise<number | null> => {
      const states = await Promise.all(
        nodes.map(async (n, i) =>
          n === null
            ? null
            : getJson<StatusWire & { term: number }>(`http://${http(i)}/replication/status`).catch(
                () => null,
              ),
        ),
      );
      let best: number | null = null;
      for (const [i, s] of states.entries()) {
        if (s?.state === 'leader' && (best === null || s.term > (states[best]?.term ?? 0))) best = i;
      }
      return best;
    };
    const L = await until(
      async () => {
        const i = await findLeader();
        return i === null ? false : { i };
      },
      30_000,
      'a leader elected',
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${logs()}`);
    });
    let leader: string | null = http(L.i);
    // Follow the leader as a client would: the status of the nodes it knows, every 100 ms.
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const i = await findLeader();
        leader = i === null ? null : http(i);
        await sleep(100);
      }
    })();

    await createCollection(http(L.i), 'c', DIM);
    // A follower refuses a group member with the write refusal, naming the leader.
    const F = (L.i + 1) % 3;
    const refused = await refusalOf(http(F), 'group=g&from=earliest');
    assert.ok(refused !== null, 'the follower refused the upgrade');
    assert.equal(refused.status, 409, JSON.stringify(refused));
    assert.equal(refused.code, 'ERR_NOT_LEADER');
    assert.equal(refused.primary, http(L.i));

    const writer = new HttpWriter({
      address: () => leader,
      collection: 'c',
      dimension: DIM,
      batch: 20,
      workers: 2,
      query: 'consistency=quorum',
    });
    const hints: string[] = [];
    const consumer = new GroupWsConsumer({
      address: () => leader,
      group: 'g',
      credit: 200,
      onRefusal: (r) => {
        // A node that is no longer (or not yet) the leader names the one it knows.
        if (r.primary) {
          hints.push(r.primary);
          leader = r.primary;
        }
      },
    });
    writer.start();
    consumer.start();
    let newLeader: number;
    try {
      await until(async () => consumer.commitsAnswered > 20, 30_000, 'commits answered on the first leader');
      await sleep(1000);
      const ackedBefore = writer.acked.length;
      const committedBefore = consumer.lastCommitted;
      // Counted before the kill: the member may be back before the test sees the new leader.
      const sessionsBefore = consumer.sessions.length;
      nodes[L.i]?.kill('SIGKILL');
      await nodes[L.i]?.exited(10_000);
      nodes[L.i] = null;
      const killedMs = Date.now();
      newLeader = (
        await until(
          async () => {
            const i = await findLeader();
            return i === null ? false : { i };
          },
          30_000,
          'a new leader',
        ).catch((err: Error) => {
          throw new Error(`${err.message}\n${logs()}`);
        })
      ).i;
      await until(
        async () => consumer.sessions.length > sessionsBefore && consumer.commitsAnswered > 0,
        30_000,
        'the member reconnected to the new leader',
      ).catch((err: Error) => {
        throw new Error(
          `${err.message}; leader now ${leader}; sessions ${JSON.stringify(consumer.sessions)}; ` +
            `refusals ${JSON.stringify(consumer.refusals.slice(-5))} (${consumer.refusals.length}); ` +
            `connect failures ${consumer.connectFailures}\n${logs()}`,
        );
      });
      const reconnectMs = Date.now() - killedMs;
      await until(
        async () => writer.acked.length > ackedBefore + 200,
        30_000,
        'writes acknowledged by the new leader',
      );
      await sleep(1000);
      await writer.stop();
      await consumer.waitDelivered(writer.acked, 60_000).catch(() => undefined);
      const check = checkDeliveries(writer.acked, consumer.deliveries, consumer.sessions);
      const status = await getJson<StatusWire>(`http://${http(newLeader)}/replication/status`);
      const group = status.groups.find((g) => g.name === 'g');
      const summary =
        `leader n${L.i + 1} killed, n${newLeader + 1} leads; member back ${reconnectMs} ms after the kill ` +
        `(${consumer.sessions.length - 1} reconnects, ${consumer.refusals.length} refusals on the way: ` +
        `${[...new Set(consumer.refusals.map((r) => r.code))].join(', ')}); ${writer.acked.length} Quorum writes ` +
        `acknowledged (${ackedBefore} before the kill), ${check.delivered} events delivered, ${check.duplicates} ` +
        `duplicates (${check.earlyDuplicates.length} before the committed position), ${check.gaps.length} gaps; ` +
        `last commit before the kill ${committedBefore ? JSON.stringify(committedBefore) : 'none'}; ` +
        `${(Date.now() - startedMs) / 1000} s`;
      t.diagnostic(summary);
      assert.deepEqual(check.gaps.slice(0, 10), [], `acknowledged writes never delivered: ${summary}`);
      assert.deepEqual(
        check.earlyDuplicates.slice(0, 10),
        [],
        `repeats before the committed position: ${summary}`,
      );
      assert.ok(consumer.sessions.length >= 2, 'the member reconnected');
      assert.ok(group !== undefined && group.position !== null && !group.lagged_out, JSON.stringify(group));
    } finally {
      polling = false;
      await poller;
      await writer.stop();
      await consumer.stop();
    }
  },
);
