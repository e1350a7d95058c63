/**
 * Whether the next RECORDS payload is worth compressing. zstd with the
 * float32 shuffle costs about as much CPU as the rest of a frame's path
 * together (on this project's bench machine, 8 ms to compress and 6 ms to
 * decompress a 3 MB batch of random dim-768 vectors, which it shrinks by
 * 16 %), and on a link that is not short of bandwidth those 16 % buy
 * nothing. So payloads are compressed:
 * - always, when the link is throttled (its bandwidth is the declared
 *   limit, and every byte saved is throughput);
 * - otherwise while compression saves at least MIN_WORTHWHILE_SAVING of
 *   the bytes (JSON payloads and repeated vectors do: 2-5x); below that,
 *   one payload in PROBE_EVERY is still compressed, so data that starts to
 *   compress well is noticed.
 * Pure: the caller reports what each attempt saved.
 */

/** Share of the bytes compression must save to be used on an unthrottled link. */
export const MIN_WORTHWHILE_SAVING = 0.2;
/** Below it, one payload in this many is compressed anyway to measure again. */
export const PROBE_EVERY = 16;
/** Weight of the newest attempt in the running saving estimate. */
const NEWEST_WEIGHT = 0.25;

export class CompressionPolicy {
  /** Running estimate of the share of bytes compression saves (null: nothing measured yet). */
  private saving: number | null = null;
  private sinceProbe = 0;
  private triedCount = 0;
  private skippedCount = 0;

  /**
   * @param enabled `replication.compression.enabled`
   * @param linkLimited true while a bandwidth limit applies to the links
   */
  constructor(
    private readonly enabled: boolean,
    private readonly linkLimited: () => boolean,
  ) {}

  /** Try to compress the next payload (one big enough to be compressed at all)? */
  next(): boolean {
    if (!this.enabled) return false;
    const worthIt = this.linkLimited() || this.saving === null || this.saving >= MIN_WORTHWHILE_SAVING;
    if (worthIt || ++this.sinceProbe >= PROBE_EVERY) {
      this.sinceProbe = 0;
      this.triedCount++;
      return true;
    }
    this.skippedCount++;
    return false;
  }

  /** What one compressed attempt saved: 1 - compressed / raw (0 or less when it did not pay). */
  observe(savedShare: number): void {
    const s = Math.max(0, Math.min(1, savedShare));
    this.saving = this.saving === null ? s : this.saving + NEWEST_WEIGHT * (s - this.saving);
  }

  /** For status: the estimate, and how many payloads were tried and skipped. */
  stats(): { saving: number | null; tried: number; skipped: number } {
    return { saving: this.saving, tried: this.triedCount, skipped: this.skippedCount };
  }
}
