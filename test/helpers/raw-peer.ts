/**
 * A raw peer for tests: a `ws` client that speaks the replication protocol
 * frame by frame (src/transport/frame.ts, src/replication/wire.ts) with no
 * node behind it, so a test can send what no honest node would: a HELLO
 * claiming any term, probes, refusals and acks from a stranger.
 */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { decodeFrame, encodeFrame, FrameType } from '../../src/transport/frame.ts';
import { PROTOCOL_VERSION } from '../../src/replication/wire.ts';

export interface RawFrame {
  type: number;
  /** The JSON body of a control frame (null for binary ones). */
  body: Record<string, unknown> | null;
}

export class RawPeer {
  readonly frames: RawFrame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private seqOut = 1;
  private seqIn = 1;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      try {
        const f = decodeFrame(new Uint8Array(data), { maxFrameBytes: 2 ** 30, expectedSeq: this.seqIn });
        this.seqIn++;
        let body: Record<string, unknown> | null = null;
        try {
          body = JSON.parse(Buffer.from(f.payload).toString('utf8')) as Record<string, unknown>;
        } catch {
          body = null;
        }
        this.frames.push({ type: f.type, body });
      } catch (err) {
        this.frames.push({ type: -1, body: { error: (err as Error).message } });
      }
    });
    this.closed = new Promise((resolve) =>
      ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })),
    );
  }

  static async connect(port: number): Promise<RawPeer> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/peer`, { perMessageDeflate: false });
    // Listening before 'open': the peer's HELLO can come in the same read as the upgrade.
    const peer = new RawPeer(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.on('error', () => undefined);
    return peer;
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(type: number, body: object): void {
    if (!this.isOpen) return;
    const payload = new TextEncoder().encode(JSON.stringify(body));
    this.ws.send(encodeFrame(type as FrameType, 0, this.seqOut++, payload), { binary: true });
  }

  /** A HELLO as node `nodeId` in `role`, claiming `term` (no secret: this peer cannot prove anything). */
  hello(nodeId: string, role: 'primary' | 'replica', term: number, lastLsn: number): void {
    this.send(FrameType.Hello, {
      protocol: PROTOCOL_VERSION,
      clusterId: 'vrep',
      nodeId,
      role,
      term,
      lastLsn,
      nonce: randomBytes(32).toString('hex'),
      auth: false,
      httpAddress: null,
      listenPort: null,
    });
  }

  /** Waits until a frame of `type` has arrived (or the link closed); returns it or null. */
  async waitFor(type: number, timeoutMs: number): Promise<RawFrame | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.frames.find((x) => x.type === type);
      if (f) return f;
      if (!this.isOpen || Date.now() > deadline) return null;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): void {
    this.ws.terminate();
  }
}

export { FrameType };
