/**
 * The programmatic face of a vrep node (the TypeScript API in the interface
 * doc). It puts the parts together: the store (state, log, snapshots), the
 * replication core (every decision) and the runtime that turns the core's
 * Ready into I/O, the peers (links, feeders, full syncs), the write path,
 * and a clock that ticks the core. Roles are the operator's (standalone,
 * primary, replica; promote and configure change them at run time) or,
 * with role auto, elected (the core's elections; transfer, promote and
 * the learner calls steer them).
 */
import { randomInt } from 'node:crypto';
import { pino } from 'pino';
import { isVrepError, messageOf, VrepError, vrepError } from '../errors.ts';
import type { MetricName } from '../log/record.ts';
import { encodeRecord, Op, recordLsn, recordTerm } from '../log/record.ts';
import {
  Store,
  type LostRecords,
  type RecoveryReport,
  type StoreOptions,
  type WriteResult,
} from '../store/store.ts';
import type { PointInput } from '../store/points.ts';
import type { PayloadFilter } from '../store/search.ts';
import type { CollectionInfo } from '../store/collection.ts';
import type { CollectionShape } from '../store/state.ts';
import type { SnapshotInfo } from '../store/snapshot.ts';
import { ReplicationCore, type CoreEvent, type Role as CoreRole } from '../consensus/core.ts';
import type { Entry } from '../consensus/messages.ts';
import { isMember, type Member, type Membership } from '../consensus/membership.ts';
import { ReplicationRuntime, WriteError, type RuntimePorts } from '../replication/runtime.ts';
import { Peers, configOf, type PeersEvent } from '../replication/peers.ts';
import { RecordsSource } from '../replication/records-source.ts';
import { EventHub } from '../replication/events.ts';
import { CommitTimes } from '../replication/commit-times.ts';
import { sumLinkCounters } from '../replication/peer-links.ts';
import { parseAddress, resolveReplication, type ResolvedReplication } from '../replication/settings.ts';
import type { LocalIdentity } from '../replication/peer-session.ts';
import { NonceRegistry } from '../transport/peer-auth.ts';
import { FeederPool } from '../workers/feeder-pool.ts';
import { ConsistencyLevel } from '../replication/consistency.ts';
import { checkOptions, Writer, type WriteOptions } from './writer.ts';
import { ChangeStreams, type ChangeStream, type ChangeStreamOptions } from '../streams/change-stream.ts';
import {
  ConsumerGroups,
  type GroupConsumer,
  type GroupStatus,
  type GroupStreamOptions,
} from '../streams/consumer-groups.ts';
import { buildStatus, roleNowOf, type StatusSources } from './status.ts';
import type {
  MemberInfo,
  NodeEvent,
  NodeLogger,
  ReplicaInfo,
  ReplicationNodeOptions,
  ReplicationStats,
  ReplicationStatus,
  Role,
} from './types.ts';

export type * from './types.ts';
export type { WriteOptions } from './writer.ts';

export interface Point {
  id: string;
  vector: Float32Array;
  payload: Record<string, unknown> | null;
}

export interface SearchResult {
  id: string;
  score: number;
  payload: Record<string, unknown> | null;
}

function parsePayload(text: string | null): Record<string, unknown> | null {
  return text === null ? null : (JSON.parse(text) as Record<string, unknown>);
}

const DEFAULT_WRITE_TIMEOUT_MS = 10_000;
/** The core's clock: one tick every this many ms. */
export const TICK_MS = 10;
/** The state of a node whose disk refused a write is probed this often, ms. */
const WAL_PROBE_MS = 1000;

export class ReplicationNode {
  private currentRole: Role;
  private readonly store: Store;
  private settings: ResolvedReplication;
  private readonly logger: NodeLogger;
  private readonly core: ReplicationCore;
  private readonly runtime: ReplicationRuntime;
  private readonly writer: Writer;
  private peers: Peers | null = null;
  /** RECORDS payloads for the feeders (with the compression policy), while the role has peers. */
  private records: RecordsSource | null = null;
  private pool: FeederPool | null = null;
  private readonly events_ = new EventHub();
  private readonly changeStreams: ChangeStreams;
  private readonly consumerGroups: ConsumerGroups;
  private readonly commitTimes = new CommitTimes();
  private readonly nonces = new NonceRegistry({ capacity: 100_000, maxAgeMs: 24 * 3600 * 1000 });
  private ticker: NodeJS.Timeout | null = null;
  private walProbe: NodeJS.Timeout | null = null;
  /** Role switches (promote, configure) run one at a time. */
  private switching: Promise<void> = Promise.resolve();
  private failure: Error | null = null;
  private stopped = false;
  /** A follower's refusal of its primary, for status; cleared once it follows. */
  private refusedReason: string | null = null;
  private readonly refusedBy = new Map<string, string>();
  /** Snapshot bytes sent to a follower, until it reports itself synced (its FullSyncFinished). */
  private readonly fullSyncBytesSent = new Map<string, number>();
  /** Divergent tails this node dropped since it started, each listed in a `lost/` file. */
  private readonly truncation: { records: number; files: number; last: LostRecords | null } = {
    records: 0,
    files: 0,
    last: null,
  };
  private appliedFromPrimary = 0;
  /** The last full sync installed as a replica (status). */
  private lastFullSync: { snapshotLsn: number; alongside: number; atMs: number } | null = null;
  /** Role auto: what the elections did, for status and metrics. */
  private readonly election = { campaigns: 0, stepDowns: 0, lastElectionAtMs: 0 };
  /** The role last announced by RoleChanged (a step-down, then learning the new leader, is one change). */
  private announcedRole: ReturnType<typeof roleNowOf> | null = null;
  private readonly lagging = new Set<string>();
  private followerCounters = { fullSyncs: 0, partialSyncs: 0, lastSyncMs: 0 };

