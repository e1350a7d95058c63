#include "distance.h"

#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "addon.h"
#include "errors.h"

#if defined(__x86_64__) || defined(_M_X64)
#define VREP_DISTANCE_X64 1
#if defined(_MSC_VER)
#include <immintrin.h>
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#endif

namespace vrep {
namespace distance {
namespace {

#if defined(VREP_DISTANCE_X64)
void Cpuid(uint32_t leaf, uint32_t subleaf, uint32_t regs[4]) {
#if defined(_MSC_VER)
  int r[4];
  __cpuidex(r, static_cast<int>(leaf), static_cast<int>(subleaf));
  for (int i = 0; i < 4; ++i) regs[i] = static_cast<uint32_t>(r[i]);
#else
  if (!__get_cpuid_count(leaf, subleaf, &regs[0], &regs[1], &regs[2], &regs[3])) regs[0] = regs[1] = regs[2] = regs[3] = 0;
#endif
}

// XCR0: which register states the OS saves on a context switch. Only called
// when CPUID says OSXSAVE, so the instruction exists and is enabled.
uint64_t ReadXcr0() {
#if defined(_MSC_VER)
  return _xgetbv(0);
#else
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
#endif
}
#endif

CpuFeatures Detect() {
  CpuFeatures f;
#if defined(VREP_DISTANCE_X64)
  uint32_t r[4] = {};
  Cpuid(0, 0, r);
  const uint32_t maxLeaf = r[0];
  if (maxLeaf < 1) return f;
  Cpuid(1, 0, r);
  const bool osxsave = (r[2] >> 27) & 1;
  const bool avx = (r[2] >> 28) & 1;
  const bool fma = (r[2] >> 12) & 1;
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = ReadXcr0();
  const bool osAvx = (xcr0 & 0x6) == 0x6;       // XMM + YMM
  const bool osAvx512 = (xcr0 & 0xE6) == 0xE6;  // + opmask, ZMM_Hi256, Hi16_ZMM
  if (!osAvx || maxLeaf < 7) return f;
  Cpuid(7, 0, r);
  f.fma = fma;
  f.avx2 = (r[1] >> 5) & 1;
  if (osAvx512) {
    f.avx512f = (r[1] >> 16) & 1;
    f.avx512bw = (r[1] >> 30) & 1;
    f.avx512vl = (r[1] >> 31) & 1;
  }
#elif defined(__aarch64__)
  f.neon = true;  // part of the arm64 base ISA
#endif
  return f;
}

}  // namespace

const CpuFeatures& DetectCpu() {
  static const CpuFeatures features = Detect();
  return features;
}

const char* KernelName(KernelId id) {
  switch (id) {
    case KernelId::kScalar:
      return "scalar";
    case KernelId::kAvx2:
      return "avx2";
    case KernelId::kAvx512:
      return "avx512";
    case KernelId::kNeon:
      return "neon";
  }
  return "unknown";
}

bool KernelFromName(const char* name, KernelId* id) {
  for (KernelId k : {KernelId::kScalar, KernelId::kAvx2, KernelId::kAvx512, KernelId::kNeon}) {
    if (std::strcmp(name, KernelName(k)) == 0) {
      *id = k;
      return true;
    }
  }
  return false;
}

bool KernelAvailable(KernelId id) {
  const CpuFeatures& cpu = DetectCpu();
  switch (id) {
    case KernelId::kScalar:
      return true;
#if defined(VREP_DISTANCE_X64)
    case KernelId::kAvx2:
      return cpu.avx2 && cpu.fma;
    case KernelId::kAvx512:
      // The file is built with -mavx512f/bw/vl -mavx2 -mfma, so the compiler
      // may use any of them: require all.
      return cpu.avx512f && cpu.avx512bw && cpu.avx512vl && cpu.avx2 && cpu.fma;
#endif
#if defined(__aarch64__)
    case KernelId::kNeon:
      return cpu.neon;
#endif
    default:
      return false;
  }
}

KernelId BestKernel() {
  for (KernelId k : {KernelId::kAvx512, KernelId::kAvx2, KernelId::kNeon}) {
    if (KernelAvailable(k)) return k;
  }
  return KernelId::kScalar;
}

ScoreRowsFn KernelFunction(KernelId id) {
  switch (id) {
#if defined(VREP_DISTANCE_X64)
    case KernelId::kAvx2:
      return KernelAvailable(id) ? ScoreRowsAvx2 : ScoreRowsScalar;
    case KernelId::kAvx512:
      return KernelAvailable(id) ? ScoreRowsAvx512 : ScoreRowsScalar;
#endif
#if defined(__aarch64__)
    case KernelId::kNeon:
      return ScoreRowsNeon;
#endif
    default:
      return ScoreRowsScalar;
  }
}

namespace {

struct Candidate {
  float key;  // larger is better; NaN mapped to -inf so it ranks last
  uint32_t row;
  float score;
};

// Strict weak order "a ranks before b": higher key, then lower row.
inline bool Better(const Candidate& a, const Candidate& b) {
  return a.key > b.key || (a.key == b.key && a.row < b.row);
}

// The best `keep` candidates seen so far, in a heap whose top is the worst
// kept one (Better used as "less than").
class BestOf {
 public:
  BestOf(size_t keep, bool smallerIsBetter) : keep_(keep), smallerIsBetter_(smallerIsBetter) { heap_.reserve(keep); }

