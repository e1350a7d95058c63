/**
 * Primary side of one replica link: answers the replica's PSYNC with a
 * partial resync (CONTINUE, then the log from the LSN it asked for) or a
 * full sync (the newest snapshot's chunk files as they are on disk, resumed
 * after the replica's last verified chunk when it has the same snapshot,
 * then the log after the snapshot), and feeds RECORDS frames from the
 * circular log (the WAL when the ring no longer has them), throttled and
 * backpressure-aware. The replica's ACKs move its acknowledged LSN.
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import { isVrepError } from '../errors.ts';
import { FrameType, FRAME_HEADER_BYTES, type Frame } from '../transport/frame.ts';
import type { PeerLink } from '../transport/link.ts';
import type { Store, LogPin } from '../store/store.ts';
import type { SyncProgress } from '../node/types.ts';
import {
  ackSchema,
  decodeControl,
  encodeSnapshotPiece,
  frameName,
  protocolError,
  psyncSchema,
  SNAPSHOT_PIECE_BYTES,
  type Continue,
  type FullsyncBegin,
  type Hello,
  type Psync,
} from './messages.ts';
import type { RecordsSource } from './records-source.ts';
import { parseManifestText, totalBytes } from './snapshot-receiver.ts';
import { syncProgress } from './sync-progress.ts';
import {
  PeerSession,
  ReplicationCloseCodes,
  type LocalIdentity,
  type SessionLogger,
} from './peer-session.ts';
import type { TokenBucket, TrafficClass } from './throttle.ts';

/** A feeder this many records behind the head sends catch-up (bulk) traffic. */
export const LIVE_WINDOW_RECORDS = 64;
/** Snapshot bytes sent ahead of the replica's progress ACKs at most. */
export const FULLSYNC_WINDOW_BYTES = 32 * 1024 * 1024;

export interface FeedHooks {
  store(): Store;
  /** RECORDS payloads, shared by the primary's feeders. */
  records: RecordsSource;
  throttle: TokenBucket | null;
  /** Resolves at the next commit (or soon after, so the feeder re-checks). */
  nextCommit(): Promise<void>;
  acked(session: FeedSession, lsn: number): void;
  established(session: FeedSession, peer: Hello): void;
  ended(session: FeedSession, reason: string): void;
  fullSyncStarted(session: FeedSession, snapshotLsn: number, fromChunk: number): void;
  fullSyncFinished(session: FeedSession, snapshotLsn: number, bytes: number): void;
  partialSync(session: FeedSession, fromLsn: number): void;
  /** This replica's lag as the primary measures it, ms. */
  lagMs(session: FeedSession): number;
  /** The operator asked for a full sync of this replica (forceSync). */
  forceFull(session: FeedSession): boolean;
}

export class FeedSession extends PeerSession {
  private readonly hooks: FeedHooks;
  ackedLsn = 0;
  /** Next LSN to send. */
  nextLsn = 0;
  syncing = false;
  progress: SyncProgress | null = null;
  private psyncSeen = false;
  private syncAckedBytes = 0;
  private syncWaiter: (() => void) | null = null;
  private pin: LogPin | null = null;
  private fullSyncStartMs = 0;

  constructor(
    link: PeerLink,
    local: LocalIdentity,
    logger: SessionLogger,
    timing: { heartbeatIntervalMs: number; replicaTimeoutMs: number },
    hooks: FeedHooks,
  ) {
    super(link, local, logger, timing);
    this.hooks = hooks;
  }

  protected onEstablished(peer: Hello): void {
    this.hooks.established(this, peer);
  }

  protected closed(reason: string): void {
    this.pin?.release();
    this.pin = null;
    this.syncWaiter?.();
    this.hooks.ended(this, reason);
  }

  /** Heartbeat with the lag the primary measures for this replica (the replica reports it as its own). */
  protected onHeartbeat(): void {
    const store = this.hooks.store();
    this.sendControl(FrameType.Heartbeat, {
      lastLsn: store.lastLsn,
      term: store.currentTerm,
      wallMs: Date.now(),
      lagMs: this.hooks.lagMs(this),
    });
  }

