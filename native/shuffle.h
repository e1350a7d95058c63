// Byte shuffle (byte-plane transpose), as Blosc does before compression: the
// k-th bytes of all elements are stored together, so the slowly varying sign
// and exponent bytes of float32 values form long runs zstd can exploit.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace vrep {

// Largest element size the JS surface accepts (any size works natively).
inline constexpr size_t kMaxShuffleElementBytes = 255;

// With count = lengthBytes / elementBytes:
//   dst[plane * count + i] = src[i * elementBytes + plane]
// for every plane < elementBytes and i < count; the lengthBytes % elementBytes
// trailing bytes are copied unchanged. src and dst must not overlap.
void ShuffleBytes(const uint8_t* src, uint8_t* dst, size_t lengthBytes, size_t elementBytes);

// The inverse of ShuffleBytes.
void UnshuffleBytes(const uint8_t* src, uint8_t* dst, size_t lengthBytes, size_t elementBytes);

// Registers shuffleBytes / unshuffleBytes (for tests and benchmarks).
void InitShuffle(Napi::Env env, Napi::Object exports);

}  // namespace vrep
