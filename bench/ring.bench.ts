/**
 * Ring log throughput: batched append and range read, native ring vs a plain
 * JS array of Buffers doing the same job (copy each record in, push, shift
 * when over capacity; read a range by slicing the array and copying the
 * records into the caller's buffer). Same capacities, same record sizes,
 * same run.
 */
import { measure, withRatios, emit, isQuick, benchTimeMs, type Row, type Section } from './lib/harness.ts';
import { RingLog } from '../src/native/ring-log.ts';

/** The baseline: a bounded array of owned Buffers. */
class ArrayLog {
  readonly records: Buffer[] = [];
  bytes = 0;
  firstLsn = 1;
  constructor(
    readonly capacityBytes: number,
    readonly capacityRecords: number,
  ) {}
  appendBatch(data: Uint8Array, lengths: Uint32Array): void {
    let at = 0;
    for (let i = 0; i < lengths.length; i++) {
      const length = lengths[i]!;
      this.records.push(Buffer.from(data.subarray(at, at + length)));
      this.bytes += length;
      at += length;
      while (this.records.length > this.capacityRecords || this.bytes > this.capacityBytes) {
        this.bytes -= this.records.shift()!.length;
        this.firstLsn++;
      }
    }
  }
  read(from: number, to: number, out: Uint8Array, outLengths: Uint32Array): number {
    const slice = this.records.slice(from - this.firstLsn, to - this.firstLsn + 1);
    let at = 0;
    let n = 0;
    for (const r of slice) {
      if (n === outLengths.length || at + r.length > out.length) break;
      out.set(r, at);
      outLengths[n++] = r.length;
      at += r.length;
    }
    return n;
  }
}

/**
 * A fairer JS contender, for information: a circular array of Buffers (no
 * O(n) shift), same semantics as ArrayLog for appends.
 */
class CircularArrayLog {
  readonly records: (Buffer | undefined)[];
  bytes = 0;
  first = 0;
  count = 0;
  constructor(
    readonly capacityBytes: number,
    readonly capacityRecords: number,
  ) {
    this.records = new Array<Buffer | undefined>(capacityRecords).fill(undefined);
  }
  appendBatch(data: Uint8Array, lengths: Uint32Array): void {
    let at = 0;
    for (let i = 0; i < lengths.length; i++) {
      const length = lengths[i]!;
      while (
        this.count > 0 &&
        (this.count === this.capacityRecords || this.bytes + length > this.capacityBytes)
      ) {
        this.bytes -= this.records[this.first]!.length;
        this.records[this.first] = undefined;
        this.first = (this.first + 1) % this.capacityRecords;
        this.count--;
      }
      this.records[(this.first + this.count) % this.capacityRecords] = Buffer.from(
        data.subarray(at, at + length),
      );
      this.count++;
      this.bytes += length;
      at += length;
    }
  }
}

interface Case {
  recordBytes: number;
  batch: number;
}

const quick = isQuick();
const capacityBytes = quick ? 1 << 20 : 16 << 20;
const timeMs = quick ? Math.min(benchTimeMs(), 150) : benchTimeMs();
const cases: Case[] = [
  { recordBytes: 64, batch: 256 },
  { recordBytes: 4096, batch: 16 },
];

function rates(name: string, opsPerSec: number, recordsPerOp: number, bytesPerOp: number): [Row, Row] {
  return [
    { name: `${name}, records/s`, value: opsPerSec * recordsPerOp, unit: 'records/s' },
    { name: `${name}, MB/s`, value: (opsPerSec * bytesPerOp) / 1e6, unit: 'MB/s' },
  ];
}

function compare(title: string, base: [Row, Row], ring: [Row, Row]): Section {
  return {
    title,
    rows: [...withRatios([base[0], ring[0]], base[0].name), ...withRatios([base[1], ring[1]], base[1].name)],
  };
}

const sections: Section[] = [];
for (const { recordBytes, batch } of cases) {
  const capacityRecords = Math.floor(capacityBytes / recordBytes);
  const data = new Uint8Array(recordBytes * batch);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 255;
  const lengths = new Uint32Array(batch).fill(recordBytes);
  const bytesPerBatch = data.length;
  const label = `${recordBytes} B records, batches of ${batch}`;

  const ring = new RingLog({ capacityBytes, capacityRecords });
  const arrayLog = new ArrayLog(capacityBytes, capacityRecords);
  const circularLog = new CircularArrayLog(capacityBytes, capacityRecords);
  const ringAppend = measure(() => ring.appendBatch(data, lengths), { minTimeMs: timeMs });
  const arrayAppend = measure(() => arrayLog.appendBatch(data, lengths), { minTimeMs: timeMs });
  const circularAppend = measure(() => circularLog.appendBatch(data, lengths), { minTimeMs: timeMs });
  const appendSection = compare(
    `ring append, ${label} (ring full, evicting)`,
    rates('JS array of Buffers (push + shift)', arrayAppend.opsPerSec, batch, bytesPerBatch),
    rates('ring appendBatch', ringAppend.opsPerSec, batch, bytesPerBatch),
  );
  const [circularRecords] = rates(
    'JS circular array of Buffers',
    circularAppend.opsPerSec,
    batch,
    bytesPerBatch,
  );
  appendSection.rows.push({
    ...circularRecords,
    ratio: circularRecords.value / appendSection.rows[0]!.value,
    vs: appendSection.rows[0]!.name,
    note: 'for information: a JS ring without the O(n) shift',
  });
  sections.push(appendSection);

  // Both logs are full now; read `batch` records from a sliding window.
  const out = new Uint8Array(bytesPerBatch);
  const outLengths = new Uint32Array(batch);
  const span = capacityRecords - batch;
  let k = 0;
  const readRing = measure(
    () => {
      const from = ring.firstLsn() + ((k++ * 7919) % span);
      return ring.read(from, from + batch - 1, out, outLengths);
    },
    { minTimeMs: timeMs },
  );
  k = 0;
  const readArray = measure(
    () => {
      const from = arrayLog.firstLsn + ((k++ * 7919) % span);
      return arrayLog.read(from, from + batch - 1, out, outLengths);
    },
    { minTimeMs: timeMs },
  );
  sections.push(
    compare(
      `ring read, ${label} into a caller buffer`,
      rates('JS array slice + copy', readArray.opsPerSec, batch, bytesPerBatch),
      rates('ring read', readRing.opsPerSec, batch, bytesPerBatch),
    ),
  );
}

emit('ring', sections);