  private constructor(init: { role: Role; store: Store; settings: ResolvedReplication; logger: NodeLogger }) {
    this.currentRole = init.role;
    this.store = init.store;
    this.changeStreams = new ChangeStreams(init.store);
    this.consumerGroups = new ConsumerGroups({
      streams: this.changeStreams,
      positions: () => this.store.state.groups,
      firstLsn: () => this.store.records.firstLsn,
      assertWritable: () => this.assertWritable(),
      caughtUp: async () => {
        if (this.core.role === 'leader') await this.linearizable();
      },
      setPosition: async (group, position, timeoutMs) => {
        await this.writer.setGroupPosition(group, position, { consistency: 'quorum', timeoutMs });
      },
      warn: (fields, message) => this.logger.warn(fields, message),
    });
    this.settings = init.settings;
    this.logger = init.logger;
    const s = init.store;
    const ticks = (ms: number): number => Math.max(1, Math.round(ms / TICK_MS));
    const elections = init.settings.elections;
    this.core = new ReplicationCore({
      id: s.nodeId,
      role: init.role === 'replica' || elections !== null ? 'follower' : 'leader',
      hardState: s.hardState,
      log: {
        lastLsn: s.lastLsn,
        firstLsn: s.records.firstLsn,
        history: s.history,
        configs: s.recoveredConfigs,
        appliedLsn: s.appliedLsn,
      },
      rng: () => randomInt(0, 2 ** 32) / 2 ** 32,
      heartbeatTicks: ticks(init.settings.timing.heartbeatIntervalMs),
      timeoutTicks: Math.max(
        ticks(init.settings.timing.replicaTimeoutMs),
        ticks(init.settings.timing.heartbeatIntervalMs) + 1,
      ),
      followsConfiguredPrimary: init.role === 'replica' && init.settings.masterAddress !== null,
      elections:
        elections === null
          ? null
          : {
              electionTicks: ticks(elections.electionTimeoutMs),
              bootstrap: bootstrapVoters(s.nodeId, init.settings),
              encodeConfig: (lsn, term, membership) => {
                const ts = s.clock.now();
                return encodeRecord({
                  lsn,
                  term,
                  hlcMs: ts.ms,
                  hlcLogical: ts.logical,
                  origin: s.nodeId,
                  collection: '',
                  op: Op.Config,
                  members: membership.members,
                });
              },
            },
      onLogChange: (c) => {
        if (c.type === 'append') s.schema.appended(c.entries);
        else if (c.type === 'truncate') s.schema.truncated(c.afterLsn);
        else s.schema.reset();
        // The membership may have changed: the dialers follow it.
        if (c.type !== 'append' || c.entries.some((e) => e.config !== null))
          queueMicrotask(() => this.peers?.reconcile());
      },
    });
    this.runtime = new ReplicationRuntime(this.core, this.ports());
    this.runtime.initApplied(s.appliedLsn);
    this.writer = new Writer({
      store: s,
      runtime: this.runtime,
      nodeId: s.nodeId,
      tickMs: TICK_MS,
      defaultLevel: () => this.settings.consistency,
      defaultTimeoutMs: DEFAULT_WRITE_TIMEOUT_MS,
      assertWritable: () => this.assertWritable(),
      proposed: (lsn) => this.commitTimes.record(lsn, Date.now()),
      mapError: (err) => this.mapWriteError(err),
    });
  }

  static async start(opts: ReplicationNodeOptions): Promise<ReplicationNode> {
    if (typeof opts !== 'object' || opts === null)
      throw new TypeError('ReplicationNode.start(opts): expected an object');
    if (typeof opts.dataDir !== 'string' || opts.dataDir.length === 0) {
      throw new TypeError('ReplicationNode.start(opts.dataDir): expected a non-empty path');
    }
    const role = opts.replication?.role ?? 'standalone';
    if (role === 'multi-master') {
      throw new VrepError(
        'ERR_UNSUPPORTED',
        `role "${role}" is not available in this build yet; use "standalone", "primary", "replica" or "auto"`,
      );
    }
    const settings = resolveReplication(opts.replication);
    const logger = opts.logger ?? pino({ name: 'vrep', level: process.env['VREP_LOG_LEVEL'] ?? 'warn' });
    const s = opts.storage ?? {};
    const storeOptions: StoreOptions = {
      dataDir: opts.dataDir,
      ...(opts.nodeId !== undefined ? { nodeId: opts.nodeId } : {}),
      ...(s.fsync !== undefined ? { fsync: s.fsync } : {}),
      ...(s.walSegmentBytes !== undefined ? { walSegmentBytes: s.walSegmentBytes } : {}),
      ...(s.logBytes !== undefined ? { ringCapacityBytes: s.logBytes } : {}),
      ...(opts.replication?.logSize !== undefined ? { ringCapacityRecords: opts.replication.logSize } : {}),
      ...(s.snapshotEveryBytes !== undefined ? { snapshotEveryBytes: s.snapshotEveryBytes } : {}),
      ...(opts.streams?.maxRetainedBytes !== undefined
        ? { streamsMaxRetainedBytes: checkRetainedBytes(opts.streams.maxRetainedBytes) }
        : {}),
      // Role auto makes visible only what is committed: recovery stops at the commit point.
      replayThrough: role === 'auto' ? 'commit' : 'all',
      warn: (fields, message) => logger.warn(fields, message),
    };
    const store = await Store.open(storeOptions);
    let node: ReplicationNode | undefined;
    try {
      node = new ReplicationNode({ role, store, settings, logger });
      await node.startRole();
      node.startClock();
      if (role === 'primary') node.bootstrapMembers();
    } catch (err) {
      await node?.stopRole().catch(() => undefined);
      await store.close();
      throw err;
    }
    return node;
  }

  // ------------------------------------------------------------------ wiring

  private ports(): RuntimePorts {
    const s = this.store;
    const later = (p: Promise<unknown>, done: (err: Error | null) => void): void => {
      p.then(
        () => done(null),
        (err: unknown) => done(err as Error),
      );
    };
    return {
      saveHardState: (hs, history, done) => later(s.saveHardState(hs, history), done),
      truncateLog: (afterLsn, done) => later(this.truncate(afterLsn), done),
      appendLog: (entries, done) => {
        let durable: Promise<void>;
        try {
          durable = s.append(entries.map((e) => e.bytes));
        } catch (err) {
          durable = Promise.reject(err as Error);
        }
        // A refused append (a full disk), on any role: find out when the disk takes writes again.
        durable.catch(() => {
          if (this.store.walFailure) this.probeWal();
        });
        this.prepareFeed(entries);
        later(durable, done);
      },
      readLog: (fromLsn, toLsn, done) => {
        s.records.read(fromLsn, toLsn, 64 * 1024 * 1024).then(
          (records) => done(null, records.map(toEntry)),
          (err: unknown) => done(err as Error, []),
        );
      },
      apply: (entries) => {
        s.apply(entries);
        if (this.core.role === 'follower') this.appliedFromPrimary += entries.length;
      },
      rollback: (lsn, done) => later(s.rollback(lsn), done),
      installSnapshot: (lsn, done) => {
        const received = this.peers?.receivedSnapshot(lsn);
        if (received === undefined) {
          done(new VrepError('ERR_PROTOCOL', `no received snapshot at LSN ${lsn} to install`));
          return;
        }
        s.installReceived(lsn, received.dir, received.staged).then(
          (installed) => {
            this.peers?.forgetReceived(lsn);
            this.followerCounters.fullSyncs++;
            this.followerCounters.lastSyncMs = Date.now();
            done(null, installed);
          },
          (err: unknown) => done(err as Error),
        );
      },
      send: (m) => this.peers?.send(m),
      disconnect: (peer, reason) => this.peers?.disconnect(peer, reason),
      offerSnapshot: (to, term, probeId, force) => this.peers?.offerSnapshot(to, term, probeId, force),
      event: (e) => this.onCoreEvent(e),
      committed: (lsn) => s.setCommitted(lsn),
      fatal: (err) => {
        this.failure = err;
        this.logger.error(
          { err: err.message },
          'replication: the node stopped replicating (its disk failed, or it cannot rebuild its state after a cut)',
        );
      },
    };
  }

