/**
 * A TCP proxy (net) for tests, placed between a ws client and the uWS peer
 * server. It passes the HTTP upgrade through, then parses WebSocket frames so
 * it can tamper with the next binary message in either direction (corrupt,
 * truncate, inflate, replay: whatever a mutator returns), and it can stop
 * reading from either side to simulate a peer that does not drain.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';

export type Direction = 'toServer' | 'toClient';
/** Gets the unmasked payload of one binary message; returns the payloads to forward instead. */
export type Mutator = (payload: Buffer) => Buffer[];

interface Parsed {
  fin: boolean;
  opcode: number;
  masked: boolean;
  payload: Buffer;
  raw: Buffer;
}

/** Parses one frame at the start of `buf`; undefined when incomplete. */
function parseWsFrame(buf: Buffer): Parsed | undefined {
  if (buf.length < 2) return undefined;
  const fin = (buf[0]! & 0x80) !== 0;
  const opcode = buf[0]! & 0x0f;
  const masked = (buf[1]! & 0x80) !== 0;
  let len = buf[1]! & 0x7f;
  let pos = 2;
  if (len === 126) {
    if (buf.length < 4) return undefined;
    len = buf.readUInt16BE(2);
    pos = 4;
  } else if (len === 127) {
    if (buf.length < 10) return undefined;
    len = Number(buf.readBigUInt64BE(2));
    pos = 10;
  }
  let mask: Buffer | undefined;
  if (masked) {
    if (buf.length < pos + 4) return undefined;
    mask = buf.subarray(pos, pos + 4);
    pos += 4;
  }
  if (buf.length < pos + len) return undefined;
  const payload = Buffer.from(buf.subarray(pos, pos + len));
  if (mask) for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!;
  return { fin, opcode, masked, payload, raw: buf.subarray(0, pos + len) };
}

function encodeWsFrame(fin: boolean, opcode: number, masked: boolean, payload: Buffer): Buffer {
  const len = payload.length;
  const extBytes = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const header = Buffer.alloc(2 + extBytes + (masked ? 4 : 0));
  header[0] = (fin ? 0x80 : 0) | opcode;
  header[1] = (masked ? 0x80 : 0) | (extBytes === 0 ? len : extBytes === 2 ? 126 : 127);
  if (extBytes === 2) header.writeUInt16BE(len, 2);
  if (extBytes === 8) header.writeBigUInt64BE(BigInt(len), 2);
  if (!masked) return Buffer.concat([header, payload]);
  const mask = randomBytes(4);
  mask.copy(header, 2 + extBytes);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= mask[i & 3]!;
  return Buffer.concat([header, body]);
}

/** Forwards one direction of one connection, tampering where asked. */
class Pump {
  private pending = Buffer.alloc(0);
  private inHandshake = true;

  constructor(
    private readonly direction: Direction,
    private readonly proxy: WsProxy,
    private readonly out: net.Socket,
  ) {}

  push(chunk: Buffer): void {
    this.pending = Buffer.concat([this.pending, chunk]);
    if (this.inHandshake) {
      const end = this.pending.indexOf('\r\n\r\n');
      if (end < 0) return;
      this.out.write(this.pending.subarray(0, end + 4));
      this.pending = this.pending.subarray(end + 4);
      this.inHandshake = false;
    }
    for (;;) {
      const frame = parseWsFrame(this.pending);
      if (!frame) return;
      this.pending = this.pending.subarray(frame.raw.length);
      const mutator = frame.opcode === 2 ? this.proxy.takeMutator(this.direction) : undefined;
      if (!mutator) {
        this.out.write(frame.raw);
        continue;
      }
      for (const payload of mutator(frame.payload)) {
        this.out.write(encodeWsFrame(frame.fin, frame.opcode, frame.masked, payload));
      }
    }
  }
}

export class WsProxy {
  readonly port: number;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly mutators: Record<Direction, Mutator[]> = { toServer: [], toClient: [] };
  private readonly paused: Record<Direction, boolean> = { toServer: false, toClient: false };
  /** Connections accepted so far. */
  connections = 0;

  private constructor(server: net.Server, port: number) {
    this.server = server;
    this.port = port;
  }

  /** Where new connections go; change it to move the proxy to a restarted upstream. */
  upstreamPort = 0;

  static async start(upstreamPort: number): Promise<WsProxy> {
    const server = net.createServer((client) => proxy.accept(client, proxy.upstreamPort));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new WsProxy(server, (server.address() as net.AddressInfo).port);
    proxy.upstreamPort = upstreamPort;
    return proxy;
  }

  private accept(client: net.Socket, upstreamPort: number): void {
    this.connections++;
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('close', () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
      s.on('error', () => {});
    }
    const toServer = new Pump('toServer', this, upstream);
    const toClient = new Pump('toClient', this, client);
    client.on('data', (d: Buffer) => toServer.push(d));
    upstream.on('data', (d: Buffer) => toClient.push(d));
    if (this.paused.toServer) client.pause();
    if (this.paused.toClient) upstream.pause();
  }

  /** Applies `mutator` to the next binary message going `direction`. */
  tamperNext(direction: Direction, mutator: Mutator): void {
    this.mutators[direction].push(mutator);
  }

  takeMutator(direction: Direction): Mutator | undefined {
    return this.mutators[direction].shift();
  }

  /** Stops reading what goes `direction` (on current and future connections): the sender's queue grows. */
  stopReading(direction: Direction): void {
    this.paused[direction] = true;
    this.setReading(direction, false);
  }

  resumeReading(direction: Direction): void {
    this.paused[direction] = false;
    this.setReading(direction, true);
  }

  private setReading(direction: Direction, on: boolean): void {
    // Sockets the proxy accepted (client side) have the proxy port as their local port.
    for (const s of this.sockets) {
      const isClientSide = s.localPort === this.port;
      if ((direction === 'toServer') === isClientSide) {
        if (on) s.resume();
        else s.pause();
      }
    }
  }

  /** Drops every open connection (both sides see the TCP connection end). */
  dropAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
