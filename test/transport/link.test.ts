import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { FRAME_HEADER_BYTES, FrameType, type Frame } from '../../src/transport/frame.ts';
import { CloseCodes, type CloseInfo, type LinkLimits, type PeerLink } from '../../src/transport/link.ts';
import { startPeerServer, type PeerServer } from '../../src/transport/peer-server.ts';
import {
  backoffDelayMs,
  defaultBackoff,
  startPeerClient,
  type ClientEnv,
  type PeerClient,
} from '../../src/transport/peer-client.ts';
import { WsProxy } from './ws-proxy.ts';

const LIMITS: LinkLimits = {
  maxFrameBytes: 256 * 1024 + FRAME_HEADER_BYTES,
  maxBufferedBytes: 1024 * 1024,
  slowPeerTimeoutMs: 300,
};

/** Polls `cond` until true; fails after timeoutMs with `what`. */
async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Side {
  links: PeerLink[];
  frames: Frame[];
  closes: CloseInfo[];
}

function side(): Side & { attach(link: PeerLink): void } {
  const s: Side = { links: [], frames: [], closes: [] };
  return {
    ...s,
    attach(link) {
      s.links.push(link);
      link.onFrame((f) => s.frames.push(f));
      link.onClose((c) => s.closes.push(c));
    },
  };
}

interface Pair {
  server: PeerServer;
  client: PeerClient;
  proxy: WsProxy | undefined;
  srv: ReturnType<typeof side>;
  cli: ReturnType<typeof side>;
  logs: { level: string; obj: object; msg: string }[];
}

async function startPair(
  t: TestContext,
  opts: { proxy: boolean; limits?: LinkLimits; idleTimeoutMs?: number },
): Promise<Pair> {
  const limits = opts.limits ?? LIMITS;
  const logs: Pair['logs'] = [];
  const logger = {
    info: (obj: object, msg: string) => logs.push({ level: 'info', obj, msg }),
    warn: (obj: object, msg: string) => logs.push({ level: 'warn', obj, msg }),
  };
  const srv = side();
  const cli = side();
  const server = await startPeerServer({ host: '127.0.0.1', port: 0, ...limits, logger, onLink: srv.attach });
  t.after(() => server.close());
  assert.ok(server.port > 0);
  const proxy = opts.proxy ? await WsProxy.start(server.port) : undefined;
  if (proxy) t.after(() => proxy.close());
  const client = startPeerClient({
    url: `ws://127.0.0.1:${proxy?.port ?? server.port}/peer`,
    ...limits,
    logger,
    backoff: { initialMs: 20, maxMs: 200, jitter: 0.5 },
    ...(opts.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: opts.idleTimeoutMs }),
    onLink: cli.attach,
  });
  t.after(() => client.stop());
  await waitFor('first link', () => cli.links.length === 1 && srv.links.length === 1);
  return { server, client, proxy, srv, cli, logs };
}

/** Sends every payload over `link`, waiting whenever it reports backpressure; returns how often it did. */
async function sendAll(link: PeerLink, payloads: Uint8Array[]): Promise<number> {
  let waits = 0;
  for (const payload of payloads) {
    let result = link.send({ type: FrameType.Records, payload });
    while (result === 'dropped') {
      assert.ok(await link.whenWritable(), 'link closed while sending');
      result = link.send({ type: FrameType.Records, payload });
    }
    if (result === 'backpressure') {
      waits++;
      assert.ok(await link.whenWritable(), 'link closed while sending');
    }
  }
  return waits;
}

/** Byte equality regardless of Buffer vs Uint8Array. */
function sameBytes(actual: Uint8Array, expected: Uint8Array, what = 'payload'): void {
  assert.ok(Buffer.from(actual).equals(Buffer.from(expected)), `${what} differs`);
}

function randomPayloads(n: number, maxBytes: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => randomBytes(i % 7 === 0 ? 0 : (i * 7919) % maxBytes));
}

