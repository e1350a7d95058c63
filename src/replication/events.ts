/**
 * Fan-out of node events to any number of `events()` readers. Each reader
 * has a bounded queue: a reader that does not keep up loses its oldest
 * events (counted in `dropped`), the node never blocks or grows without
 * bound on its account.
 */
import type { NodeEvent } from './types.ts';

export const MAX_QUEUED_EVENTS = 4096;

interface Reader {
  queue: NodeEvent[];
  wake: (() => void) | null;
  closed: boolean;
  dropped: number;
}

export class EventHub {
  private readonly readers = new Set<Reader>();

  emit(event: NodeEvent): void {
    for (const r of this.readers) {
      if (r.queue.length >= MAX_QUEUED_EVENTS) {
        r.queue.shift();
        r.dropped++;
      }
      r.queue.push(event);
      const wake = r.wake;
      r.wake = null;
      wake?.();
    }
  }

  /** An iterator of the events emitted from now on; ends when `close()` is called or the reader returns. */
  subscribe(): AsyncIterableIterator<NodeEvent> {
    const reader: Reader = { queue: [], wake: null, closed: false, dropped: 0 };
    this.readers.add(reader);
    const finish = (): IteratorResult<NodeEvent> => {
      reader.closed = true;
      this.readers.delete(reader);
      return { value: undefined, done: true };
    };
    const iterator: AsyncIterableIterator<NodeEvent> = {
      next: async () => {
        for (;;) {
          const event = reader.queue.shift();
          if (event !== undefined) return { value: event, done: false };
          if (reader.closed) return finish();
          await new Promise<void>((resolve) => (reader.wake = resolve));
        }
      },
      return: async () => finish(),
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /** Ends every reader (node stopping). */
  close(): void {
    for (const r of this.readers) {
      r.closed = true;
      const wake = r.wake;
      r.wake = null;
      wake?.();
    }
  }
}
