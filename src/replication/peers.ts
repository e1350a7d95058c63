/**
 * The node's links to its peers, as the core's transport: one session per
 * peer, frames turned into steps of the core and the core's messages into
 * frames. It owns the peer listener and the dialers (to the configured
 * primary; to the members' addresses while this node leads; to addresses
 * the operator adds), the feeders that pack RECORDS frames, and both ends
 * of a full sync's file transfer. It decides nothing: who follows whom, what
 * to send and what to accept are the core's.
 *
 * One session per peer id: a second link to a peer is closed as a
 * duplicate, unless it is the link to the configured primary (that one is
 * the operator's word and wins). A member's dialer pauses while a session
 * with it exists. With elections (role auto) every node dials every member
 * (a candidate needs links to its voters, whatever its role); when two
 * links cross, both ends keep the one dialed by the smaller node id.
 */
import { open } from 'node:fs/promises';
import { isVrepError, VrepError } from '../errors.ts';
import path from 'node:path';
import { FrameType, type Frame } from '../transport/frame.ts';
import type { PeerLink } from '../transport/link.ts';
import type { PeerServer } from '../transport/peer-server.ts';
import type { PeerClient } from '../transport/peer-client.ts';
import type { Input, ReplicationCore } from '../consensus/core.ts';
import type { Entry, Outgoing } from '../consensus/messages.ts';
import type { Epoch } from '../consensus/term-history.ts';
import { decodeRecord, Op, peekRecord, recordTerm } from '../log/record.ts';
import { RecordLimits } from '../limits.ts';
import type { Store } from '../store/store.ts';
import type { SnapshotPin } from '../store/snapshots.ts';
import type { SnapshotStaging } from '../store/snapshot-staging.ts';
import { checkApplicable, checkApplicableTo, dimensionsOf } from '../store/state.ts';
import type { LogRecord } from '../log/record.ts';
import { peerDialer, peerListener, sumLinkCounters, type LinkTotals } from './peer-links.ts';
import { PeerSession, type LocalIdentity, type SessionLogger } from './peer-session.ts';
import { ReplicationCloseCodes } from './close-codes.ts';
import { Feeder, sendPaced } from './feeder.ts';
import type { RecordsSource } from './records-source.ts';
import { decodeRecordsFrame } from './records-payload.ts';
import {
  parseManifestText,
  SnapshotReceiver,
  totalBytes,
  type ChunkEntry,
  type OfferedSnapshot,
} from './snapshot-receiver.ts';
import { syncProgress } from './sync-progress.ts';
import { TokenBucket } from './throttle.ts';
import type { ResolvedReplication } from './settings.ts';
import type { SyncProgress } from './types.ts';
import {
  decodeControl,
  decodeCoreMessage,
  decodeSnapshotPiece,
  encodeCoreMessage,
  encodeSnapshotPiece,
  frameName,
  protocolError,
  snapshotAcceptSchema,
  snapshotEndSchema,
  snapshotOfferSchema,
  snapshotProgressSchema,
  SNAPSHOT_PIECE_BYTES,
  type SnapshotOfferFrame,
} from './wire.ts';

/** Snapshot bytes sent ahead of the follower's progress reports at most. */
export const FULLSYNC_WINDOW_BYTES = 32 * 1024 * 1024;
/** A follower reports full-sync progress every this many bytes written. */
const PROGRESS_EVERY_BYTES = 4 * 1024 * 1024;
/** Peers with a session at once, at most (members and observers). */
export const MAX_PEER_SESSIONS = 128;

export interface PeersHooks {
  step(input: Input): void;
  core(): ReplicationCore;
  /** A follower's lag as the leader measures it, ms (sent with heartbeats). */
  lagMs(peer: string): number;
  /** A dialed member address answered as node `id` (it may be resolved in the membership). */
  resolved(address: string, id: string): void;
  event(e: PeersEvent): void;
}

export type PeersEvent =
  | { type: 'connected'; peer: string }
  | { type: 'disconnected'; peer: string; reason: string }
  | {
      type: 'fullSyncStarted';
      peer: string;
      snapshotLsn: number;
      fromChunk: number;
      side: 'sender' | 'receiver';
    }
  | { type: 'fullSyncInstalled'; peer: string; snapshotLsn: number; bytes: number }
  /** The leader sent a snapshot's last byte (`bytes`: sent in this run, after any resumed part). */
  | { type: 'fullSyncSent'; peer: string; snapshotLsn: number; bytes: number };

