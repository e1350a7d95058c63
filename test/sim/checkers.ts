/**
 * What a simulated run must never show:
 * - records applied out of LSN order, with a gap or twice (NodeState.apply
 *   refuses those; the node reports them here);
 * - two nodes holding different records at an LSN both have committed;
 * - a record of another term than its node's term history gives for its LSN;
 * - a node losing a record it had committed;
 * - a write acknowledged at Quorum or All missing once the faults heal; a
 *   write acknowledged at One by the primary missing although no failover
 *   happened after it; a write the disk refused present anywhere;
 * - nodes that differ (last LSN, digests) once everything has healed.
 */
import type { CoreEvent } from '../../src/consensus/core.ts';
import type { Entry } from '../../src/consensus/messages.ts';
import type { Level } from '../../src/consensus/quorum.ts';
import type { SimNode } from './node.ts';
import { TermHistory } from '../../src/consensus/term-history.ts';

export interface WriteRecord {
  seq: number;
  id: string;
  level: Level;
  node: string;
  status: 'pending' | 'ok' | 'failed' | 'indeterminate';
  lsn: number;
  term: number;
  atMs: number;
  ackMs: number;
  /** Acknowledged by the node that was the announced primary at the time (elections: the newest term's leader). */
  byPrimary?: boolean;
  /** A register write (elections): its key is written again by others, so "held" proves nothing. */
  register?: boolean;
  reason?: string;
}

/** An LSN's record, as far as comparing nodes goes: its term and checksum. */
function identity(e: Entry): number {
  const b = e.bytes;
  // The record's CRC32C (bytes 4..8) and its term: equal records, equal identity.
  return (
    (((b[4] as number) | ((b[5] as number) << 8) | ((b[6] as number) << 16) | ((b[7] as number) << 24)) >>>
      0) *
      1024 +
    (e.term % 1024)
  );
}

/** An identity as "term t, crc x" for messages. */
function show(identity: number): string {
  return `term ${identity % 1024}, crc ${Math.floor(identity / 1024).toString(16)}`;
}

export class Checker {
  readonly violations: string[] = [];
  readonly writes: WriteRecord[] = [];
  private readonly failovers: number[] = [];
  private readonly committed = new Map<number, { identity: number; node: string }>();
  private readonly observed = new Map<string, number>();

  violation(message: string): void {
    if (this.violations.length < 50) this.violations.push(message);
  }

  recordWrite(w: WriteRecord): void {
    this.writes.push(w);
  }

  writeSettled(_w: WriteRecord): void {}

  failoverAt(ms: number): void {
    this.failovers.push(ms);
  }

  onEvent(_node: string, _e: CoreEvent): void {}

  /**
   * Committed prefixes never diverge, a node never loses what it committed,
   * and every record is of the term its node's history gives for its LSN.
   */
  observeCommits(nodes: readonly SimNode[]): void {
    for (const n of nodes) {
      if (!n.alive) continue;
      // Each record is of the term its node's history gives for that LSN (the
      // core checks that before it appends: RECORDS that do not fit are refused).
      // Only between Readies: a truncation the core decided is on the disk a Ready later.
      if (n.quiescent) this.checkTerms(n);
      const commit = Math.min(n.core.hardState.commit, n.log.length);
      const seen = this.observed.get(n.id) ?? 0;
      if (n.log.length < seen) {
        this.violation(
          `${n.id} lost committed records: its log ends at ${n.log.length}, it had committed ${seen}`,
        );
      }
      // Each node's records are compared up to its commit; the recent ones again, the rest once.
      for (let lsn = Math.max(1, seen - 64); lsn <= commit; lsn++) {
        const e = n.log[lsn - 1] as Entry;
        const id = identity(e);
        const known = this.committed.get(lsn);
        if (known === undefined) this.committed.set(lsn, { identity: id, node: n.id });
        else if (known.identity !== id) {
          this.violation(
            `committed prefixes diverge at LSN ${lsn}: ${known.node} committed ${show(known.identity)}, ${n.id} committed ${show(id)}`,
          );
        }
      }
      if (commit > seen) this.observed.set(n.id, commit);
    }
  }

  private readonly applied = new Map<number, { identity: number; node: string }>();
  private readonly appliedChecked = new Map<string, number>();

