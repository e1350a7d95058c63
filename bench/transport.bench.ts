/**
 * Peer transport throughput: 1 MiB binary frames over loopback between two
 * processes (this one and a child it spawns), both directions through the
 * PeerLink layer (frame codec + CRC32C + backpressure), next to a raw TCP
 * (net) copy of the same bytes measured in the same run. The questions it
 * answers: which side should dial for bulk data, and what mutual TLS (the
 * node TLS front + wss dialer) costs against plain links (docs/wire-protocol.md).
 *
 *   node --import tsx bench/transport.bench.ts           # parent (the bench)
 *   node --import tsx bench/transport.bench.ts child ... # the child role (spawned)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { emit, isQuick, measure, withRatios, type Row } from './lib/harness.ts';
import { decodeFrame, encodeFrame, FRAME_HEADER_BYTES, FrameType } from '../src/transport/frame.ts';
import type { LinkLimits, PeerLink } from '../src/transport/link.ts';
import { startPeerServer } from '../src/transport/peer-server.ts';
import { startPeerClient } from '../src/transport/peer-client.ts';
import type { PeerTlsFiles } from '../src/transport/tls-config.ts';
import { makeTestPki } from '../test/helpers/certs.ts';

const FRAME_BYTES = 1024 * 1024;
const LIMITS: LinkLimits = {
  maxFrameBytes: FRAME_BYTES + FRAME_HEADER_BYTES,
  maxBufferedBytes: 8 * FRAME_BYTES,
  slowPeerTimeoutMs: 60_000,
};

type Case =
  | 'ws-to-uws'
  | 'uws-to-ws'
  | 'tls-ws-to-uws'
  | 'tls-uws-to-ws'
  | 'tcp-child-to-parent'
  | 'tcp-parent-to-child'
  | 'tls-tcp-child-to-parent';

const isLinkCase = (kind: Case): boolean => kind.endsWith('ws-to-uws') || kind.endsWith('uws-to-ws');
const isTls = (kind: Case): boolean => kind.startsWith('tls-');
/** The direction of a link case, TLS or not. */
const dialerSends = (kind: Case): boolean => kind.endsWith('ws-to-uws');

/** The same files, read, for node tls directly. */
function tlsBuffers(pkiDir: string, role: 'server' | 'client'): { cert: Buffer; key: Buffer; ca: Buffer } {
  const files = tlsFiles(pkiDir, role);
  return { cert: readFileSync(files.cert), key: readFileSync(files.key), ca: readFileSync(files.ca) };
}

/** The bench's PKI: server and client certificates from one CA, PEM files in pkiDir. */
function tlsFiles(pkiDir: string, role: 'server' | 'client'): PeerTlsFiles {
  return {
    cert: path.join(pkiDir, `${role}-a.crt`),
    key: path.join(pkiDir, `${role}-a.key`),
    ca: path.join(pkiDir, 'ca-a.crt'),
  };
}

/** Sends `count` frames of `payload`, waiting on backpressure. */
async function pump(link: PeerLink, payload: Uint8Array, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    let result = link.send({ type: FrameType.Records, payload });
    while (result === 'dropped') {
      if (!(await link.whenWritable())) throw new Error('link closed while sending');
      result = link.send({ type: FrameType.Records, payload });
    }
    if (result === 'backpressure' && !(await link.whenWritable()))
      throw new Error('link closed while sending');
  }
}

/** Writes `totalBytes` of `chunk` to a socket, honouring its backpressure. */
async function pumpTcp(socket: net.Socket, chunk: Buffer, totalBytes: number): Promise<void> {
  for (let sent = 0; sent < totalBytes; sent += chunk.length) {
    if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
  }
}

// ---- child role ----------------------------------------------------------