test('many frames both directions arrive intact and in order; counters agree', async (t) => {
  const { srv, cli, server, client } = await startPair(t, { proxy: false });
  const up = randomPayloads(400, 200 * 1024);
  const down = randomPayloads(400, 200 * 1024);
  const waits = await Promise.all([sendAll(cli.links[0]!, up), sendAll(srv.links[0]!, down)]);
  // ~40 MB each way through a 1 MiB queue: both sides had to wait, and whenWritable resumed them.
  assert.ok(waits[0] > 0 && waits[1] > 0, `backpressure waits ${waits.join(',')}`);
  await waitFor(
    'all frames',
    () => srv.frames.length === up.length && cli.frames.length === down.length,
    20000,
  );
  srv.frames.forEach((f, i) => {
    assert.equal(f.seq, i + 1);
    sameBytes(f.payload, up[i]!, `up ${i}`);
  });
  cli.frames.forEach((f, i) => sameBytes(f.payload, down[i]!, `down ${i}`));
  const upBytes = up.reduce((n, p) => n + p.byteLength + FRAME_HEADER_BYTES, 0);
  assert.equal(client.counters.bytesSent, upBytes);
  assert.equal(server.counters.bytesReceived, upBytes);
  assert.equal(server.counters.framesReceived, up.length);
  assert.equal(client.counters.framesReceived, down.length);
  assert.equal(server.counters.framesRejected + client.counters.framesRejected, 0);
});

const tamperCases: {
  name: string;
  mutate: (p: Buffer) => Buffer[];
  code: number;
}[] = [
  {
    name: 'a corrupted payload byte',
    mutate: (p) => {
      const q = Buffer.from(p);
      q[FRAME_HEADER_BYTES + 3]! ^= 0x40;
      return [q];
    },
    code: CloseCodes.frame['bad-crc'],
  },
  {
    name: 'a truncated frame',
    mutate: (p) => [p.subarray(0, p.length - 5)],
    code: CloseCodes.frame.truncated,
  },
  {
    name: 'a frame declaring more than maxFrameBytes',
    mutate: (p) => {
      const q = Buffer.from(p);
      q.writeUInt32LE(LIMITS.maxFrameBytes, 16);
      return [q];
    },
    code: CloseCodes.frame['too-large'],
  },
  {
    name: 'a replayed frame',
    mutate: (p) => [p, p],
    code: CloseCodes.frame['bad-seq'],
  },
];

for (const direction of ['toServer', 'toClient'] as const) {
  for (const c of tamperCases) {
    test(`${direction}: ${c.name} is never applied, the link closes with ${c.code} and recovers`, async (t) => {
      const pair = await startPair(t, { proxy: true });
      const { srv, cli, proxy } = pair;
      const [sender, receiver] = direction === 'toServer' ? [cli, srv] : [srv, cli];
      const marker = (n: number): Uint8Array => new Uint8Array(100).fill(n);
      proxy!.tamperNext(direction, c.mutate);
      assert.equal(sender.links[0]!.send({ type: FrameType.Records, payload: marker(1) }), 'ok');
      await waitFor('both ends closed', () => srv.closes.length === 1 && cli.closes.length === 1);
      const replayed = c.code === CloseCodes.frame['bad-seq'];
      // The replayed original is fine; its copy must not be delivered.
      assert.equal(receiver.frames.length, replayed ? 1 : 0);
      assert.equal(receiver.closes[0]!.code, c.code);
      assert.equal(receiver.closes[0]!.by, 'local');
      assert.equal(sender.closes[0]!.code, c.code, 'the peer learns the reason');
      assert.equal(sender.closes[0]!.by, 'remote');
      const receiverCounters = direction === 'toServer' ? pair.server.counters : pair.client.counters;
      assert.equal(receiverCounters.framesRejected, 1);
      assert.ok(pair.logs.some((l) => l.level === 'warn' && l.msg.includes('frame rejected')));
      // The client redials; frames flow again on the new link.
      await waitFor('a new link', () => srv.links.length === 2 && cli.links.length === 2);
      const before = receiver.frames.length;
      assert.equal(sender.links[1]!.send({ type: FrameType.Records, payload: marker(2) }), 'ok');
      await waitFor('frame on the new link', () => receiver.frames.length === before + 1);
      sameBytes(receiver.frames.at(-1)!.payload, marker(2));
      assert.equal(receiver.frames.at(-1)!.seq, 1);
    });
  }
}

test('a WebSocket message larger than maxFrameBytes is refused by the library limit; the link recovers', async (t) => {
  for (const direction of ['toServer', 'toClient'] as const) {
    const pair = await startPair(t, { proxy: true });
    const { srv, cli, proxy } = pair;
    const [sender, receiver] = direction === 'toServer' ? [cli, srv] : [srv, cli];
    proxy!.tamperNext(direction, (p) => [Buffer.concat([p, Buffer.alloc(LIMITS.maxFrameBytes)])]);
    sender.links[0]!.send({ type: FrameType.Records, payload: new Uint8Array(10) });
    await waitFor('both ends closed', () => srv.closes.length === 1 && cli.closes.length === 1);
    assert.equal(receiver.frames.length, 0);
    assert.equal(receiver.closes[0]!.code, CloseCodes.frame['too-large'], JSON.stringify(receiver.closes));
    assert.equal(receiver.closes[0]!.by, 'local');
    assert.equal((direction === 'toServer' ? pair.server : pair.client).counters.framesRejected, 1);
    await waitFor('a new link', () => srv.links.length === 2 && cli.links.length === 2);
  }
});

