/**
 * A Piscina pool that builds RECORDS payloads (src/replication/records-payload.ts)
 * off the event loop. Catch-up frames are the node's heaviest CPU work
 * (copying and zstd-compressing megabytes of vectors); done on the main
 * thread they stall every link and request for tens of milliseconds.
 *
 * Workers read the native circular log themselves: the ring's handle (a
 * SharedArrayBuffer) is given to each thread once, so the records are never
 * copied through postMessage; only the finished payload comes back, in a
 * SharedArrayBuffer the worker lets go of (shared, so neither copied nor
 * transferred: see feeder-task.ts for why not a transferred ArrayBuffer).
 * Records that are no longer in the ring (read from the WAL by the caller)
 * go the other way in one transferred buffer.
 *
 * Every task is counted: more than `threads + maxQueue` in flight is refused
 * with ERR_OVERLOADED at once, so a burst of catch-ups queues in the caller,
 * where it can be throttled, and not here.
 */
import { Piscina } from 'piscina';
import { checkInt, describe } from '../native/checks.ts';
import { RingReader, RING_MAX_LSN, type RingHandle } from '../native/ring-log.ts';
import { batchCodecLimits } from '../native/batch-codec.ts';
import {
  RECORDS_FRAME_HEADROOM,
  type EncodedRecords,
  type RecordsCompression,
} from '../replication/records-payload.ts';
import type { RecordsEncoder } from '../replication/records-source.ts';
import { ErrorCodes, VrepError } from '../errors.ts';
// Types only: erased, so this does not load the worker module here.
import type {
  EncodeFromRingTask,
  EncodeRecordsTask,
  FeederReply,
  FeederTask,
  FeederWorkerData,
} from './feeder-task.ts';

export const FeederPoolLimits = {
  /** Threads in one pool. */
  maxThreads: 64,
  /** Tasks waiting for a thread, beyond those running. */
  maxQueue: 4096,
  /** Raw record bytes one task may encode (a RECORDS payload's budget). */
  maxBytes: 64 * 1024 * 1024,
  /** Records in one encodeRecords call. */
  maxRecords: 1_000_000,
} as const;

export interface FeederPoolOptions {
  /** Worker threads, in [1, maxThreads]; default 1 (leave the other cores to the event loop and libuv). */
  threads?: number;
  /** Tasks allowed to wait for a thread, in [0, maxQueue]; default 16. */
  maxQueue?: number;
}

const DEFAULT_MAX_QUEUE = 16;

/**
 * The pool's errors, made in one place so callers can branch on codes and
 * tests on messages.
 */
export const FeederPoolErrors = {
  closed: (method: string) =>
    new VrepError(ErrorCodes.NodeStopped, `FeederPool.${method}: the pool is closed`),
  overloaded: (method: string, inFlight: number, limit: number) =>
    new VrepError(
      ErrorCodes.Overloaded,
      `FeederPool.${method}: ${inFlight} tasks in flight, the limit is ${limit} (threads + maxQueue); retry later`,
    ),
  tooLarge: (method: string, bytes: number) =>
    new RangeError(
      `FeederPool.${method}(records): ${bytes} bytes in total, over the limit of ${FeederPoolLimits.maxBytes}`,
    ),
  /** An error raised inside a worker, rebuilt with its class and code. */
  fromWorker: (method: string, reply: FeederReply & { kind: 'error' }): Error => {
    const message = `FeederPool.${method}: ${reply.message}`;
    if (reply.code !== null) return new VrepError(reply.code, message);
    if (reply.name === 'TypeError') return new TypeError(message);
    if (reply.name === 'RangeError') return new RangeError(message);
    return new Error(message);
  },
  /** The thread itself failed (crashed, or was terminated by close()). */
  workerFailed: (method: string, cause: unknown) =>
    new Error(`FeederPool.${method}: worker thread failed: ${(cause as Error)?.message ?? String(cause)}`, {
      cause,
    }),
} as const;

/**
 * Where the worker module is: next to this file, .ts when running from
 * source (tests, through tsx), .js in dist/ (tsc rewrites import specifiers
 * but not this URL, hence the choice here).
 */
