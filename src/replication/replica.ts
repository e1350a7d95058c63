/**
 * The replica role: dials its primary (masterAddress) and also listens on
 * its own peer address, so a primary can dial it (addReplica). Follows one
 * primary at a time through a FollowSession; redials with backoff after any
 * close. The node is read-only meanwhile (ReplicationNode refuses writes).
 */
import type { Store } from '../store/store.ts';
import type { PeerServer } from '../transport/peer-server.ts';
import { peerDialer, peerListener, sumLinkCounters, type LinkTotals } from './peer-links.ts';
import type { PeerClient } from '../transport/peer-client.ts';
import type { PeerLink } from '../transport/link.ts';
import type { ReplicaState, ReplicationStatus } from '../node/types.ts';
import { syncProgress } from './sync-progress.ts';
import type { EventHub } from './events.ts';
import { FollowSession } from './follow-session.ts';
import { ReplicationCloseCodes, type LocalIdentity, type SessionLogger } from './peer-session.ts';
import type { ResolvedReplication } from './settings.ts';

export interface ReplicaCounters {
  fullSyncs: number;
  partialSyncs: number;
  lastSyncMs: number;
}

export class Replica {
  readonly counters: ReplicaCounters = { fullSyncs: 0, partialSyncs: 0, lastSyncMs: 0 };
  private active: FollowSession | null = null;
  private client: PeerClient | null = null;
  private server: PeerServer | null = null;
  private readonly sessions = new Set<FollowSession>();
  private refusedReason: string | null = null;
  private primaryNodeId: string | null = null;
  private primaryHttp: string | null = null;
  private stopped = false;

  private constructor(
    private readonly store: () => Store,
    private readonly reopen: () => Promise<Store>,
    private readonly local: LocalIdentity,
    private readonly settings: ResolvedReplication,
    private readonly logger: SessionLogger,
    private readonly events: EventHub,
  ) {}

  static async start(
    store: () => Store,
    reopen: () => Promise<Store>,
    local: LocalIdentity,
    settings: ResolvedReplication,
    logger: SessionLogger,
    events: EventHub,
  ): Promise<Replica> {
    const replica = new Replica(store, reopen, local, settings, logger, events);
    replica.server = await peerListener(settings, logger, (link) => replica.accept(link));
    if (settings.masterAddress !== null) replica.follow(settings.masterAddress);
    return replica;
  }

  get peerPort(): number | null {
    return this.server?.port ?? null;
  }

  /** The primary's HTTP address, as it told us (for read-only errors). */
  get primaryHttpAddress(): string | null {
    return this.primaryHttp;
  }

  get masterAddress(): string | null {
    return this.settings.masterAddress;
  }

  private follow(address: string): void {
    this.client = peerDialer(address, this.settings, this.logger, (link) => this.accept(link));
  }

  private accept(link: PeerLink): void {
    if (this.stopped) {
      link.close(ReplicationCloseCodes.refused, 'node stopping');
      return;
    }
    const session: FollowSession = new FollowSession(link, this.local, this.logger, this.settings.timing, {
      store: this.store,
      reopen: this.reopen,
      established: (s, peer) => {
        if (this.active && this.active !== s && !this.active.link.closed) {
          s.fail(
            ReplicationCloseCodes.refused,
            `already following ${this.active.peer?.nodeId ?? 'a primary'}`,
          );
          return false;
        }
        this.active = s;
        this.primaryNodeId = peer.nodeId;
        this.primaryHttp = peer.httpAddress;
        return true;
      },
      ended: (s) => {
        this.sessions.delete(s);
        if (this.active === s) this.active = null;
      },
      refused: (_s, reason) => {
        if (this.refusedReason !== reason)
          this.logger.error({ reason }, 'replication: refusing to follow the primary');
        this.refusedReason = reason;
        this.events.emit({
          type: 'Refused',
          peer: session.peer?.nodeId ?? link.remoteAddress,
          reason,
          atMs: Date.now(),
        });
      },
      fullSyncStarted: (_s, begin) => {
        this.counters.fullSyncs++;
        this.events.emit({
          type: 'FullSyncStarted',
          peer: session.peer?.nodeId ?? '?',
          snapshotLsn: begin.snapshotLsn,
          resumeFromChunk: begin.fromChunk,
          atMs: Date.now(),
        });
      },
      synced: (_s, mode, lsn, bytes) => {
        this.refusedReason = null;
        this.counters.lastSyncMs = Date.now();
        if (mode === 'partial') this.counters.partialSyncs++;
        const peer = session.peer?.nodeId ?? '?';
        if (mode === 'full')
          this.events.emit({ type: 'FullSyncFinished', peer, snapshotLsn: lsn, bytes, atMs: Date.now() });
        this.events.emit({ type: 'Synced', peer, lsn, mode, atMs: Date.now() });
      },
    });
    this.sessions.add(session);
  }

  get state(): ReplicaState {
    const s = this.active;
    if (!s || s.link.closed || !s.isEstablished) return 'Disconnected';
    if (s.phase !== 'streaming') return 'Syncing';
    return s.lagOperations > this.settings.lagThresholdOps ? 'Lagging' : 'Connected';
  }

  lag(): { lag_ms: number; lag_operations: number } {
    const s = this.active;
    if (!s) return { lag_ms: 0, lag_operations: 0 };
    const ops = s.lagOperations;
    return { lag_ms: ops === 0 ? 0 : s.masterLagMs, lag_operations: ops };
  }

  get masterLastLsn(): number {
    return this.active?.masterLastLsn ?? 0;
  }

  masterStatus(): NonNullable<ReplicationStatus['master']> {
    const s = this.active;
    const out: NonNullable<ReplicationStatus['master']> = {
      address: this.settings.masterAddress ?? s?.link.remoteAddress ?? '',
      http_address: this.primaryHttp,
      node_id: this.primaryNodeId,
      status: this.state,
      refused: this.refusedReason,
    };
    const receiver = s?.receiver;
    if (receiver) {
      const { bytesDone, bytesTotal } = receiver.progress;
      out.sync = syncProgress(
        bytesDone,
        bytesTotal,
        receiver.bytesReceived,
        Date.now() - receiver.startedAtMs,
        receiver.fromChunk,
      );
    }
    return out;
  }

  get linkCounters(): LinkTotals {
    return sumLinkCounters([this.server?.counters, this.client?.counters]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.server?.close();
    await this.client?.stop();
    for (const s of this.sessions) s.link.close(4030, 'node stopping');
  }
}