interface Dialer {
  address: string;
  kind: 'primary' | 'member' | 'added';
  client: PeerClient;
  /** The node id that answered at this address (after the first handshake). */
  id: string | null;
  /** addReplica waiting for the id. */
  waiters: { resolve: (id: string) => void; reject: (err: Error) => void }[];
  /** Being added by the operator: kept until the address is a member (finishAdd). */
  adding: boolean;
}

/** A full sync this node sends. */
interface Outbound {
  peer: string;
  term: number;
  pin: SnapshotPin;
  snapshotLsn: number;
  chunks: ChunkEntry[];
  total: number;
  ackedBytes: number;
  wake: (() => void) | null;
  startedAtMs: number;
  sent: number;
  fromChunk: number;
  running: boolean;
}

/** A full sync this node receives. */
interface Inbound {
  leader: string;
  offer: SnapshotOfferFrame;
  receiver: SnapshotReceiver | null;
  lastReportedBytes: number;
}

export class Peers {
  private server: PeerServer | null = null;
  private readonly sessions = new Map<string, PeerSession>();
  private readonly pending = new Set<PeerSession>();
  private readonly dialers = new Map<string, Dialer>();
  private readonly feeders = new Map<string, Feeder>();
  private readonly outbound = new Map<string, Outbound>();
  /** One bandwidth budget per peer link: its records and a full sync sent alongside share it. */
  private readonly throttles = new Map<string, TokenBucket | null>();
  private inbound: Inbound | null = null;
  /**
   * The collections of the snapshot coming in, as the records streamed
   * alongside it change them: those records are checked against this, not
   * the log they will not follow (until the core has installed the snapshot).
   */
  private alongside: { snapshotLsn: number; dims: Map<string, number>; checkedThrough: number } | null = null;
  /** The last full sync put in place, by snapshot LSN, until the store installs it: its directory, and its chunks as applied on arrival. */
  private readonly received = new Map<number, { dir: string; staged: SnapshotStaging }>();
  private configuredPrimary: string | null;
  private stopped = false;
  /** The leader's measure of this follower's lag, from its heartbeats. */
  masterLagMs = 0;
  counters = { fullSyncs: 0, partialSyncs: 0, lastSyncMs: 0 };

  constructor(
    private readonly local: LocalIdentity,
    private settings: ResolvedReplication,
    private readonly logger: SessionLogger,
    private readonly store: Store,
    private readonly records: RecordsSource,
    private readonly hooks: PeersHooks,
  ) {
    this.configuredPrimary = settings.masterAddress;
  }

  async start(): Promise<void> {
    this.server = await peerListener(this.settings, this.logger, (link) => this.accept(link, null));
    this.reconcile();
  }

  get peerPort(): number | null {
    return this.server?.port ?? null;
  }

  /** The session with `peer`, if one is up. */
  session(peer: string): PeerSession | undefined {
    return this.sessions.get(peer);
  }

  /** The HTTP address a peer told us (for errors naming the primary). */
  httpAddressOf(peer: string | null): string | null {
    return peer === null ? null : (this.sessions.get(peer)?.peer?.httpAddress ?? null);
  }

  get configuredPrimaryAddress(): string | null {
    return this.configuredPrimary;
  }

  // ------------------------------------------------------------------ dialing

  /** Follows the primary at `address` (null: wait to be dialed). Restarts the links. */
  setConfiguredPrimary(address: string | null): void {
    this.configuredPrimary = address;
    for (const [addr, d] of this.dialers) {
      if (d.kind === 'primary') {
        void d.client.stop();
        this.dialers.delete(addr);
      }
    }
    for (const s of [...this.sessions.values()])
      s.fail(ReplicationCloseCodes.operator, 'reconfigured by the operator', 'ERR_ROLE', 'info');
    this.reconcile();
  }

