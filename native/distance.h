// SIMD vector distance: CPU feature detection, kernel dispatch, one-to-many
// scoring and top-k over float32 rows. The N-API surface is InitDistance
// (declared in addon.h); the functions here are for native callers too.
#pragma once

#include <cstddef>
#include <cstdint>

#include "distance_kernels.h"

namespace vrep {
namespace distance {

// Every kernel this build knows about, best first within an architecture.
enum class KernelId : uint8_t { kScalar, kAvx2, kAvx512, kNeon };

// What the CPU offers and the OS has enabled (an ISA whose registers the OS
// does not save, e.g. AVX-512 without ZMM state in XCR0, counts as absent).
struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool neon = false;
};

// Detected once per process (a static const: the CPU does not change).
const CpuFeatures& DetectCpu();

const char* KernelName(KernelId id);
// False for an unknown name; `*id` is set only on success.
bool KernelFromName(const char* name, KernelId* id);
// Compiled into this build for this architecture and supported by the CPU.
bool KernelAvailable(KernelId id);
// The fastest available kernel.
KernelId BestKernel();
ScoreRowsFn KernelFunction(KernelId id);

// Scores `queryCount` queries (back to back in `queries`) against `count`
// candidate rows: out[q * count + j]. rowIds as in ScoreRowsFn. The matrix
// is walked in cache-sized blocks, each scored against every query.
void ScoreBatch(ScoreRowsFn score, Metric metric, const float* queries, size_t queryCount, const float* matrix,
                size_t dim, const uint32_t* rowIds, size_t count, float* out);

// Best `k` of `count` candidate rows for each query, best first; ties go to
// the lower row index; NaN scores rank after every number. Query q's results
// go to outIndices/outScores[q * k, q * k + found); returns found =
// min(k, count) (slots past it are left untouched).
size_t TopKBatch(ScoreRowsFn score, Metric metric, const float* queries, size_t queryCount, const float* matrix,
                 size_t dim, const uint32_t* rowIds, size_t count, size_t k, uint32_t* outIndices,
                 float* outScores);

}  // namespace distance
}  // namespace vrep