function taskModule(): { filename: string; execArgv: string[] } {
  const fromSource = import.meta.url.endsWith('.ts');
  const filename = new URL(fromSource ? './feeder-task.ts' : './feeder-task.js', import.meta.url).href;
  // A .ts worker needs tsx's loader in its own thread; resolved to an
  // absolute URL here so it does not depend on the working directory.
  return { filename, execArgv: fromSource ? ['--import', import.meta.resolve('tsx')] : [] };
}

function checkCompression(fn: string, c: unknown): asserts c is RecordsCompression {
  if (typeof c !== 'object' || c === null) {
    throw new TypeError(`${fn}(compression): expected { enabled, level }, got ${describe(c)}`);
  }
  const { enabled, level } = c as Partial<RecordsCompression>;
  if (typeof enabled !== 'boolean') {
    throw new TypeError(`${fn}(compression.enabled): expected a boolean, got ${describe(enabled)}`);
  }
  checkInt(fn, 'compression.level', level, batchCodecLimits.minLevel, batchCodecLimits.maxLevel);
}

export class FeederPool implements RecordsEncoder {
  readonly threads: number;
  readonly maxQueue: number;
  readonly #pool: Piscina;
  #inFlight = 0;
  #closed = false;
  #lastWorkerError: Error | null = null;

