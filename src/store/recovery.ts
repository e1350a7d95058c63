/**
 * Start-up of a data dir: lock it, finish a full-sync install a crash cut
 * short, load the node meta, the newest snapshot (verified) and the WAL
 * after it, applying its records in order (every one, or only up to the
 * persisted commit point: `replayThrough`), and put the newest records back
 * in the in-memory log. What it finds is returned for the store to own.
 */
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { VrepError } from '../errors.ts';
import { HybridClock } from '../clock/hlc.ts';
import { decodeRecord, Op } from '../log/record.ts';
import { RecordLog } from '../log/record-log.ts';
import { Wal, type FsyncPolicy, type WalRecoveryReport } from '../log/wal.ts';
import { fsyncDir } from '../log/atomic-file.ts';
import type { ConfigEntry } from '../consensus/core.ts';
import type { Epoch } from '../consensus/term-history.ts';
import { Collection } from './collection.ts';
import { epochsThrough, loadNodeMeta, newHistoryId, saveNodeMeta, type NodeMeta } from './node-meta.ts';
import {
  FULLSYNC_MARKER,
  listSnapshots,
  loadChunk,
  readManifest,
  readSnapshot,
  removeTemporarySnapshots,
  SNAPSHOT_DIR,
} from './snapshot.ts';
import { NodeState } from './state.ts';
import { acquireDirLock, type DirLock } from './dir-lock.ts';

/**
 * How far start-up applies the log to the state:
 *
 * - `all`: every record in the WAL (the state is the whole log);
 * - `commit`: up to the persisted commit point (hardState.commit, a floor:
 *   it may lag the real one), or the newest snapshot's LSN if that is
 *   higher. The records after it stay in the log, unapplied, for the
 *   replication core to apply once it knows they are committed: a failover
 *   may still drop them, and a node that takes part in elections must not
 *   have shown them.
 */
export type ReplayThrough = 'all' | 'commit';

export interface RecoveryOptions {
  dataDir: string;
  /** Default `all`. */
  replayThrough?: ReplayThrough;
  nodeId?: string;
  fsync: FsyncPolicy;
  walSegmentBytes?: number;
  ringCapacityBytes: number;
  ringCapacityRecords: number;
  wallMs: () => number;
  warn?: (fields: Record<string, unknown>, message: string) => void;
}

export interface RecoveryReport {
  snapshotLsn: number;
  snapshotPoints: number;
  /** LSN the state was replayed to (the store's applied LSN at open). */
  appliedLsn: number;
  /** Records in the log after `appliedLsn`, left unapplied (0 under `replayThrough: 'all'`). */
  unappliedRecords: number;
  wal: WalRecoveryReport;
  durationMs: number;
  /** The node meta was in the version 1 format and has been rewritten (the data counts as committed). */
  migratedMeta: boolean;
}

export interface Recovered {
  dataDir: string;
  lock: DirLock;
  meta: NodeMeta;
  state: NodeState;
  log: RecordLog;
  clock: HybridClock;
  /** Config records (membership) at or below the last LSN, oldest first (applied or not). */
  configs: ConfigEntry[];
  /**
   * Create and drop records in the log above the applied LSN (copies), for
   * the schema at the head of the log (schema-view.ts). Empty when every
   * record was applied.
   */
  unappliedSchema: { lsn: number; bytes: Uint8Array }[];
  snapshotLsn: number;
  /** WAL bytes applied after the snapshot (toward the next automatic one). */
  bytesSinceSnapshot: number;
  report: RecoveryReport;
}

const EMPTY = new Uint8Array(0);