  /**
   * Dials `address` and resolves with the node id that answers there
   * (addReplica). The dialer stays until finishAdd, by when the address is
   * a member (or the add failed).
   */
  dialAndIdentify(address: string): Promise<string> {
    const d = this.dialers.get(address) ?? this.startDialer(address, 'added');
    d.adding = true;
    if (d.id !== null && d.client.link !== undefined) return Promise.resolve(d.id);
    return new Promise((resolve, reject) => d.waiters.push({ resolve, reject }));
  }

  finishAdd(address: string): void {
    const d = this.dialers.get(address);
    if (d) d.adding = false;
    this.reconcile();
  }

  /** Stops dialing `address` and closes the session with `peer` (a member removed). */
  async drop(peer: string, address: string | null): Promise<void> {
    for (const [addr, d] of this.dialers) {
      if (addr === address || d.id === peer) {
        this.dialers.delete(addr);
        await d.client.stop();
      }
    }
    this.sessions
      .get(peer)
      ?.fail(ReplicationCloseCodes.operator, 'removed by the operator', 'ERR_ROLE', 'info');
  }

  /**
   * Makes the dialers what the role and the membership ask for: the
   * configured primary (a follower), the members' addresses (a leader),
   * addresses being added. A member's dialer pauses while a session with it
   * exists (it dialed us).
   */
  reconcile(): void {
    if (this.stopped) return;
    const core = this.hooks.core();
    const want = new Map<string, Dialer['kind']>();
    if (core.role !== 'leader' && this.configuredPrimary !== null)
      want.set(this.configuredPrimary, 'primary');
    if (core.role === 'leader' || this.settings.elections !== null) {
      for (const m of core.membership.members) {
        if (m.address === null || m.id === this.local.nodeId) continue;
        if (m.id !== null && this.sessions.has(m.id)) {
          const s = this.sessions.get(m.id) as PeerSession;
          const ours = [...this.dialers.values()].some((d) => d.client.link === s.link);
          if (!ours) continue;
        }
        want.set(m.address, 'member');
      }
    }
    for (const [address, d] of this.dialers) {
      if (d.adding && !want.has(address)) want.set(address, d.kind);
    }
    for (const [address, d] of [...this.dialers]) {
      const kind = want.get(address);
      // A link dialed as a member's is not the operator's word: at the configured primary's address
      // (a demoted primary pointed at a member) the dialer starts over as the primary's, and back.
      if (kind === undefined || (kind !== d.kind && (kind === 'primary' || d.kind === 'primary'))) {
        this.dialers.delete(address);
        for (const w of d.waiters) w.reject(new Error(`stopped dialing ${address}`));
        void d.client.stop();
      }
    }
    for (const [address, kind] of want) if (!this.dialers.has(address)) this.startDialer(address, kind);
  }

  private startDialer(address: string, kind: Dialer['kind']): Dialer {
    const d: Dialer = {
      address,
      kind,
      id: null,
      waiters: [],
      adding: false,
      client: undefined as unknown as PeerClient,
    };
    d.client = peerDialer(address, this.settings, this.logger, (link) => this.accept(link, d));
    this.dialers.set(address, d);
    return d;
  }

  // ------------------------------------------------------------------ sessions

  private accept(link: PeerLink, dialer: Dialer | null): void {
    if (this.stopped) {
      link.close(ReplicationCloseCodes.shutdown, 'node stopping');
      return;
    }
    if (this.pending.size + this.sessions.size >= MAX_PEER_SESSIONS) {
      link.close(ReplicationCloseCodes.refused, `more than ${MAX_PEER_SESSIONS} peer links`);
      return;
    }
    const session = new PeerSession(
      link,
      this.local,
      this.logger,
      {
        established: (s) => this.established(s, dialer),
        frame: (s, frame) => this.frame(s, frame),
        closed: (s, reason) => this.closed(s, reason, dialer),
      },
      dialer !== null,
    );
    this.pending.add(session);
  }