  constructor(handle: RingHandle, options: FeederPoolOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`FeederPool(options): expected an object, got ${describe(options)}`);
    }
    const { threads = 1, maxQueue = DEFAULT_MAX_QUEUE } = options;
    checkInt('FeederPool', 'options.threads', threads, 1, FeederPoolLimits.maxThreads);
    checkInt('FeederPool', 'options.maxQueue', maxQueue, 0, FeederPoolLimits.maxQueue);
    // Attaching here checks the handle (type, ring header) once, with a
    // clear error, before any thread starts.
    new RingReader(handle);
    this.threads = threads;
    this.maxQueue = maxQueue;
    const workerData: FeederWorkerData = { handle };
    this.#pool = new Piscina({
      ...taskModule(),
      minThreads: threads,
      maxThreads: threads,
      // Our own count (below) is the limit; Piscina's queue never reaches it.
      maxQueue: maxQueue + threads,
      // Threads stay (minThreads = maxThreads): catch-up comes in bursts, and a
      // thread costs tens of ms to start.
      idleTimeout: Infinity,
      workerData,
    });
    // Piscina emits 'error' when a thread dies outside a task (e.g. it cannot
    // load the worker module); unheard, that would crash the process. Tasks
    // given to such a thread are rejected on their own.
    this.#pool.on('error', (err: Error) => {
      this.#lastWorkerError = err;
    });
  }

  /** The last failure of a thread outside any task, for status and logs (null if none). */
  get lastWorkerError(): Error | null {
    return this.#lastWorkerError;
  }

  /** Tasks submitted and not yet settled. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Reads records [fromLsn, min(toLsn, lastLsn)] from the ring in a worker,
   * at most `maxBytes` of them (always at least one: a larger first record
   * goes alone), and encodes them as a RECORDS payload there. Resolves to
   * null when the ring no longer holds fromLsn: read those from the WAL
   * (RecordLog.read) and use encodeRecords. Rejects with ERR_LSN_NOT_YET_WRITTEN
   * when fromLsn is past the newest record.
   *
   * The payload is a Uint8Array over a SharedArrayBuffer that only this
   * thread still holds, with `headroom` free bytes before it (frames are
   * built there, encodeFrameInPlace): use it as any Uint8Array, but do not
   * put its buffer in a transfer list (shared memory cannot be transferred).
   */
  encodeFromRing(
    fromLsn: number,
    toLsn: number,
    maxBytes: number,
    compression: RecordsCompression,
  ): Promise<EncodedRecords | null> {
    const fn = 'FeederPool.encodeFromRing';
    try {
      checkInt(fn, 'fromLsn', fromLsn, 1, RING_MAX_LSN);
      checkInt(fn, 'toLsn', toLsn, fromLsn, RING_MAX_LSN);
      checkInt(fn, 'maxBytes', maxBytes, 1, FeederPoolLimits.maxBytes);
      checkCompression(fn, compression);
    } catch (err) {
      return Promise.reject(err);
    }
    const task: EncodeFromRingTask = {
      kind: 'fromRing',
      fromLsn,
      toLsn,
      maxBytes,
      compression: { enabled: compression.enabled, level: compression.level },
    };
    return this.#run('encodeFromRing', task, []);
  }

  /**
   * Encodes records the caller already has (from the WAL) in a worker. The
   * records are copied once into a buffer that is transferred, so the
   * caller's arrays stay usable. Consecutive LSNs are the caller's promise,
   * as for encodeRecords; the receiver's decodeRecords checks them.
   */
  encodeRecords(records: readonly Uint8Array[], compression: RecordsCompression): Promise<EncodedRecords> {
    const fn = 'FeederPool.encodeRecords';
    let task: EncodeRecordsTask;
    try {
      if (!Array.isArray(records))
        throw new TypeError(`${fn}(records): expected an array, got ${describe(records)}`);
      if (records.length === 0) throw new RangeError(`${fn}(records): no records`);
      if (records.length > FeederPoolLimits.maxRecords) {
        throw new RangeError(
          `${fn}(records): ${records.length} records, over the limit of ${FeederPoolLimits.maxRecords}`,
        );
      }
      checkCompression(fn, compression);
      const lengths = new Uint32Array(records.length);
      let total = 0;
      for (let i = 0; i < records.length; i++) {
        const r: unknown = records[i];
        if (!(r instanceof Uint8Array)) {
          throw new TypeError(`${fn}(records[${i}]): expected a Uint8Array, got ${describe(r)}`);
        }
        lengths[i] = r.byteLength;
        total += r.byteLength;
        if (total > FeederPoolLimits.maxBytes) throw FeederPoolErrors.tooLarge('encodeRecords', total);
      }
      this.#checkAdmission('encodeRecords');
      const data = new Uint8Array(total);
      let at = 0;
      for (const r of records) {
        data.set(r, at);
        at += r.byteLength;
      }
      task = {
        kind: 'records',
        data: data.buffer,
        lengths,
        compression: { enabled: compression.enabled, level: compression.level },
      };
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#run('encodeRecords', task, [task.data, task.lengths.buffer as ArrayBuffer]).then(
      (encoded) => {
        // Only a ring read can find its records evicted.
        if (encoded === null) throw new Error('FeederPool.encodeRecords: worker replied "evicted"');
        return encoded;
      },
    );
  }

  /** Stops every thread; tasks still running or queued reject with ERR_NODE_STOPPED. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.destroy();
  }

  #checkAdmission(method: string): void {
    if (this.#closed) throw FeederPoolErrors.closed(method);
    const limit = this.threads + this.maxQueue;
    if (this.#inFlight >= limit) throw FeederPoolErrors.overloaded(method, this.#inFlight, limit);
  }

  /** Runs one task in a worker; null when the worker found its first LSN evicted. */
  async #run(
    method: 'encodeFromRing' | 'encodeRecords',
    task: FeederTask,
    transferList: ArrayBuffer[],
  ): Promise<EncodedRecords | null> {
    this.#checkAdmission(method);
    this.#inFlight++;
    let reply: FeederReply;
    try {
      reply = (await this.#pool.run(task, { transferList })) as FeederReply;
    } catch (err) {
      throw this.#closed ? FeederPoolErrors.closed(method) : FeederPoolErrors.workerFailed(method, err);
    } finally {
      this.#inFlight--;
    }
    switch (reply.kind) {
      case 'encoded':
        return {
          payload: new Uint8Array(reply.payload, RECORDS_FRAME_HEADROOM, reply.payloadBytes),
          headroom: RECORDS_FRAME_HEADROOM,
          flags: reply.flags,
          firstLsn: reply.firstLsn,
          count: reply.count,
          rawBytes: reply.rawBytes,
          tried: reply.tried,
          crc: reply.crc,
        };
      case 'evicted':
        return null;
      case 'error':
        throw FeederPoolErrors.fromWorker(method, reply);
    }
  }
}
