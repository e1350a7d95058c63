/**
 * V8 heap tuning for a process that runs a vrep node: `vrep serve` applies
 * it, and an application embedding the node may (`tuneGcForVrep`).
 *
 * A node's JS heap is small (about 16 MB: ids are native, vectors in shared
 * memory), and V8 sizes the room before its next full GC from that heap: a
 * growing factor it picks from GC speed against allocation rate, 1.1-1.3 here
 * since the heap is small and cheap to mark. That room must also hold the
 * ArrayBuffers in flight (received frames, encoded records: up to 32 MiB per
 * follower link), which V8 counts against it. With a few MB left, a replica
 * under ingest ran a full GC every 80-150 ms (14-25 per 3 s window at dim
 * 768); a growing factor of 4 (V8's own upper bound) gave 0-1, and
 * event-loop p99 15-27 ms (one window 34) from 25-58. The price is a JS heap up to 4x its live size
 * between collections, which is little for a heap this size. An operator's
 * own choice (`--heap-growing-percent` in the node's flags or NODE_OPTIONS)
 * wins.
 */
import v8 from 'node:v8';

/** The growing factor, as V8's flag spells it: 1 + percent / 100. */
export const HEAP_GROWING_PERCENT = 300;

const FLAG = '--heap-growing-percent';

/** Whether the process was started with its own heap growing flag. */
export function operatorSetHeapGrowth(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  const named = (arg: string): boolean => /^--heap[-_]growing[-_]percent(=|$)/.test(arg);
  return execArgv.some(named) || (nodeOptions ?? '').split(/\s+/).some(named);
}

/**
 * Sets V8's heap growing factor for this process, unless its flags already
 * do. Returns the flag applied, or null when the operator's stands.
 */
export function tuneGcForVrep(): string | null {
  if (operatorSetHeapGrowth(process.execArgv, process.env['NODE_OPTIONS'])) return null;
  const flag = `${FLAG}=${HEAP_GROWING_PERCENT}`;
  v8.setFlagsFromString(flag);
  return flag;
}