  protected onMessage(frame: Frame): void {
    switch (frame.type) {
      case FrameType.Psync: {
        if (this.psyncSeen) throw protocolError('second PSYNC on one link');
        this.psyncSeen = true;
        const psync = decodeControl(psyncSchema, 'PSYNC', frame.payload);
        this.run(psync).catch((err: unknown) => {
          if (this.link.closed) return;
          if (isVrepError(err, 'ERR_LSN_EVICTED')) {
            this.fail(
              ReplicationCloseCodes.backlogLost,
              `records needed are gone: ${(err as Error).message}`,
            );
            return;
          }
          this.logger.error({ err, peer: this.peer?.nodeId }, 'replication: feeder failed');
          this.fail(ReplicationCloseCodes.protocol, `feeder failed: ${(err as Error).message}`);
        });
        return;
      }
      case FrameType.Ack: {
        const ack = decodeControl(ackSchema, 'ACK', frame.payload);
        if (ack.syncBytes !== undefined) {
          this.syncAckedBytes = ack.syncBytes;
          const wake = this.syncWaiter;
          this.syncWaiter = null;
          wake?.();
        }
        if (ack.lsn > this.hooks.store().lastLsn) {
          throw protocolError(`ACK of LSN ${ack.lsn}, past this node's last ${this.hooks.store().lastLsn}`);
        }
        if (ack.lsn > this.ackedLsn) {
          this.ackedLsn = ack.lsn;
          if (this.pin && ack.lsn + 1 > this.pin.lsn) this.pin.lsn = ack.lsn + 1;
          this.hooks.acked(this, ack.lsn);
        }
        return;
      }
      default:
        throw protocolError(`unexpected ${frameName[frame.type]} from a replica`);
    }
  }

  /** Decides between partial and full resync, then feeds until the link closes. */
  private async run(psync: Psync): Promise<void> {
    const store = this.hooks.store();
    const next = psync.nextLsn;
    const prev = store.previousHistory;
    const inLog = next >= store.records.firstLsn && next <= store.lastLsn + 1;
    const sameHistory = psync.historyId === store.historyId;
    const fromPrevious = prev !== null && psync.historyId === prev.historyId && next - 1 <= prev.endLsn;
    if (!this.hooks.forceFull(this) && inLog && (sameHistory || fromPrevious)) {
      this.ackedLsn = next - 1;
      this.hooks.acked(this, next - 1);
      const msg: Continue = {
        historyId: store.historyId,
        previousHistoryId: prev?.historyId ?? null,
        previousHistoryEndLsn: prev?.endLsn ?? null,
        fromLsn: next,
        primaryLastLsn: store.lastLsn,
      };
      this.pin = store.pinLog(next);
      this.sendControl(FrameType.Continue, msg);
      this.hooks.partialSync(this, next);
      await this.feed(next);
      return;
    }
    const after = await this.fullSync(psync);
    if (after !== null) await this.feed(after);
  }

