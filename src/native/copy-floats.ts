/**
 * Copies `source` into `target` from element `targetIndex` on, as
 * `target.set(source, targetIndex)` does. For writes into a collection's
 * vector storage (shared memory): V8's own copy into a SharedArrayBuffer
 * goes byte by byte when source and target are not 8-byte aligned alike, as
 * a record's vectors are not (5x slower here). Wraps native `copyFloats`
 * (native/copy_floats.cc).
 */
import { binding } from './addon.ts';
import { checkFloat32Array, checkInt } from './checks.ts';

export interface CopyFloatsBinding {
  copyFloats(target: Float32Array, targetIndex: number, source: Float32Array): void;
}

export function copyFloats(target: Float32Array, targetIndex: number, source: Float32Array): void {
  checkFloat32Array('copyFloats', 'target', target);
  checkFloat32Array('copyFloats', 'source', source);
  checkInt('copyFloats', 'targetIndex', targetIndex, 0, target.length - source.length);
  binding.copyFloats(target, targetIndex, source);
}
