#include "errors.h"

#include "addon.h"

namespace vrep {

Napi::Error MakeError(Napi::Env env, const char* code, const std::string& message) {
  AddonState& state = AddonState::Of(env);
  Napi::Object err;
  if (!state.errorClass.IsEmpty()) {
    err = state.errorClass.Value().New({Napi::String::New(env, code), Napi::String::New(env, message)});
  } else {
    err = Napi::Error::New(env, message).Value();
    err.Set("code", Napi::String::New(env, code));
  }
  return Napi::Error(env, err);
}

void ThrowError(Napi::Env env, const char* code, const std::string& message) {
  throw MakeError(env, code, message);
}

}  // namespace vrep