  private established(s: PeerSession, dialer: Dialer | null): void {
    this.pending.delete(s);
    const peer = s.peerId as string;
    if (dialer !== null) {
      dialer.id = peer;
      s.viaConfiguredPrimary = dialer.kind === 'primary';
      if (dialer.kind !== 'primary') this.hooks.resolved(dialer.address, peer);
      for (const w of dialer.waiters.splice(0)) w.resolve(peer);
    } else if (this.settings.elections !== null) {
      // It dialed in: where it listens names it too (a voter known by address until now).
      this.hooks.resolved(s.listenAddress, peer);
    }
    const old = this.sessions.get(peer);
    if (old && !old.link.closed) {
      // Crossed links (role auto): the one dialed by the smaller id wins at both ends.
      const preferred = (dialer !== null) === this.local.nodeId < peer;
      if (this.settings.elections !== null && preferred) {
        this.forget(peer);
        old.fail(
          ReplicationCloseCodes.duplicate,
          'replaced by the link dialed by the smaller node id',
          'ERR_DUPLICATE',
          'info',
        );
        this.hooks.step({ type: 'disconnected', peer });
      } else if (s.viaConfiguredPrimary && !old.viaConfiguredPrimary) {
        this.forget(peer);
        old.fail(
          ReplicationCloseCodes.duplicate,
          'replaced by the link to the configured primary',
          'ERR_DUPLICATE',
          'info',
        );
        this.hooks.step({ type: 'disconnected', peer });
      } else {
        s.fail(
          ReplicationCloseCodes.duplicate,
          `${this.local.nodeId} already has a link with ${peer}`,
          'ERR_DUPLICATE',
          'info',
        );
        dialer?.client.holdOff(this.settings.timing.reconnectIntervalMs);
        return;
      }
    }
    this.sessions.set(peer, s);
    this.hooks.step({ type: 'connected', peer, viaConfiguredPrimary: s.viaConfiguredPrimary });
    this.hooks.event({ type: 'connected', peer });
    this.reconcile();
  }

  private closed(s: PeerSession, reason: string, dialer: Dialer | null): void {
    this.pending.delete(s);
    const peer = s.peerId;
    if (peer === null || this.sessions.get(peer) !== s) return;
    this.forget(peer);
    if (/\b4043\b/.test(reason)) dialer?.client.holdOff(this.settings.timing.reconnectIntervalMs);
    this.hooks.step({ type: 'disconnected', peer });
    this.hooks.event({ type: 'disconnected', peer, reason });
    this.reconcile();
  }

  /** Drops the session with `peer` and what ran on it (its feeder, a full sync either way). */
  private forget(peer: string): void {
    this.sessions.delete(peer);
    this.feeders.get(peer)?.close();
    this.feeders.delete(peer);
    this.throttles.delete(peer);
    const out = this.outbound.get(peer);
    if (out) {
      out.pin.release();
      out.wake?.();
      this.outbound.delete(peer);
    }
    if (this.inbound?.leader === peer) {
      void this.inbound.receiver?.abort();
      this.inbound = null;
    }
  }

  // ------------------------------------------------------------------ outgoing (runtime ports)

  send(m: Outgoing): void {
    const s = this.sessions.get(m.to);
    if (!s || s.link.closed) return;
    switch (m.type) {
      case 'append':
        this.feeder(m.to, s).request(m);
        return;
      case 'snapshotAccept':
        this.acceptSnapshot(s, m.term, m.snapshotLsn);
        return;
      case 'snapshotOffer':
        return; // made by offerSnapshot (it carries the manifest)
      case 'refuse': {
        const { type, payload } = encodeCoreMessage(m);
        s.link.send({ type, payload });
        // Dialing again sooner than the reconnect interval would change nothing.
        if (m.code === 'untrusted' || m.code === 'diverged' || m.code === 'stale-term') {
          setTimeout(
            () => s.fail(ReplicationCloseCodes.refused, m.reason, 'ERR_DIVERGED', 'info'),
            50,
          ).unref();
        }
        return;
      }
      case 'heartbeat': {
        const { type, payload } = encodeCoreMessage(m);
        // The follower's lag rides along, as the leader measures it.
        const body = JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
        body['lagMs'] = this.hooks.lagMs(m.to);
        s.sendControl(type, body);
        return;
      }
      default: {
        const { type, payload } = encodeCoreMessage(m);
        s.link.send({ type, payload });
      }
    }
  }

  disconnect(peer: string, reason: string): void {
    this.sessions.get(peer)?.fail(ReplicationCloseCodes.timeout, reason, 'ERR_TIMEOUT');
  }