async function child(kind: Case, port: number, frames: number, pkiDir: string): Promise<void> {
  const payload = randomBytes(FRAME_BYTES);
  const total = frames * FRAME_BYTES;
  if (isLinkCase(kind)) {
    let received = 0;
    const client = startPeerClient({
      url: `${isTls(kind) ? 'wss' : 'ws'}://127.0.0.1:${port}/peer`,
      ...(isTls(kind) && { tls: tlsFiles(pkiDir, 'client') }),
      ...LIMITS,
      onLink: (link) => {
        link.onFrame((frame) => {
          if (dialerSends(kind) && frame.type === FrameType.Hello) {
            void pump(link, payload, frames);
          } else if (!dialerSends(kind) && ++received === frames) {
            link.send({ type: FrameType.Ack, payload: new Uint8Array(0) });
          }
        });
        link.onClose(() => void client.stop());
      },
    });
    return;
  }
  const socket = isTls(kind)
    ? tls.connect({ host: '127.0.0.1', port, ...tlsBuffers(pkiDir, 'client') })
    : net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  if (kind.endsWith('child-to-parent')) {
    socket.once('data', () => void pumpTcp(socket, payload, total));
  } else {
    let received = 0;
    socket.on('data', (d: Buffer) => {
      received += d.length;
      if (received === total) socket.write(Buffer.of(1));
    });
  }
  socket.on('close', () => process.exit(0));
}

// ---- parent role ---------------------------------------------------------

function spawnChild(kind: Case, port: number, frames: number, pkiDir: string): void {
  const self = fileURLToPath(import.meta.url);
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', self, 'child', kind, String(port), String(frames), pkiDir],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  proc.on('exit', (code) => {
    if (code !== 0 && code !== null) process.stderr.write(`transport bench child ${kind} exited ${code}\n`);
  });
}

/** One timed transfer of `frames` x 1 MiB in the given direction; returns MB/s. */
async function runCase(kind: Case, frames: number, pkiDir: string): Promise<number> {
  const payload = randomBytes(FRAME_BYTES);
  const total = frames * FRAME_BYTES;
  let start = 0;
  let done!: (end: number) => void;
  const finished = new Promise<number>((resolve) => (done = resolve));
  let port: number;
  let closeServer: () => void;
  if (isLinkCase(kind)) {
    let received = 0;
    const server = await startPeerServer({
      host: '127.0.0.1',
      port: 0,
      ...LIMITS,
      ...(isTls(kind) && { tls: tlsFiles(pkiDir, 'server') }),
      onLink: (link) => {
        link.onFrame((frame) => {
          if (dialerSends(kind) && ++received === frames) done(performance.now());
          if (!dialerSends(kind) && frame.type === FrameType.Ack) done(performance.now());
        });
        start = performance.now();
        if (dialerSends(kind)) link.send({ type: FrameType.Hello, payload: new Uint8Array(0) });
        else void pump(link, payload, frames);
      },
    });
    port = server.port;
    closeServer = () => server.close();
  } else {
    const onSocket = (socket: net.Socket): void => {
      socket.setNoDelay(true);
      start = performance.now();
      if (kind.endsWith('child-to-parent')) {
        let received = 0;
        socket.on('data', (d: Buffer) => {
          received += d.length;
          if (received === total) done(performance.now());
        });
        socket.write(Buffer.of(1));
      } else {
        socket.once('data', () => done(performance.now()));
        void pumpTcp(socket, payload, total);
      }
      void finished.then(() => socket.destroy());
    };
    // TLS: the clock starts after the handshake, as it does for the links.
    const server = isTls(kind)
      ? tls.createServer(
          { ...tlsBuffers(pkiDir, 'server'), requestCert: true, rejectUnauthorized: true },
          onSocket,
        )
      : net.createServer(onSocket);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
    closeServer = () => {
      server.close();
      server.unref();
    };
  }
  spawnChild(kind, port, frames, pkiDir);
  const timeout = setTimeout(() => {
    process.stderr.write(`transport bench: ${kind} timed out\n`);
    process.exit(1);
  }, 120_000);
  const end = await finished;
  clearTimeout(timeout);
  closeServer();
  return total / 1e6 / ((end - start) / 1000);
}