test('a text message closes the link with 4011', async (t) => {
  const srv = side();
  const server = await startPeerServer({ host: '127.0.0.1', port: 0, ...LIMITS, onLink: srv.attach });
  t.after(() => server.close());
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/peer`);
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  ws.on('open', () => ws.send('hello'));
  assert.equal(await closed, CloseCodes.notBinary);
  assert.equal(srv.frames.length, 0);
  assert.equal(server.counters.framesRejected, 1);
});

for (const direction of ['toClient', 'toServer'] as const) {
  test(`${direction}: a peer that stops reading gets backpressure, a bounded queue, then a slow-peer disconnect`, async (t) => {
    const pair = await startPair(t, { proxy: true });
    const { srv, cli, proxy } = pair;
    const [sender, receiver] = direction === 'toClient' ? [srv, cli] : [cli, srv];
    const senderCounters = direction === 'toClient' ? pair.server.counters : pair.client.counters;
    proxy!.stopReading(direction);
    const link = sender.links[0]!;
    const payload = new Uint8Array(64 * 1024);
    const bound = LIMITS.maxBufferedBytes + LIMITS.maxFrameBytes;
    const results = new Set<string>();
    let sawBackpressure = false;
    // Keep offering frames (letting the event loop run) until the link says stop.
    for (let i = 0; i < 5000 && !link.closed; i++) {
      const r = link.send({ type: FrameType.Records, payload });
      results.add(r);
      assert.ok(link.bufferedAmount <= bound, `queue ${link.bufferedAmount} over ${bound}`);
      if (r === 'backpressure') sawBackpressure = true;
      if (r !== 'ok') break;
      if (i % 16 === 0) await new Promise((r) => setImmediate(r));
    }
    assert.ok(sawBackpressure, `results: ${[...results].join(',')}`);
    // Over the limit, a sender that ignores backpressure is refused without using a sequence number.
    if (link.bufferedAmount > LIMITS.maxBufferedBytes) {
      const sent = senderCounters.framesSent;
      assert.equal(link.send({ type: FrameType.Records, payload }), 'dropped');
      assert.equal(senderCounters.framesSent, sent);
    }
    assert.ok(link.bufferedAmount <= bound);
    const writable = link.whenWritable();
    await waitFor('slow-peer disconnect', () => link.closed, 5000);
    assert.equal(await writable, false);
    assert.equal(sender.closes[0]!.code, CloseCodes.slowPeer);
    assert.equal(sender.closes[0]!.by, 'local');
    assert.equal(senderCounters.slowPeerDisconnects, 1);
    assert.equal(link.send({ type: FrameType.Records, payload }), 'dropped');
    proxy!.resumeReading(direction);
    await waitFor('a new link', () => srv.links.length === 2 && cli.links.length === 2);
    const before = receiver.frames.length;
    assert.equal(sender.links[1]!.send({ type: FrameType.Ack, payload: new Uint8Array(8) }), 'ok');
    await waitFor('a frame on the new link', () =>
      receiver.frames.some((f, i) => i >= before && f.type === FrameType.Ack),
    );
  });
}

test('dialer keep-alive: pongs keep an idle link open; a silent peer is dropped (4022) and redialed', async (t) => {
  const { srv, cli, proxy, client } = await startPair(t, { proxy: true, idleTimeoutMs: 200 });
  await new Promise((r) => setTimeout(r, 800));
  assert.equal(cli.links.length, 1, 'an idle but answering peer keeps its link');
  assert.equal(cli.closes.length, 0);
  proxy!.stopReading('toClient');
  await waitFor('idle abort', () => cli.closes.length === 1, 3000);
  assert.equal(cli.closes[0]!.code, CloseCodes.idle);
  assert.equal(cli.closes[0]!.by, 'local');
  proxy!.resumeReading('toClient');
  await waitFor('a new link', () => cli.links.length === 2 && srv.links.length === 2);
  assert.ok(client.link && !client.link.closed);
});

test('backoff: exponential from initialMs by growth, capped at maxMs, jitter takes off up to its fraction', () => {
  const b = { initialMs: 100, maxMs: 1000, growth: 2, jitter: 0.5 };
  assert.deepEqual(
    [0, 1, 2, 3, 4, 10, 100].map((a) => backoffDelayMs(a, b, 0)),
    [100, 200, 400, 800, 1000, 1000, 1000],
  );
  assert.equal(backoffDelayMs(2, b, 0.999999), 200);
  assert.equal(backoffDelayMs(2, { ...b, jitter: 0 }, 0.9), 400);
  // The default grows by a quarter per failed dial (why: peer-client.ts, test/transport/rejoin.test.ts).
  assert.deepEqual(
    [0, 1, 2, 3, 10, 100].map((a) => backoffDelayMs(a, { ...defaultBackoff, maxMs: 1000 }, 0)),
    [100, 125, 156, 195, 931, 1000],
  );
  // Far past the range of a double: the cap, and 0 stays 0.
  assert.equal(backoffDelayMs(1e6, b, 0), 1000);
  assert.equal(backoffDelayMs(1e6, { ...b, initialMs: 0 }, 0), 0);
});

test('dialer: failed dials are retried on the injected clock; stop() cancels the pending redial', async () => {
  // A port nobody listens on: grab a free one from a server we close at once.
  const probe = await startPeerServer({ host: '127.0.0.1', port: 0, onLink: () => {} });
  const deadPort = probe.port;
  probe.close();
  const timers: { fn: () => void; ms: number; cleared: boolean }[] = [];
  const env: ClientEnv = {
    setTimeout: (fn, ms) => {
      const h = { fn, ms, cleared: false };
      timers.push(h);
      return h;
    },
    clearTimeout: (h) => ((h as { cleared: boolean }).cleared = true),
    random: () => 0.5,
  };
  const client = startPeerClient({
    url: `ws://127.0.0.1:${deadPort}/peer`,
    backoff: { initialMs: 100, maxMs: 150, jitter: 0.5 },
    env,
    onLink: () => assert.fail('no link expected'),
  });
  for (let i = 0; i < 4; i++) {
    await waitFor(`redial ${i} scheduled`, () => timers.length === i + 1);
    if (i < 3) timers[i]!.fn();
  }
  // 100 ms x 1.25 per failed dial (the default growth) up to the cap of 150, half the jitter off.
  assert.deepEqual(
    timers.map((h) => h.ms),
    [75, 94, 113, 113],
  );
  assert.equal(client.dialFailures, 4);
  await client.stop();
  assert.equal(timers[3]!.cleared, true);
  assert.equal(client.connects, 0);
});