  private feeder(peer: string, s: PeerSession): Feeder {
    let f = this.feeders.get(peer);
    if (!f) {
      f = new Feeder(peer, s, this.throttle(peer), {
        records: this.records,
        step: (input) => this.hooks.step(input),
        openCursor: (fromLsn) => this.store.openCursor({ from: fromLsn, bound: 'appended' }),
        nowMs: () => Date.now(),
        warn: (obj, msg) => this.logger.warn(obj, msg),
      });
      this.feeders.set(peer, f);
    }
    return f;
  }

  private throttle(peer: string): TokenBucket | null {
    let bucket = this.throttles.get(peer);
    if (bucket === undefined) {
      const bw = this.settings.bandwidthBytesPerSec;
      bucket = bw ? new TokenBucket({ bytesPerSec: bw }, Date.now()) : null;
      this.throttles.set(peer, bucket);
    }
    return bucket;
  }

  // ------------------------------------------------------------------ full sync, sending side

  /** Offers the newest snapshot to `to` (the core decided it needs one). */
  offerSnapshot(to: string, term: number, probeId: number, force: boolean): void {
    void this.offer(to, term, probeId, force).catch((err: unknown) => {
      this.logger.error(
        { peer: to, err: (err as Error).message },
        'replication: could not offer a full sync',
      );
      this.sessions
        .get(to)
        ?.fail(ReplicationCloseCodes.protocol, `full sync offer failed: ${(err as Error).message}`);
    });
  }

  private async offer(to: string, term: number, probeId: number, force: boolean): Promise<void> {
    const pin = await this.store.pinSnapshot();
    const s = this.sessions.get(to);
    if (!s || s.link.closed) {
      pin.release();
      return;
    }
    const previous = this.outbound.get(to);
    if (previous) {
      previous.pin.release();
      previous.wake?.();
    }
    const manifest = parseManifestText(pin.manifestText);
    // This leader's whole history: the snapshot's is its prefix, and the epochs begun since are
    // the ones the records after the snapshot belong to.
    const history: Epoch[] = this.hooks.core().termHistory;
    const out: Outbound = {
      peer: to,
      term,
      pin,
      snapshotLsn: manifest.lsn,
      chunks: manifest.chunks,
      total: totalBytes(manifest.chunks),
      ackedBytes: 0,
      wake: null,
      startedAtMs: Date.now(),
      sent: 0,
      fromChunk: 0,
      running: false,
    };
    this.outbound.set(to, out);
    this.counters.fullSyncs++;
    s.sendControl(FrameType.SnapshotOffer, {
      term,
      probeId,
      snapshotLsn: manifest.lsn,
      history,
      force,
      manifestText: pin.manifestText,
      totalBytes: out.total,
      primaryLastLsn: this.store.lastLsn,
    } satisfies SnapshotOfferFrame);
    this.hooks.step({ type: 'snapshotOffered', to, term, snapshotLsn: manifest.lsn });
  }

