/**
 * The collections as of the head of the log: what a new write is checked
 * against, and what a record received from the primary must fit before it
 * is appended. The applied state lags the head (records apply once durable,
 * and, on a follower, once the primary says they may be), so a collection
 * created by the last write must already count for the next one.
 *
 * Base: the applied collections. On top: the create/drop records in the log
 * above the applied LSN, dropped again when the log is truncated.
 */
import { decodeRecord, Op } from '../log/record.ts';
import type { NodeState, CollectionShape } from './state.ts';

interface Change {
  lsn: number;
  name: string;
  /** null: dropped. */
  shape: CollectionShape | null;
}

/** Upper bound on schema changes held above the applied state (each is one create or drop record). */
const MAX_PENDING_CHANGES = 100_000;

export class SchemaView {
  private pending: Change[] = [];

  constructor(private readonly state: () => NodeState) {}

  /** The collection's shape at the head of the log, or undefined. */
  get(name: string): CollectionShape | undefined {
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const c = this.pending[i] as Change;
      if (c.name === name) return c.shape ?? undefined;
    }
    const c = this.state().collections.get(name);
    return c ? { dimension: c.dimension, metric: c.metric } : undefined;
  }

  /** Every collection at the head, by name. */
  shapes(): Map<string, CollectionShape> {
    const out = new Map<string, CollectionShape>();
    for (const [name, c] of this.state().collections)
      out.set(name, { dimension: c.dimension, metric: c.metric });
    for (const c of this.pending) {
      if (c.shape === null) out.delete(c.name);
      else out.set(c.name, c.shape);
    }
    return out;
  }

  /** Records added at the head (only create and drop change anything). */
  appended(records: readonly { lsn: number; bytes: Uint8Array }[]): void {
    for (const r of records) {
      const op = r.bytes[9];
      if (op !== Op.CreateCollection && op !== Op.DropCollection) continue;
      const rec = decodeRecord(r.bytes);
      if (rec.op === Op.CreateCollection) {
        this.pending.push({
          lsn: r.lsn,
          name: rec.collection,
          shape: { dimension: rec.dimension, metric: rec.metric },
        });
      } else {
        this.pending.push({ lsn: r.lsn, name: rec.collection, shape: null });
      }
      if (this.pending.length > MAX_PENDING_CHANGES) this.pending.shift();
    }
  }

  /** Records above `lsn` were dropped. */
  truncated(lsn: number): void {
    this.pending = this.pending.filter((c) => c.lsn <= lsn);
  }

  /** Records up to `lsn` are in the applied state now. */
  applied(lsn: number): void {
    if (this.pending.length > 0 && (this.pending[0] as Change).lsn <= lsn) {
      this.pending = this.pending.filter((c) => c.lsn > lsn);
    }
  }

  /** The state was replaced (a snapshot, a rebuild): nothing pending above it. */
  reset(): void {
    this.pending = [];
  }
}
