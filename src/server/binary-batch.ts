/**
 * The binary batch format of `POST /collections/{name}/points` with
 * `Content-Type: application/vnd.vrep.batch`: the vectors travel as raw
 * float32 (no text to parse), ids and payloads as UTF-8. Little-endian:
 *
 *   0   "VRB1" magic
 *   4   u32 count           points in the batch
 *   8   u32 dimension       floats per vector
 *   12  u32 idBytes         total UTF-8 bytes of the ids
 *   16  u32 payloadBytes    total UTF-8 bytes of the payloads
 *   20  u32 x count         id byte lengths
 *   ..  u32 x count         payload byte lengths (0: no payload)
 *   ..  f32 x count x dim   vectors, row after row (4-byte aligned here)
 *   ..  id bytes, then payload bytes (each a JSON object)
 *
 * The body must be exactly that long. This module only decodes the framing;
 * what the fields hold (id and payload limits, payload JSON, finite floats)
 * is checked by the store like every other write (src/store/point-checks.ts).
 * Docs: docs/http-api.md.
 */
import { isAscii } from 'node:buffer';
import { ApiLimits } from '../limits.ts';
import { VrepError } from '../errors.ts';

export const BINARY_BATCH_MAGIC = 0x31425256; // "VRB1" read as little-endian u32
const HEADER_BYTES = 20;
const decoder = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

export interface PackedBatch {
  ids: string[];
  vectors: Float32Array;
  payloads: Uint8Array[];
}

function bad(message: string): VrepError {
  return new VrepError('ERR_INVALID_INPUT', `binary batch: ${message}`);
}

/** Parses the framing of a binary batch for a collection of `dimension`; throws ERR_INVALID_INPUT naming the point and field. */
export function decodeBinaryBatch(body: Uint8Array, dimension: number): PackedBatch {
  if (body.length < HEADER_BYTES)
    throw bad(`${body.length} bytes, shorter than the ${HEADER_BYTES}-byte header`);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  if (view.getUint32(0, true) !== BINARY_BATCH_MAGIC) throw bad('bad magic (expected "VRB1")');
  const count = view.getUint32(4, true);
  const dim = view.getUint32(8, true);
  const idBytes = view.getUint32(12, true);
  const payloadBytes = view.getUint32(16, true);
  // Bounds the arrays allocated below.
  if (count < 1 || count > ApiLimits.maxBatchPoints) {
    throw bad(`count: expected 1 to ${ApiLimits.maxBatchPoints}, got ${count}`);
  }
  if (dim !== dimension) throw bad(`dimension: the collection has ${dimension}, the batch says ${dim}`);
  const lengthsAt = HEADER_BYTES;
  const vectorsAt = lengthsAt + 8 * count;
  const idsAt = vectorsAt + 4 * count * dim;
  const payloadsAt = idsAt + idBytes;
  const end = payloadsAt + payloadBytes;
  if (end !== body.length) throw bad(`the header describes ${end} bytes, the body has ${body.length}`);
  // Views of a plain Uint8Array: a Buffer's subarray builds a Buffer, several times slower.
  const bytes = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  // ASCII ids (the usual kind) are cut out of one string: byte offsets are character offsets.
  const asciiIds = isAscii(bytes.subarray(idsAt, payloadsAt))
    ? Buffer.from(body.buffer, body.byteOffset + idsAt, idBytes).toString('latin1')
    : null;
  const ids: string[] = new Array(count);
  const payloads: Uint8Array[] = new Array(count);
  let idAt = idsAt;
  let payloadAt = payloadsAt;
  for (let i = 0; i < count; i++) {
    const idLength = view.getUint32(lengthsAt + 4 * i, true);
    if (idLength > payloadsAt - idAt) throw bad(`points[${i}].id: runs past the id bytes`);
    if (asciiIds !== null) {
      ids[i] = asciiIds.slice(idAt - idsAt, idAt - idsAt + idLength);
    } else {
      try {
        ids[i] = decoder.decode(bytes.subarray(idAt, idAt + idLength));
      } catch {
        throw bad(`points[${i}].id: not valid UTF-8`);
      }
    }
    idAt += idLength;
    const payloadLength = view.getUint32(lengthsAt + 4 * (count + i), true);
    if (payloadLength > end - payloadAt) throw bad(`points[${i}].payload: runs past the payload bytes`);
    payloads[i] = bytes.subarray(payloadAt, payloadAt + payloadLength);
    payloadAt += payloadLength;
  }
  if (idAt !== payloadsAt) throw bad(`ids: ${payloadsAt - idAt} bytes not covered by the id lengths`);
  if (payloadAt !== end) throw bad(`payloads: ${end - payloadAt} bytes not covered by the payload lengths`);
  // One copy when the body is not 4-byte aligned in memory; a view otherwise.
  const vectorBytes = bytes.subarray(vectorsAt, idsAt);
  const vectors =
    vectorBytes.byteOffset % 4 === 0
      ? new Float32Array(vectorBytes.buffer, vectorBytes.byteOffset, count * dim)
      : new Float32Array(vectorBytes.slice().buffer);
  return { ids, vectors, payloads };
}

/** Builds a binary batch (for clients, tests and benches). */
export function encodeBinaryBatch(points: {
  ids: readonly string[];
  vectors: Float32Array;
  dimension: number;
  payloads?: readonly (object | null)[];
}): Uint8Array {
  const count = points.ids.length;
  const idParts = points.ids.map((id) => encoder.encode(id));
  const payloadParts = points.ids.map((_, i) => {
    const p = points.payloads?.[i];
    return p ? encoder.encode(JSON.stringify(p)) : new Uint8Array(0);
  });
  const idBytes = idParts.reduce((n, b) => n + b.length, 0);
  const payloadBytes = payloadParts.reduce((n, b) => n + b.length, 0);
  const vectorsAt = HEADER_BYTES + 8 * count;
  const idsAt = vectorsAt + points.vectors.byteLength;
  const out = new Uint8Array(idsAt + idBytes + payloadBytes);
  const view = new DataView(out.buffer);
  view.setUint32(0, BINARY_BATCH_MAGIC, true);
  view.setUint32(4, count, true);
  view.setUint32(8, points.dimension, true);
  view.setUint32(12, idBytes, true);
  view.setUint32(16, payloadBytes, true);
  for (let i = 0; i < count; i++) {
    view.setUint32(HEADER_BYTES + 4 * i, (idParts[i] as Uint8Array).length, true);
    view.setUint32(HEADER_BYTES + 4 * (count + i), (payloadParts[i] as Uint8Array).length, true);
  }
  out.set(
    new Uint8Array(points.vectors.buffer, points.vectors.byteOffset, points.vectors.byteLength),
    vectorsAt,
  );
  let at = idsAt;
  for (const part of [...idParts, ...payloadParts]) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
