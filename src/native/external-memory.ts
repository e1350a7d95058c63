/**
 * Tells V8 about memory it does not count: `deltaBytes` more (or, negative,
 * fewer) bytes of external memory it may free by collecting garbage. V8
 * weighs this when it decides to run a full GC. Returns its new total.
 * Wraps native `adjustExternalMemory` (native/external_memory.cc); its one
 * user is store/vector-storage.ts.
 */
import { binding } from './addon.ts';
import { checkInt } from './checks.ts';

export interface ExternalMemoryBinding {
  adjustExternalMemory(deltaBytes: number): number;
}

export function adjustExternalMemory(deltaBytes: number): number {
  checkInt('adjustExternalMemory', 'deltaBytes', deltaBytes, -Number.MAX_SAFE_INTEGER);
  return binding.adjustExternalMemory(deltaBytes);
}
