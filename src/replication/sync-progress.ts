/** Full-sync progress as status reports it, on either side of the link. */
import type { SyncProgress } from './types.ts';

/**
 * `done` of `total` bytes, `movedThisRun` of them in `elapsedMs` since this
 * run started (chunks a resumed sync skipped do not count toward the rate).
 */
export function syncProgress(
  done: number,
  total: number,
  movedThisRun: number,
  elapsedMs: number,
  resumedFromChunk: number,
): SyncProgress {
  const rate = elapsedMs > 0 ? movedThisRun / elapsedMs : 0;
  return {
    bytes_done: done,
    bytes_total: total,
    percent: total === 0 ? 100 : Math.min(100, (100 * done) / total),
    // Too early a rate says little: none for the first half second.
    eta_ms: rate > 0 && elapsedMs > 500 ? Math.round((total - done) / rate) : null,
    resumed_from_chunk: resumedFromChunk,
  };
}
