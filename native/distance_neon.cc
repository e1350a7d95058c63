// NEON kernel (arm64 only, where NEON is part of the base ISA, so it is always
// available there). Tails of fewer than four floats are done in scalar code,
// so no load crosses the end of a row.
#if defined(__aarch64__)

#include <arm_neon.h>

#include "distance_kernels.h"

namespace vrep {
namespace distance {
namespace {

constexpr size_t kWidth = 4;

struct NeonOps {
  static float L2(const float* a, const float* b, size_t n) {
    float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0), acc2 = vdupq_n_f32(0), acc3 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 4 * kWidth <= n; i += 4 * kWidth) {
      const float32x4_t d0 = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
      const float32x4_t d1 = vsubq_f32(vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
      const float32x4_t d2 = vsubq_f32(vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
      const float32x4_t d3 = vsubq_f32(vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
      acc0 = vfmaq_f32(acc0, d0, d0);
      acc1 = vfmaq_f32(acc1, d1, d1);
      acc2 = vfmaq_f32(acc2, d2, d2);
      acc3 = vfmaq_f32(acc3, d3, d3);
    }
    for (; i + kWidth <= n; i += kWidth) {
      const float32x4_t d = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
      acc0 = vfmaq_f32(acc0, d, d);
    }
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
    for (; i < n; ++i) {
      const float d = a[i] - b[i];
      sum += d * d;
    }
    return sum;
  }

  static float Dot(const float* a, const float* b, size_t n) {
    float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0), acc2 = vdupq_n_f32(0), acc3 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 4 * kWidth <= n; i += 4 * kWidth) {
      acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
      acc1 = vfmaq_f32(acc1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
      acc2 = vfmaq_f32(acc2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
      acc3 = vfmaq_f32(acc3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + kWidth <= n; i += kWidth) acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
    for (; i < n; ++i) sum += a[i] * b[i];
    return sum;
  }

  static void DotNorm(const float* a, const float* b, size_t n, float* ab, float* bb) {
    float32x4_t ab0 = vdupq_n_f32(0), ab1 = vdupq_n_f32(0), bb0 = vdupq_n_f32(0), bb1 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 2 * kWidth <= n; i += 2 * kWidth) {
      const float32x4_t a0 = vld1q_f32(a + i), b0 = vld1q_f32(b + i);
      const float32x4_t a1 = vld1q_f32(a + i + 4), b1 = vld1q_f32(b + i + 4);
      ab0 = vfmaq_f32(ab0, a0, b0);
      bb0 = vfmaq_f32(bb0, b0, b0);
      ab1 = vfmaq_f32(ab1, a1, b1);
      bb1 = vfmaq_f32(bb1, b1, b1);
    }
    for (; i + kWidth <= n; i += kWidth) {
      const float32x4_t a0 = vld1q_f32(a + i), b0 = vld1q_f32(b + i);
      ab0 = vfmaq_f32(ab0, a0, b0);
      bb0 = vfmaq_f32(bb0, b0, b0);
    }
    float abSum = vaddvq_f32(vaddq_f32(ab0, ab1));
    float bbSum = vaddvq_f32(vaddq_f32(bb0, bb1));
    for (; i < n; ++i) {
      abSum += a[i] * b[i];
      bbSum += b[i] * b[i];
    }
    *ab = abSum;
    *bb = bbSum;
  }
};

}  // namespace

void ScoreRowsNeon(Metric metric, const float* query, const float* matrix, size_t dim,
                   const uint32_t* rowIds, size_t count, float* out) {
  ScoreRowsWith<NeonOps>(metric, query, matrix, dim, rowIds, count, out);
}

}  // namespace distance
}  // namespace vrep

#endif  // __aarch64__
