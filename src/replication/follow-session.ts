/**
 * Replica side of the link to its primary: asks for the log after its last
 * LSN (PSYNC, with the cut-off full sync it can resume, if any), takes a
 * partial resync or a full sync, then appends the primary's records
 * verbatim and acknowledges each LSN once its own WAL holds it.
 *
 * It refuses to follow a primary that would make it lose data: a history
 * it does not descend from, a primary behind it on the same history, a
 * stale term. Only the operator (forceSync on the primary) overrides that.
 */
import { FrameType, type Frame } from '../transport/frame.ts';
import type { PeerLink } from '../transport/link.ts';
import { VrepError } from '../errors.ts';
import type { Store } from '../store/store.ts';
import {
  continueSchema,
  decodeControl,
  decodeSnapshotPiece,
  frameName,
  fullsyncBeginSchema,
  fullsyncEndSchema,
  heartbeatSchema,
  protocolError,
  type FullsyncBegin,
  type Hello,
} from './messages.ts';
import { decodeRecords } from './records-payload.ts';
import { inspectIncoming, SnapshotReceiver } from './snapshot-receiver.ts';
import { PeerSession, type LocalIdentity, type SessionLogger } from './peer-session.ts';
import { RecordLimits } from '../log/limits.ts';

type Phase = 'handshake' | 'asked' | 'fullsync' | 'installing' | 'streaming';

export interface FollowHooks {
  store(): Store;
  /** Closes the store and opens it again (it then adopts an installed full-sync snapshot). */
  reopen(): Promise<Store>;
  established(session: FollowSession, peer: Hello): boolean;
  ended(session: FollowSession, reason: string): void;
  refused(session: FollowSession, reason: string): void;
  synced(session: FollowSession, mode: 'partial' | 'full', lsn: number, bytes: number): void;
  fullSyncStarted(session: FollowSession, begin: FullsyncBegin): void;
}

function diverged(message: string): VrepError {
  return new VrepError('ERR_DIVERGED', message);
}

export class FollowSession extends PeerSession {
  private readonly hooks: FollowHooks;
  phase: Phase = 'handshake';
  /** The primary's last LSN as last heard. */
  masterLastLsn = 0;
  /** Lag the primary measured for us (last heartbeat). */
  masterLagMs = 0;
  durableLsn = 0;
  receiver: SnapshotReceiver | null = null;
  private fullSyncStartMs = 0;
  private ackScheduled = false;
  private lastAckedSyncBytes = 0;

  constructor(
    link: PeerLink,
    local: LocalIdentity,
    logger: SessionLogger,
    timing: { heartbeatIntervalMs: number; replicaTimeoutMs: number },
    hooks: FollowHooks,
  ) {
    super(link, local, logger, timing);
    this.hooks = hooks;
  }

  protected async onEstablished(peer: Hello): Promise<void> {
    const store = this.hooks.store();
    if (!this.hooks.established(this, peer)) return;
    if (peer.term < store.currentTerm) {
      this.refuse(
        `primary ${peer.nodeId} is at term ${peer.term}, this node has seen term ${store.currentTerm}`,
      );
      return;
    }
    if (peer.term > store.currentTerm) await store.setTerm(peer.term, null);
    this.masterLastLsn = peer.lastLsn;
    this.durableLsn = store.lastLsn;
    const resume = await inspectIncoming(store.dataDir);
    this.phase = 'asked';
    this.sendControl(FrameType.Psync, {
      historyId: store.historyId,
      nextLsn: store.lastLsn + 1,
      resume: resume && resume.chunksDone > 0 ? resume : null,
    });
  }

  private refuse(reason: string): void {
    this.hooks.refused(this, reason);
    this.fail(4043, reason, 'ERR_DIVERGED');
  }

  protected closed(reason: string): void {
    void this.receiver?.abort();
    this.hooks.ended(this, reason);
  }

  protected onHeartbeat(): void {
    this.sendAck();
  }

  private sendAck(): void {
    const syncBytes = this.receiver?.bytesReceived;
    this.sendControl(FrameType.Ack, {
      lsn: this.durableLsn,
      wallMs: Date.now(),
      ...(syncBytes !== undefined ? { syncBytes } : {}),
    });
  }

  private scheduleAck(): void {
    if (this.ackScheduled) return;
    this.ackScheduled = true;
    setImmediate(() => {
      this.ackScheduled = false;
      if (!this.link.closed) this.sendAck();
    });
  }

  get lagOperations(): number {
    return Math.max(0, this.masterLastLsn - this.hooks.store().lastLsn);
  }