export async function recover(opts: RecoveryOptions): Promise<Recovered> {
  const t0 = performance.now();
  const replayThrough = opts.replayThrough ?? 'all';
  if (replayThrough !== 'all' && replayThrough !== 'commit') {
    throw new VrepError(
      'ERR_INVALID_ARG',
      `replayThrough must be "all" or "commit", got ${String(replayThrough as unknown)}`,
    );
  }
  const dataDir = path.resolve(opts.dataDir);
  await mkdir(dataDir, { recursive: true });
  const lock = await acquireDirLock(dataDir);
  try {
    await removeTemporarySnapshots(dataDir);
    await adoptFullSync(dataDir);
    const loaded = await loadNodeMeta(dataDir);
    let meta: NodeMeta;
    if (loaded === null) {
      meta = { nodeId: opts.nodeId ?? 'n1', hardState: { term: 0, votedFor: null, commit: 0 }, history: [] };
    } else {
      meta = loaded.meta;
      if (opts.nodeId !== undefined && opts.nodeId !== meta.nodeId) {
        throw new VrepError(
          'ERR_NODE_ID_MISMATCH',
          `${dataDir} belongs to node "${meta.nodeId}", not "${opts.nodeId}"`,
        );
      }
    }
    const clock = new HybridClock(opts.wallMs);
    const state = new NodeState();

    // Newest snapshot, if any. A damaged one stops start-up: the WAL before
    // it is gone, so nothing older could be completed.
    let snapshotLsn = 0;
    let snapshotPoints = 0;
    const [newest] = await listSnapshots(dataDir);
    if (newest !== undefined) {
      const manifest = await readManifest(newest);
      if (manifest.history !== undefined && manifest.history.length > 0 && meta.history.length > 0) {
        // The node's history must say the snapshot's last record was written by the epoch the
        // snapshot names: otherwise the log was cut below it and it holds records since replaced.
        const epoch = epochsThrough(meta.history, manifest.lsn).at(-1);
        if (epoch?.historyId !== manifest.historyId) {
          throw new VrepError(
            'ERR_SNAPSHOT_CORRUPT',
            `${newest}: snapshot at LSN ${manifest.lsn} of history ${manifest.historyId}, but the node's term history has LSN ${manifest.lsn} in ${epoch ? `history ${epoch.historyId}` : 'no epoch'}: it holds records the log no longer has; remove the node data and resync it`,
          );
        }
      }
      for (const c of manifest.collections)
        state.collections.set(c.name, new Collection(c.name, c.dimension, c.metric));
      await readSnapshot(newest, manifest, (chunk) => {
        loadChunk(state.collections.get(chunk.collection) as Collection, chunk);
        snapshotPoints += chunk.rows;
      });
      snapshotLsn = manifest.lsn;
      state.restoreFrom(manifest);
      if (meta.history.length === 0 && manifest.history)
        meta.history = manifest.history.map((e) => ({ ...e }));
    }

    // Records up to `applyLimit` are applied; the ones after it are only
    // checked (decoded) and kept in the log. A new data dir, or data from
    // before term histories, counts as committed (see below): all of it.
    const migrated = loaded?.migrated ?? false;
    const applyLimit =
      replayThrough === 'all' || loaded === null || migrated ? Infinity : meta.hardState.commit;
    const unappliedConfigs: ConfigEntry[] = [];
    const unappliedSchema: { lsn: number; bytes: Uint8Array }[] = [];

    // The newest records read go back into the in-memory log, at most
    // what it can hold (bytes and count), so feeders read them from memory.
    const recent: Uint8Array[] = [];
    let recentHead = 0;
    let recentBytes = 0;
    let replayedBytes = 0;
    const { wal, report } = await Wal.open(
      path.join(dataDir, 'wal'),
      {
        fsync: opts.fsync,
        ...(opts.walSegmentBytes !== undefined ? { segmentBytes: opts.walSegmentBytes } : {}),
        ...(opts.warn ? { warn: opts.warn } : {}),
      },
      snapshotLsn + 1,
      snapshotLsn,
      (bytes) => {
        const record = decodeRecord(bytes);
        // Every record in the log, applied or not, moves the clock: a write
        // this node makes next is stamped after all of them.
        clock.observe({ ms: record.hlcMs, logical: record.hlcLogical });
        if (record.lsn <= applyLimit) {
          state.apply(record);
          replayedBytes += bytes.length;
        } else {
          if (record.op === Op.Config) {
            unappliedConfigs.push({ lsn: record.lsn, membership: { members: record.members } });
          } else if (record.op === Op.CreateCollection || record.op === Op.DropCollection) {
            unappliedSchema.push({ lsn: record.lsn, bytes: bytes.slice() });
          }
        }
        // A view for now (it keeps its segment buffer alive); copied below
        // only if it is still among the newest when replay ends.
        recent.push(bytes);
        recentBytes += bytes.length;
        while (
          recentBytes > opts.ringCapacityBytes ||
          recent.length - recentHead > opts.ringCapacityRecords
        ) {
          recentBytes -= (recent[recentHead] as Uint8Array).length;
          recent[recentHead++] = EMPTY;
        }
        if (recentHead > 4096 && recentHead * 2 > recent.length) {
          recent.splice(0, recentHead);
          recentHead = 0;
        }
      },
    );
    const log = new RecordLog(
      wal,
      { ringCapacityBytes: opts.ringCapacityBytes, ringCapacityRecords: opts.ringCapacityRecords },
      recent.slice(recentHead).map((r) => r.slice()),
    );
    const lastLsn = wal.lastLsn;
    if (loaded === null || migrated || meta.history.length === 0) {
      if (meta.history.length === 0 && lastLsn > 0) {
        // Data without a history (a meta file removed by hand): one epoch covers it.
        meta.history = [
          { term: meta.hardState.term, historyId: newHistoryId(), leaderId: meta.nodeId, firstLsn: 1 },
        ];
      }
      // Data from before term histories, or written by hand: treated as committed.
      if (migrated || loaded === null) meta.hardState = { ...meta.hardState, commit: lastLsn };
      await saveNodeMeta(dataDir, meta);
    }
    checkHistory(meta.history, lastLsn, opts.warn);
    return {
      dataDir,
      lock,
      meta,
      state,
      log,
      clock,
      configs: [
        ...state.configs.map((c) => ({ lsn: c.lsn, membership: { members: c.members } })),
        ...unappliedConfigs,
      ],
      unappliedSchema,
      snapshotLsn,
      bytesSinceSnapshot: replayedBytes,
      report: {
        snapshotLsn,
        snapshotPoints,
        appliedLsn: state.appliedLsn,
        unappliedRecords: lastLsn - state.appliedLsn,
        wal: report,
        durationMs: performance.now() - t0,
        migratedMeta: migrated,
      },
    };
  } catch (err) {
    await lock.release();
    throw err;
  }
}