test('a dialer stopped while its handshake is in flight closes with 1000 and announces no link', async (t) => {
  const srv = side();
  let stopped: Promise<void> | undefined;
  const dialer: { client?: PeerClient } = {};
  const server = await startPeerServer({
    host: '127.0.0.1',
    port: 0,
    ...LIMITS,
    onLink: (link) => {
      srv.attach(link);
      // The server holds the link before the dialer has read the 101 reply: stop now.
      assert.equal(dialer.client?.link, undefined, 'the dialer has not opened yet');
      stopped = dialer.client!.stop();
    },
  });
  t.after(() => server.close());
  const client = startPeerClient({
    url: `ws://127.0.0.1:${server.port}/peer`,
    ...LIMITS,
    onLink: () => assert.fail('a stopped dialer announces no link'),
  });
  dialer.client = client;
  await waitFor('the server link to close', () => srv.closes.length === 1);
  await stopped;
  assert.deepEqual({ code: srv.closes[0]!.code, by: srv.closes[0]!.by }, { code: 1000, by: 'remote' });
  assert.equal(client.connects, 0);
});

test('the server binds the asked host and port; a taken port is an error', async (t) => {
  const a = await startPeerServer({ host: '127.0.0.1', port: 0, onLink: () => {} });
  t.after(() => a.close());
  await assert.rejects(
    startPeerServer({ host: '127.0.0.1', port: a.port, bindRetryMs: 0, onLink: () => {} }),
    /cannot listen/,
  );
  // With a retry window, the bind waits for the port instead of failing.
  const b = await startPeerServer({ host: '127.0.0.1', port: 0, onLink: () => {} });
  const busy: number[] = [];
  setTimeout(() => b.close(), 700);
  const c = await startPeerServer({
    host: '127.0.0.1',
    port: b.port,
    bindRetryMs: 10_000,
    logger: { info: () => {}, warn: (o) => busy.push((o as { waitedMs: number }).waitedMs) },
    onLink: () => {},
  });
  t.after(() => c.close());
  assert.equal(c.port, b.port);
  assert.ok(busy.length >= 1, 'the wait for a busy port is logged');
  await assert.rejects(
    startPeerServer({ host: '127.0.0.1', port: 0, maxFrameBytes: 3, onLink: () => {} }),
    /maxFrameBytes/,
  );
});