  void Offer(float score, uint32_t row) {
    const float key = std::isnan(score) ? -std::numeric_limits<float>::infinity() : (smallerIsBetter_ ? -score : score);
    const Candidate c{key, row, score};
    if (heap_.size() < keep_) {
      heap_.push_back(c);
      std::push_heap(heap_.begin(), heap_.end(), Better);
    } else if (Better(c, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), Better);
      heap_.back() = c;
      std::push_heap(heap_.begin(), heap_.end(), Better);
    }
  }

  // Writes the kept candidates best first; returns how many.
  size_t Finish(uint32_t* outIndices, float* outScores) {
    std::sort_heap(heap_.begin(), heap_.end(), Better);
    for (size_t i = 0; i < heap_.size(); ++i) {
      outIndices[i] = heap_[i].row;
      outScores[i] = heap_[i].score;
    }
    return heap_.size();
  }

 private:
  size_t keep_;
  bool smallerIsBetter_;
  std::vector<Candidate> heap_;
};

// Rows per block: the block (about 128 KiB, in L2) is scored against every
// query of a batch before the next block is read, so a batch of q queries
// reads the matrix from memory once instead of q times.
size_t BlockRows(size_t dim) {
  constexpr size_t kBlockBytes = 128 * 1024;
  constexpr size_t kMinRows = 16, kMaxRows = 512;
  return std::max(kMinRows, std::min(kMaxRows, kBlockBytes / (dim * sizeof(float))));
}

// For every block [start, start + n) of candidates (outer) and query q
// (inner): scores into visit.Target(q, start), then calls visit.Scored.
template <typename Visit>
void ForEachBlock(ScoreRowsFn score, Metric metric, const float* queries, size_t queryCount, const float* matrix,
                  size_t dim, const uint32_t* rowIds, size_t count, Visit& visit) {
  const size_t blockRows = BlockRows(dim);
  for (size_t start = 0; start < count; start += blockRows) {
    const size_t n = std::min(blockRows, count - start);
    for (size_t q = 0; q < queryCount; ++q) {
      float* scores = visit.Target(q, start);
      if (rowIds) {
        score(metric, queries + q * dim, matrix, dim, rowIds + start, n, scores);
      } else {
        score(metric, queries + q * dim, matrix + start * dim, dim, nullptr, n, scores);
      }
      visit.Scored(q, start, n, scores);
    }
  }
}

}  // namespace

void ScoreBatch(ScoreRowsFn score, Metric metric, const float* queries, size_t queryCount, const float* matrix,
                size_t dim, const uint32_t* rowIds, size_t count, float* out) {
  struct Visit {
    float* out;
    size_t count;
    float* Target(size_t q, size_t start) const { return out + q * count + start; }
    void Scored(size_t, size_t, size_t, const float*) const {}
  } visit{out, count};
  ForEachBlock(score, metric, queries, queryCount, matrix, dim, rowIds, count, visit);
}

size_t TopKBatch(ScoreRowsFn score, Metric metric, const float* queries, size_t queryCount, const float* matrix,
                 size_t dim, const uint32_t* rowIds, size_t count, size_t k, uint32_t* outIndices,
                 float* outScores) {
  const size_t keep = std::min(k, count);
  if (keep == 0) return 0;
  std::vector<BestOf> best(queryCount, BestOf(keep, metric == Metric::kL2));
  struct Visit {
    std::vector<BestOf>& best;
    const uint32_t* rowIds;
    std::vector<float> scratch;
    float* Target(size_t, size_t) { return scratch.data(); }
    void Scored(size_t q, size_t start, size_t n, const float* scores) const {
      for (size_t j = 0; j < n; ++j) {
        best[q].Offer(scores[j], rowIds ? rowIds[start + j] : static_cast<uint32_t>(start + j));
      }
    }
  } visit{best, rowIds, std::vector<float>(BlockRows(dim))};
  ForEachBlock(score, metric, queries, queryCount, matrix, dim, rowIds, count, visit);
  for (size_t q = 0; q < queryCount; ++q) best[q].Finish(outIndices + q * k, outScores + q * k);
  return keep;
}

}  // namespace distance