  /** A leader's new records, encoded for its followers while they go to disk (RecordsSource.prepare). */
  private prepareFeed(entries: readonly Entry[]): void {
    const first = entries[0];
    const last = entries.at(-1);
    if (first === undefined || last === undefined || this.core.role !== 'leader') return;
    if (this.records === null || (this.peers?.connectedPeers().length ?? 0) === 0) return;
    this.records.prepare(entries.map((e) => e.bytes));
  }

  /**
   * Drops records above `afterLsn` (a divergent tail). The store lists what
   * goes in a `lost/` file first (src/store/lost-records.ts), so an
   * operator can see which writes acknowledged only at One were discarded;
   * when it cannot, the truncation fails and the runtime stops the node.
   */
  private async truncate(afterLsn: number): Promise<void> {
    const lost = await this.store.truncateAfter(afterLsn);
    if (lost === null) return;
    this.truncation.records += lost.records;
    this.truncation.files++;
    this.truncation.last = lost;
    this.events_.emit({
      type: 'Truncated',
      afterLsn,
      fromLsn: lost.fromLsn,
      toLsn: lost.toLsn,
      records: lost.records,
      file: lost.file,
      atMs: lost.atMs,
    });
  }

  private identity(): LocalIdentity {
    return {
      clusterId: this.settings.clusterId,
      nodeId: this.store.nodeId,
      secret: this.settings.secret,
      nonces: this.nonces,
      httpAddress: this.settings.httpAddress,
      listenPort: () => this.peers?.peerPort ?? null,
      role: () => {
        const now = roleNowOf(this.currentRole, this.core.role);
        return now === 'multi-master' ? 'standalone' : now;
      },
      term: () => this.core.term,
      lastLsn: () => this.core.log.lastLsn,
    };
  }

  private async startRole(): Promise<void> {
    if (this.currentRole === 'standalone' || this.peers) return;
    this.pool ??= new FeederPool(this.store.records.ring.handle, { threads: 1 });
    const records = new RecordsSource(
      () => this.store.records,
      this.pool,
      this.settings.compression,
      () => this.settings.bandwidthBytesPerSec !== null,
    );
    this.records = records;
    const peers = new Peers(this.identity(), this.settings, this.logger, this.store, records, {
      step: (input) => this.runtime.step(input),
      core: () => this.core,
      lagMs: (peer) => this.lagOf(peer).lagMs,
      resolved: (address, id) => this.resolveMember(address, id),
      event: (e) => this.onPeersEvent(e),
    });
    this.peers = peers;
    await peers.start();
  }

  private async stopRole(): Promise<void> {
    const peers = this.peers;
    this.peers = null;
    this.records = null;
    await peers?.stop();
  }

  private startClock(): void {
    this.ticker = setInterval(() => {
      this.runtime.tick();
      this.checkLagging();
    }, TICK_MS);
    this.ticker.unref();
  }

  /** The addresses in `replication.peers` are members from the first start on (by address until they answer). */
  private bootstrapMembers(): void {
    const configured = this.settings.peers;
    if (configured.length === 0) return;
    const m = this.core.membership;
    const missing = configured.filter((a) => !m.members.some((x) => x.address === a));
    if (missing.length === 0) return;
    const next: Membership = {
      members: [...this.explicitMembers(), ...missing.map((address) => ({ id: null, address }))],
    };
    this.writer
      .proposeConfig(next)
      .catch((err: unknown) =>
        this.logger.warn(
          { err: (err as Error).message },
          'replication: could not record the configured peers as members',
        ),
      );
  }

  /** The membership as explicit entries (the implicit one is this leader alone). */
  private explicitMembers(): Member[] {
    const m = this.core.membership.members.map((x) => ({ ...x }));
    if (!m.some((x) => x.id === this.store.nodeId)) m.unshift({ id: this.store.nodeId, address: null });
    return m;
  }

  private resolveMember(address: string, id: string): void {
    if (this.currentRole === 'auto') this.runtime.resolveBootstrap(address, id);
    if (this.core.role !== 'leader') return;
    const members = this.explicitMembers();
    const slot = members.find((x) => x.id === null && x.address === address);
    if (!slot || members.some((x) => x.id === id)) return;
    slot.id = id;
    this.writer
      .proposeConfig({ members })
      .catch((err: unknown) =>
        this.logger.warn(
          { err: (err as Error).message, address, id },
          'replication: could not record a member id',
        ),
      );
  }

  // ------------------------------------------------------------------ events

