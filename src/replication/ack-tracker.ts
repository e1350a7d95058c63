/**
 * Tracks the LSN each replica has durably appended (per its fsync policy)
 * and resolves writes waiting for a consistency level. Pure apart from the
 * promises: timeouts are driven by the caller through `expire(nowMs)`.
 *
 * One: the primary's WAL. Quorum: a majority of the cluster (primary
 * included) has the LSN. All: every member has it.
 */
import { VrepError } from '../errors.ts';
import type { ConsistencyLevel } from '../node/consistency.ts';

interface Waiter {
  lsn: number;
  needed: number;
  deadlineMs: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** Most writes waiting at once; past it a new wait is refused (the caller sheds load). */
export const MAX_WAITERS = 100_000;

export class AckTracker {
  private readonly acked = new Map<string, number>();
  private primaryLsn = 0;
  private waiters: Waiter[] = [];

  /** Replicas that count as cluster members (whether connected or not). */
  setMembers(replicaIds: readonly string[]): void {
    const keep = new Set(replicaIds);
    for (const id of [...this.acked.keys()]) if (!keep.has(id)) this.acked.delete(id);
    for (const id of replicaIds) if (!this.acked.has(id)) this.acked.set(id, 0);
    this.settle();
  }

  get clusterSize(): number {
    return this.acked.size + 1;
  }

  /** Nodes (primary included) that must hold a write for the level. */
  needed(level: ConsistencyLevel): number {
    if (level === 'one') return 1;
    if (level === 'all') return this.clusterSize;
    return Math.floor(this.clusterSize / 2) + 1;
  }

  /** The primary's own WAL now holds `lsn`. */
  primaryDurable(lsn: number): void {
    if (lsn > this.primaryLsn) this.primaryLsn = lsn;
    this.settle();
  }

  /** A replica acknowledged `lsn` (acks only move forward). */
  replicaAcked(replicaId: string, lsn: number): void {
    const prev = this.acked.get(replicaId);
    if (prev === undefined || lsn <= prev) return;
    this.acked.set(replicaId, lsn);
    this.settle();
  }

  ackedLsn(replicaId: string): number | undefined {
    return this.acked.get(replicaId);
  }

  /** How many nodes hold `lsn` now. */
  holders(lsn: number): number {
    let n = this.primaryLsn >= lsn ? 1 : 0;
    for (const a of this.acked.values()) if (a >= lsn) n++;
    return n;
  }

  /** Resolves once `level` holds `lsn`; rejects at `deadlineMs` (see expire). */
  wait(lsn: number, level: ConsistencyLevel, deadlineMs: number): Promise<void> {
    const needed = this.needed(level);
    if (this.holders(lsn) >= needed) return Promise.resolve();
    if (this.waiters.length >= MAX_WAITERS) {
      return Promise.reject(
        new VrepError('ERR_OVERLOADED', `too many writes waiting for acknowledgement (${MAX_WAITERS})`),
      );
    }
    return new Promise((resolve, reject) => this.waiters.push({ lsn, needed, deadlineMs, resolve, reject }));
  }

  private settle(): void {
    if (this.waiters.length === 0) return;
    this.waiters = this.waiters.filter((w) => {
      if (this.holders(w.lsn) < w.needed) return true;
      w.resolve();
      return false;
    });
  }

  /** Rejects waits whose deadline passed: the write is then indeterminate. */
  expire(nowMs: number): void {
    this.waiters = this.waiters.filter((w) => {
      if (w.deadlineMs > nowMs) return true;
      w.reject(
        new VrepError(
          'ERR_CONSISTENCY_TIMEOUT',
          `LSN ${w.lsn} reached ${this.holders(w.lsn)} of the ${w.needed} nodes needed in time; the write is indeterminate (it is in this node's log and may still reach the others)`,
        ),
      );
      return false;
    });
  }

  /** Rejects every wait (node stopping or deposed). */
  failAll(err: Error): void {
    const all = this.waiters;
    this.waiters = [];
    for (const w of all) w.reject(err);
  }
}