  private async streamSnapshot(s: PeerSession, out: Outbound, fromChunk: number): Promise<void> {
    out.running = true;
    out.fromChunk = fromChunk;
    out.startedAtMs = Date.now();
    this.hooks.event({
      type: 'fullSyncStarted',
      peer: out.peer,
      snapshotLsn: out.snapshotLsn,
      fromChunk,
      side: 'sender',
    });
    this.logger.info(
      {
        peer: out.peer,
        snapshotLsn: out.snapshotLsn,
        chunks: out.chunks.length,
        fromChunk,
        bytes: out.total,
      },
      'replication: full sync started',
    );
    const throttle = this.throttle(out.peer);
    for (let i = fromChunk; i < out.chunks.length; i++) {
      const chunk = out.chunks[i] as ChunkEntry;
      const handle = await open(path.join(out.pin.dir, chunk.file), 'r');
      try {
        for (let offset = 0; offset < chunk.bytes;) {
          const n = Math.min(SNAPSHOT_PIECE_BYTES, chunk.bytes - offset);
          const piece = new Uint8Array(n);
          const { bytesRead } = await handle.read(piece, 0, n, offset);
          if (bytesRead !== n) throw new Error(`${chunk.file}: short read at ${offset}`);
          // Window: the follower reports what it has written; never run far ahead of its disk.
          while (
            out.sent - out.ackedBytes > FULLSYNC_WINDOW_BYTES &&
            !s.link.closed &&
            this.outbound.get(out.peer) === out
          ) {
            await new Promise<void>((resolve) => (out.wake = resolve));
          }
          if (this.outbound.get(out.peer) !== out) return;
          const ok = await sendPaced(
            s.link,
            throttle,
            () => Date.now(),
            { type: FrameType.SnapshotChunk, payload: encodeSnapshotPiece(i, offset, piece) },
            'bulk',
          );
          if (!ok) return;
          offset += n;
          out.sent += n;
        }
      } finally {
        await handle.close();
      }
    }
    s.sendControl(FrameType.SnapshotEnd, { snapshotLsn: out.snapshotLsn, chunks: out.chunks.length });
    // The follower installs from its own copy: the files here are not needed any more.
    out.pin.release();
    this.outbound.delete(out.peer);
    this.hooks.event({ type: 'fullSyncSent', peer: out.peer, snapshotLsn: out.snapshotLsn, bytes: out.sent });
    this.logger.info(
      { peer: out.peer, snapshotLsn: out.snapshotLsn, bytes: out.sent, ms: Date.now() - out.startedAtMs },
      'replication: full sync sent',
    );
  }

  /** Progress of the full sync being sent to `peer`, if one runs. */
  outboundProgress(peer: string): SyncProgress | null {
    const out = this.outbound.get(peer);
    if (!out || !out.running) return null;
    const skipped = totalBytes(out.chunks.slice(0, out.fromChunk));
    return syncProgress(skipped + out.sent, out.total, out.sent, Date.now() - out.startedAtMs, out.fromChunk);
  }

  // ------------------------------------------------------------------ full sync, receiving side

  private acceptSnapshot(s: PeerSession, term: number, snapshotLsn: number): void {
    const inbound = this.inbound;
    if (!inbound || inbound.leader !== s.peerId || inbound.offer.snapshotLsn !== snapshotLsn) return;
    const offered: OfferedSnapshot = {
      snapshotLsn,
      term: inbound.offer.term,
      history: inbound.offer.history,
      manifestText: inbound.offer.manifestText,
    };
    void SnapshotReceiver.start(this.store.dataDir, offered).then(
      (receiver) => {
        if (this.inbound !== inbound || s.link.closed) {
          void receiver.abort();
          return;
        }
        inbound.receiver = receiver;
        inbound.lastReportedBytes = 0;
        this.alongside = {
          snapshotLsn,
          dims: dimensionsOf(receiver.staged.manifest.collections.map((c) => [c.name, c] as const)),
          checkedThrough: snapshotLsn,
        };
        s.sendControl(FrameType.SnapshotAccept, { term, snapshotLsn, fromChunk: receiver.fromChunk });
        this.hooks.event({
          type: 'fullSyncStarted',
          peer: inbound.leader,
          snapshotLsn,
          fromChunk: receiver.fromChunk,
          side: 'receiver',
        });
      },
      (err: unknown) =>
        s.fail(ReplicationCloseCodes.protocol, `full sync: ${(err as Error).message}`, 'ERR_WAL_IO'),
    );
  }

  /** Where the full sync at `snapshotLsn` was put in place, and its staged state (the runtime installs it). */
  receivedSnapshot(snapshotLsn: number): { dir: string; staged: SnapshotStaging } | undefined {
    return this.received.get(snapshotLsn);
  }

  forgetReceived(snapshotLsn: number): void {
    this.received.delete(snapshotLsn);
  }

  /** Progress of the full sync this node receives, if one runs. */
  inboundProgress(): SyncProgress | null {
    const r = this.inbound?.receiver;
    if (!r) return null;
    const { bytesDone, bytesTotal } = r.progress;
    return syncProgress(bytesDone, bytesTotal, r.bytesReceived, Date.now() - r.startedAtMs, r.fromChunk);
  }

  get receivingFrom(): string | null {
    return this.inbound?.receiver ? this.inbound.leader : null;
  }

