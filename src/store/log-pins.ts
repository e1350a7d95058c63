/**
 * What the WAL must keep for its readers: each pin holds the records from
 * its LSN on (a feeder's position, a snapshot being sent). Snapshots remove
 * WAL segments only below the lowest pin.
 */
export interface LogPin {
  /** The oldest LSN still needed; raise it as the reader moves on. */
  lsn: number;
  release(): void;
}

export class LogPins {
  private readonly pins = new Set<LogPin>();

  pin(lsn: number): LogPin {
    const pins = this.pins;
    const pin: LogPin = {
      lsn,
      release: () => {
        pins.delete(pin);
      },
    };
    pins.add(pin);
    return pin;
  }

  /** Oldest LSN a pin still needs (Infinity: none). */
  floor(): number {
    let floor = Infinity;
    for (const p of this.pins) floor = Math.min(floor, p.lsn);
    return floor;
  }
}
