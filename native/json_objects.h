// Checks JSON texts that must each be one JSON object (point payloads), with
// simdjson: valid UTF-8, valid JSON, an object at the top, nested at most a
// given depth. One validation for every way a payload enters a node (JSON
// batch, binary batch, TS API), so a payload that is stored can always be
// parsed and serialized again.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "json_text.h"

namespace vrep {

// The JS class JsonObjectChecker: one parser with its reusable buffers.
class JsonObjectChecker : public Napi::ObjectWrap<JsonObjectChecker> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit JsonObjectChecker(const Napi::CallbackInfo& info);

 private:
  Napi::Value FirstInvalid(const Napi::CallbackInfo& info);
  // "" when text is one JSON object nested at most maxDepth; else why not.
  std::string Problem(const uint8_t* text, size_t length, uint32_t maxDepth);
  PaddedJsonParser json_;
};

void InitJsonObjects(Napi::Env env, Napi::Object exports);

}  // namespace vrep