  private onCoreEvent(e: CoreEvent): void {
    const atMs = Date.now();
    switch (e.type) {
      case 'roleChanged':
        if (e.role === 'follower' && e.leader !== null) this.refusedReason = null;
        if (this.currentRole === 'auto') this.onElectedRole(e.role, e.term, e.leader, atMs);
        return;
      case 'campaign':
        if (!e.preVote) {
          this.election.campaigns++;
          this.logger.info({ term: e.term, forced: e.force }, 'replication: campaigning');
        }
        return;
      case 'steppedDown':
        this.election.stepDowns++;
        this.logger.warn({ term: e.term, reason: e.reason }, 'replication: stepped down as primary');
        return;
      case 'transfer':
        this.logger.warn(
          { to: e.to, outcome: e.outcome, reason: e.reason },
          'replication: leadership transfer',
        );
        return;
      case 'synced':
        this.refusedBy.delete(e.peer);
        if (e.mode === 'partial') {
          this.leaderCounters.partialSyncs++;
          this.leaderCounters.lastSyncMs = atMs;
        } else {
          this.leaderCounters.lastSyncMs = atMs;
          const bytes = this.fullSyncBytesSent.get(e.peer) ?? 0;
          this.fullSyncBytesSent.delete(e.peer);
          this.events_.emit({ type: 'FullSyncFinished', peer: e.peer, snapshotLsn: e.lsn, bytes, atMs });
        }
        this.events_.emit({ type: 'Synced', peer: e.peer, lsn: e.lsn, mode: e.mode, alongside: 0, atMs });
        return;
      case 'followed':
        this.refusedReason = null;
        if (e.mode === 'partial') this.followerCounters.partialSyncs++;
        this.followerCounters.lastSyncMs = atMs;
        if (e.mode === 'full') {
          this.lastFullSync = { snapshotLsn: e.lsn, alongside: e.alongside, atMs };
          this.logger.info(
            { leader: e.leader, snapshotLsn: e.lsn, alongside: e.alongside },
            'replication: full sync installed; the records written meanwhile came alongside it',
          );
        }
        this.events_.emit({
          type: 'Synced',
          peer: e.leader,
          lsn: e.lsn,
          mode: e.mode,
          alongside: e.alongside,
          atMs,
        });
        return;
      case 'refused':
        if (e.byMe) {
          if (this.refusedReason !== e.reason)
            this.logger.error({ peer: e.peer, reason: e.reason }, 'replication: refusing to follow');
          this.refusedReason = e.reason;
        } else {
          this.refusedBy.set(e.peer, e.reason);
        }
        this.events_.emit({ type: 'Refused', peer: e.peer, reason: e.reason, atMs });
        return;
      case 'fenced':
        this.logger.error(
          { by: e.by, term: e.term },
          'replication: a newer term began elsewhere; this primary takes no writes',
        );
        this.events_.emit({ type: 'Fenced', by: e.by, term: e.term, atMs });
        return;
      case 'truncated':
      case 'fullSyncOffered':
      case 'peerSilent':
        return;
    }
  }

  /** Role auto: what an election made this node, as events and log lines. */
  private onElectedRole(role: CoreRole, term: number, leader: string | null, atMs: number): void {
    const now = roleNowOf('auto', role);
    if (now !== this.announcedRole) {
      this.announcedRole = now;
      this.events_.emit({ type: 'RoleChanged', role: now, term, atMs });
    }
    if (leader !== null) {
      this.election.lastElectionAtMs = atMs;
      this.events_.emit({ type: 'LeaderElected', leader, term, atMs });
      if (role === 'leader') this.logger.warn({ term }, 'replication: elected primary');
      else this.logger.info({ term, leader }, 'replication: following the elected primary');
    }
    // The dialers follow the role (a leader dials its members).
    queueMicrotask(() => this.peers?.reconcile());
  }

  private leaderCounters = { fullSyncs: 0, partialSyncs: 0, lastSyncMs: 0 };

  private onPeersEvent(e: PeersEvent): void {
    const atMs = Date.now();
    switch (e.type) {
      case 'connected':
        if (this.core.role === 'leader')
          this.events_.emit({ type: 'ReplicaConnected', replica: e.peer, atMs });
        return;
      case 'disconnected':
        if (this.core.role === 'leader')
          this.events_.emit({ type: 'ReplicaDisconnected', replica: e.peer, reason: e.reason, atMs });
        return;
      case 'fullSyncStarted':
        this.events_.emit({
          type: 'FullSyncStarted',
          peer: e.peer,
          snapshotLsn: e.snapshotLsn,
          resumeFromChunk: e.fromChunk,
          atMs,
        });
        return;
      case 'fullSyncSent':
        this.fullSyncBytesSent.set(e.peer, e.bytes);
        return;
      case 'fullSyncInstalled':
        this.events_.emit({
          type: 'FullSyncFinished',
          peer: e.peer,
          snapshotLsn: e.snapshotLsn,
          bytes: e.bytes,
          atMs,
        });
        return;
    }
  }

  private checkLagging(): void {
    if (this.core.role !== 'leader') return;
    const last = this.core.log.lastLsn;
    for (const peer of this.core.peers()) {
      const p = this.core.peer(peer);
      if (!p) continue;
      const lagOps = last - p.match;
      const lagging = p.state === 'replicate' && lagOps > this.settings.lagThresholdOps;
      if (lagging && !this.lagging.has(peer)) {
        this.lagging.add(peer);
        this.events_.emit({
          type: 'Lagging',
          peer,
          lagOperations: lagOps,
          lagMs: this.lagOf(peer).lagMs,
          atMs: Date.now(),
        });
      } else if (!lagging) this.lagging.delete(peer);
    }
  }

  // ------------------------------------------------------------------ writes

  /** This role is a replica or a deposed primary, or its disk refuses writes: say so, naming the primary. */
  private assertWritable(): void {
    if (this.stopped) throw vrepError('ERR_NODE_STOPPED');
    if (this.failure)
      throw new VrepError('ERR_WAL_IO', `this node stopped taking writes: ${this.failure.message}`);
    const core = this.core;
    if (this.currentRole === 'auto' && core.role !== 'leader') {
      if (core.role === 'follower' && core.leader !== null) {
        throw this.notLeader(
          `this node is not the primary (${core.leader} leads term ${core.term})`,
          core.leader,
        );
      }
      throw new VrepError(
        'ERR_NO_LEADER',
        `no primary is known in term ${core.term}: an election is running; retry shortly`,
      );
    }
    if (core.role === 'follower') {
      const http = this.peers?.httpAddressOf(core.leader) ?? null;
      const peer = this.peers?.configuredPrimaryAddress ?? null;
      throw new VrepError(
        'ERR_READ_ONLY',
        `this node is a read-only replica; write to the primary${http ? ` at http://${http}` : peer ? ` (peer address ${peer})` : ''}`,
        { primary: http },
      );
    }
    if (core.role === 'fenced') {
      throw this.notLeader(
        `this node is no longer the primary (term ${core.term} began elsewhere${core.leader ? `, led by ${core.leader}` : ''}); it takes no writes`,
        core.leader,
      );
    }
    const wal = this.store.walFailure;
    if (wal) {
      this.probeWal();
      throw new VrepError(
        'ERR_WAL_IO',
        `this node takes no writes until its disk does again: ${wal.message}`,
      );
    }
  }

  /** A refused write: checks every second whether the disk takes writes again. */
  private probeWal(): void {
    if (this.walProbe) return;
    this.walProbe = setInterval(() => {
      void this.store.records.wal.probe().then((ok) => {
        if (!ok || !this.walProbe) return;
        clearInterval(this.walProbe);
        this.walProbe = null;
        this.logger.warn({}, 'storage: the disk takes writes again');
      });
    }, WAL_PROBE_MS);
    this.walProbe.unref();
  }

