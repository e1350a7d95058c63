// copyFloats(target, targetIndex, source): copies source's floats into
// target from element targetIndex on, as target.set(source, targetIndex)
// does, with memmove. A collection's vector storage is shared memory, and
// V8 copies into a SharedArrayBuffer with relaxed atomic stores whose fast
// path needs source and target 8-byte aligned alike; a record's vectors sit
// 4 bytes off that, and a batch of 3 MB then took 2.2-3 ms a copy (byte by
// byte) against 0.5 ms. Nothing else writes the storage meanwhile: the
// event loop owns it (snapshots read copy-on-write originals).
#include <napi.h>

#include <cstdint>
#include <cstring>

#include "addon.h"
#include "errors.h"

namespace vrep {
namespace {

Napi::Value JsCopyFloats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[0].IsTypedArray() || !info[1].IsNumber() || !info[2].IsTypedArray()) {
    ThrowError(env, codes::kInvalidArg,
               "copyFloats(target, targetIndex, source): expected Float32Array, number, Float32Array");
  }
  const auto target = info[0].As<Napi::TypedArray>();
  const auto source = info[2].As<Napi::TypedArray>();
  if (target.TypedArrayType() != napi_float32_array || source.TypedArrayType() != napi_float32_array) {
    ThrowError(env, codes::kInvalidArg, "copyFloats: expected Float32Arrays");
  }
  const double at = info[1].As<Napi::Number>().DoubleValue();
  const size_t targetLength = target.ElementLength(), sourceLength = source.ElementLength();
  // Checked in TS too; here so that no caller can write past the target.
  if (!(at >= 0) || at != static_cast<double>(static_cast<size_t>(at)) ||
      static_cast<size_t>(at) > targetLength || sourceLength > targetLength - static_cast<size_t>(at)) {
    ThrowError(env, codes::kInvalidArg, "copyFloats: the source does not fit the target at targetIndex");
  }
  auto* to = static_cast<float*>(TypedArrayData(env, target));
  const auto* from = static_cast<const float*>(TypedArrayData(env, source));
  if (sourceLength > 0) std::memmove(to + static_cast<size_t>(at), from, sourceLength * sizeof(float));
  return env.Undefined();
}

}  // namespace

void InitCopyFloats(Napi::Env env, Napi::Object exports) {
  exports.Set("copyFloats", Napi::Function::New(env, JsCopyFloats, "copyFloats"));
}

}  // namespace vrep