namespace {

using distance::KernelId;
using distance::Metric;

// Limits checked on every call (documented in docs/native/distance.md).
constexpr size_t kMaxDim = 65536;
constexpr size_t kMaxRows = 0xFFFFFFFFu;  // row indices are returned as uint32

// Per addon instance: the kernel in use. Lives as the data pointer of this
// module's functions and is freed by an env cleanup hook, so each worker
// thread that loads the addon has its own and none is a process global.
struct DistanceState {
  KernelId loadDefault;
  KernelId selected;
  bool forcedScalar;
};

bool EnvForcesScalar() {
  const char* v = std::getenv("VREP_FORCE_SCALAR");
  return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0 && std::strcmp(v, "false") != 0;
}

DistanceState& StateOf(const Napi::CallbackInfo& info) { return *static_cast<DistanceState*>(info.Data()); }

[[noreturn]] void ThrowInvalid(Napi::Env env, const char* fn, const char* arg, const std::string& what) {
  ThrowError(env, codes::kInvalidArg, std::string(fn) + "(" + arg + "): " + what);
}

Napi::Value ArgAt(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() ? info[i] : info.Env().Undefined();
}

// An integer-valued number in [min, max]; rejects NaN, fractions, strings.
size_t IntArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* arg, double min, double max) {
  const Napi::Value v = ArgAt(info, i);
  if (!v.IsNumber()) ThrowInvalid(info.Env(), fn, arg, "expected an integer");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max) || std::floor(d) != d) {
    ThrowInvalid(info.Env(), fn, arg, "expected an integer in [" + std::to_string(static_cast<uint64_t>(min)) + ", " +
                                          std::to_string(static_cast<uint64_t>(max)) + "]");
  }
  return static_cast<size_t>(d);
}

template <typename T>
struct ArrayArg {
  T* data = nullptr;
  size_t length = 0;
  size_t Bytes() const { return length * sizeof(T); }
};

template <typename T>
ArrayArg<T> TypedArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* arg,
                     napi_typedarray_type type, const char* typeName) {
  const Napi::Value v = ArgAt(info, i);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) {
    ThrowInvalid(info.Env(), fn, arg, std::string("expected a ") + typeName);
  }
  Napi::TypedArrayOf<T> a = v.As<Napi::TypedArrayOf<T>>();
  ArrayArg<T> out;
  out.length = a.ElementLength();
  // A detached buffer has length 0 and may have a null data pointer.
  out.data = out.length ? a.Data() : nullptr;
  return out;
}

ArrayArg<float> Float32Arg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* arg) {
  return TypedArg<float>(info, i, fn, arg, napi_float32_array, "Float32Array");
}

ArrayArg<uint32_t> Uint32Arg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* arg) {
  return TypedArg<uint32_t>(info, i, fn, arg, napi_uint32_array, "Uint32Array");
}

// The arguments common to distanceScores and distanceTopK, checked.
struct SearchArgs {
  Metric metric;
  ArrayArg<float> queries;
  ArrayArg<float> matrix;
  size_t dim;
  size_t queryCount;
  size_t rowCount;
  ArrayArg<uint32_t> rowIds;  // empty data when absent
  bool hasRowIds;
  size_t candidates;  // rows scored per query
};

