/**
 * Protected mode of the peer listener (issue 9, item 5): with `loopbackOnly`
 * (set by the replication layer when no secret or TLS authenticates peers),
 * a peer connecting from a non-loopback address is closed with 4040 and a
 * reason, and the refusal is logged; loopback peers are accepted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startPeerServer } from '../../src/transport/peer-server.ts';
import { isLoopbackAddress } from '../../src/transport/loopback.ts';
import { nonLoopbackIPv4 } from '../helpers/addresses.ts';

/** Dials the peer route; resolves with how the server ended the socket (or 'open' if it did not within 1 s). */
function dial(url: string): Promise<{ code: number; reason: string } | 'open'> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => {
      ws.terminate();
      resolve('open');
    }, 1000);
    ws.on('error', () => undefined);
    ws.on('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
  });
}

test('loopback addresses, as the socket libraries write them', () => {
  for (const a of [
    '127.0.0.1',
    '127.1.2.3',
    '::1',
    '::ffff:127.0.0.1',
    '0000:0000:0000:0000:0000:0000:0000:0001',
  ])
    assert.ok(isLoopbackAddress(a), a);
  for (const a of [
    '192.0.2.2',
    '10.0.0.1',
    '::ffff:10.0.0.1',
    '::',
    '0.0.0.0',
    'fe80::1',
    '',
    'localhost.evil',
  ])
    assert.ok(!isLoopbackAddress(a), a);
});

test('loopbackOnly: a non-loopback peer is closed with 4040 and a logged reason; a loopback peer is a link', async (t) => {
  const external = nonLoopbackIPv4();
  if (external === undefined) {
    t.skip('this machine has no non-loopback IPv4 address to connect from');
    return;
  }
  const warnings: { obj: Record<string, unknown>; msg: string }[] = [];
  const linked: string[] = [];
  const server = await startPeerServer({
    host: '0.0.0.0',
    port: 0,
    loopbackOnly: true,
    logger: {
      info: () => {},
      warn: (obj, msg) => warnings.push({ obj: obj as Record<string, unknown>, msg }),
    },
    onLink: (link) => linked.push(link.remoteAddress),
  });
  t.after(() => server.close());

  const refused = await dial(`ws://${external}:${server.port}/peer`);
  assert.notEqual(refused, 'open');
  assert.equal((refused as { code: number }).code, 4040);
  assert.match((refused as { reason: string }).reason, /loopback/);
  assert.ok(
    warnings.some((w) => /refused/.test(w.msg) && w.obj['remote'] === external),
    JSON.stringify(warnings),
  );
  assert.equal(linked.length, 0, 'the refused peer never became a link');

  assert.equal(await dial(`ws://127.0.0.1:${server.port}/peer`), 'open');
  assert.equal(linked.join(), '127.0.0.1');

  // Without protected mode (a secret or TLS authenticates, or insecure_no_auth), any address is a link.
  const open = await startPeerServer({
    host: '0.0.0.0',
    port: 0,
    onLink: (link) => linked.push(link.remoteAddress),
  });
  t.after(() => open.close());
  assert.equal(await dial(`ws://${external}:${open.port}/peer`), 'open');
  assert.equal(linked.at(-1), external);
});