  /** ERR_NOT_LEADER naming the leader's HTTP address when this node has heard it. */
  private notLeader(why: string, leader: string | null): VrepError {
    const primary = this.peers?.httpAddressOf(leader) ?? null;
    return new VrepError('ERR_NOT_LEADER', messageOf('ERR_NOT_LEADER', why, primary), { primary });
  }

  private mapWriteError(err: Error): Error {
    if (!(err instanceof WriteError)) return err;
    if (err.code === 'ERR_NOT_LEADER') return this.notLeader(err.message, err.leader);
    if (err.code === 'ERR_WAL_IO') this.probeWal();
    return new VrepError(err.code, err.message);
  }

  async createCollection(
    name: string,
    spec: { dimension: number; metric: MetricName },
    opts: WriteOptions = {},
  ): Promise<WriteResult> {
    checkOptions(opts);
    return this.writer.createCollection(name, spec, opts);
  }

  async dropCollection(name: string, opts: WriteOptions = {}): Promise<WriteResult> {
    checkOptions(opts);
    return this.writer.dropCollection(name, opts);
  }

  /**
   * Upserts a batch, all or nothing. Resolves once the consistency level is
   * met (One: this node's WAL per its fsync policy; Quorum: a majority of
   * the members' WALs, this node's included; All: every member's), and the
   * write is visible here (with role auto a One write becomes visible once
   * committed, after it resolves: only committed records are applied).
   * Rejects with ERR_CONSISTENCY_TIMEOUT when the
   * level is not met within timeoutMs: the write is then indeterminate (in
   * this node's log, maybe not elsewhere).
   */
  async write(
    collection: string,
    points: readonly PointInput[],
    opts: WriteOptions = {},
  ): Promise<WriteResult> {
    checkOptions(opts);
    return this.writer.upsert(collection, points, opts);
  }

  /** Upserts an already packed batch (the HTTP fast paths): ids, a count x dimension Float32Array, raw payload JSON bytes. */
  async writePacked(
    collection: string,
    batch: { ids: string[]; vectors: Float32Array; payloads: Uint8Array[] },
    opts: WriteOptions = {},
  ): Promise<WriteResult> {
    checkOptions(opts);
    return this.writer.upsertPacked(collection, batch, opts);
  }

  async delete(
    collection: string,
    ids: readonly (string | number)[],
    opts: WriteOptions = {},
  ): Promise<WriteResult> {
    checkOptions(opts);
    return this.writer.delete(collection, ids, opts);
  }

  // ------------------------------------------------------------------ reads

  get role(): Role {
    return this.currentRole;
  }

  get nodeId(): string {
    return this.store.nodeId;
  }

  /** Whether this node takes writes now, and why not (a replica, a full disk, fenced, stopping). */
  get writable(): { ok: boolean; reason: string | null } {
    return this.writableNow();
  }

  /** What start-up recovered (snapshot LSN, WAL records replayed, a cut tail). */
  get recovery(): RecoveryReport {
    return this.store.recovery;
  }

  /** LSN of the last record applied here: what reads reflect (the log may hold more, not yet visible). */
  get lastLsn(): number {
    return this.store.appliedLsn;
  }

  /** LSN of the last record this node's WAL holds durably (per its fsync policy): what it acknowledges. */
  get durableLsn(): number {
    return this.core.log.durableLsn;
  }

  /** Recent WAL fsync durations (bounded), for metrics. */
  get walFsyncLatenciesMs(): readonly number[] {
    return this.store.records.wal.fsyncLatenciesMs;
  }

  /** Id of the epoch that wrote the last record (changes with every new primary term). */
  get historyId(): string {
    const h = this.core.termHistory;
    return h.at(-1)?.historyId ?? '0'.repeat(32);
  }

  get term(): number {
    return this.core.term;
  }

  collections(): CollectionInfo[] {
    return this.store.listCollections();
  }

  /**
   * A collection's dimension and metric at the head of the log: what the
   * next write is checked against. `collections()` shows the applied state,
   * which trails a create that was acknowledged before it applied.
   */
  collectionShape(name: string): CollectionShape | undefined {
    return this.store.schema.get(name);
  }

  /**
   * A linearizable read's wait (etcd's ReadIndex): this node confirms with a
   * majority of the voters that it still leads, after the call, and applies
   * through the commit point of then. Resolves with that LSN; on a node
   * that does not lead, ERR_NOT_LEADER (naming the leader) or ERR_NO_LEADER.
   */
  private linearizable(): Promise<number> {
    if (this.core.role !== 'leader') {
      this.assertWritable();
      throw this.notLeader('a linearizable read goes to the primary', this.core.leader);
    }
    return new Promise((resolve, reject) => {
      this.runtime.read(Math.ceil(DEFAULT_WRITE_TIMEOUT_MS / TICK_MS), (err, index) => {
        if (err !== null || index === undefined) reject(this.mapWriteError(err ?? new Error('no index')));
        else resolve(index);
      });
    });
  }

  async get(collection: string, id: string, opts: ReadOptions = {}): Promise<Point | null> {
    if (checkReadOptions(opts) === 'linearizable') await this.linearizable();
    const p = this.store.get(collection, id);
    return p === null ? null : { id: p.id, vector: p.vector, payload: parsePayload(p.payload) };
  }

  async search(
    collection: string,
    vector: Float32Array | readonly number[],
    opts: { k?: number; filter?: PayloadFilter } & ReadOptions = {},
  ): Promise<SearchResult[]> {
    if (checkReadOptions(opts) === 'linearizable') await this.linearizable();
    const hits = this.store.search(collection, vector, {
      k: opts.k ?? 10,
      ...(opts.filter !== undefined ? { filter: opts.filter } : {}),
    });
    return hits.map((h) => ({ id: h.id, score: h.score, payload: parsePayload(h.payload) }));
  }

  /** Order-independent content digest of a collection, equal on nodes holding the same data. */
  digest(collection: string): string {
    return this.store.digest(collection);
  }

  /** Takes a snapshot now (writes continue meanwhile). */
  async snapshot(): Promise<SnapshotInfo> {
    return this.store.snapshot();
  }

  /** Port of the peer listener (null: standalone, which does not listen for peers). */
  get peerPort(): number | null {
    return this.peers?.peerPort ?? null;
  }

  // ------------------------------------------------------------------ status

