// Per-instance addon state. Node loads the addon once per thread (main thread
// and every worker); each load gets its own AddonState, so nothing here is a
// process global and a worker exiting cleans up only its own references.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace vrep {

class AddonState {
 public:
  // Constructors of native classes, by class name, so methods that must
  // create instances (or instanceof checks) find them for this instance.
  std::unordered_map<std::string, Napi::FunctionReference> constructors;
  // The project's error class (VrepError), registered by src/native/addon.ts
  // right after load; native errors are built with it when present.
  Napi::FunctionReference errorClass;

  static AddonState& Of(Napi::Env env) { return *env.GetInstanceData<AddonState>(); }
};

// Each native module registers its functions/classes on `exports`.
void InitRing(Napi::Env env, Napi::Object exports);
void InitDistance(Napi::Env env, Napi::Object exports);
void InitBatchCodec(Napi::Env env, Napi::Object exports);
void InitCrc32c(Napi::Env env, Napi::Object exports);
void InitJsonPoints(Napi::Env env, Napi::Object exports);
void InitJsonObjects(Napi::Env env, Napi::Object exports);
void InitPrefault(Napi::Env env, Napi::Object exports);
void InitExternalMemory(Napi::Env env, Napi::Object exports);
void InitIdIndex(Napi::Env env, Napi::Object exports);
void InitCopyFloats(Napi::Env env, Napi::Object exports);

// A typed array's first byte. Not through view.ArrayBuffer(): that refuses
// a SharedArrayBuffer, which a collection's vector chunks are.
inline void* TypedArrayData(Napi::Env env, Napi::TypedArray view) {
  void* data = nullptr;
  NAPI_THROW_IF_FAILED(env, napi_get_typedarray_info(env, view, nullptr, nullptr, &data, nullptr, nullptr),
                       nullptr);
  return data;
}

// Whether two byte ranges share a byte (an empty range shares none): the
// native calls that write one argument while reading another refuse overlaps.
inline bool Overlaps(const void* a, size_t aBytes, const void* b, size_t bBytes) {
  if (aBytes == 0 || bBytes == 0) return false;
  const auto pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  return pa < pb + bBytes && pb < pa + aBytes;
}

}  // namespace vrep
