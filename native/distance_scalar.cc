// Portable kernel: plain C++, the fallback on every CPU and the reference the
// SIMD kernels are tested against. Eight independent accumulators keep the
// float dependency chain short (and let the compiler use baseline SIMD such
// as SSE2 when it can prove it safe); no ISA-specific code here.
#include "distance_kernels.h"

namespace vrep {
namespace distance {
namespace {

constexpr size_t kLanes = 8;

inline float SumLanes(const float* acc) {
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

struct ScalarOps {
  static float L2(const float* a, const float* b, size_t n) {
    float acc[kLanes] = {};
    size_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
      for (size_t k = 0; k < kLanes; ++k) {
        const float d = a[i + k] - b[i + k];
        acc[k] += d * d;
      }
    }
    for (size_t k = 0; i < n; ++i, ++k) {
      const float d = a[i] - b[i];
      acc[k] += d * d;
    }
    return SumLanes(acc);
  }

  static float Dot(const float* a, const float* b, size_t n) {
    float acc[kLanes] = {};
    size_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
      for (size_t k = 0; k < kLanes; ++k) acc[k] += a[i + k] * b[i + k];
    }
    for (size_t k = 0; i < n; ++i, ++k) acc[k] += a[i] * b[i];
    return SumLanes(acc);
  }

  // Two passes (the row is in L1 for the second): measured ~3x faster here
  // than one loop with two accumulator arrays, which GCC did not vectorize.
  static void DotNorm(const float* a, const float* b, size_t n, float* ab, float* bb) {
    *ab = Dot(a, b, n);
    *bb = Dot(b, b, n);
  }
};

}  // namespace

void ScoreRowsScalar(Metric metric, const float* query, const float* matrix, size_t dim,
                     const uint32_t* rowIds, size_t count, float* out) {
  ScoreRowsWith<ScalarOps>(metric, query, matrix, dim, rowIds, count, out);
}

}  // namespace distance
}  // namespace vrep
