/** Deterministic data for the codec tests and bench/codec.bench.ts. */

/** xorshift32 in [0, 1): cheap, reproducible fixtures. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/** count x dim random-normal (Box-Muller) vectors, each normalized to unit length. */
export function unitVectors(count: number, dim: number, seed = 1): Float32Array {
  const next = rng(seed);
  const out = new Float32Array(count * dim);
  for (let v = 0; v < count; v++) {
    let norm = 0;
    for (let d = 0; d < dim; d++) {
      const g = Math.sqrt(-2 * Math.log(next() || 1e-12)) * Math.cos(2 * Math.PI * next());
      out[v * dim + d] = g;
      norm += g * g;
    }
    const inv = 1 / Math.sqrt(norm);
    for (let d = 0; d < dim; d++) out[v * dim + d]! *= inv;
  }
  return out;
}

/** n uniformly random (incompressible) bytes. */
export function randomBytes(n: number, seed = 7): Uint8Array {
  const next = rng(seed);
  return Uint8Array.from({ length: n }, () => (next() * 256) | 0);
}
