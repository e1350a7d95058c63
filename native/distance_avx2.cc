// AVX2 + FMA kernel (x64 only; built with -mavx2 -mfma in its own static
// library, run only after distance.cc has seen AVX2, FMA and OS AVX state).
// Tails use _mm256_maskload_ps: masked-off lanes are never read, so no load
// crosses the end of a row (or of the matrix).
#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>

#include "distance_kernels.h"

namespace vrep {
namespace distance {
namespace {

constexpr size_t kWidth = 8;

// Lanes [0, remaining) set, for remaining in [1, 7].
inline __m256i TailMask(size_t remaining) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(remaining)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

struct Avx2Ops {
  static float L2(const float* a, const float* b, size_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 4 * kWidth <= n; i += 4 * kWidth) {
      const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
      const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
      const __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
      const __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
      acc0 = _mm256_fmadd_ps(d0, d0, acc0);
      acc1 = _mm256_fmadd_ps(d1, d1, acc1);
      acc2 = _mm256_fmadd_ps(d2, d2, acc2);
      acc3 = _mm256_fmadd_ps(d3, d3, acc3);
    }
    for (; i + kWidth <= n; i += kWidth) {
      const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
      acc0 = _mm256_fmadd_ps(d, d, acc0);
    }
    if (i < n) {
      const __m256i mask = TailMask(n - i);
      const __m256 d = _mm256_sub_ps(_mm256_maskload_ps(a + i, mask), _mm256_maskload_ps(b + i, mask));
      acc1 = _mm256_fmadd_ps(d, d, acc1);
    }
    return HorizontalSum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  }

  static float Dot(const float* a, const float* b, size_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 4 * kWidth <= n; i += 4 * kWidth) {
      acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
      acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
      acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
    }
    for (; i + kWidth <= n; i += kWidth) {
      acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    }
    if (i < n) {
      const __m256i mask = TailMask(n - i);
      acc1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, mask), _mm256_maskload_ps(b + i, mask), acc1);
    }
    return HorizontalSum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  }

  static void DotNorm(const float* a, const float* b, size_t n, float* ab, float* bb) {
    __m256 ab0 = _mm256_setzero_ps(), ab1 = _mm256_setzero_ps();
    __m256 bb0 = _mm256_setzero_ps(), bb1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 2 * kWidth <= n; i += 2 * kWidth) {
      const __m256 a0 = _mm256_loadu_ps(a + i), b0 = _mm256_loadu_ps(b + i);
      const __m256 a1 = _mm256_loadu_ps(a + i + 8), b1 = _mm256_loadu_ps(b + i + 8);
      ab0 = _mm256_fmadd_ps(a0, b0, ab0);
      bb0 = _mm256_fmadd_ps(b0, b0, bb0);
      ab1 = _mm256_fmadd_ps(a1, b1, ab1);
      bb1 = _mm256_fmadd_ps(b1, b1, bb1);
    }
    for (; i + kWidth <= n; i += kWidth) {
      const __m256 a0 = _mm256_loadu_ps(a + i), b0 = _mm256_loadu_ps(b + i);
      ab0 = _mm256_fmadd_ps(a0, b0, ab0);
      bb0 = _mm256_fmadd_ps(b0, b0, bb0);
    }
    if (i < n) {
      const __m256i mask = TailMask(n - i);
      const __m256 a0 = _mm256_maskload_ps(a + i, mask), b0 = _mm256_maskload_ps(b + i, mask);
      ab1 = _mm256_fmadd_ps(a0, b0, ab1);
      bb1 = _mm256_fmadd_ps(b0, b0, bb1);
    }
    *ab = HorizontalSum(_mm256_add_ps(ab0, ab1));
    *bb = HorizontalSum(_mm256_add_ps(bb0, bb1));
  }
};

}  // namespace

void ScoreRowsAvx2(Metric metric, const float* query, const float* matrix, size_t dim,
                   const uint32_t* rowIds, size_t count, float* out) {
  ScoreRowsWith<Avx2Ops>(metric, query, matrix, dim, rowIds, count, out);
}

}  // namespace distance
}  // namespace vrep

#endif  // x64