SearchArgs ParseSearchArgs(const Napi::CallbackInfo& info, const char* fn, size_t rowIdsArg) {
  Napi::Env env = info.Env();
  SearchArgs a;
  a.metric = static_cast<Metric>(IntArg(info, 0, fn, "metric", 0, 2));
  a.queries = Float32Arg(info, 1, fn, "queries");
  a.matrix = Float32Arg(info, 2, fn, "matrix");
  a.dim = IntArg(info, 3, fn, "dim", 1, kMaxDim);
  if (a.queries.length == 0 || a.queries.length % a.dim != 0) {
    ThrowInvalid(env, fn, "queries", "length " + std::to_string(a.queries.length) +
                                         " is not a positive multiple of dim " + std::to_string(a.dim));
  }
  if (a.matrix.length % a.dim != 0) {
    ThrowInvalid(env, fn, "matrix",
                 "length " + std::to_string(a.matrix.length) + " is not a multiple of dim " + std::to_string(a.dim));
  }
  a.queryCount = a.queries.length / a.dim;
  a.rowCount = a.matrix.length / a.dim;
  if (a.rowCount > kMaxRows) ThrowInvalid(env, fn, "matrix", "more than 2^32-1 rows");
  const Napi::Value ids = ArgAt(info, rowIdsArg);
  a.hasRowIds = !ids.IsUndefined() && !ids.IsNull();
  if (a.hasRowIds) {
    a.rowIds = Uint32Arg(info, rowIdsArg, fn, "rowIds");
    for (size_t j = 0; j < a.rowIds.length; ++j) {
      if (a.rowIds.data[j] >= a.rowCount) {
        ThrowInvalid(env, fn, "rowIds", "rowIds[" + std::to_string(j) + "] = " + std::to_string(a.rowIds.data[j]) +
                                            " is not a row of the matrix (" + std::to_string(a.rowCount) + " rows)");
      }
    }
    a.candidates = a.rowIds.length;
  } else {
    a.candidates = a.rowCount;
  }
  return a;
}

// Outputs must not overlap inputs: the kernels read rows while writing scores.
void CheckNoOverlap(Napi::Env env, const char* fn, const char* arg, const void* out, size_t outBytes,
                    const SearchArgs& a) {
  if (Overlaps(out, outBytes, a.queries.data, a.queries.Bytes()) ||
      Overlaps(out, outBytes, a.matrix.data, a.matrix.Bytes()) ||
      Overlaps(out, outBytes, a.rowIds.data, a.rowIds.Bytes())) {
    ThrowInvalid(env, fn, arg, "must not share memory with queries, matrix or rowIds");
  }
}

// distanceScores(metric, queries, matrix, dim, out, rowIds?) -> candidates
// per query. out[q * candidates + j] = score(query q, row j or rowIds[j]).
Napi::Value DistanceScores(const Napi::CallbackInfo& info) {
  static constexpr const char* fn = "distanceScores";
  Napi::Env env = info.Env();
  const SearchArgs a = ParseSearchArgs(info, fn, 5);
  const ArrayArg<float> out = Float32Arg(info, 4, fn, "out");
  if (a.candidates != 0 && a.queryCount > out.length / a.candidates) {
    ThrowError(env, codes::kBufferTooSmall,
               std::string(fn) + "(out): length " + std::to_string(out.length) + " < " +
                   std::to_string(a.queryCount) + " queries x " + std::to_string(a.candidates) + " rows");
  }
  CheckNoOverlap(env, fn, "out", out.data, out.Bytes(), a);
  distance::ScoreBatch(distance::KernelFunction(StateOf(info).selected), a.metric, a.queries.data, a.queryCount,
                       a.matrix.data, a.dim, a.hasRowIds ? a.rowIds.data : nullptr, a.candidates, out.data);
  return Napi::Number::New(env, static_cast<double>(a.candidates));
}