  private lagOf(peer: string): { lagMs: number; lagOps: number } {
    const p = this.core.peer(peer);
    const last = this.core.log.lastLsn;
    const match = p?.match ?? 0;
    return { lagMs: this.commitTimes.lagMs(match, last, Date.now()), lagOps: Math.max(0, last - match) };
  }

  private statusSources(): StatusSources {
    return {
      role: this.currentRole,
      election:
        this.settings.elections === null
          ? null
          : { timeoutMs: this.settings.elections.electionTimeoutMs, ...this.election },
      core: this.core,
      store: this.store,
      peers: this.peers,
      lagOf: (peer) => this.lagOf(peer),
      lagThresholdOps: this.settings.lagThresholdOps,
      counters: this.core.role === 'leader' ? this.leaderCounters : this.followerCounters,
      link: this.peers?.linkCounters ?? sumLinkCounters([]),
      refusedReason: this.refusedReason,
      refusedBy: this.refusedBy,
      truncation: this.truncation,
      lastFullSync: this.lastFullSync,
      compression: this.records?.policy.stats() ?? null,
      appliedFromPrimary: this.appliedFromPrimary,
      writable: this.writableNow(),
      groups: this.consumerGroups.list(),
    };
  }

  private writableNow(): { ok: boolean; reason: string | null } {
    try {
      if (this.core.role === 'leader') {
        if (this.stopped) return { ok: false, reason: 'stopping' };
        if (this.failure) return { ok: false, reason: this.failure.message };
        const wal = this.store.walFailure;
        if (wal) return { ok: false, reason: wal.message };
        return { ok: true, reason: null };
      }
      this.assertWritable();
      return { ok: true, reason: null };
    } catch (err) {
      return { ok: false, reason: (err as Error).message };
    }
  }

  /** GET /replication/status. */
  replicationStatus(): ReplicationStatus {
    return buildStatus(this.statusSources());
  }

  /** GET /replication/stats. */
  replicationStats(): ReplicationStats {
    return buildStatus(this.statusSources()).stats;
  }

  /** GET /replication/replicas: the members and the followers this primary knows, connected or not. */
  replicas(): ReplicaInfo[] {
    return buildStatus(this.statusSources()).replicas;
  }

  /** The cluster's members, as this node's log holds them. */
  members(): MemberInfo[] {
    return buildStatus(this.statusSources()).members;
  }

  /** Replica: how far behind its primary it is. Primary: the largest lag among its replicas. */
  lag(): { lag_ms: number; lag_operations: number } {
    const st = this.replicationStats();
    return { lag_ms: st.lag_ms, lag_operations: st.lag_operations };
  }

  /** Replication events as they happen, from the moment of the call (bounded buffer per reader). */
  events(): AsyncIterableIterator<NodeEvent> {
    return this.events_.subscribe();
  }

  /**
   * A change stream: the committed changes of data, in log order, from
   * `from` ('earliest', 'latest' (the default) or after a position
   * `{term, lsn, index?}`), read through a committed log cursor
   * (src/streams/change-stream.ts, docs/change-streams.md). Iterate it
   * with `for await`; it ends when `signal` aborts or the node stops.
   */
  changes(opts: GroupStreamOptions): GroupConsumer;
  changes(opts?: ChangeStreamOptions & { group?: undefined }): ChangeStream;
  changes(opts?: ChangeStreamOptions): ChangeStream | GroupConsumer;
  changes(opts: ChangeStreamOptions = {}): ChangeStream | GroupConsumer {
    if (typeof opts === 'object' && opts !== null && opts.group !== undefined)
      return this.consumerGroups.join(opts as GroupStreamOptions);
    return this.changeStreams.stream(opts);
  }

  /** Consumer groups: committed positions (replicated) and members reading here (docs/change-streams.md). */
  consumerGroupsStatus(): GroupStatus[] {
    return this.consumerGroups.list();
  }

  /** Deletes a consumer group's position (a record, replicated); false when there was no such group. */
  deleteConsumerGroup(name: string): Promise<boolean> {
    return this.consumerGroups.delete(name);
  }

  // ------------------------------------------------------------------ operator

  private requirePrimary(what: string): Peers {
    if (this.core.role !== 'leader' || this.peers === null) {
      throw new VrepError('ERR_ROLE', `${what}: this node is ${this.currentRole}, not a primary`);
    }
    return this.peers;
  }

  /**
   * Primary: dials a replica's peer listener, makes it a member (a config
   * record: durable, replicated, counted by Quorum and All from then on)
   * and feeds it. Resolves once the membership change is in this node's log.
   */
  async addReplica(address: string): Promise<void> {
    parseAddress('address', address);
    const peers = this.requirePrimary('addReplica');
    try {
      const id = await withTimeout(peers.dialAndIdentify(address), 30_000, `no node answered at ${address}`);
      await this.configSettled('addReplica');
      const members = this.explicitMembers();
      const known = members.find((m) => m.id === id);
      if (known) {
        if (known.address === address) return;
        known.address = address;
      } else {
        const slot = members.find((m) => m.id === null && m.address === address);
        if (slot) slot.id = id;
        else members.push({ id, address });
      }
      await this.writer.proposeConfig({ members });
    } finally {
      peers.finishAdd(address);
    }
  }

