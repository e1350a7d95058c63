// JSON vector batches parsed natively with simdjson (DOM API, 0.9.1):
//   {"points":[{"id":..., "vector":[...], "payload":{...}}, ...]}
// becomes one contiguous Float32Array (points x dimension), an array of id
// strings, and the payloads' raw JSON bytes (concatenated, with offsets).
// All or nothing: any problem throws ERR_JSON_SYNTAX or ERR_JSON_POINT naming
// the point and the field, and nothing is returned.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "json_text.h"
#include "simdjson.h"

namespace vrep {

// Hard caps the caller's limits must stay within (checked again in TS).
inline constexpr uint32_t kJsonMaxDimension = 65536;
// simdjson's array size on the tape saturates at 2^24 - 1 elements.
inline constexpr uint32_t kJsonMaxPointsCap = 10'000'000;
// simdjson 0.9.1 handles documents below 4 GiB; payload offsets are uint32.
inline constexpr uint32_t kJsonMaxInputBytesCap = 0xFFFFFFFFu - simdjson::SIMDJSON_PADDING;

struct JsonPointsLimits {
  uint32_t expectedDimension = 0;  // 0: the first point's dimension, all must match
  uint32_t maxPoints = 0;
  uint32_t maxPayloadBytes = 0;
  uint32_t maxIdBytes = 0;
  uint32_t maxInputBytes = 0;
};

// What a successful parse produced, in plain C++ storage (owned by the parser
// and reused between calls) before it is copied out to JS.
struct JsonPointsOutput {
  uint32_t count = 0;
  uint32_t dimension = 0;
  std::vector<float> vectors;
  std::string idBytes;
  std::vector<uint32_t> idOffsets;       // count + 1
  std::string payloadBytes;
  std::vector<uint32_t> payloadOffsets;  // count + 1; empty slice: no payload
  void Clear();
};

// Parses one batch into `out`; throws CodedError on any problem. Pure C++, so
// it can run off the main thread too.
class JsonPointsDecoder {
 public:
  // `readable`: bytes from `data` that may be read (PaddedJsonParser::Parse); 0 for just `length`.
  void Decode(const uint8_t* data, size_t length, const JsonPointsLimits& limits, JsonPointsOutput& out,
              size_t readable = 0);

 private:
  // Copies the input (never reads past the caller's buffer) and parses it.
  PaddedJsonParser json_;
};

// Decoders kept for parses run on libuv's thread pool (parseJsonPointsAsync):
// each parse borrows one, so its simdjson buffers are reused by the next.
// Shared by the tasks in flight and the addon instance (whichever goes last
// frees it).
class JsonPointsDecoderPool {
 public:
  // At most this many idle decoders are kept (libuv's pool has 4 threads by default).
  static constexpr size_t kMaxIdle = 4;
  std::unique_ptr<JsonPointsDecoder> Take();
  void Give(std::unique_ptr<JsonPointsDecoder> decoder);

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<JsonPointsDecoder>> idle_;
};

// The JS class JsonPointsParser: one decoder with its reusable buffers.
class JsonPointsParser : public Napi::ObjectWrap<JsonPointsParser> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit JsonPointsParser(const Napi::CallbackInfo& info);

 private:
  Napi::Value Parse(const Napi::CallbackInfo& info);
  JsonPointsDecoder decoder_;
  JsonPointsOutput output_;
};

}  // namespace vrep
