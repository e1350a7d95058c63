#include "addon.h"

#include "errors.h"

namespace vrep {
namespace {

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsFunction()) {
    throw Napi::TypeError::New(env, "setErrorClass(ctor): ctor must be a function");
  }
  AddonState::Of(env).errorClass = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Deleted by Node when this instance's environment is torn down.
  env.SetInstanceData<AddonState>(new AddonState());
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  InitRing(env, exports);
  InitDistance(env, exports);
  InitBatchCodec(env, exports);
  InitCrc32c(env, exports);
  InitJsonPoints(env, exports);
  InitJsonObjects(env, exports);
  InitPrefault(env, exports);
  InitExternalMemory(env, exports);
  InitIdIndex(env, exports);
  InitCopyFloats(env, exports);
  return exports;
}

}  // namespace vrep

// NODE_API_MODULE pastes the function name into an identifier, so it needs an
// unqualified name.
static Napi::Object InitVrep(Napi::Env env, Napi::Object exports) { return vrep::Init(env, exports); }
NODE_API_MODULE(vrep, InitVrep)
