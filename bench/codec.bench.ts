/**
 * Batch codec and CRC32C.
 * - Compression ratio and MB/s (compress, decompress) of shuffle+zstd vs plain
 *   zstd vs stored (no compression), on (a) unit-norm float32 vectors and
 *   (b) payload-heavy batches (small vectors + JSON payloads), with
 *   zstd-napi's own one-shot compress of the same bytes as a peer.
 * - Byte shuffle GB/s against a plain copy of the same bytes.
 * - CRC32C GB/s: hardware vs the table fallback vs a TypeScript table loop.
 * MB/s always counts uncompressed content bytes.
 */
import * as zstd from 'zstd-napi';
import {
  benchTimeMs,
  emit,
  isQuick,
  keep,
  measure,
  withRatios,
  type Row,
  type Section,
} from './lib/harness.ts';
import {
  compressBatch,
  decompressBatch,
  shuffleBytes,
  unshuffleBytes,
  type BatchPart,
  type CompressBatchOptions,
} from '../src/native/batch-codec.ts';
import { crc32c, crc32cImplementation, crc32cSoftware } from '../src/native/crc32c.ts';
import { rng, unitVectors } from '../test/native/codec-fixtures.ts';

const quick = isQuick();
const MB = 1e6;

const words = (
  'vector replica primary shard index search cosine latency throughput cluster node ' +
  'storage snapshot segment collection payload tenant region europe america asia ' +
  'the of and to in for with on by from product review article user session event'
).split(' ');
const categories = ['electronics', 'books', 'garden', 'sports', 'toys', 'music', 'travel'];

/** A JSON payload of a few hundred bytes with text-ish, id-ish and numeric fields. */
function payload(i: number, next: () => number): string {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(next() * a.length)]!;
  const sentence = (n: number): string => Array.from({ length: n }, () => pick(words)).join(' ');
  return JSON.stringify({
    id: `doc-${(1_000_000 + i).toString(36)}-${Math.floor(next() * 1e9).toString(16)}`,
    title: sentence(6),
    body: sentence(30 + Math.floor(next() * 20)),
    category: pick(categories),
    tags: [pick(words), pick(words), pick(words)],
    price: Math.round(next() * 100_000) / 100,
    rating: Math.round(next() * 50) / 10,
    createdAt: new Date(1.7e12 + Math.floor(next() * 3e10)).toISOString(),
    inStock: next() > 0.3,
  });
}

interface Variant {
  name: string;
  opts: CompressBatchOptions;
}

const variants: Variant[] = [
  { name: 'stored (none)', opts: { store: true } },
  { name: 'zstd-1', opts: { level: 1, shuffle: false } },
  { name: 'shuffle+zstd-1', opts: { level: 1, shuffle: true } },
  { name: 'shuffle+zstd-3', opts: { level: 3, shuffle: true } },
  { name: 'shuffle+zstd-1, 2 zstd threads', opts: { level: 1, shuffle: true, workers: 2 } },
];

/**
 * Rates (ops/s) of several cases measured in alternating short rounds, the
 * median per case: on a shared, loaded machine a case measured alone in one
 * stretch mostly measures what the neighbours were doing at that time.
 */
function interleaved(cases: Record<string, () => unknown>, rounds = quick ? 3 : 7): Record<string, number> {
  const slices = Object.fromEntries(Object.keys(cases).map((k) => [k, [] as number[]]));
  const minTimeMs = Math.max(50, benchTimeMs() / rounds);
  for (let r = 0; r < rounds; r++) {
    for (const [name, fn] of Object.entries(cases)) {
      slices[name]!.push(measure(fn, { minTimeMs, warmupMs: r === 0 ? 100 : 10 }).opsPerSec);
    }
  }
  return Object.fromEntries(
    Object.entries(slices).map(([k, v]) => [k, v.sort((a, b) => a - b)[Math.floor(v.length / 2)]!]),
  );
}