const names: Record<Case, string> = {
  'tcp-child-to-parent': 'raw TCP (net), dialer -> listener',
  'tcp-parent-to-child': 'raw TCP (net), listener -> dialer',
  'tls-tcp-child-to-parent': 'raw mutual TLS (node tls), dialer -> listener',
  'ws-to-uws': 'PeerLink ws dialer -> uWS listener',
  'uws-to-ws': 'PeerLink uWS listener -> ws dialer',
  'tls-ws-to-uws': 'PeerLink mTLS, wss dialer -> TLS front + uWS listener',
  'tls-uws-to-ws': 'PeerLink mTLS, TLS front + uWS listener -> wss dialer',
};

async function parent(): Promise<void> {
  const quick = isQuick();
  const frames = quick ? 32 : 512;
  const rounds = quick ? 1 : 5;
  const cases: Case[] = [
    'tcp-child-to-parent',
    'tcp-parent-to-child',
    'tls-tcp-child-to-parent',
    'ws-to-uws',
    'uws-to-ws',
    'tls-ws-to-uws',
    'tls-uws-to-ws',
  ];
  const pkiDir = mkdtempSync(path.join(os.tmpdir(), 'vrep-bench-pki-'));
  makeTestPki(pkiDir);
  const best = new Map<Case, number>();
  // Interleaved rounds, best of each: the machine is shared and noisy.
  for (let round = 0; round < rounds; round++) {
    for (const kind of cases) {
      const mbPerSec = await runCase(kind, frames, pkiDir);
      best.set(kind, Math.max(best.get(kind) ?? 0, mbPerSec));
    }
  }
  rmSync(pkiDir, { recursive: true, force: true });
  const row = (kind: Case): Row => ({
    name: names[kind],
    value: Math.round(best.get(kind)!),
    unit: 'MB/s',
  });
  const tcpBase = names['tcp-child-to-parent'];
  // What the frame layer itself costs per frame, against a plain copy of the same bytes.
  const payload = randomBytes(FRAME_BYTES);
  const copyTarget = Buffer.alloc(FRAME_BYTES);
  const mbPerSec = (opsPerSec: number): number => Math.round((opsPerSec * FRAME_BYTES) / 1e6);
  const copy = measure(() => payload.copy(copyTarget));
  const codec = measure(() =>
    decodeFrame(encodeFrame(FrameType.Records, 0, 1, payload), {
      maxFrameBytes: LIMITS.maxFrameBytes,
      expectedSeq: 1,
    }),
  );
  emit('transport', [
    {
      title: `1 MiB binary frames, ${frames} per run, two processes on loopback (best of ${rounds})`,
      rows: withRatios(cases.map(row), tcpBase),
    },
    {
      title: 'Dial direction for bulk data: ratio of the two PeerLink directions',
      rows: withRatios([row('ws-to-uws'), row('uws-to-ws')], names['ws-to-uws']),
    },
    {
      title: 'Mutual TLS vs plain, dialer -> listener (bulk direction), and raw node TLS',
      rows: withRatios(
        [row('ws-to-uws'), row('tls-ws-to-uws'), row('tls-tcp-child-to-parent')],
        names['ws-to-uws'],
      ),
    },
    {
      title: 'Mutual TLS vs plain, listener -> dialer',
      rows: withRatios([row('uws-to-ws'), row('tls-uws-to-ws')], names['uws-to-ws']),
    },
    {
      title: 'Frame codec on one core, 1 MiB payload (in process)',
      rows: withRatios(
        [
          { name: 'Buffer copy of the payload', value: mbPerSec(copy.opsPerSec), unit: 'MB/s' },
          {
            name: 'encodeFrame + decodeFrame (copy + 2x CRC32C)',
            value: mbPerSec(codec.opsPerSec),
            unit: 'MB/s',
          },
        ],
        'Buffer copy of the payload',
      ),
    },
  ]);
  process.exit(0);
}

if (process.argv[2] === 'child') {
  await child(process.argv[3] as Case, Number(process.argv[4]), Number(process.argv[5]), process.argv[6]!);
} else {
  await parent();
}