// distanceTopK(metric, queries, matrix, dim, k, outIndices, outScores, rowIds?)
// -> found per query (min(k, candidates)). Query q's results are at
// [q * k, q * k + found), best first; slots [found, k) get index 2^32-1 and
// score NaN.
Napi::Value DistanceTopK(const Napi::CallbackInfo& info) {
  static constexpr const char* fn = "distanceTopK";
  Napi::Env env = info.Env();
  const SearchArgs a = ParseSearchArgs(info, fn, 7);
  const size_t k = IntArg(info, 4, fn, "k", 1, kMaxRows);
  const ArrayArg<uint32_t> outIndices = Uint32Arg(info, 5, fn, "outIndices");
  const ArrayArg<float> outScores = Float32Arg(info, 6, fn, "outScores");
  if (a.queryCount > outIndices.length / k) {
    ThrowError(env, codes::kBufferTooSmall, std::string(fn) + "(outIndices): length " +
                                                std::to_string(outIndices.length) + " < " +
                                                std::to_string(a.queryCount) + " queries x k " + std::to_string(k));
  }
  if (a.queryCount > outScores.length / k) {
    ThrowError(env, codes::kBufferTooSmall, std::string(fn) + "(outScores): length " +
                                                std::to_string(outScores.length) + " < " +
                                                std::to_string(a.queryCount) + " queries x k " + std::to_string(k));
  }
  CheckNoOverlap(env, fn, "outIndices", outIndices.data, outIndices.Bytes(), a);
  CheckNoOverlap(env, fn, "outScores", outScores.data, outScores.Bytes(), a);
  if (Overlaps(outIndices.data, outIndices.Bytes(), outScores.data, outScores.Bytes())) {
    ThrowInvalid(env, fn, "outScores", "must not share memory with outIndices");
  }
  const size_t found = distance::TopKBatch(distance::KernelFunction(StateOf(info).selected), a.metric,
                                           a.queries.data, a.queryCount, a.matrix.data, a.dim,
                                           a.hasRowIds ? a.rowIds.data : nullptr, a.candidates, k,
                                           outIndices.data, outScores.data);
  for (size_t q = 0; q < a.queryCount; ++q) {
    std::fill(outIndices.data + q * k + found, outIndices.data + (q + 1) * k, 0xFFFFFFFFu);
    std::fill(outScores.data + q * k + found, outScores.data + (q + 1) * k, std::numeric_limits<float>::quiet_NaN());
  }
  return Napi::Number::New(env, static_cast<double>(found));
}

// distanceCapabilities() -> { selected, available, cpu, forcedScalar }
Napi::Value DistanceCapabilities(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const DistanceState& state = StateOf(info);
  const distance::CpuFeatures& cpu = distance::DetectCpu();
  Napi::Object result = Napi::Object::New(env);
  result.Set("selected", distance::KernelName(state.selected));
  Napi::Array available = Napi::Array::New(env);
  uint32_t n = 0;
  for (KernelId k : {KernelId::kAvx512, KernelId::kAvx2, KernelId::kNeon, KernelId::kScalar}) {
    if (distance::KernelAvailable(k)) available.Set(n++, distance::KernelName(k));
  }
  result.Set("available", available);
  Napi::Object cpuObj = Napi::Object::New(env);
  cpuObj.Set("avx2", cpu.avx2);
  cpuObj.Set("fma", cpu.fma);
  cpuObj.Set("avx512f", cpu.avx512f);
  cpuObj.Set("avx512bw", cpu.avx512bw);
  cpuObj.Set("avx512vl", cpu.avx512vl);
  cpuObj.Set("neon", cpu.neon);
  result.Set("cpu", cpuObj);
  result.Set("forcedScalar", state.forcedScalar);
  return result;
}

// setDistanceKernel(name) -> name now selected. 'auto' restores the load-time
// choice (scalar when VREP_FORCE_SCALAR was set).
Napi::Value SetDistanceKernel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    ThrowInvalid(env, "setDistanceKernel", "name", "expected a string");
  }
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  DistanceState& state = StateOf(info);
  KernelId id;
  if (name == "auto") {
    id = state.loadDefault;
  } else if (!distance::KernelFromName(name.c_str(), &id)) {
    ThrowInvalid(env, "setDistanceKernel", "name",
                 "unknown kernel '" + name + "' (expected auto, scalar, avx2, avx512 or neon)");
  } else if (!distance::KernelAvailable(id)) {
    ThrowError(env, codes::kUnsupported,
               "setDistanceKernel(name): kernel '" + name + "' is not available on this CPU or build");
  }
  state.selected = id;
  return Napi::String::New(env, distance::KernelName(id));
}

}  // namespace

void InitDistance(Napi::Env env, Napi::Object exports) {
  auto* state = new DistanceState();
  state->forcedScalar = EnvForcesScalar();
  state->loadDefault = state->forcedScalar ? KernelId::kScalar : distance::BestKernel();
  state->selected = state->loadDefault;
  env.AddCleanupHook([state]() { delete state; });
  exports.Set("distanceScores", Napi::Function::New(env, DistanceScores, "distanceScores", state));
  exports.Set("distanceTopK", Napi::Function::New(env, DistanceTopK, "distanceTopK", state));
  exports.Set("distanceCapabilities", Napi::Function::New(env, DistanceCapabilities, "distanceCapabilities", state));
  exports.Set("setDistanceKernel", Napi::Function::New(env, SetDistanceKernel, "setDistanceKernel", state));
}

}  // namespace vrep
