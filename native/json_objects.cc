#include "json_objects.h"

#include <cmath>
#include <new>

#include "addon.h"
#include "errors.h"

namespace vrep {
namespace {

const char* TypeName(simdjson::dom::element_type type) {
  switch (type) {
    case simdjson::dom::element_type::ARRAY: return "array";
    case simdjson::dom::element_type::OBJECT: return "object";
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE: return "number";
    case simdjson::dom::element_type::STRING: return "string";
    case simdjson::dom::element_type::BOOL: return "boolean";
    case simdjson::dom::element_type::NULL_VALUE: return "null";
  }
  return "unknown";
}

}  // namespace

void JsonObjectChecker::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor =
      DefineClass(env, "JsonObjectChecker", {InstanceMethod<&JsonObjectChecker::FirstInvalid>("firstInvalid")});
  AddonState::Of(env).constructors["JsonObjectChecker"] = Napi::Persistent(ctor);
  exports.Set("JsonObjectChecker", ctor);
  exports.Set("jsonMaxDepth", Napi::Number::New(env, kJsonMaxDepth));
}

JsonObjectChecker::JsonObjectChecker(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsonObjectChecker>(info) {}

std::string JsonObjectChecker::Problem(const uint8_t* text, size_t length, uint32_t maxDepth) {
  if (json_.SetMaxDepth(maxDepth) != simdjson::SUCCESS) throw std::bad_alloc();
  simdjson::dom::element root;
  simdjson::error_code error = json_.Parse(text, length, &root);
  switch (error) {
    case simdjson::SUCCESS:
      if (root.type() == simdjson::dom::element_type::OBJECT) return "";
      return std::string("expected a JSON object, got ") + TypeName(root.type());
    case simdjson::UTF8_ERROR: return "not valid UTF-8";
    case simdjson::DEPTH_ERROR: return "nested deeper than " + std::to_string(maxDepth) + " levels";
    default: return std::string("not valid JSON (") + simdjson::error_message(error) + ")";
  }
}

// firstInvalid(bytes, offsets, maxDepth): text i is bytes[offsets[i],
// offsets[i+1]); an empty text is skipped (no payload). Returns null when
// every other text is a JSON object nested at most maxDepth levels (the
// object itself is level 1), else {index, reason} for the first that is not.
Napi::Value JsonObjectChecker::FirstInvalid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "JsonObjectChecker.firstInvalid";
  if (info.Length() != 3) {
    ThrowError(env, codes::kInvalidArg, std::string(fn) + ": expected 3 arguments, got " + std::to_string(info.Length()));
  }
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowError(env, codes::kInvalidArg, std::string(fn) + "(bytes): expected a Uint8Array");
  }
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    ThrowError(env, codes::kInvalidArg, std::string(fn) + "(offsets): expected a Uint32Array");
  }
  if (!info[2].IsNumber()) ThrowError(env, codes::kInvalidArg, std::string(fn) + "(maxDepth): expected an integer");
  double depth = info[2].As<Napi::Number>().DoubleValue();
  if (!(depth >= 1 && depth <= kJsonMaxDepth) || std::floor(depth) != depth) {
    ThrowError(env, codes::kInvalidArg,
               std::string(fn) + "(maxDepth): expected an integer in [1, " + std::to_string(kJsonMaxDepth) + "]");
  }
  Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
  Napi::Uint32Array offsets = info[1].As<Napi::Uint32Array>();
  size_t count = offsets.ElementLength();
  if (count == 0) ThrowError(env, codes::kInvalidArg, std::string(fn) + "(offsets): expected at least 1 offset");
  const uint32_t* off = offsets.Data();
  for (size_t i = 0; i + 1 < count; i++) {
    if (off[i] > off[i + 1]) {
      ThrowError(env, codes::kInvalidArg, std::string(fn) + "(offsets): offsets[" + std::to_string(i + 1) +
                                              "] is smaller than offsets[" + std::to_string(i) + "]");
    }
  }
  if (off[count - 1] > bytes.ByteLength()) {
    ThrowError(env, codes::kInvalidArg, std::string(fn) + "(offsets): the last offset is past the end of bytes");
  }

  // Runs on every exit, thrown or not.
  struct Release {
    PaddedJsonParser* json;
    ~Release() { json->ReleaseIfLarge(); }
  } release{&json_};
  try {
    for (size_t i = 0; i + 1 < count; i++) {
      size_t length = off[i + 1] - off[i];
      if (length == 0) continue;
      std::string problem = Problem(bytes.Data() + off[i], length, static_cast<uint32_t>(depth));
      if (problem.empty()) continue;
      Napi::Object result = Napi::Object::New(env);
      result.Set("index", Napi::Number::New(env, static_cast<double>(i)));
      result.Set("reason", Napi::String::New(env, problem));
      return result;
    }
  } catch (const std::bad_alloc&) {
    ThrowError(env, codes::kInvalidArg, std::string(fn) + ": out of memory");
  }
  return env.Null();
}

void InitJsonObjects(Napi::Env env, Napi::Object exports) { JsonObjectChecker::Init(env, exports); }

}  // namespace vrep
