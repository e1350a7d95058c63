/**
 * Role auto over HTTP, on three `vrep serve` processes: who answers a
 * linearizable read and a write, and how the others refuse.
 *
 * - On a follower, `GET /collections/c/points/{id}?consistency=linearizable`
 *   and a write answer 409 ERR_NOT_LEADER with `error.primary`, the
 *   leader's HTTP address; a local read there is served.
 * - On the leader the linearizable read answers 200 with the point just
 *   written at Quorum and an `x-vrep-lsn` header at or past that write.
 * - With both followers stopped (SIGSTOP), a collection created at One is not
 *   applied (it cannot commit), and a write into it is still acknowledged at
 *   One: writes are checked against the head of the log.
 * - Then the leader steps down (CheckQuorum);
 *   then a write and a linearizable read answer 503 ERR_NO_LEADER with
 *   `Retry-After`; once they run again a leader is elected and writes pass.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { autoServeArgs, startCli, type Started } from '../helpers/process.ts';
import { until } from '../helpers/node-proc.ts';
import { tempDir } from '../helpers/tmp.ts';
import { freePorts } from '../helpers/safety.ts';

interface Answer {
  status: number;
  headers: Headers;
  body: { error?: { code: string; message: string; primary?: string | null } } & Record<string, unknown>;
}

async function request(base: string, method: string, route: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`${base}${route}`, {
    method,
    ...(body !== undefined
      ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }
      : {}),
    signal: AbortSignal.timeout(20_000),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Answer['body'] };
}

test(
  'role auto over HTTP: a follower answers a linearizable read and a write with 409 ERR_NOT_LEADER naming the primary; the leader serves the read with x-vrep-lsn; without a majority, 503 ERR_NO_LEADER with Retry-After',
  { timeout: 120_000 },
  async (t) => {
    const ports = await freePorts(6);
    const peer = (i: number): string => `127.0.0.1:${ports[i] as number}`;
    const http = (i: number): string => `127.0.0.1:${ports[3 + i] as number}`;
    const base = (i: number): string => `http://${http(i)}`;
    const dir = tempDir(t);
    const nodes: Started[] = [0, 1, 2].map((i) =>
      startCli(autoServeArgs(i, [0, 1, 2].map(peer), [0, 1, 2].map(http), dir)),
    );
    t.after(() => {
      for (const n of nodes) {
        n.kill('SIGCONT');
        n.kill('SIGKILL');
      }
    });
    const logs = (): string =>
      nodes.map((n) => n.stdout().slice(-2000) + n.stderr().slice(-1000)).join('\n---\n');
    await Promise.all(nodes.map((n) => n.waitForLine(/"msg":"vrep node serving"/, 60_000)));

    const statusOf = async (i: number): Promise<{ state: string; term: number } | null> =>
      request(base(i), 'GET', '/replication/status')
        .then((a) => a.body as unknown as { state: string; term: number })
        .catch(() => null);
    const findLeader = async (among: number[]): Promise<number | null> => {
      const states = await Promise.all(among.map(statusOf));
      const i = states.findIndex((s) => s?.state === 'leader');
      return i < 0 ? null : (among[i] as number);
    };
    const leader = await until(
      async () => {
        const i = await findLeader([0, 1, 2]);
        return i === null ? false : { i };
      },
      30_000,
      'a leader elected',
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${logs()}`);
    });
    const L = leader.i;
    const F = (L + 1) % 3;

    const created = await request(base(L), 'PUT', '/collections/c', { dimension: 4, metric: 'l2' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const written = await request(base(L), 'POST', '/collections/c/points?consistency=quorum', {
      points: [{ id: 'a', vector: [1, 2, 3, 4], payload: { k: 1 } }],
    });
    assert.equal(written.status, 200, JSON.stringify(written.body));
    const writeLsn = written.body['lsn'] as number;

    // The follower: linearizable read and write refused, naming the leader's HTTP address.
    const followerRead = await request(base(F), 'GET', '/collections/c/points/a?consistency=linearizable');
    assert.equal(followerRead.status, 409, JSON.stringify(followerRead.body));
    assert.equal(followerRead.body.error?.code, 'ERR_NOT_LEADER');
    assert.equal(followerRead.body.error?.primary, http(L));
    const followerWrite = await request(base(F), 'POST', '/collections/c/points?consistency=quorum', {
      points: [{ id: 'b', vector: [1, 1, 1, 1] }],
    });
    assert.equal(followerWrite.status, 409, JSON.stringify(followerWrite.body));
    assert.equal(followerWrite.body.error?.code, 'ERR_NOT_LEADER');
    assert.equal(followerWrite.body.error?.primary, http(L));
    // A local read on the follower is served (once the write is applied there).
    await until(
      async () => (await request(base(F), 'GET', '/collections/c/points/a')).status === 200,
      30_000,
      'the point on the follower',
    );

    // The leader: 200 with the point and x-vrep-lsn at or past the write.
    const leaderRead = await request(base(L), 'GET', '/collections/c/points/a?consistency=linearizable');
    assert.equal(leaderRead.status, 200, JSON.stringify(leaderRead.body));
    assert.equal(leaderRead.body['id'], 'a');
    const lsn = Number(leaderRead.headers.get('x-vrep-lsn'));
    assert.ok(
      lsn >= writeLsn,
      `x-vrep-lsn ${leaderRead.headers.get('x-vrep-lsn')}, the write was at ${writeLsn}`,
    );

    // No majority: both followers stopped, the leader steps down, and refuses with 503 and Retry-After.
    const followers = [0, 1, 2].filter((i) => i !== L);
    const stoppedAt = Date.now();
    for (const i of followers) (nodes[i] as Started).kill('SIGSTOP');
    // Until it notices (an election timeout), it still leads: a create acknowledged at One cannot
    // commit, so it is not applied, and a write into it right after is checked against the head of
    // the log and acknowledged at One, not refused with 404.
    const unapplied = await request(base(L), 'PUT', '/collections/c2', { dimension: 2, metric: 'l2' });
    assert.equal(unapplied.status, 201, JSON.stringify(unapplied.body));
    const intoUnapplied = await request(base(L), 'POST', '/collections/c2/points?consistency=one', {
      points: [{ id: 'x', vector: [1, 2] }],
    });
    assert.equal(intoUnapplied.status, 200, JSON.stringify(intoUnapplied.body));
    await until(
      async () => (await statusOf(L))?.state !== 'leader',
      30_000,
      'the leader to step down without a majority',
    );
    t.diagnostic(
      `the leader stepped down ${Date.now() - stoppedAt} ms after both followers stopped (polled)`,
    );
    const noLeaderWrite = await request(base(L), 'POST', '/collections/c/points?consistency=quorum', {
      points: [{ id: 'c', vector: [1, 1, 1, 1] }],
    });
    assert.equal(noLeaderWrite.status, 503, JSON.stringify(noLeaderWrite.body));
    assert.equal(noLeaderWrite.body.error?.code, 'ERR_NO_LEADER');
    assert.ok(Number(noLeaderWrite.headers.get('retry-after')) > 0, 'Retry-After on ERR_NO_LEADER');
    const noLeaderRead = await request(base(L), 'GET', '/collections/c/points/a?consistency=linearizable');
    assert.equal(noLeaderRead.status, 503, JSON.stringify(noLeaderRead.body));
    assert.equal(noLeaderRead.body.error?.code, 'ERR_NO_LEADER');
    assert.ok(Number(noLeaderRead.headers.get('retry-after')) > 0, 'Retry-After on a linearizable read');

    for (const i of followers) (nodes[i] as Started).kill('SIGCONT');
    const again = await until(
      async () => {
        const i = await findLeader([0, 1, 2]);
        return i === null ? false : { i };
      },
      30_000,
      'a leader once the followers run again',
    );
    const after = await request(base(again.i), 'POST', '/collections/c/points?consistency=quorum', {
      points: [{ id: 'd', vector: [2, 2, 2, 2] }],
    });
    assert.equal(after.status, 200, JSON.stringify(after.body));
    for (const n of nodes) n.kill('SIGTERM');
    await Promise.all(nodes.map((n) => n.exited(20_000)));
  },
);
