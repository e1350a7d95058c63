/**
 * Writes into a Store directly, for tests of the storage layer alone (the
 * log, snapshots, recovery): records get consecutive LSNs in one term, are
 * appended, and applied once durable, as a node's runtime does for a
 * single-member cluster. Tests of behaviour go through ReplicationNode.
 */
import {
  encodeRecord,
  recordTerm,
  Op,
  type LogRecord,
  type MetricName,
  type RecordBody,
} from '../../src/log/record.ts';
import type { Store } from '../../src/store/store.ts';

export class StoreWriter {
  constructor(
    private readonly store: Store,
    private readonly term = 1,
  ) {}

  private async put(collection: string, body: RecordBody): Promise<number> {
    const lsn = this.store.lastLsn + 1;
    const bytes = encodeRecord({
      lsn,
      term: this.term,
      hlcMs: lsn,
      hlcLogical: 0,
      origin: 'test',
      collection,
      ...body,
    } as LogRecord);
    await this.store.append([bytes]);
    this.store.apply([{ lsn, term: recordTerm(bytes), bytes, config: null }]);
    return lsn;
  }

  createCollection(name: string, spec: { dimension: number; metric: MetricName }): Promise<number> {
    return this.put(name, { op: Op.CreateCollection, dimension: spec.dimension, metric: spec.metric });
  }

  upsert(name: string, ids: string[], vectors: Float32Array, payloads: Uint8Array[]): Promise<number> {
    const dimension = vectors.length / ids.length;
    return this.put(name, { op: Op.Upsert, dimension, ids, vectors, payloads });
  }

  delete(name: string, ids: string[]): Promise<number> {
    return this.put(name, { op: Op.Delete, ids });
  }
}
