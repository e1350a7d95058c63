#include "shuffle.h"

#include <cstring>
#include <string>

#include "addon.h"
#include "errors.h"

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define VREP_SHUFFLE_SSE2 1
#endif

namespace vrep {
namespace {

void ShuffleScalar(const uint8_t* src, uint8_t* dst, size_t count, size_t elementBytes, size_t firstElement) {
  for (size_t plane = 0; plane < elementBytes; plane++) {
    uint8_t* out = dst + plane * count;
    for (size_t i = firstElement; i < count; i++) out[i] = src[i * elementBytes + plane];
  }
}

void UnshuffleScalar(const uint8_t* src, uint8_t* dst, size_t count, size_t elementBytes, size_t firstElement) {
  for (size_t plane = 0; plane < elementBytes; plane++) {
    const uint8_t* in = src + plane * count;
    for (size_t i = firstElement; i < count; i++) dst[i * elementBytes + plane] = in[i];
  }
}

#if VREP_SHUFFLE_SSE2
// One interleave round over four registers seen as a 64-byte block whose
// byte index has 6 bits (2 register bits, 4 byte bits):
//   out[2k + j] = unpack{lo if j = 0, hi if j = 1}_epi8(in[k], in[k + 2])
// moves the byte at index s to rotl6(s, 1). A block of 16 float32 elements
// has index (element << 2 | byte); the plane layout has index
// (byte << 4 | element), i.e. rotl6 by 4: four rounds shuffle, and since
// rotl6 by 6 is the identity, two rounds unshuffle.
inline void InterleaveRound(__m128i& r0, __m128i& r1, __m128i& r2, __m128i& r3) {
  __m128i o0 = _mm_unpacklo_epi8(r0, r2);
  __m128i o1 = _mm_unpackhi_epi8(r0, r2);
  __m128i o2 = _mm_unpacklo_epi8(r1, r3);
  __m128i o3 = _mm_unpackhi_epi8(r1, r3);
  r0 = o0;
  r1 = o1;
  r2 = o2;
  r3 = o3;
}

// Returns how many elements it handled (a multiple of 16).
size_t Shuffle4Sse2(const uint8_t* src, uint8_t* dst, size_t count) {
  size_t i = 0;
  for (; i + 16 <= count; i += 16) {
    const uint8_t* in = src + i * 4;
    __m128i r0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in));
    __m128i r1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 16));
    __m128i r2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 32));
    __m128i r3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 48));
    InterleaveRound(r0, r1, r2, r3);
    InterleaveRound(r0, r1, r2, r3);
    InterleaveRound(r0, r1, r2, r3);
    InterleaveRound(r0, r1, r2, r3);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), r0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + count + i), r1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * count + i), r2);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 3 * count + i), r3);
  }
  return i;
}

size_t Unshuffle4Sse2(const uint8_t* src, uint8_t* dst, size_t count) {
  size_t i = 0;
  for (; i + 16 <= count; i += 16) {
    __m128i r0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    __m128i r1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + count + i));
    __m128i r2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * count + i));
    __m128i r3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 3 * count + i));
    InterleaveRound(r0, r1, r2, r3);
    InterleaveRound(r0, r1, r2, r3);
    uint8_t* out = dst + i * 4;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), r0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16), r1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 32), r2);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 48), r3);
  }
  return i;
}
#endif

}  // namespace

namespace {

using ScalarKernel = void (*)(const uint8_t*, uint8_t*, size_t, size_t, size_t);
using Simd4Kernel = size_t (*)(const uint8_t*, uint8_t*, size_t);

// Shared frame of both directions: SIMD for 4-byte elements where built,
// scalar for the rest of the elements, the ragged tail copied.
void Transpose(const uint8_t* src, uint8_t* dst, size_t lengthBytes, size_t elementBytes, ScalarKernel scalar,
               Simd4Kernel simd4) {
  if (lengthBytes == 0) return;
  if (elementBytes <= 1) {
    std::memcpy(dst, src, lengthBytes);
    return;
  }
  const size_t count = lengthBytes / elementBytes;
  const size_t done = (elementBytes == 4 && simd4) ? simd4(src, dst, count) : 0;
  scalar(src, dst, count, elementBytes, done);
  const size_t tail = lengthBytes - count * elementBytes;
  if (tail) std::memcpy(dst + count * elementBytes, src + count * elementBytes, tail);
}

#if VREP_SHUFFLE_SSE2
constexpr Simd4Kernel kShuffle4 = Shuffle4Sse2;
constexpr Simd4Kernel kUnshuffle4 = Unshuffle4Sse2;
#else
constexpr Simd4Kernel kShuffle4 = nullptr;
constexpr Simd4Kernel kUnshuffle4 = nullptr;
#endif

}  // namespace

void ShuffleBytes(const uint8_t* src, uint8_t* dst, size_t lengthBytes, size_t elementBytes) {
  Transpose(src, dst, lengthBytes, elementBytes, ShuffleScalar, kShuffle4);
}

void UnshuffleBytes(const uint8_t* src, uint8_t* dst, size_t lengthBytes, size_t elementBytes) {
  Transpose(src, dst, lengthBytes, elementBytes, UnshuffleScalar, kUnshuffle4);
}

namespace {

template <bool kShuffle>
Napi::Value JsShuffle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string fn = kShuffle ? "shuffleBytes" : "unshuffleBytes";
  if (info.Length() != 3) ThrowError(env, codes::kInvalidArg, fn + "(src, dst, elementBytes): expected 3 arguments");
  for (size_t k = 0; k < 2; k++) {
    if (!info[k].IsTypedArray() || info[k].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      ThrowError(env, codes::kInvalidArg, fn + (k == 0 ? "(src)" : "(dst)") + ": expected a Uint8Array");
    }
  }
  auto src = info[0].As<Napi::Uint8Array>();
  auto dst = info[1].As<Napi::Uint8Array>();
  if (!info[2].IsNumber()) ThrowError(env, codes::kInvalidArg, fn + "(elementBytes): expected a number");
  double eb = info[2].As<Napi::Number>().DoubleValue();
  if (!(eb >= 1 && eb <= static_cast<double>(kMaxShuffleElementBytes)) || eb != static_cast<double>(static_cast<size_t>(eb))) {
    ThrowError(env, codes::kInvalidArg, fn + "(elementBytes): expected an integer in [1, 255]");
  }
  size_t n = src.ByteLength();
  if (dst.ByteLength() != n) ThrowError(env, codes::kInvalidArg, fn + "(dst): must have the same length as src");
  if (n == 0) return env.Undefined();
  const uint8_t* s = src.Data();
  uint8_t* d = dst.Data();
  // The transpose reads and writes far apart, so any overlap corrupts it.
  if (Overlaps(s, n, d, n)) ThrowError(env, codes::kInvalidArg, fn + "(src, dst): the two must not overlap");
  if (kShuffle) {
    ShuffleBytes(s, d, n, static_cast<size_t>(eb));
  } else {
    UnshuffleBytes(s, d, n, static_cast<size_t>(eb));
  }
  return env.Undefined();
}

}  // namespace

void InitShuffle(Napi::Env env, Napi::Object exports) {
  exports.Set("shuffleBytes", Napi::Function::New(env, JsShuffle<true>, "shuffleBytes"));
  exports.Set("unshuffleBytes", Napi::Function::New(env, JsShuffle<false>, "unshuffleBytes"));
}

}  // namespace vrep