/** One dataset: ratio, compress MB/s and decompress MB/s, three sections. */
function codecSections(label: string, parts: BatchPart[], floatParts: boolean[]): Section[] {
  const contentBytes = parts.reduce((s, p) => s + p.byteLength, 0);
  const maxBytes = contentBytes;
  const ratioRows: Row[] = [];
  const compressCases: Record<string, () => unknown> = {};
  const decompressCases: Record<string, () => unknown> = {};
  for (const v of variants) {
    // shuffle: true means "the float parts", never the JSON bytes.
    const opts: CompressBatchOptions = {
      ...v.opts,
      shuffle: floatParts.map((f) => f && v.opts.shuffle === true),
    };
    const frame = compressBatch(parts, opts);
    ratioRows.push({
      name: v.name,
      value: contentBytes / frame.byteLength,
      unit: 'x',
      note: `${frame.byteLength} B`,
    });
    compressCases[v.name] = () => compressBatch(parts, opts);
    decompressCases[v.name] = () => decompressBatch(frame, { maxBytes });
  }
  // Peer: zstd-napi one-shot on the same bytes concatenated (no framing, no CRC).
  const joined = Buffer.concat(parts.map((p) => new Uint8Array(p.buffer, p.byteOffset, p.byteLength)));
  const peerFrame = zstd.compress(joined, { compressionLevel: 1 });
  const peer = 'zstd-napi level 1 (peer)';
  ratioRows.push({ name: peer, value: contentBytes / peerFrame.byteLength, unit: 'x' });
  compressCases[peer] = () => zstd.compress(joined, { compressionLevel: 1 });
  decompressCases[peer] = () => zstd.decompress(peerFrame);
  const toRows = (rates: Record<string, number>): Row[] =>
    Object.entries(rates).map(([name, ops]) => ({ name, value: (contentBytes * ops) / MB, unit: 'MB/s' }));
  const mb = (contentBytes / MB).toFixed(1);
  return [
    { title: `${label} (${mb} MB): compression ratio`, rows: withRatios(ratioRows, 'zstd-1') },
    {
      title: `${label} (${mb} MB): compress MB/s`,
      rows: withRatios(toRows(interleaved(compressCases)), 'zstd-1'),
    },
    {
      title: `${label} (${mb} MB): decompress MB/s`,
      rows: withRatios(toRows(interleaved(decompressCases)), 'zstd-1'),
    },
  ];
}

/** The textbook byte-at-a-time table loop, as a TS program would write it. */
const crcTable = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();
function crc32cTs(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = crcTable[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

function crcSection(): Section {
  const bytes = new Uint8Array(quick ? 1 << 20 : 16 << 20);
  const next = rng(3);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (next() * 256) | 0;
  if (crc32c(bytes) !== crc32cTs(bytes) || crc32cSoftware(bytes) !== crc32cTs(bytes)) {
    throw new Error('crc32c paths disagree');
  }
  const gbps = (ops: number): number => (bytes.length * ops) / 1e9;
  const native = `native crc32c (${crc32cImplementation()})`;
  const rates = interleaved({
    'TypeScript table loop': () => crc32cTs(bytes),
    'native slice-by-8 (software)': () => crc32cSoftware(bytes),
    [native]: () => crc32c(bytes),
  });
  const rows: Row[] = Object.entries(rates).map(([name, ops]) => ({ name, value: gbps(ops), unit: 'GB/s' }));
  return { title: `CRC32C over ${bytes.length >> 20} MiB`, rows: withRatios(rows, 'TypeScript table loop') };
}

function shuffleSection(floats: Float32Array): Section {
  const src = new Uint8Array(floats.buffer, floats.byteOffset, floats.byteLength);
  const dst = new Uint8Array(src.length);
  const back = new Uint8Array(src.length);
  shuffleBytes(src, dst, 4);
  unshuffleBytes(dst, back, 4);
  if (!Buffer.from(back).equals(src)) throw new Error('shuffle round trip failed');
  const gbps = (ops: number): number => (src.length * ops) / 1e9;
  const rates = interleaved({
    'copy (Uint8Array.set)': () => dst.set(src),
    'shuffleBytes, 4-byte elements': () => shuffleBytes(src, dst, 4),
    'unshuffleBytes, 4-byte elements': () => unshuffleBytes(dst, back, 4),
  });
  const rows: Row[] = Object.entries(rates).map(([name, ops]) => ({ name, value: gbps(ops), unit: 'GB/s' }));
  keep(back);
  return {
    title: `byte shuffle over ${(src.length / MB).toFixed(1)} MB`,
    rows: withRatios(rows, 'copy (Uint8Array.set)'),
  };
}

const vectorCount = quick ? 500 : 10_000;
const vectors = unitVectors(vectorCount, 768, 1);

const pointCount = quick ? 1_000 : 20_000;
const smallVectors = unitVectors(pointCount, 128, 2);
const next = rng(4);
const payloadText = new TextEncoder().encode(
  Array.from({ length: pointCount }, (_, i) => payload(i, next)).join('\n'),
);

const sections: Section[] = [
  ...codecSections(`unit-norm float32, ${vectorCount} x 768`, [vectors], [true]),
  ...codecSections(
    `payload-heavy, ${pointCount} points: 128-d vector + ~${Math.round(payloadText.length / pointCount)} B JSON`,
    [smallVectors, payloadText],
    [true, false],
  ),
  shuffleSection(vectors),
  crcSection(),
];
emit('codec', sections);