  // ------------------------------------------------------------------ incoming

  private async frame(s: PeerSession, frame: Frame): Promise<void> {
    const from = s.peerId as string;
    const to = this.local.nodeId;
    switch (frame.type) {
      case FrameType.Records:
        return this.onRecords(s, frame);
      case FrameType.SnapshotOffer: {
        const offer = decodeControl(snapshotOfferSchema, 'SNAPSHOT_OFFER', frame.payload);
        if (this.inbound) void this.inbound.receiver?.abort();
        this.inbound = { leader: from, offer, receiver: null, lastReportedBytes: 0 };
        this.hooks.step({
          type: 'snapshotOffer',
          from,
          to,
          term: offer.term,
          probeId: offer.probeId,
          snapshotLsn: offer.snapshotLsn,
          history: offer.history,
          force: offer.force,
        });
        return;
      }
      case FrameType.SnapshotAccept: {
        const m = decodeControl(snapshotAcceptSchema, 'SNAPSHOT_ACCEPT', frame.payload);
        const out = this.outbound.get(from);
        this.hooks.step({ type: 'snapshotAccept', from, to, term: m.term, snapshotLsn: m.snapshotLsn });
        if (!out || out.snapshotLsn !== m.snapshotLsn || out.running) return;
        if (m.fromChunk > out.chunks.length)
          throw protocolError(`SNAPSHOT_ACCEPT: fromChunk ${m.fromChunk} of ${out.chunks.length}`);
        void this.streamSnapshot(s, out, m.fromChunk).catch((err: unknown) => {
          this.logger.error({ peer: from, err: (err as Error).message }, 'replication: full sync failed');
          s.fail(ReplicationCloseCodes.protocol, `full sync failed: ${(err as Error).message}`);
        });
        return;
      }
      case FrameType.SnapshotProgress: {
        const m = decodeControl(snapshotProgressSchema, 'SNAPSHOT_PROGRESS', frame.payload);
        const out = this.outbound.get(from);
        if (out) {
          out.ackedBytes = m.syncBytes;
          const wake = out.wake;
          out.wake = null;
          wake?.();
        }
        return;
      }
      case FrameType.SnapshotChunk: {
        const r = this.inbound?.leader === from ? this.inbound.receiver : null;
        if (!r || !this.inbound) throw protocolError('SNAPSHOT_CHUNK outside a full sync');
        const piece = decodeSnapshotPiece(frame.payload);
        await r.piece(piece.index, piece.offset, piece.bytes).catch((err: unknown) => {
          // This node's disk (full, failing): the link closes with a plain reason and the sync is retried.
          if (isVrepError(err) || typeof (err as NodeJS.ErrnoException).code !== 'string') throw err;
          throw new VrepError(
            'ERR_WAL_IO',
            `full sync: cannot write the snapshot here: ${(err as Error).message}`,
          );
        });
        if (r.bytesReceived - this.inbound.lastReportedBytes >= PROGRESS_EVERY_BYTES) {
          this.inbound.lastReportedBytes = r.bytesReceived;
          s.sendControl(FrameType.SnapshotProgress, { syncBytes: r.bytesReceived });
        }
        return;
      }
      case FrameType.SnapshotEnd: {
        const end = decodeControl(snapshotEndSchema, 'SNAPSHOT_END', frame.payload);
        const inbound = this.inbound;
        const r = inbound?.leader === from ? inbound.receiver : null;
        if (!r || !inbound || end.snapshotLsn !== r.snapshotLsn)
          throw protocolError('SNAPSHOT_END without its offer');
        const dir = await r.install();
        this.inbound = null;
        // One at a time: an earlier one the core never installed is replaced (its staged copy freed).
        this.received.clear();
        this.received.set(r.snapshotLsn, { dir, staged: r.staged });
        this.hooks.event({
          type: 'fullSyncInstalled',
          peer: from,
          snapshotLsn: r.snapshotLsn,
          bytes: r.bytesReceived,
        });
        this.hooks.step({
          type: 'snapshotReceived',
          from,
          term: inbound.offer.term,
          snapshotLsn: r.snapshotLsn,
        });
        return;
      }
      case FrameType.Heartbeat: {
        const m = decodeCoreMessage(frame.type, frame.payload, from, to);
        const body = JSON.parse(new TextDecoder().decode(frame.payload)) as { lagMs?: number | null };
        if (typeof body.lagMs === 'number') this.masterLagMs = body.lagMs;
        if (m) this.hooks.step(m);
        return;
      }
      default: {
        const m = decodeCoreMessage(frame.type, frame.payload, from, to);
        if (m === null) throw protocolError(`unexpected ${frameName[frame.type] ?? frame.type}`);
        this.hooks.step(m);
      }
    }
  }

