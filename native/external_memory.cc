// adjustExternalMemory(deltaBytes): tells V8 that memory it does not see
// (a collection's vector storage, in SharedArrayBuffers) became garbage, or
// was freed. V8 counts its isolate's ArrayBuffers as external memory and
// starts a full GC when that grows past a limit; it does not count shared
// memory. vrep keeps live storage shared, so that a growing collection does
// not start a GC every few MB, and reports storage it dropped, so that a GC
// comes to free it (src/store/vector-storage.ts). Returns V8's new total.
#include <napi.h>

#include <cmath>
#include <cstdint>

#include "addon.h"
#include "errors.h"

namespace vrep {
namespace {

Napi::Value JsAdjustExternalMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) {
    ThrowError(env, codes::kInvalidArg, "adjustExternalMemory(deltaBytes): expected a number");
  }
  const double delta = info[0].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(delta) || delta != std::trunc(delta) || std::fabs(delta) > 9007199254740991.0) {
    ThrowError(env, codes::kInvalidArg, "adjustExternalMemory(deltaBytes): expected a safe integer");
  }
  const int64_t total = Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(delta));
  return Napi::Number::New(env, static_cast<double>(total));
}

}  // namespace

void InitExternalMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("adjustExternalMemory", Napi::Function::New(env, JsAdjustExternalMemory, "adjustExternalMemory"));
}

}  // namespace vrep
