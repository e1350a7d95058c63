/**
 * What the leader knows of one follower (raft's tracker/progress.go): the
 * only place a peer's position lives.
 *
 * - `match`: the highest LSN the follower has durably acknowledged in this
 *   term (never goes down).
 * - `next`: the next LSN to send.
 * - `state`: `probe` (its position is being asked), `replicate` (streaming),
 *   `snapshot` (a full sync is offered or running), `refused` (it would not
 *   follow; nothing more until it reconnects).
 * - `inflight`: RECORDS frames sent and not yet acknowledged, with their
 *   bytes; no new frame while the window is full.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot' | 'refused';

/** Frames in flight to one follower at most, and their bytes. */
export const MAX_INFLIGHT_FRAMES = 16;
export const MAX_INFLIGHT_BYTES = 32 * 1024 * 1024;
/**
 * The window while a snapshot goes (the live stream carried alongside it,
 * unacknowledged until the install): frames and bytes in flight. Frames
 * near the head hold a record or two each, so the frame count of the
 * streaming window would stop it after 16 writes.
 */
export const MAX_ALONGSIDE_FRAMES = 1024;
export const MAX_ALONGSIDE_BYTES = 64 * 1024 * 1024;
/**
 * Bytes of records a follower holds in memory while its snapshot comes in:
 * the leader's window, the frame that crosses it, and room for records
 * bigger decoded than sent. A follower past this stops holding them and
 * names the gap once installed.
 */
export const MAX_HELD_ALONGSIDE_BYTES = 2 * MAX_ALONGSIDE_BYTES;

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** Position request outstanding (`probe` state): its id. */
  probeId = 0;
  /** The frame being prepared by the transport (one at a time per follower), and its request id. */
  sending = false;
  requestId = 0;
  /** Full sync offered at this snapshot LSN (`snapshot` state), and whether the follower took it. */
  snapshotLsn = 0;
  snapshotAccepted = false;
  /**
   * `snapshot` state: the records after the snapshot stream to the follower
   * while the snapshot does (Valkey's dual-channel sync); it holds them until
   * it has installed the snapshot, so it is live the moment it has.
   */
  alongside = false;
  /** Ticks spent in the current state (an offer nobody answers is made again). */
  stateTicks = 0;
  /** Ticks frames have been in flight with no acknowledgement moving `match`. */
  stalledTicks = 0;
  /** Why it refused (`refused` state). */
  refusal: string | null = null;
  /** Ticks since it was last heard from. */
  silentTicks = 0;
  /** The operator asked for a full sync of this follower. */
  forceFull = false;
  /**
   * The transport found nothing to send for the last request (its log view
   * was behind the core's): no new request until the log grows or a
   * heartbeat passes, so an open window never spins on empty requests.
   */
  waitingForLog = false;
  /**
   * Frames were lost or overtaken (an ACK named a gap): one frame at a time
   * until an acknowledgement moves `match` (etcd's probe), so a window of
   * frames is not resent again on every gap while they keep arriving.
   */
  resending = false;
  private readonly inflightLast: number[] = [];
  private readonly inflightBytes: number[] = [];
  private inflightTotal = 0;

  constructor(
    readonly peer: string,
    next: number,
  ) {
    this.next = next;
  }

  get inflightFrames(): number {
    return this.inflightLast.length;
  }

  get bytesInFlight(): number {
    return this.inflightTotal;
  }

  /** True when another frame may be sent now. */
  canSend(lastLsn: number): boolean {
    const alongside = this.state === 'snapshot' && this.alongside;
    const maxFrames = alongside ? MAX_ALONGSIDE_FRAMES : this.resending ? 1 : MAX_INFLIGHT_FRAMES;
    return (
      (this.state === 'replicate' || alongside) &&
      !this.sending &&
      !this.waitingForLog &&
      this.next <= lastLsn &&
      this.inflightLast.length < maxFrames &&
      this.inflightTotal < (alongside ? MAX_ALONGSIDE_BYTES : MAX_INFLIGHT_BYTES)
    );
  }

  /** A frame of records [.., lastLsn] went out. */
  sent(lastLsn: number, bytes: number): void {
    this.sending = false;
    if (bytes === 0) {
      this.waitingForLog = true;
      return;
    }
    // An acknowledgement may have moved `next` past the frame meanwhile (records it already had).
    this.next = Math.max(this.next, lastLsn + 1);
    this.inflightLast.push(lastLsn);
    this.inflightBytes.push(bytes);
    this.inflightTotal += bytes;
  }

  /** The follower holds everything up to `lsn` durably. Returns true when match moved. */
  acked(lsn: number): boolean {
    while (this.inflightLast.length > 0 && (this.inflightLast[0] as number) <= lsn) {
      this.inflightLast.shift();
      this.inflightTotal -= this.inflightBytes.shift() as number;
    }
    if (lsn <= this.match) return false;
    this.match = lsn;
    this.stalledTicks = 0;
    this.resending = false;
    if (this.next <= lsn) this.next = lsn + 1;
    return true;
  }

  /** The follower took the snapshot at `snapshotLsn`: the records after it go out alongside. */
  streamAlongside(snapshotLsn: number): void {
    this.snapshotAccepted = true;
    this.alongside = true;
    this.next = snapshotLsn + 1;
  }

  /**
   * The follower installed its snapshot and holds its log durably up to
   * `match`: streaming from here. Frames sent alongside stay in flight (the
   * follower appended what it buffered of them; an ACK names a gap if not).
   */
  installed(match: number): void {
    const streamed = this.alongside;
    this.state = 'replicate';
    this.stateTicks = 0;
    this.stalledTicks = 0;
    this.snapshotLsn = 0;
    this.snapshotAccepted = false;
    this.alongside = false;
    if (!streamed) this.reset('replicate', match + 1);
  }

  /** Back to asking for its position (reconnect, gap, new term). */
  reset(state: ProgressState, next: number): void {
    this.state = state;
    this.next = next;
    this.stateTicks = 0;
    this.stalledTicks = 0;
    this.snapshotLsn = 0;
    this.snapshotAccepted = false;
    this.alongside = false;
    this.sending = false;
    this.waitingForLog = false;
    this.resending = false;
    this.inflightLast.length = 0;
    this.inflightBytes.length = 0;
    this.inflightTotal = 0;
  }
}
