/**
 * What the WAL must keep for its readers: each pin holds the records from
 * its LSN on. Snapshots remove WAL segments only below the lowest pin.
 *
 * Two kinds: `feed` pins (a replica's feed, a snapshot being sent, a log
 * cut being listed, a named cursor) hold without limit; `stream` pins
 * (change streams and consumer groups) hold only as far back as the
 * streams' retention limit allows (streams.max_retained_bytes): past it the
 * WAL goes, and the stream or group finds its position evicted.
 */
export type LogPinKind = 'feed' | 'stream';

export interface LogPin {
  /** The oldest LSN still needed; raise it as the reader moves on. */
  lsn: number;
  readonly kind: LogPinKind;
  release(): void;
}

export class LogPins {
  private readonly pins = new Set<LogPin>();

  pin(lsn: number, kind: LogPinKind = 'feed'): LogPin {
    const pins = this.pins;
    const pin: LogPin = {
      lsn,
      kind,
      release: () => {
        pins.delete(pin);
      },
    };
    pins.add(pin);
    return pin;
  }

  /**
   * Oldest LSN a pin still needs (Infinity: none); stream pins count no
   * further back than `streamFloor` (the retention limit's LSN).
   */
  floor(streamFloor = 0): number {
    let floor = Infinity;
    for (const p of this.pins)
      floor = Math.min(floor, p.kind === 'stream' ? Math.max(p.lsn, streamFloor) : p.lsn);
    return floor;
  }

  /** The lowest stream pin (Infinity: none), for the retention window's status. */
  streamFloor(): number {
    let floor = Infinity;
    for (const p of this.pins) if (p.kind === 'stream') floor = Math.min(floor, p.lsn);
    return floor;
  }
}
