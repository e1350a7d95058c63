/**
 * The primary role: listens for replicas (and dials those added with
 * addReplica), runs one FeedSession per connected replica, tracks every
 * replica's acknowledged LSN for One / Quorum / All, and reports status and
 * lag in Vectorizer's shapes.
 */
import { VrepError } from '../errors.ts';
import type { Store } from '../store/store.ts';
import type { PeerServer } from '../transport/peer-server.ts';
import { peerDialer, peerListener, sumLinkCounters, type LinkTotals } from './peer-links.ts';
import type { PeerClient } from '../transport/peer-client.ts';
import type { PeerLink } from '../transport/link.ts';
import type { ConsistencyLevel } from '../node/consistency.ts';
import type { ReplicaInfo, ReplicaState } from '../node/types.ts';
import { AckTracker } from './ack-tracker.ts';
import { CommitTimes } from './commit-times.ts';
import type { EventHub } from './events.ts';
import { FeedSession } from './feed-session.ts';
import { ReplicationCloseCodes, type LocalIdentity, type SessionLogger } from './peer-session.ts';
import { TokenBucket } from './throttle.ts';
import { FeederPool } from '../workers/feeder-pool.ts';
import { RecordsSource } from './records-source.ts';
import type { ResolvedReplication } from './settings.ts';
import type { Hello } from './messages.ts';

/** Replicas a primary keeps track of at most (connected or not). */
export const MAX_REPLICAS = 64;

interface ReplicaRecord {
  id: string;
  address: string;
  session: FeedSession | null;
  ackedLsn: number;
  operationsSynced: number;
  lastHeardMs: number;
  lagging: boolean;
  forceFull: boolean;
}

export interface PrimaryCounters {
  fullSyncs: number;
  partialSyncs: number;
  lastSyncMs: number;
}

