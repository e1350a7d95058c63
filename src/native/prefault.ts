/**
 * Maps in the pages under a typed array on the libuv thread pool, without
 * writing to them (Linux MADV_POPULATE_WRITE), so that the first writes to
 * fresh memory do not fault page by page on the event loop. Fresh memory is
 * costly here: 512 MiB first written took 250-1400 ms, written again 20 ms.
 * The memory may be used meanwhile (the kernel only maps pages). Resolves
 * true when the pages were mapped, false where the platform cannot (they
 * then fault in on first touch, as without it). Wraps native `prefaultAsync`
 * (native/prefault.cc).
 */
import { binding } from './addon.ts';
import { checkFloat32Array } from './checks.ts';

export interface PrefaultBinding {
  prefaultAsync(view: ArrayBufferView): Promise<boolean>;
}

export function prefaultAsync(view: Float32Array): Promise<boolean> {
  checkFloat32Array('prefaultAsync', 'view', view);
  return binding.prefaultAsync(view);
}