function checkHistory(
  history: readonly Epoch[],
  lastLsn: number,
  warn?: (fields: Record<string, unknown>, message: string) => void,
): void {
  const first = history[0];
  if (lastLsn > 0 && (first === undefined || first.firstLsn > 1)) {
    warn?.({ lastLsn }, 'node meta: the term history does not cover the start of the log');
  }
}

/**
 * Finishes installing a snapshot received by full sync (see
 * replication/snapshot-receiver.ts and Store.installReceived). Its
 * directory carries FULLSYNC_MARKER with the primary's term history: the
 * node takes that history, and everything it held before (other
 * snapshots, every WAL segment) goes. Idempotent, so a crash at any step
 * is finished by the next start.
 */
export async function adoptFullSync(dataDir: string): Promise<void> {
  const root = path.join(dataDir, SNAPSHOT_DIR);
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return;
  }
  for (const name of names.filter((n) => /^snap-\d{20}$/.test(n))) {
    const markerFile = path.join(root, name, FULLSYNC_MARKER);
    let text: string;
    try {
      text = await readFile(markerFile, 'utf8');
    } catch {
      continue;
    }
    const marker = JSON.parse(text) as { history: Epoch[]; term: number };
    for (const other of names) {
      if (other !== name && (other.startsWith('snap-') || other.startsWith('tmp-'))) {
        await rm(path.join(root, other), { recursive: true, force: true });
      }
    }
    await rm(path.join(dataDir, 'wal'), { recursive: true, force: true });
    const loaded = await loadNodeMeta(dataDir);
    if (loaded === null)
      throw new VrepError('ERR_CORRUPT_META', `${dataDir}: a received snapshot but no node meta`);
    const meta = loaded.meta;
    const snapshotLsn = Number(name.slice('snap-'.length));
    await saveNodeMeta(dataDir, {
      ...meta,
      hardState: {
        term: Math.max(meta.hardState.term, marker.term),
        votedFor: meta.hardState.votedFor,
        commit: Math.min(meta.hardState.commit, snapshotLsn),
      },
      history: marker.history,
    });
    await rm(markerFile);
    await fsyncDir(path.join(root, name));
    return;
  }
}