  protected async onMessage(frame: Frame): Promise<void> {
    const store = this.hooks.store();
    switch (frame.type) {
      case FrameType.Records: {
        if (this.phase !== 'streaming')
          throw protocolError(`RECORDS before the sync was agreed (${this.phase})`);
        const records = decodeRecords(
          frame.payload,
          frame.flags,
          store.lastLsn + 1,
          RecordLimits.maxRecordBytes,
        );
        const last = store.lastLsn + records.length;
        if (last > this.masterLastLsn) this.masterLastLsn = last;
        store.applyReplicated(records).then(
          () => {
            if (last > this.durableLsn) this.durableLsn = last;
            this.scheduleAck();
          },
          (err: unknown) => {
            this.logger.error({ err }, 'replication: WAL append failed; disconnecting from the primary');
            this.fail(4041, `WAL append failed: ${(err as Error).message}`, 'ERR_WAL_IO');
          },
        );
        return;
      }
      case FrameType.Heartbeat: {
        const hb = decodeControl(heartbeatSchema, 'HEARTBEAT', frame.payload);
        if (hb.lastLsn > this.masterLastLsn) this.masterLastLsn = hb.lastLsn;
        if (hb.lagMs !== null) this.masterLagMs = hb.lagMs;
        return;
      }
      case FrameType.Continue:
        return this.onContinue(decodeControl(continueSchema, 'CONTINUE', frame.payload));
      case FrameType.FullsyncBegin:
        return this.onFullsyncBegin(decodeControl(fullsyncBeginSchema, 'FULLSYNC_BEGIN', frame.payload));
      case FrameType.SnapshotChunk: {
        if (this.phase !== 'fullsync' || !this.receiver)
          throw protocolError('SNAPSHOT_CHUNK outside a full sync');
        const piece = decodeSnapshotPiece(frame.payload);
        await this.receiver.piece(piece.index, piece.offset, piece.bytes);
        const done = this.receiver.bytesReceived;
        if (done - this.lastAckedSyncBytes >= 4 * 1024 * 1024) {
          this.lastAckedSyncBytes = done;
          this.sendAck();
        }
        return;
      }
      case FrameType.FullsyncEnd: {
        const end = decodeControl(fullsyncEndSchema, 'FULLSYNC_END', frame.payload);
        const receiver = this.receiver;
        if (this.phase !== 'fullsync' || !receiver || end.snapshotLsn !== receiver.snapshotLsn) {
          throw protocolError('FULLSYNC_END without its FULLSYNC_BEGIN');
        }
        this.phase = 'installing';
        await receiver.install();
        const reopened = await this.hooks.reopen();
        if (reopened.lastLsn !== receiver.snapshotLsn || reopened.historyId !== this.peer?.historyId) {
          throw new Error(
            `after installing snapshot ${receiver.snapshotLsn} the store is at ${reopened.lastLsn} (history ${reopened.historyId})`,
          );
        }
        this.receiver = null;
        this.durableLsn = reopened.lastLsn;
        this.phase = 'streaming';
        this.sendAck();
        this.hooks.synced(this, 'full', reopened.lastLsn, receiver.bytesReceived);
        this.logger.info(
          {
            peer: this.peer?.nodeId,
            snapshotLsn: receiver.snapshotLsn,
            ms: Date.now() - this.fullSyncStartMs,
          },
          'replication: full sync installed',
        );
        return;
      }
      default:
        throw protocolError(`unexpected ${frameName[frame.type]} from a primary`);
    }
  }

  private async onContinue(msg: {
    historyId: string;
    previousHistoryId: string | null;
    previousHistoryEndLsn: number | null;
    fromLsn: number;
    primaryLastLsn: number;
  }): Promise<void> {
    const store = this.hooks.store();
    if (this.phase !== 'asked') throw protocolError(`CONTINUE in phase ${this.phase}`);
    if (msg.fromLsn !== store.lastLsn + 1) {
      throw protocolError(`CONTINUE from ${msg.fromLsn}, this node needs ${store.lastLsn + 1}`);
    }
    if (msg.historyId !== store.historyId) {
      // The primary moved to a new history that continues ours (a promotion): follow it.
      const continues =
        msg.previousHistoryId === store.historyId &&
        msg.previousHistoryEndLsn !== null &&
        store.lastLsn <= msg.previousHistoryEndLsn;
      if (!continues)
        throw diverged(`primary history ${msg.historyId} does not continue ours (${store.historyId})`);
      await store.adoptHistory(msg.historyId, msg.previousHistoryId, msg.previousHistoryEndLsn);
    }
    this.masterLastLsn = Math.max(this.masterLastLsn, msg.primaryLastLsn);
    this.phase = 'streaming';
    this.hooks.synced(this, 'partial', store.lastLsn, 0);
    this.sendAck();
  }

  private async onFullsyncBegin(begin: FullsyncBegin): Promise<void> {
    const store = this.hooks.store();
    if (this.phase !== 'asked') throw protocolError(`FULLSYNC_BEGIN in phase ${this.phase}`);
    const mine = store.historyId;
    const last = store.lastLsn;
    const known =
      (begin.historyId === mine && begin.primaryLastLsn >= last) ||
      (begin.previousHistoryId === mine &&
        begin.previousHistoryEndLsn !== null &&
        begin.previousHistoryEndLsn >= last);
    if (!begin.force && last > 0 && !known) {
      this.refuse(
        begin.historyId === mine
          ? `primary ${this.peer?.nodeId} is behind this replica on the same history (its last LSN ${begin.primaryLastLsn} < ${last}): it lost records; not following it (promote this node, or forceSync to discard ours)`
          : `primary ${this.peer?.nodeId} has history ${begin.historyId}, which does not contain this node's (${mine} up to LSN ${last}): it is not trusted (a wiped or different primary); forceSync on the primary to discard this node's data`,
      );
      return;
    }
    this.masterLastLsn = Math.max(this.masterLastLsn, begin.primaryLastLsn);
    this.receiver = await SnapshotReceiver.start(store.dataDir, begin);
    this.lastAckedSyncBytes = 0;
    this.phase = 'fullsync';
    this.fullSyncStartMs = Date.now();
    this.hooks.fullSyncStarted(this, begin);
  }
}
