/**
 * A collection's vector storage: Float32Arrays over SharedArrayBuffers, and
 * what V8 is told about them.
 *
 * Shared, because V8 counts an isolate's ArrayBuffers as external memory and
 * starts a full GC whenever that grows by a few MB over what it was at the
 * last one (the allowance scales with the JS heap, about 16 MB here). A
 * collection growing under ingest therefore made a replica run back-to-back
 * mark-compacts: 18-29 in a 3 s window at dim 768, 410-700 ms of pauses, and
 * marking steps besides. V8 does not count shared memory (it is not one
 * isolate's): a fresh collection's windows then had 0-2 in most runs.
 *
 * Reported once let go of, because V8 then knows nothing of the storage:
 * storage a collection let go of (dropped, or replaced by an install or a
 * rollback, a chunk emptied by deletes, a copy-on-write original) would wait
 * for a GC that nothing starts. Under ingest, replicas still held 1.0-1.3
 * GB a round after a 500 MB collection was dropped, against 0.4-0.6 GB
 * with the report. `discardStorage` reports the bytes as external memory V8
 * may free, as V8 counts an ArrayBuffer until it is collected; once the GC
 * collected the buffer, a FinalizationRegistry takes them back out.
 */
import { adjustExternalMemory } from '../native/external-memory.ts';

interface Held {
  bytes: number;
  /** discard() told V8 about these bytes (the finalizer takes them back). */
  reported: boolean;
}

const tracked = new WeakMap<ArrayBufferLike, Held>();
const collected = new FinalizationRegistry<Held>((held) => {
  if (held.reported) adjustExternalMemory(-held.bytes);
});

/** Tracks storage given to a collection (a loaded chunk decoded into shared memory, say). */
export function trackStorage(view: Float32Array): void {
  const buffer = view.buffer;
  // An ArrayBuffer V8 counts already; it needs no report.
  if (!(buffer instanceof SharedArrayBuffer) || tracked.has(buffer)) return;
  const held: Held = { bytes: buffer.byteLength, reported: false };
  tracked.set(buffer, held);
  collected.register(buffer, held);
}

/** `length` zeroed floats of tracked shared storage. */
export function sharedFloats(length: number): Float32Array {
  const view = new Float32Array(new SharedArrayBuffer(length * Float32Array.BYTES_PER_ELEMENT));
  trackStorage(view);
  return view;
}

/** The owner let go of this storage: V8 may free it (reported once per buffer). */
export function discardStorage(view: Float32Array): void {
  const held = tracked.get(view.buffer);
  if (held === undefined || held.reported) return;
  held.reported = true;
  adjustExternalMemory(held.bytes);
}