  /** Streams the pinned snapshot; returns the LSN to feed from, or null if the link closed. */
  private async fullSync(psync: Psync): Promise<number | null> {
    const store = this.hooks.store();
    const force = this.hooks.forceFull(this);
    const snap = await store.pinSnapshot();
    try {
      const manifest = parseManifestText(snap.manifestText);
      const resume = psync.resume;
      const fromChunk =
        !force && resume && resume.historyId === manifest.historyId && resume.snapshotLsn === manifest.lsn
          ? Math.min(resume.chunksDone, manifest.chunks.length)
          : 0;
      const total = totalBytes(manifest.chunks);
      const prev = store.previousHistory;
      const begin: FullsyncBegin = {
        historyId: store.historyId,
        previousHistoryId: prev?.historyId ?? null,
        previousHistoryEndLsn: prev?.endLsn ?? null,
        term: store.currentTerm,
        snapshotLsn: manifest.lsn,
        primaryLastLsn: store.lastLsn,
        manifestText: snap.manifestText,
        totalBytes: total,
        fromChunk,
        force,
      };
      this.syncing = true;
      this.fullSyncStartMs = Date.now();
      const skipped = totalBytes(manifest.chunks.slice(0, fromChunk));
      this.progress = syncProgress(skipped, total, 0, 0, fromChunk);
      this.sendControl(FrameType.FullsyncBegin, begin);
      this.hooks.fullSyncStarted(this, manifest.lsn, fromChunk);
      this.logger.info(
        {
          peer: this.peer?.nodeId,
          snapshotLsn: manifest.lsn,
          chunks: manifest.chunks.length,
          fromChunk,
          bytes: total,
        },
        'replication: full sync started',
      );
      let sent = 0;
      for (let i = fromChunk; i < manifest.chunks.length; i++) {
        const chunk = manifest.chunks[i] as (typeof manifest.chunks)[number];
        const handle = await open(path.join(snap.dir, chunk.file), 'r');
        try {
          for (let offset = 0; offset < chunk.bytes;) {
            const n = Math.min(SNAPSHOT_PIECE_BYTES, chunk.bytes - offset);
            const piece = new Uint8Array(n);
            const { bytesRead } = await handle.read(piece, 0, n, offset);
            if (bytesRead !== n) throw new Error(`${chunk.file}: short read at ${offset}`);
            // Window: the replica ACKs what it has written; never run far ahead of its disk.
            while (sent - this.syncAckedBytes > FULLSYNC_WINDOW_BYTES && !this.link.closed) {
              await new Promise<void>((resolve) => (this.syncWaiter = resolve));
            }
            if (
              !(await this.sendPaced(
                FrameType.SnapshotChunk,
                encodeSnapshotPiece(i, offset, piece),
                0,
                'bulk',
              ))
            ) {
              return null;
            }
            offset += n;
            sent += n;
            this.progress = syncProgress(
              skipped + sent,
              total,
              sent,
              Date.now() - this.fullSyncStartMs,
              fromChunk,
            );
          }
        } finally {
          await handle.close();
        }
      }
      this.sendControl(FrameType.FullsyncEnd, { snapshotLsn: manifest.lsn, chunks: manifest.chunks.length });
      // Records after the snapshot are fed once the replica has installed it
      // (its ACK of the snapshot LSN), so nothing piles up meanwhile.
      this.pin = store.pinLog(manifest.lsn + 1);
      while (this.ackedLsn < manifest.lsn && !this.link.closed) await this.hooks.nextCommit();
      if (this.link.closed) return null;
      this.syncing = false;
      this.progress = null;
      this.hooks.fullSyncFinished(this, manifest.lsn, sent);
      this.logger.info(
        {
          peer: this.peer?.nodeId,
          snapshotLsn: manifest.lsn,
          bytes: sent,
          ms: Date.now() - this.fullSyncStartMs,
        },
        'replication: full sync finished',
      );
      return manifest.lsn + 1;
    } finally {
      snap.release();
    }
  }

  /** Throttle, send, honour backpressure. False when the link is gone. */
  private async sendPaced(
    type: FrameType,
    payload: Uint8Array,
    flags: number,
    cls: TrafficClass,
  ): Promise<boolean> {
    const throttle = this.hooks.throttle;
    const bytes = FRAME_HEADER_BYTES + payload.length;
    if (throttle) {
      for (let wait = throttle.delayMs(bytes, cls, Date.now()); wait > 0;) {
        await new Promise((resolve) => setTimeout(resolve, wait));
        if (this.link.closed) return false;
        wait = throttle.delayMs(bytes, cls, Date.now());
      }
      throttle.take(bytes, Date.now());
    }
    const result = this.link.send({ type, payload, flags });
    if (result === 'dropped') return false;
    if (result === 'backpressure') return this.link.whenWritable();
    return true;
  }

  /** Sends the log from `from` on, forever (until the link closes). */
  private async feed(from: number): Promise<void> {
    const store = this.hooks.store();
    this.nextLsn = from;
    if (this.pin === null) this.pin = store.pinLog(from);
    while (!this.link.closed) {
      const last = store.lastLsn;
      if (this.nextLsn > last) {
        await this.hooks.nextCommit();
        continue;
      }
      const behind = last - this.nextLsn >= LIVE_WINDOW_RECORDS;
      const encoded = await this.hooks.records.next(this.nextLsn, last, behind);
      if (encoded === null) {
        // In the log but not yet readable from disk (queued for the WAL): try again shortly.
        await this.hooks.nextCommit();
        continue;
      }
      if (this.link.closed) return;
      if (
        !(await this.sendPaced(FrameType.Records, encoded.payload, encoded.flags, behind ? 'bulk' : 'live'))
      ) {
        return;
      }
      this.nextLsn += encoded.count;
    }
  }
}