  /**
   * Elections (only committed records are applied): two nodes never applied
   * different records at one LSN. Between Readies only, when the log and the
   * state agree.
   */
  observeApplied(nodes: readonly SimNode[]): void {
    for (const n of nodes) {
      if (!n.quiescent) continue;
      const upTo = Math.min(n.state.appliedLsn, n.log.length);
      const from = Math.max(1, Math.min(this.appliedChecked.get(n.id) ?? 0, upTo) - 64);
      for (let lsn = from; lsn <= upTo; lsn++) {
        const id = identity(n.log[lsn - 1] as Entry);
        const known = this.applied.get(lsn);
        if (known === undefined) this.applied.set(lsn, { identity: id, node: n.id });
        else if (known.identity !== id) {
          this.violation(
            `applied prefixes diverge at LSN ${lsn}: ${known.node} applied ${show(known.identity)}, ${n.id} applied ${show(id)}`,
          );
          return;
        }
      }
      this.appliedChecked.set(n.id, upTo);
    }
  }

  /** Per node: the core and log generation last checked, and how far (a log only grows within one). */
  private readonly termsChecked = new Map<string, { core: object; generation: number; upTo: number }>();

  private checkTerms(n: SimNode): void {
    const history = new TermHistory(n.core.termHistory);
    const upTo = Math.min(n.log.length, n.core.log.lastLsn);
    const last = this.termsChecked.get(n.id);
    const same = last !== undefined && last.core === n.core && last.generation === n.core.logGeneration;
    const from = Math.max(n.core.log.firstLsn, same ? last.upTo + 1 : 1);
    for (let lsn = from; lsn <= upTo; lsn++) {
      const epoch = history.epochAt(lsn);
      const term = (n.log[lsn - 1] as Entry).term;
      if (epoch === undefined || epoch.term !== term) {
        const gives = epoch ? `term ${epoch.term}` : 'no epoch';
        this.violation(`${n.id}'s record at LSN ${lsn} is of term ${term}, its history gives ${gives}`);
        return;
      }
    }
    this.termsChecked.set(n.id, { core: n.core, generation: n.core.logGeneration, upTo });
  }

  finish(nodes: readonly SimNode[], primary: SimNode): void {
    this.observeCommits(nodes);
    const last = primary.log.length;
    const digests = JSON.stringify(primary.state.digests());
    for (const n of nodes) {
      if (!n.alive) {
        this.violation(`${n.id} is not running after healing`);
        continue;
      }
      if (n.log.length !== last || n.state.appliedLsn !== last) {
        this.violation(
          `after healing ${n.id} has log ${n.log.length} / applied ${n.state.appliedLsn}, the primary ${primary.id} ${last} (role ${n.core.role}, leader ${n.core.leader})`,
        );
      } else if (JSON.stringify(n.state.digests()) !== digests) {
        this.violation(`after healing ${n.id}'s digests differ from the primary's`);
      }
    }
    const held = (n: SimNode, id: string): boolean => n.state.collections.get('c')?.has(id) ?? false;
    for (const w of this.writes) {
      if (w.register) continue; // linearizability.ts checks those
      if (w.status === 'ok' && (w.level === 'quorum' || w.level === 'all') && !held(primary, w.id)) {
        this.violation(
          `write ${w.id} acknowledged at ${w.level} (LSN ${w.lsn}, term ${w.term}, by ${w.node}) is lost`,
        );
      }
      if (w.status === 'ok' && w.level === 'one' && w.byPrimary && !this.failovers.some((t) => t >= w.atMs)) {
        if (!held(primary, w.id)) {
          this.violation(
            `write ${w.id} acknowledged at one by the primary ${w.node}, with no failover since, is lost`,
          );
        }
      }
      if (w.status === 'failed') {
        for (const n of nodes) {
          if (n.alive && held(n, w.id))
            this.violation(`write ${w.id} was refused (${w.reason}) but ${n.id} holds it`);
        }
      }
    }
  }

  summary(): { ok: number; failed: number; indeterminate: number; byLevel: Record<Level, number> } {
    const byLevel: Record<Level, number> = { one: 0, quorum: 0, all: 0 };
    let ok = 0;
    let failed = 0;
    let indeterminate = 0;
    for (const w of this.writes) {
      if (w.status === 'ok') {
        ok++;
        byLevel[w.level]++;
      } else if (w.status === 'failed') failed++;
      else if (w.status === 'indeterminate') indeterminate++;
    }
    return { ok, failed, indeterminate, byLevel };
  }
}