  /** Waits until the core leads (a promotion waits for a snapshot install in progress). */
  private async whenLeader(what: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.core.role !== 'leader' && !this.stopped) {
      if (Date.now() > deadline) {
        throw new VrepError(
          'ERR_ROLE',
          `${what}: still not the primary after ${timeoutMs} ms (a snapshot install did not finish)`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, TICK_MS));
    }
  }

  /**
   * Membership changes go one at a time (the core refuses a second one
   * while the first is not committed): waits for the one in flight, so
   * that operator calls made one after another do not fail on each other.
   */
  private async configSettled(what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.core.role === 'leader' && this.core.configPending && !this.stopped) {
      if (Date.now() > deadline) {
        throw new VrepError(
          'ERR_CONSISTENCY_TIMEOUT',
          `${what}: the previous membership change was not committed within ${timeoutMs} ms (a majority of the members did not acknowledge it)`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, TICK_MS));
    }
  }

  /**
   * Role auto, on the primary: adds the node at `address` as a learner (a
   * member that is fed and never counted, a config record through the log).
   * It catches up by full and partial sync; `promoteLearner` makes it a
   * voter. Resolves with its node id once the change is committed.
   */
  async addLearner(address: string): Promise<string> {
    parseAddress('address', address);
    const peers = this.requireAutoPrimary('addLearner');
    try {
      const id = await withTimeout(peers.dialAndIdentify(address), 30_000, `no node answered at ${address}`);
      await this.configSettled('addLearner');
      const members = this.explicitMembers();
      if (!members.some((m) => m.id === id)) {
        members.push({ id, address, learner: true });
        await this.writer.proposeConfig({ members });
      }
      await this.configSettled('addLearner');
      return id;
    } finally {
      peers.finishAdd(address);
    }
  }

  /**
   * Role auto, on the primary: makes the learner `id` a voter, once it
   * holds every record committed when the call came in (waits up to
   * `timeoutMs` for it to catch up). Resolves once the change is committed.
   */
  async promoteLearner(id: string, timeoutMs = 60_000): Promise<void> {
    this.requireAutoPrimary('promoteLearner');
    await this.configSettled('promoteLearner');
    const members = this.explicitMembers();
    const learner = members.find((m) => m.id === id);
    if (!learner) throw new VrepError('ERR_INVALID_INPUT', `promoteLearner(${id}): not a member`);
    if (learner.learner !== true) return;
    const target = this.core.commit;
    const deadline = Date.now() + timeoutMs;
    while ((this.core.peer(id)?.match ?? 0) < target) {
      if (this.core.role !== 'leader')
        throw this.notLeader('promoteLearner() goes to the primary', this.core.leader);
      if (Date.now() > deadline) {
        throw new VrepError(
          'ERR_CONSISTENCY_TIMEOUT',
          `promoteLearner(${id}): it holds LSN ${this.core.peer(id)?.match ?? 0}, not yet the ${target} committed when asked, after ${timeoutMs} ms; it stays a learner`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, TICK_MS));
    }
    delete learner.learner;
    await this.writer.proposeConfig({ members });
    await this.configSettled('promoteLearner');
  }

  private requireAutoPrimary(what: string): Peers {
    if (this.settings.elections === null) {
      throw new VrepError(
        'ERR_ROLE',
        `${what}: needs role auto (with manual roles, addReplica adds a member)`,
      );
    }
    if (this.core.role !== 'leader' || this.peers === null) {
      throw this.notLeader(`${what} goes to the primary`, this.core.leader);
    }
    return this.peers;
  }

  /** Primary: removes a member (a config record) and stops feeding it. */
  async removeReplica(id: string): Promise<void> {
    const peers = this.requirePrimary('removeReplica');
    await this.configSettled('removeReplica');
    const members = this.explicitMembers();
    const gone = members.find((m) => m.id === id);
    const connected = peers.session(id) !== undefined;
    if (!gone && !connected) throw new VrepError('ERR_INVALID_INPUT', `no replica "${id}"`);
    if (id === this.store.nodeId) {
      throw new VrepError(
        'ERR_INVALID_INPUT',
        `removeReplica: this node is the primary${this.settings.elections !== null ? ' (transfer leadership first)' : ''}`,
      );
    }
    if (gone) await this.writer.proposeConfig({ members: members.filter((m) => m !== gone) });
    await peers.drop(id, gone?.address ?? null);
  }

  /** Primary: makes a replica start over with a full sync, accepted even over its own data. */
  async forceSync(id: string): Promise<void> {
    const peers = this.requirePrimary('forceSync');
    const known =
      peers.session(id) !== undefined || isMember(this.core.membership, id) || this.refusedBy.has(id);
    if (!known) throw new VrepError('ERR_INVALID_INPUT', `no replica "${id}"`);
    this.runtime.forceFullSync(id);
  }

  /**
   * Replica: stops following and becomes a primary (manual failover), in a
   * new term persisted before anything else, with a new epoch continuing
   * its log. Members that follow it (configure) resync partially, dropping
   * whatever the old primary wrote that this node does not hold.
   */
  async promote(opts: { force?: boolean } = {}): Promise<void> {
    if (this.currentRole === 'auto') return this.exclusive(() => this.campaignNow(opts.force === true));
    return this.exclusive(async () => {
      if (this.currentRole !== 'replica') {
        throw new VrepError('ERR_ROLE', `promote(): this node is ${this.currentRole}, not a replica`);
      }
      this.currentRole = 'primary';
      this.leaderCounters = { fullSyncs: 0, partialSyncs: 0, lastSyncMs: 0 };
      this.runtime.promote();
      this.peers?.setConfiguredPrimary(null);
      this.settings = { ...this.settings, masterAddress: null };
      // A snapshot being installed finishes first (the core leads once it is in place).
      await this.whenLeader('promote()');
      if (!isMember(this.core.membership, this.store.nodeId) && this.core.membership.members.length > 1) {
        await this.writer.proposeConfig({ members: this.explicitMembers() });
      }
      this.logger.warn({ term: this.core.term }, 'replication: promoted to primary');
      this.events_.emit({ type: 'RoleChanged', role: 'primary', term: this.core.term, atMs: Date.now() });
    });
  }

  /**
   * Role auto, on the primary: hands leadership to the voter `to` (a node
   * id) with Raft's transfer: no writes meanwhile (ERR_TRANSFER_IN_PROGRESS),
   * `to` is brought up to date, then told to campaign at once. Resolves once
   * another node leads; ERR_CONSISTENCY_TIMEOUT when `to` did not take over
   * within an election timeout (this node takes writes again). Nothing
   * acknowledged is lost: `to` holds every record before it campaigns.
   */
  async transfer(to: string): Promise<void> {
    const elections = this.settings.elections;
    if (elections === null) {
      throw new VrepError(
        'ERR_UNSUPPORTED',
        `transfer(${to}): needs role auto; with manual roles stop writes, promote ${to} and configure this node as its replica`,
      );
    }
    if (this.core.role !== 'leader') throw this.notLeader('transfer() goes to the primary', this.core.leader);
    if (to === this.store.nodeId) return;
    if (!this.core.membership.members.some((m) => m.id === to)) {
      throw new VrepError('ERR_INVALID_INPUT', `transfer(${to}): not a voter of this cluster`);
    }
    const term = this.core.term;
    this.runtime.transfer(to);
    // The transfer ends in the core within an election timeout; a new leader's term may take a moment longer.
    const deadline = Date.now() + 3 * elections.electionTimeoutMs;
    while (!this.stopped && this.core.role === 'leader' && this.core.term === term) {
      if (this.core.transferTarget === null || Date.now() > deadline) {
        throw new VrepError(
          'ERR_CONSISTENCY_TIMEOUT',
          `transfer(${to}): ${to} did not take over within an election timeout (is it running and connected?); this node goes on as primary`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, TICK_MS));
    }
    this.logger.warn({ to, term: this.core.term }, 'replication: leadership handed over');
  }

  /**
   * Role auto: this node campaigns now, heard even by voters that hear a
   * primary. Refused while it lags the primary it follows (it could win
   * only by discarding the records it lacks that were acknowledged at One)
   * unless `force`. Resolves once it leads; ERR_CONSISTENCY_TIMEOUT when the
   * voters did not elect it (its log lacks committed records).
   */
  private async campaignNow(force: boolean): Promise<void> {
    const elections = this.settings.elections as { electionTimeoutMs: number };
    if (this.core.role === 'leader') return;
    const behind = this.core.leader !== null ? this.core.leaderLastLsn - this.core.log.lastLsn : 0;
    if (behind > 0 && !force) {
      throw new VrepError(
        'ERR_ROLE',
        `promote(): this node lacks ${behind} records that the primary ${this.core.leader} holds; if it won, those acknowledged at One alone would be lost (pass {force: true} to promote anyway)`,
      );
    }
    this.runtime.promote();
    const deadline = Date.now() + 3 * elections.electionTimeoutMs;
    const leads = (): boolean => this.core.role === 'leader';
    while (!this.stopped && !leads()) {
      if (Date.now() > deadline) {
        throw new VrepError(
          'ERR_CONSISTENCY_TIMEOUT',
          `promote(): the voters did not elect this node within ${3 * elections.electionTimeoutMs} ms (its log may lack committed records, or no majority is reachable)`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, TICK_MS));
    }
  }

  /**
   * Changes role and/or the primary followed, at run time
   * (POST /replication/configure): `{role: 'primary'}` on a replica is
   * promote(); `{role: 'replica', masterAddress}` demotes a primary or
   * points a replica elsewhere. Peer links restart; the data stays (a
   * demoted primary drops what the new primary does not hold, into lost/).
   */
  async configure(change: { role?: Role; masterAddress?: string | null }): Promise<void> {
    const role = change.role ?? this.currentRole;
    if (role !== 'standalone' && role !== 'primary' && role !== 'replica') {
      throw new VrepError('ERR_UNSUPPORTED', `configure(): role "${role}" is not available in this build`);
    }
    const masterAddress =
      change.masterAddress !== undefined ? change.masterAddress : this.settings.masterAddress;
    if (masterAddress !== null) parseAddress('masterAddress', masterAddress);
    if (role === 'primary' && this.currentRole === 'replica') return this.promote();
    return this.exclusive(async () => {
      this.settings = { ...this.settings, masterAddress };
      const was = this.currentRole;
      this.currentRole = role;
      // The sync counters describe the current relationship: a new one starts from zero.
      this.followerCounters = { fullSyncs: 0, partialSyncs: 0, lastSyncMs: 0 };
      this.leaderCounters = { fullSyncs: 0, partialSyncs: 0, lastSyncMs: 0 };
      if (role === 'standalone') {
        await this.stopRole();
        if (this.core.role !== 'leader') this.runtime.promote();
      } else {
        await this.startRole();
        this.peers?.updateSettings(this.settings);
        if (role === 'replica') {
          this.runtime.follow(masterAddress !== null);
          this.peers?.setConfiguredPrimary(masterAddress);
        } else if (this.core.role !== 'leader') {
          this.runtime.promote();
          this.peers?.setConfiguredPrimary(null);
        }
      }
      this.logger.warn({ from: was, role, masterAddress }, 'replication: reconfigured');
      this.events_.emit({ type: 'RoleChanged', role, term: this.core.term, atMs: Date.now() });
    });
  }

  /** Runs role switches one after another. */
  private exclusive(fn: () => Promise<void>): Promise<void> {
    const run = this.switching.then(fn, fn);
    this.switching = run.catch(() => undefined);
    return run;
  }

  /** Finishes in-flight writes, flushes the WAL and releases the data dir. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    await this.switching;
    this.stopped = true;
    this.consumerGroups.closeAll();
    this.changeStreams.closeAll();
    if (this.ticker) clearInterval(this.ticker);
    if (this.walProbe) clearInterval(this.walProbe);
    this.runtime.stop(
      new VrepError('ERR_NODE_STOPPED', 'the node stopped before the write reached its level'),
    );
    await this.stopRole();
    // The commit point is persisted lazily; at a clean stop, persist the latest.
    const hs = this.core.hardState;
    if (hs.commit !== this.store.hardState.commit && !this.failure) {
      await this.store.saveHardState(hs, null).catch(() => undefined);
    }
    await this.pool?.close();
    this.events_.close();
    await this.store.close();
  }
}

function toEntry(bytes: Uint8Array): Entry {
  return { lsn: recordLsn(bytes), term: recordTerm(bytes), bytes, config: configOf(bytes) };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new VrepError('ERR_CONSISTENCY_TIMEOUT', `${what} within ${ms} ms`)),
      ms,
    );
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err as Error);
      },
    );
  });
}

export { ConsistencyLevel, isVrepError };

/**
 * Role auto, before the log holds a config record: this node (by id, at its
 * bind address when that is one others can dial) and every peer address
 * (ids filled in as they answer).
 */
