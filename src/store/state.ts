/**
 * The node's state as the application of its log: the collections, and
 * the one function that applies a record to them. Replay at start-up,
 * records applied as they commit, the simulator: all go through `apply`.
 * Pure in-memory work; the rest of the store decides when.
 */
import { VrepError } from '../errors.ts';
import { Op, type ConfigMember, type GroupPosition, type LogRecord, type MetricName } from '../log/record.ts';
import { Collection, type CollectionInfo } from './collection.ts';

/** A config record as applied: the membership it set (src/consensus/membership.ts). */
export interface AppliedConfig {
  lsn: number;
  members: ConfigMember[];
}

export interface AppliedGroup {
  position: GroupPosition;
  /** LSN of the record that set it. */
  setAtLsn: number;
}

/** Config records kept in the state (the last one is in force; older ones matter only across a truncation). */
const MAX_CONFIGS = 64;

export class NodeState {
  readonly collections = new Map<string, Collection>();
  /** Config records applied, oldest first (a snapshot carries them). */
  configs: AppliedConfig[] = [];
  /**
   * Change-stream consumer groups' committed positions, by group name, and
   * the LSN of the record that set each (src/streams/consumer-groups.ts).
   * In the log, so replicas hold them and they fail over with the leader.
   */
  readonly groups = new Map<string, AppliedGroup>();
  /** LSN of the last record applied. */
  appliedLsn = 0;

  apply(record: LogRecord): void {
    if (record.lsn !== this.appliedLsn + 1) {
      throw new VrepError(
        'ERR_CORRUPT_RECORD',
        `record ${record.lsn} applied after ${this.appliedLsn}: records apply in LSN order, with no gap`,
      );
    }
    applyRecord(this.collections, record);
    if (record.op === Op.Config) {
      this.configs.push({ lsn: record.lsn, members: record.members });
      if (this.configs.length > MAX_CONFIGS) this.configs.shift();
    } else if (record.op === Op.GroupPosition) {
      if (record.position === null) this.groups.delete(record.collection);
      else this.groups.set(record.collection, { position: record.position, setAtLsn: record.lsn });
    }
    this.appliedLsn = record.lsn;
  }

  /** Lets go of every collection (`Collection.drop`): this state is being replaced. */
  drop(): void {
    for (const c of this.collections.values()) c.drop();
  }

  /** Starts over empty (a rebuild, a full sync), applied up to `lsn`. */
  reset(lsn: number): void {
    this.drop();
    this.collections.clear();
    this.configs = [];
    this.groups.clear();
    this.appliedLsn = lsn;
  }

  /** What a snapshot's manifest carries besides the points: the LSN, the config records, the groups. */
  restoreFrom(manifest: {
    lsn: number;
    configs?: AppliedConfig[] | undefined;
    groups?: ({ name: string; setAtLsn: number } & GroupPosition)[] | undefined;
  }): void {
    this.appliedLsn = manifest.lsn;
    this.configs = (manifest.configs ?? []).map((c) => ({ lsn: c.lsn, members: c.members }));
    this.groups.clear();
    for (const g of manifest.groups ?? [])
      this.groups.set(g.name, {
        position: { term: g.term, lsn: g.lsn, index: g.index },
        setAtLsn: g.setAtLsn,
      });
  }

  listCollections(): CollectionInfo[] {
    return [...this.collections.values()].map((c) => c.info()).sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** Order-independent digest of every collection, name by name (equal on nodes with equal content). */
  digests(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of [...this.collections.keys()].sort())
      out[name] = (this.collections.get(name) as Collection).digest();
    return out;
  }
}

/** A collection's shape, as the schema at the head of the log knows it. */
export interface CollectionShape {
  dimension: number;
  metric: MetricName;
}

/**
 * Throws ERR_CORRUPT_RECORD unless every record applies in order to
 * collections shaped as `shapes` (checked on a copy, so a refused batch
 * changes nothing).
 */
export function checkApplicable(
  shapes: ReadonlyMap<string, CollectionShape>,
  records: readonly LogRecord[],
): void {
  checkApplicableTo(dimensionsOf(shapes), records);
}

/** Each collection's dimension, by name: the view checkApplicableTo keeps. */
export function dimensionsOf(
  shapes: Iterable<readonly [string, { readonly dimension: number }]>,
): Map<string, number> {
  const dims = new Map<string, number>();
  for (const [name, c] of shapes) dims.set(name, c.dimension);
  return dims;
}

/**
 * checkApplicable against a running view of the collections' dimensions,
 * which the records' creates and drops update (a stream of frames checked
 * one after another: the records alongside a snapshot coming in).
 */
export function checkApplicableTo(dims: Map<string, number>, records: readonly LogRecord[]): void {
  for (const record of records) {
    const dim = dims.get(record.collection);
    const fail = (why: string): never => {
      throw new VrepError('ERR_CORRUPT_RECORD', `record ${record.lsn}: ${why}`);
    };
    switch (record.op) {
      case Op.CreateCollection:
        if (dim !== undefined) fail(`collection ${record.collection} already exists`);
        dims.set(record.collection, record.dimension);
        break;
      case Op.DropCollection:
        if (dim === undefined) fail(`drop of missing collection ${record.collection}`);
        dims.delete(record.collection);
        break;
      case Op.Upsert:
        if (dim === undefined) fail(`upsert into missing collection ${record.collection}`);
        if (dim !== record.dimension) fail(`dimension ${record.dimension}, collection has ${dim}`);
        break;
      case Op.Delete:
        if (dim === undefined) fail(`delete in missing collection ${record.collection}`);
        break;
      default:
        break;
    }
  }
}

/** Applies one record to the collections (replay and live writes share this). */
export function applyRecord(collections: Map<string, Collection>, record: LogRecord): void {
  switch (record.op) {
    case Op.CreateCollection:
      collections.set(record.collection, new Collection(record.collection, record.dimension, record.metric));
      return;
    case Op.DropCollection:
      collections.get(record.collection)?.drop();
      collections.delete(record.collection);
      return;
    case Op.Upsert: {
      const c = collections.get(record.collection);
      if (!c)
        throw new VrepError(
          'ERR_CORRUPT_RECORD',
          `record ${record.lsn}: upsert into missing collection ${record.collection}`,
        );
      c.upsert(record.ids, record.vectors, record.payloads, record.packedIds);
      return;
    }
    case Op.Delete: {
      const c = collections.get(record.collection);
      if (!c)
        throw new VrepError(
          'ERR_CORRUPT_RECORD',
          `record ${record.lsn}: delete in missing collection ${record.collection}`,
        );
      c.delete(record.ids);
      return;
    }
    default:
      // Config records (membership) and group positions change no collection.
      return;
  }
}
