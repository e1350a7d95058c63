// Internal interface between the distance dispatcher (distance.cc) and the
// per-ISA kernels (distance_scalar/avx2/avx512/neon.cc). Each kernel file is
// compiled with its own ISA flags, so everything with code in this header is
// in an anonymous namespace: each file gets its own copy, and the linker can
// never pick an AVX-512 copy of a helper for the baseline code (ODR).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace vrep {
namespace distance {

// Values cross the N-API boundary as small integers (src/native/distance.ts).
enum class Metric : uint32_t {
  kL2 = 0,      // squared Euclidean distance, smaller is closer
  kDot = 1,     // inner product, larger is closer
  kCosine = 2,  // cosine similarity in [-1, 1], larger is closer; 0 for a zero vector
};

// Scores `count` rows of the row-major `matrix` (row length `dim`) against
// `query`: out[j] = score(query, row r) with r = rowIds ? rowIds[j] : j.
// The caller has checked dim >= 1 and that every row r is inside the matrix.
using ScoreRowsFn = void (*)(Metric metric, const float* query, const float* matrix, size_t dim,
                             const uint32_t* rowIds, size_t count, float* out);

// Entry points, one per kernel file. A file whose ISA does not exist on the
// target architecture compiles to nothing, and distance.cc does not name it.
void ScoreRowsScalar(Metric, const float*, const float*, size_t, const uint32_t*, size_t, float*);
void ScoreRowsAvx2(Metric, const float*, const float*, size_t, const uint32_t*, size_t, float*);
void ScoreRowsAvx512(Metric, const float*, const float*, size_t, const uint32_t*, size_t, float*);
void ScoreRowsNeon(Metric, const float*, const float*, size_t, const uint32_t*, size_t, float*);

namespace {

// Cosine from a dot product and the two squared norms. Done in double so that
// qq * rr cannot overflow or underflow float; a zero (or denormal-small) norm
// gives 0 instead of NaN; rounding past +-1 is clamped. NaN inputs stay NaN.
inline float FinishCosine(float dot, float qq, float rr) {
  const double denom = std::sqrt(static_cast<double>(qq) * static_cast<double>(rr));
  if (!(denom > 0.0)) return std::isnan(denom) || std::isnan(dot) ? NAN : 0.0f;
  const double c = static_cast<double>(dot) / denom;
  if (c > 1.0) return 1.0f;
  if (c < -1.0) return -1.0f;
  return static_cast<float>(c);
}

// The loop shared by every kernel. `Ops` supplies the per-ISA row functions:
//   float L2(const float* a, const float* b, size_t n);
//   float Dot(const float* a, const float* b, size_t n);
//   void DotNorm(const float* a, const float* b, size_t n, float* ab, float* bb);
// Ops types live in each kernel file's anonymous namespace, so every
// instantiation is local to the file compiled with the matching flags.
template <class Ops>
inline void ScoreRowsWith(Metric metric, const float* query, const float* matrix, size_t dim,
                          const uint32_t* rowIds, size_t count, float* out) {
  auto rowAt = [&](size_t j) { return matrix + (rowIds ? static_cast<size_t>(rowIds[j]) : j) * dim; };
  switch (metric) {
    case Metric::kL2:
      for (size_t j = 0; j < count; ++j) out[j] = Ops::L2(query, rowAt(j), dim);
      break;
    case Metric::kDot:
      for (size_t j = 0; j < count; ++j) out[j] = Ops::Dot(query, rowAt(j), dim);
      break;
    case Metric::kCosine: {
      const float qq = Ops::Dot(query, query, dim);
      for (size_t j = 0; j < count; ++j) {
        float ab = 0, bb = 0;
        Ops::DotNorm(query, rowAt(j), dim, &ab, &bb);
        out[j] = FinishCosine(ab, qq, bb);
      }
      break;
    }
  }
}

}  // namespace
}  // namespace distance
}  // namespace vrep
