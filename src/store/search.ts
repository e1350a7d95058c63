/**
 * Exact k-NN over a collection's vector chunks with the native SIMD top-k,
 * and simple payload filters (equality on top-level keys).
 *
 * Scores: l2 is the squared Euclidean distance (smaller is closer); dot and
 * cosine are similarities (larger is closer). Ties are broken by id so every
 * node returns the same order for the same data.
 */
import { isDeepStrictEqual } from 'node:util';
import { Metric, topK } from '../native/distance.ts';
import type { MetricName } from '../log/record.ts';
import type { Collection } from './collection.ts';

/** Equality on top-level payload keys; every key must match. */
export type PayloadFilter = Record<string, unknown>;

export interface SearchHit {
  id: string;
  score: number;
  /** JSON text of the payload, or null. */
  payload: string | null;
}

/** Largest k a search accepts. */
export const MAX_SEARCH_K = 10_000;

const metricCode: Record<MetricName, Metric> = { l2: Metric.L2, dot: Metric.Dot, cosine: Metric.Cosine };

export function smallerIsBetter(metric: MetricName): boolean {
  return metric === 'l2';
}

function matches(payload: string | null, filter: PayloadFilter): boolean {
  if (payload === null) return false;
  const value: unknown = JSON.parse(payload);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  for (const [key, expected] of Object.entries(filter)) {
    if (!Object.hasOwn(value, key) || !isDeepStrictEqual((value as Record<string, unknown>)[key], expected))
      return false;
  }
  return true;
}

/**
 * The k points closest to `query`. `query` must have the collection's
 * dimension (checked by the caller, which owns the error messages).
 */
export function searchCollection(
  collection: Collection,
  query: Float32Array,
  k: number,
  filter?: PayloadFilter,
): SearchHit[] {
  const metric = metricCode[collection.metric];
  const dim = collection.dimension;
  const indices = new Uint32Array(k);
  const scores = new Float32Array(k);
  const candidates: { row: number; score: number }[] = [];
  const useFilter = filter !== undefined && Object.keys(filter).length > 0;
  for (const block of collection.vectorBlocks()) {
    let rowIds: Uint32Array | undefined;
    if (useFilter) {
      const selected: number[] = [];
      for (let r = 0; r < block.rows; r++) {
        if (matches(collection.payloadAt(block.firstRow + r), filter)) selected.push(r);
      }
      if (selected.length === 0) continue;
      rowIds = Uint32Array.from(selected);
    }
    const found = topK(
      metric,
      query,
      block.vectors,
      dim,
      k,
      indices,
      scores,
      rowIds ? { rowIds } : undefined,
    );
    for (let i = 0; i < found; i++) {
      candidates.push({ row: block.firstRow + (indices[i] as number), score: scores[i] as number });
    }
  }
  const sign = smallerIsBetter(collection.metric) ? 1 : -1;
  const hits = candidates.map((c) => ({ id: collection.idAt(c.row), score: c.score, row: c.row }));
  hits.sort((a, b) => sign * (a.score - b.score) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return hits.slice(0, k).map((h) => ({ id: h.id, score: h.score, payload: collection.payloadAt(h.row) }));
}