export class Primary {
  readonly tracker = new AckTracker();
  readonly counters: PrimaryCounters = { fullSyncs: 0, partialSyncs: 0, lastSyncMs: 0 };
  private readonly replicas = new Map<string, ReplicaRecord>();
  private readonly sessions = new Set<FeedSession>();
  private readonly dialers = new Map<string, PeerClient>();
  private readonly commitTimes = new CommitTimes();
  private commitWaiters: (() => void)[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  private server: PeerServer | null = null;
  private stopped = false;
  /** Catch-up frames are read from the ring and compressed here, off the event loop. */
  private readonly pool: FeederPool;
  private readonly records: RecordsSource;

  private constructor(
    private readonly store: Store,
    private readonly local: LocalIdentity,
    private readonly settings: ResolvedReplication,
    private readonly logger: SessionLogger,
    private readonly events: EventHub,
  ) {
    this.tracker.primaryDurable(store.lastLsn);
    this.pool = new FeederPool(store.records.ring.handle, { threads: 1 });
    this.records = new RecordsSource(() => store, this.pool, settings.compression);
    this.unsubscribe = store.onCommit((lastLsn) => {
      this.commitTimes.record(lastLsn, Date.now());
      this.wakeFeeders();
    });
    // Expires consistency waits and re-checks lag; cheap, so a short period.
    this.timer = setInterval(() => this.tick(), 50);
    this.timer.unref();
  }

  static async start(
    store: Store,
    local: LocalIdentity,
    settings: ResolvedReplication,
    logger: SessionLogger,
    events: EventHub,
  ): Promise<Primary> {
    const primary = new Primary(store, local, settings, logger, events);
    primary.server = await peerListener(settings, logger, (link) => primary.accept(link));
    for (const address of settings.peers) primary.dial(address);
    return primary;
  }

  get peerPort(): number | null {
    return this.server?.port ?? null;
  }

  private accept(link: PeerLink): void {
    if (this.stopped) {
      link.close(ReplicationCloseCodes.refused, 'node stopping');
      return;
    }
    const session = new FeedSession(link, this.local, this.logger, this.settings.timing, {
      store: () => this.store,
      records: this.records,
      throttle: this.settings.bandwidthBytesPerSec
        ? new TokenBucket({ bytesPerSec: this.settings.bandwidthBytesPerSec }, Date.now())
        : null,
      nextCommit: () => this.nextCommit(),
      acked: (s, lsn) => this.acked(s, lsn),
      established: (s, peer) => this.established(s, peer, link.remoteAddress),
      ended: (s, reason) => this.ended(s, reason),
      fullSyncStarted: (s, snapshotLsn, fromChunk) => {
        this.counters.fullSyncs++;
        this.events.emit({
          type: 'FullSyncStarted',
          peer: s.peer?.nodeId ?? '?',
          snapshotLsn,
          resumeFromChunk: fromChunk,
          atMs: Date.now(),
        });
      },
      fullSyncFinished: (s, snapshotLsn, bytes) => {
        this.counters.lastSyncMs = Date.now();
        const peer = s.peer?.nodeId ?? '?';
        this.events.emit({ type: 'FullSyncFinished', peer, snapshotLsn, bytes, atMs: Date.now() });
        this.events.emit({ type: 'Synced', peer, lsn: snapshotLsn, mode: 'full', atMs: Date.now() });
        const r = this.replicas.get(peer);
        if (r) r.forceFull = false;
      },
      partialSync: (s, fromLsn) => {
        this.counters.partialSyncs++;
        this.counters.lastSyncMs = Date.now();
        this.events.emit({
          type: 'Synced',
          peer: s.peer?.nodeId ?? '?',
          lsn: fromLsn - 1,
          mode: 'partial',
          atMs: Date.now(),
        });
      },
      lagMs: (s) => this.lagOf(s.peer?.nodeId ?? '').lagMs,
      forceFull: (s) => this.replicas.get(s.peer?.nodeId ?? '')?.forceFull ?? false,
    });
    this.sessions.add(session);
  }

  private established(session: FeedSession, peer: Hello, remoteAddress: string): void {
    const existing = this.replicas.get(peer.nodeId);
    if (existing?.session && !existing.session.link.closed) {
      // The replica reconnected before its old link timed out: the new link wins.
      existing.session.fail(ReplicationCloseCodes.refused, 'replaced by a newer link from the same replica');
    }
    if (!existing && this.replicas.size >= MAX_REPLICAS) {
      session.fail(ReplicationCloseCodes.refused, `this primary already tracks ${MAX_REPLICAS} replicas`);
      return;
    }
    const record: ReplicaRecord = existing ?? {
      id: peer.nodeId,
      address: remoteAddress,
      session: null,
      ackedLsn: 0,
      operationsSynced: 0,
      lastHeardMs: Date.now(),
      lagging: false,
      forceFull: false,
    };
    record.session = session;
    record.lastHeardMs = Date.now();
    this.replicas.set(peer.nodeId, record);
    this.tracker.setMembers([...this.replicas.keys()]);
    this.events.emit({ type: 'ReplicaConnected', replica: peer.nodeId, atMs: Date.now() });
  }

  private ended(session: FeedSession, reason: string): void {
    this.sessions.delete(session);
    const id = session.peer?.nodeId;
    const record = id !== undefined ? this.replicas.get(id) : undefined;
    if (record && record.session === session) {
      record.session = null;
      this.events.emit({ type: 'ReplicaDisconnected', replica: record.id, reason, atMs: Date.now() });
    }
  }

  private acked(session: FeedSession, lsn: number): void {
    const id = session.peer?.nodeId;
    if (id === undefined) return;
    const record = this.replicas.get(id);
    if (!record) return;
    if (lsn > record.ackedLsn) record.operationsSynced += lsn - record.ackedLsn;
    record.ackedLsn = Math.max(record.ackedLsn, lsn);
    record.lastHeardMs = Date.now();
    this.tracker.replicaAcked(id, lsn);
  }

  private wakeFeeders(): void {
    const waiters = this.commitWaiters;
    this.commitWaiters = [];
    for (const wake of waiters) wake();
  }

  private nextCommit(): Promise<void> {
    return new Promise((resolve) => this.commitWaiters.push(resolve));
  }

  private tick(): void {
    const now = Date.now();
    this.tracker.expire(now);
    // Feeders waiting on a record not yet readable from disk re-check.
    this.wakeFeeders();
    const last = this.store.lastLsn;
    for (const r of this.replicas.values()) {
      const lagOps = last - r.ackedLsn;
      const lagMs = this.commitTimes.lagMs(r.ackedLsn, last, now);
      const lagging = r.session !== null && !r.session.syncing && lagOps > this.settings.lagThresholdOps;
      if (lagging && !r.lagging) {
        this.events.emit({ type: 'Lagging', peer: r.id, lagOperations: lagOps, lagMs, atMs: now });
      }
      r.lagging = lagging;
    }
  }

  /** A replica's lag now: age of the oldest write it has not acknowledged, and the count. */
  lagOf(id: string): { lagMs: number; lagOps: number } {
    const r = this.replicas.get(id);
    const last = this.store.lastLsn;
    if (!r) return { lagMs: 0, lagOps: 0 };
    return { lagMs: this.commitTimes.lagMs(r.ackedLsn, last, Date.now()), lagOps: last - r.ackedLsn };
  }

  /** The primary's own WAL holds `lsn`: One is met, and it counts toward Quorum/All. */
  durable(lsn: number): void {
    this.tracker.primaryDurable(lsn);
  }

  waitFor(lsn: number, level: ConsistencyLevel, timeoutMs: number): Promise<void> {
    return this.tracker.wait(lsn, level, Date.now() + timeoutMs);
  }

  private dial(address: string): void {
    if (this.dialers.has(address)) return;
    this.dialers.set(
      address,
      peerDialer(address, this.settings, this.logger, (link) => this.accept(link)),
    );
  }

  async addReplica(address: string): Promise<void> {
    if (this.dialers.size >= MAX_REPLICAS)
      throw new VrepError('ERR_OVERLOADED', `at most ${MAX_REPLICAS} replicas`);
    this.dial(address);
  }

  async removeReplica(id: string): Promise<void> {
    const r = this.replicas.get(id);
    if (!r) throw new VrepError('ERR_INVALID_INPUT', `no replica "${id}"`);
    for (const [address, client] of this.dialers) {
      if (r.session && client.link === r.session.link) {
        this.dialers.delete(address);
        await client.stop();
      }
    }
    r.session?.fail(ReplicationCloseCodes.operator, 'removed by the operator');
    this.replicas.delete(id);
    this.tracker.setMembers([...this.replicas.keys()]);
  }

  async forceSync(id: string): Promise<void> {
    const r = this.replicas.get(id);
    if (!r) throw new VrepError('ERR_INVALID_INPUT', `no replica "${id}"`);
    r.forceFull = true;
    // It reconnects and asks again; this time the answer is a full sync.
    r.session?.fail(ReplicationCloseCodes.operator, 'full sync requested by the operator');
  }

  replicaInfos(): ReplicaInfo[] {
    const last = this.store.lastLsn;
    const now = Date.now();
    return [...this.replicas.values()].map((r) => {
      const session = r.session;
      let status: ReplicaState = 'Disconnected';
      if (session && !session.link.closed)
        status = session.syncing ? 'Syncing' : r.lagging ? 'Lagging' : 'Connected';
      const [host, port] = splitAddress(r.address);
      const info: ReplicaInfo = {
        id: r.id,
        host,
        port,
        address: r.address,
        status,
        lag_ms: this.commitTimes.lagMs(r.ackedLsn, last, now),
        last_heartbeat: session ? session.lastHeardMs : r.lastHeardMs,
        operations_synced: r.operationsSynced,
        offset: r.ackedLsn,
        lag_operations: Math.max(0, last - r.ackedLsn),
      };
      if (session?.syncing && session.progress) info.sync = session.progress;
      return info;
    });
  }

  get linkCounters(): LinkTotals {
    return sumLinkCounters([this.server?.counters, ...[...this.dialers.values()].map((d) => d.counters)]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.unsubscribe();
    this.tracker.failAll(
      new VrepError('ERR_NODE_STOPPED', 'the node stopped before the write reached its level'),
    );
    this.server?.close();
    await Promise.all([...this.dialers.values()].map((d) => d.stop()));
    for (const s of this.sessions) s.link.close(4030, 'node stopping');
    this.wakeFeeders();
    await this.pool.close();
  }
}

export function splitAddress(address: string): [string, number] {
  const m = /^(.*):(\d+)$/.exec(address);
  return m ? [m[1] as string, Number(m[2])] : [address, 0];
}
