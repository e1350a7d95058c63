/**
 * Limits on every field of a record. Checked when a record is encoded and
 * again when one is decoded (a record from disk or a peer is untrusted).
 */
export const RecordLimits = {
  /** Whole encoded record, bytes. */
  maxRecordBytes: 256 * 1024 * 1024,
  /** Points in one upsert or delete batch. */
  maxBatchPoints: 100_000,
  /** Vector dimension. */
  maxDimension: 65_536,
  /** A point id, UTF-8 bytes. */
  maxIdBytes: 1024,
  /** One point's payload, UTF-8 JSON bytes. */
  maxPayloadBytes: 1024 * 1024,
  /** Collection name, UTF-8 bytes. */
  maxCollectionBytes: 255,
  /** Origin node id, UTF-8 bytes. */
  maxNodeIdBytes: 255,
} as const;