function bootstrapVoters(selfId: string, settings: ResolvedReplication): Membership {
  const { host, port } = settings.bind;
  const wildcard = host === '0.0.0.0' || host === '::' || host === '[::]' || port === 0;
  const self = wildcard ? null : `${host}:${port}`;
  return {
    members: [
      { id: selfId, address: self },
      ...settings.peers.filter((a) => a !== self).map((address) => ({ id: null, address })),
    ],
  };
}

/** Options of a read: `linearizable` (role auto or a primary) waits for a ReadIndex round. */
export interface ReadOptions {
  consistency?: 'local' | 'linearizable';
}

function checkReadOptions(opts: ReadOptions): 'local' | 'linearizable' {
  const c = opts.consistency ?? 'local';
  if (c !== 'local' && c !== 'linearizable') {
    throw new VrepError('ERR_INVALID_ARG', `consistency: expected local or linearizable, got ${String(c)}`);
  }
  return c;
}

/** streams.maxRetainedBytes: a byte count of at least 1 MiB (a smaller window would cut streams mid-read). */
function checkRetainedBytes(n: unknown): number {
  if (!Number.isSafeInteger(n) || (n as number) < 1024 * 1024)
    throw new TypeError(`streams.maxRetainedBytes: expected an integer ≥ 1048576 (bytes), got ${String(n)}`);
  return n as number;
}
