// AVX-512 (F) kernel (x64 only; built with -mavx512f/bw/vl in its own static
// library, run only after distance.cc has seen AVX512F and OS ZMM state).
// Tails use zero-masked loads: masked-off lanes are never read (and do not
// fault), so no load crosses the end of a row.
#if defined(__x86_64__) || defined(_M_X64)

// GCC 12 warns inside its own _mm512_reduce_add_ps (_mm256_undefined_pd is
// "maybe uninitialized" by design); the warning is about the header, not us.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include "distance_kernels.h"

namespace vrep {
namespace distance {
namespace {

constexpr size_t kWidth = 16;

// Lanes [0, remaining) set, for remaining in [1, 15].
inline __mmask16 TailMask(size_t remaining) { return static_cast<__mmask16>((1u << remaining) - 1u); }

struct Avx512Ops {
  static float L2(const float* a, const float* b, size_t n) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 2 * kWidth <= n; i += 2 * kWidth) {
      const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
      const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
      acc0 = _mm512_fmadd_ps(d0, d0, acc0);
      acc1 = _mm512_fmadd_ps(d1, d1, acc1);
    }
    for (; i + kWidth <= n; i += kWidth) {
      const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
      acc0 = _mm512_fmadd_ps(d, d, acc0);
    }
    if (i < n) {
      const __mmask16 m = TailMask(n - i);
      const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
      acc1 = _mm512_fmadd_ps(d, d, acc1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  }

  static float Dot(const float* a, const float* b, size_t n) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 2 * kWidth <= n; i += 2 * kWidth) {
      acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
      acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
    }
    for (; i + kWidth <= n; i += kWidth) {
      acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    }
    if (i < n) {
      const __mmask16 m = TailMask(n - i);
      acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  }

  static void DotNorm(const float* a, const float* b, size_t n, float* ab, float* bb) {
    __m512 abAcc = _mm512_setzero_ps(), bbAcc = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + kWidth <= n; i += kWidth) {
      const __m512 a0 = _mm512_loadu_ps(a + i), b0 = _mm512_loadu_ps(b + i);
      abAcc = _mm512_fmadd_ps(a0, b0, abAcc);
      bbAcc = _mm512_fmadd_ps(b0, b0, bbAcc);
    }
    if (i < n) {
      const __mmask16 m = TailMask(n - i);
      const __m512 a0 = _mm512_maskz_loadu_ps(m, a + i), b0 = _mm512_maskz_loadu_ps(m, b + i);
      abAcc = _mm512_fmadd_ps(a0, b0, abAcc);
      bbAcc = _mm512_fmadd_ps(b0, b0, bbAcc);
    }
    *ab = _mm512_reduce_add_ps(abAcc);
    *bb = _mm512_reduce_add_ps(bbAcc);
  }
};

}  // namespace

void ScoreRowsAvx512(Metric metric, const float* query, const float* matrix, size_t dim,
                     const uint32_t* rowIds, size_t count, float* out) {
  ScoreRowsWith<Avx512Ops>(metric, query, matrix, dim, rowIds, count, out);
}

}  // namespace distance
}  // namespace vrep

#endif  // x64