  /**
   * RECORDS: every record's checksum and LSN run are checked, and the ones
   * new to this log must fit the schema at its head, before the core sees
   * them (a frame that fails closes the link; nothing of it is appended).
   * While a snapshot comes in, the head is the snapshot's, with the records
   * checked alongside it so far.
   */
  private onRecords(s: PeerSession, frame: Frame): void {
    const from = s.peerId as string;
    const decoded = decodeRecordsFrame(frame.payload, frame.flags, RecordLimits.maxRecordBytes);
    const core = this.hooks.core();
    const coming = core.snapshotComing;
    const view = coming !== null && this.alongside?.snapshotLsn === coming ? this.alongside : null;
    // Not checkable (no view of that snapshot's collections): not held; the follower names the gap once installed.
    if (coming !== null && view === null) return;
    const last = view ? view.checkedThrough : core.log.lastLsn;
    const entries: Entry[] = [];
    const fresh: LogRecord[] = [];
    for (const bytes of decoded.records) {
      const head = peekRecord(bytes);
      const config = head.op === Op.Config ? configOf(bytes) : null;
      entries.push({ lsn: head.lsn, term: recordTerm(bytes), bytes, config });
      if (head.lsn > last) fresh.push(schemaStub(head, bytes));
    }
    // Records that do not follow this log's head (a gap: the log just dropped a refused tail)
    // are the core's to refuse; only records that would be appended are checked.
    if (fresh.length > 0 && (fresh[0] as LogRecord).lsn === last + 1) {
      if (view) {
        checkApplicableTo(view.dims, fresh);
        view.checkedThrough = (fresh.at(-1) as LogRecord).lsn;
      } else {
        checkApplicable(this.store.schema.shapes(), fresh);
      }
    }
    this.hooks.step({
      type: 'records',
      from,
      to: this.local.nodeId,
      term: decoded.term,
      entries,
      commit: decoded.commit,
      applyLimit: decoded.applyLimit,
    });
  }

  // ------------------------------------------------------------------ status, stop

  get linkCounters(): LinkTotals {
    return sumLinkCounters([
      this.server?.counters,
      ...[...this.dialers.values()].map((d) => d.client.counters),
    ]);
  }

  /** Peers with a session now. */
  connectedPeers(): string[] {
    return [...this.sessions.keys()];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.server?.close();
    await Promise.all([...this.dialers.values()].map((d) => d.client.stop()));
    for (const s of [...this.sessions.values(), ...this.pending])
      s.link.close(ReplicationCloseCodes.shutdown, 'node stopping');
    for (const f of this.feeders.values()) f.close();
    for (const out of this.outbound.values()) out.pin.release();
    void this.inbound?.receiver?.abort();
  }

  updateSettings(settings: ResolvedReplication): void {
    this.settings = settings;
  }
}

/** The membership a config record sets, or null for any other record. */
export function configOf(
  bytes: Uint8Array,
): { members: { id: string | null; address: string | null }[] } | null {
  if (bytes[9] !== Op.Config) return null;
  const r = decodeRecord(bytes);
  return r.op === Op.Config ? { members: r.members } : null;
}

/** Enough of a record for the schema check (op, collection, dimension), without decoding its points. */
function schemaStub(head: ReturnType<typeof peekRecord>, bytes: Uint8Array): LogRecord {
  if (head.op === Op.CreateCollection || head.op === Op.Config) return decodeRecord(bytes);
  return {
    ...head,
    hlcMs: 0,
    hlcLogical: 0,
    origin: '',
    ids: [],
    vectors: new Float32Array(0),
    payloads: [],
  } as unknown as LogRecord;
}
