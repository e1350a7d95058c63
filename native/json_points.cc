#include "json_points.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "addon.h"
#include "errors.h"

namespace vrep {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

[[noreturn]] void FailPoint(std::string message) { throw CodedError{codes::kJsonPoint, std::move(message)}; }

// The raw walk below follows a document simdjson has already validated; if
// it ever disagrees, that is a bug here, reported rather than trusted.
[[noreturn]] void FailInternal(size_t offset) {
  throw CodedError{codes::kJsonSyntax,
                   "internal error: raw scan disagrees with simdjson at byte " + std::to_string(offset)};
}

std::string PointPath(uint32_t index) { return "points[" + std::to_string(index) + "]"; }

const char* TypeName(element value) {
  switch (value.type()) {
    case element_type::ARRAY: return "array";
    case element_type::OBJECT: return "object";
    case element_type::INT64: {
      int64_t v = 0;
      return (value.get(v) == simdjson::SUCCESS && v < 0) ? "negative integer" : "integer";
    }
    case element_type::UINT64: return "integer";
    case element_type::DOUBLE: return "number with fraction or exponent";
    case element_type::STRING: return "string";
    case element_type::BOOL: return "boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "unknown";
}

// A key as it appears in an error message: quoted, escaped, at most ~40 bytes
// (cut on a UTF-8 boundary; simdjson has validated the UTF-8).
std::string QuoteForMessage(std::string_view text) {
  constexpr size_t kMaxBytes = 40;
  size_t cut = text.size();
  if (cut > kMaxBytes) {
    cut = kMaxBytes;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) cut--;
  }
  std::string out = "\"";
  for (size_t i = 0; i < cut; i++) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  if (cut < text.size()) out += "...";
  return out;
}

bool IsJsonWhitespace(uint8_t c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// simdjson reports no position for DEPTH_ERROR. Finds where the text first
// nests deeper than maxDepth and names it ("points[3].payload"), or returns
// "" when that is not inside a point. The text failed to parse, so this only
// scans: brackets outside strings, commas between points, keys of a point.
std::string LocateTooDeep(const uint8_t* text, size_t length, size_t maxDepth) {
  constexpr size_t kPointDepth = 3;  // {"points": [ {<here>
  size_t depth = 0;
  uint64_t point = 0;
  std::string_view topKey, pointKey, lastString;
  for (size_t i = 0; i < length; i++) {
    uint8_t c = text[i];
    if (c == '"') {
      size_t start = ++i;
      while (i < length && text[i] != '"') i += text[i] == '\\' ? 2 : 1;
      lastString = std::string_view(reinterpret_cast<const char*>(text) + start, std::min(i, length) - start);
    } else if (c == ':') {
      if (depth == 1) topKey = lastString;
      if (depth == kPointDepth) pointKey = lastString;
    } else if (c == ',' && depth == 2) {
      point++;
    } else if (c == '{' || c == '[') {
      if (++depth > maxDepth) {
        if (topKey != "points" || depth <= kPointDepth) return "";
        return PointPath(static_cast<uint32_t>(point)) + "." + std::string(pointKey.substr(0, 40));
      }
    } else if ((c == '}' || c == ']') && depth > 0) {
      depth--;
    }
  }
  return "";
}

std::string SyntaxMessage(simdjson::error_code error, const uint8_t* text, size_t length) {
  std::string message = "invalid JSON: ";
  if (error == simdjson::DEPTH_ERROR) {
    std::string where = LocateTooDeep(text, length, kJsonMaxDepth);
    if (!where.empty()) message += where + ": ";
  }
  message += simdjson::error_message(error);
  switch (error) {
    case simdjson::TAPE_ERROR:
    case simdjson::NUMBER_ERROR:
      message += " (NaN and Infinity are not JSON numbers; integers need at most 20 digits or an exponent)";
      break;
    case simdjson::DEPTH_ERROR:
      message += " (limit " + std::to_string(kJsonMaxDepth) + " levels for the whole batch)";
      break;
    default:
      break;
  }
  return message;
}

// Walks the validated text in step with the DOM to find byte offsets, which
// simdjson's DOM does not keep: payloads are returned as their source bytes.
class RawCursor {
 public:
  RawCursor(const uint8_t* begin, const uint8_t* end) : begin_(begin), p_(begin), end_(end) {}

  size_t Offset() const { return static_cast<size_t>(p_ - begin_); }
  const uint8_t* Position() const { return p_; }

  void SkipWhitespace() {
    while (p_ < end_ && IsJsonWhitespace(*p_)) p_++;
  }
  void Expect(uint8_t c) {
    SkipWhitespace();
    if (p_ >= end_ || *p_ != c) FailInternal(Offset());
    p_++;
  }
  void SkipOptionalComma() {
    SkipWhitespace();
    if (p_ < end_ && *p_ == ',') p_++;
  }
  // From before a key to the start of its value.
  void EnterField() {
    SkipWhitespace();
    if (p_ >= end_ || *p_ != '"') FailInternal(Offset());
    SkipString();
    Expect(':');
    SkipWhitespace();
  }
  void SkipString() {
    const uint8_t* contentStart = ++p_;
    for (;;) {
      auto* quote = static_cast<const uint8_t*>(std::memchr(p_, '"', static_cast<size_t>(end_ - p_)));
      if (quote == nullptr) FailInternal(Offset());
      const uint8_t* b = quote;
      while (b > contentStart && b[-1] == '\\') b--;
      p_ = quote + 1;
      if (((quote - b) & 1) == 0) return;  // an even run of backslashes: a real closing quote
    }
  }
  void SkipValue() {
    SkipWhitespace();
    if (p_ >= end_) FailInternal(Offset());
    uint8_t c = *p_;
    if (c == '"') {
      SkipString();
    } else if (c == '{' || c == '[') {
      size_t depth = 0;
      do {
        if (p_ >= end_) FailInternal(Offset());
        c = *p_;
        if (c == '"') {
          SkipString();
          continue;
        }
        if (c == '{' || c == '[') depth++;
        if (c == '}' || c == ']') depth--;
        p_++;
      } while (depth > 0);
    } else {
      while (p_ < end_ && !IsJsonWhitespace(*p_) && *p_ != ',' && *p_ != '}' && *p_ != ']') p_++;
    }
  }
  // An array known to hold only numbers: its first ']' closes it.
  void SkipNumberArray(const uint8_t** open, const uint8_t** close) {
    SkipWhitespace();
    if (p_ >= end_ || *p_ != '[') FailInternal(Offset());
    *open = p_;
    auto* bracket = static_cast<const uint8_t*>(std::memchr(p_, ']', static_cast<size_t>(end_ - p_)));
    if (bracket == nullptr) FailInternal(Offset());
    *close = bracket;
    p_ = bracket + 1;
  }

 private:
  const uint8_t* begin_;
  const uint8_t* p_;
  const uint8_t* end_;
};

// simdjson 0.9.1 stores "-0" as the integer 0; JSON.parse gives -0. Restores
// the sign from the source text of a number-only array.
void RestoreNegativeZeros(const uint8_t* open, const uint8_t* close, float* values) {
  size_t index = 0;
  const uint8_t* p = open + 1;
  while (p < close) {
    while (p < close && IsJsonWhitespace(*p)) p++;
    const uint8_t* start = p;
    while (p < close && *p != ',' && !IsJsonWhitespace(*p)) p++;
    if (p - start == 2 && start[0] == '-' && start[1] == '0') values[index] = -0.0f;
    while (p < close && IsJsonWhitespace(*p)) p++;
    if (p < close && *p == ',') p++;
    index++;
  }
}

// Follows the DOM and the raw text together and fills `out`.
class BatchWalker {
 public:
  BatchWalker(const uint8_t* text, size_t length, const JsonPointsLimits& limits, JsonPointsOutput& out)
      : raw_(text, text + length), length_(length), limits_(limits), out_(out) {}

  void Walk(element root) {
    simdjson::dom::object top;
    if (root.get(top) != simdjson::SUCCESS) {
      FailPoint(std::string("batch: expected an object {\"points\": [...]}, got ") + TypeName(root));
    }
    bool seenPoints = false;
    raw_.Expect('{');
    for (simdjson::dom::key_value_pair field : top) {
      raw_.EnterField();
      if (field.key != "points") {
        FailPoint("batch: unknown field " + QuoteForMessage(field.key) + " (allowed: \"points\")");
      }
      if (seenPoints) FailPoint("points: duplicate field");
      seenPoints = true;
      WalkPoints(field.value);
      raw_.SkipOptionalComma();
    }
    raw_.Expect('}');
    if (!seenPoints) FailPoint("points: missing");
  }

 private:
  void WalkPoints(element value) {
    simdjson::dom::array points;
    if (value.get(points) != simdjson::SUCCESS) {
      FailPoint(std::string("points: expected an array, got ") + TypeName(value));
    }
    // size() saturates at 2^24 - 1, above every allowed maxPoints.
    size_t count = points.size();
    if (count > limits_.maxPoints) {
      FailPoint("points: " + std::to_string(count) + (count >= 0xFFFFFF ? " or more" : "") +
                " points, limit " + std::to_string(limits_.maxPoints));
    }
    out_.count = static_cast<uint32_t>(count);
    out_.dimension = limits_.expectedDimension;
    out_.idOffsets.reserve(count + 1);
    out_.payloadOffsets.reserve(count + 1);
    out_.idOffsets.push_back(0);
    out_.payloadOffsets.push_back(0);
    raw_.Expect('[');
    uint32_t index = 0;
    for (element point : points) {
      raw_.SkipWhitespace();
      WalkPoint(index++, point);
      raw_.SkipOptionalComma();
    }
    raw_.Expect(']');
  }

  void WalkPoint(uint32_t index, element value) {
    simdjson::dom::object point;
    if (value.get(point) != simdjson::SUCCESS) {
      FailPoint(PointPath(index) + ": expected an object, got " + TypeName(value));
    }
    bool haveId = false, haveVector = false, havePayload = false;
    raw_.Expect('{');
    for (simdjson::dom::key_value_pair field : point) {
      raw_.EnterField();
      if (field.key == "id") {
        if (haveId) FailPoint(PointPath(index) + ".id: duplicate field");
        haveId = true;
        ReadId(index, field.value);
        raw_.SkipValue();
      } else if (field.key == "vector") {
        if (haveVector) FailPoint(PointPath(index) + ".vector: duplicate field");
        haveVector = true;
        ReadVector(index, field.value);
      } else if (field.key == "payload") {
        if (havePayload) FailPoint(PointPath(index) + ".payload: duplicate field");
        havePayload = true;
        ReadPayload(index, field.value);
      } else {
        FailPoint(PointPath(index) + ": unknown field " + QuoteForMessage(field.key) +
                  " (allowed: \"id\", \"vector\", \"payload\")");
      }
      raw_.SkipOptionalComma();
    }
    raw_.Expect('}');
    if (!haveId) FailPoint(PointPath(index) + ".id: missing");
    if (!haveVector) FailPoint(PointPath(index) + ".vector: missing");
    if (!havePayload) out_.payloadOffsets.push_back(static_cast<uint32_t>(out_.payloadBytes.size()));
  }

  void ReadId(uint32_t index, element value) {
    char digits[24];
    std::string_view id;
    switch (value.type()) {
      case element_type::STRING: {
        if (value.get(id) != simdjson::SUCCESS) FailInternal(raw_.Offset());
        if (id.empty()) FailPoint(PointPath(index) + ".id: empty string");
        break;
      }
      case element_type::INT64:
      case element_type::UINT64: {
        int64_t signedId = 0;
        uint64_t unsignedId = 0;
        std::to_chars_result written{};
        if (value.type() == element_type::INT64) {
          if (value.get(signedId) != simdjson::SUCCESS) FailInternal(raw_.Offset());
          if (signedId < 0) {
            FailPoint(PointPath(index) + ".id: expected a string or a non-negative integer, got negative integer");
          }
          written = std::to_chars(digits, digits + sizeof digits, signedId);
        } else {
          if (value.get(unsignedId) != simdjson::SUCCESS) FailInternal(raw_.Offset());
          written = std::to_chars(digits, digits + sizeof digits, unsignedId);
        }
        id = std::string_view(digits, static_cast<size_t>(written.ptr - digits));
        break;
      }
      default:
        FailPoint(PointPath(index) + ".id: expected a string or a non-negative integer, got " + TypeName(value));
    }
    if (id.size() > limits_.maxIdBytes) {
      FailPoint(PointPath(index) + ".id: " + std::to_string(id.size()) + " bytes, limit " +
                std::to_string(limits_.maxIdBytes));
    }
    out_.idBytes.append(id.data(), id.size());
    out_.idOffsets.push_back(static_cast<uint32_t>(out_.idBytes.size()));
  }

  void ReadVector(uint32_t index, element value) {
    simdjson::dom::array numbers;
    if (value.get(numbers) != simdjson::SUCCESS) {
      FailPoint(PointPath(index) + ".vector: expected an array of numbers, got " + TypeName(value));
    }
    size_t size = numbers.size();
    if (out_.dimension == 0) {
      // No expected dimension: the first point sets it.
      if (size == 0) FailPoint(PointPath(index) + ".vector: expected at least 1 number, got 0");
      if (size > kJsonMaxDimension) {
        FailPoint(PointPath(index) + ".vector: " + std::to_string(size) + " numbers, limit " +
                  std::to_string(kJsonMaxDimension));
      }
      out_.dimension = static_cast<uint32_t>(size);
      // Every number takes at least 2 bytes of text, so this never reserves
      // more than the input can fill.
      out_.vectors.reserve(std::min<size_t>(size_t{out_.count} * size, length_ / 2 + 1));
    } else if (size != out_.dimension) {
      FailPoint(PointPath(index) + ".vector: expected " + std::to_string(out_.dimension) + " numbers, got " +
                std::to_string(size));
    }
    size_t base = out_.vectors.size();
    out_.vectors.resize(base + size);
    float* dst = out_.vectors.data() + base;
    bool sawIntegerZero = false;
    size_t k = 0;
    for (element number : numbers) {
      double asDouble = 0;
      // get_double converts 64-bit integers to the nearest double first, as
      // JSON.parse does, so Math.fround(JSON.parse(x)) matches bit for bit.
      if (number.get_double().get(asDouble) != simdjson::SUCCESS) {
        FailPoint(PointPath(index) + ".vector[" + std::to_string(k) + "]: expected a number, got " +
                  TypeName(number));
      }
      float asFloat = static_cast<float>(asDouble);
      if (!std::isfinite(asFloat)) {
        char text[32];
        auto written = std::to_chars(text, text + sizeof text, asDouble);  // shortest round-trip form
        FailPoint(PointPath(index) + ".vector[" + std::to_string(k) + "]: " +
                  std::string(text, static_cast<size_t>(written.ptr - text)) + " is out of float32 range");
      }
      if (asDouble == 0 && number.type() != element_type::DOUBLE) sawIntegerZero = true;
      dst[k++] = asFloat;
    }
    const uint8_t* open = nullptr;
    const uint8_t* close = nullptr;
    raw_.SkipNumberArray(&open, &close);
    if (sawIntegerZero) RestoreNegativeZeros(open, close, dst);
  }

  void ReadPayload(uint32_t index, element value) {
    if (value.type() == element_type::NULL_VALUE) {
      raw_.SkipValue();
      out_.payloadOffsets.push_back(static_cast<uint32_t>(out_.payloadBytes.size()));
      return;
    }
    if (value.type() != element_type::OBJECT) {
      FailPoint(PointPath(index) + ".payload: expected an object or null, got " + TypeName(value));
    }
    const uint8_t* start = raw_.Position();
    raw_.SkipValue();
    size_t bytes = static_cast<size_t>(raw_.Position() - start);
    if (bytes > limits_.maxPayloadBytes) {
      FailPoint(PointPath(index) + ".payload: " + std::to_string(bytes) + " bytes, limit " +
                std::to_string(limits_.maxPayloadBytes));
    }
    out_.payloadBytes.append(reinterpret_cast<const char*>(start), bytes);
    out_.payloadOffsets.push_back(static_cast<uint32_t>(out_.payloadBytes.size()));
  }

  RawCursor raw_;
  size_t length_;
  const JsonPointsLimits& limits_;
  JsonPointsOutput& out_;
};

template <typename T>
void ReleaseIfLargeVector(std::vector<T>& v) {
  if (v.capacity() * sizeof(T) > kKeepBufferBytes) std::vector<T>().swap(v);
}

}  // namespace

void JsonPointsOutput::Clear() {
  count = 0;
  dimension = 0;
  vectors.clear();
  idBytes.clear();
  idOffsets.clear();
  payloadBytes.clear();
  payloadOffsets.clear();
  ReleaseIfLargeVector(vectors);
  if (idBytes.capacity() > kKeepBufferBytes) std::string().swap(idBytes);
  if (payloadBytes.capacity() > kKeepBufferBytes) std::string().swap(payloadBytes);
  ReleaseIfLargeVector(idOffsets);
  ReleaseIfLargeVector(payloadOffsets);
}

void JsonPointsDecoder::Decode(const uint8_t* data, size_t length, const JsonPointsLimits& limits,
                               JsonPointsOutput& out, size_t readable) {
  out.Clear();
  if (length > limits.maxInputBytes) {
    FailPoint("batch: " + std::to_string(length) + " bytes, limit " + std::to_string(limits.maxInputBytes));
  }
  // Runs on every exit, thrown or not, after the DOM is no longer used.
  struct Release {
    PaddedJsonParser* json;
    ~Release() { json->ReleaseIfLarge(); }
  } release{&json_};

  element root;
  simdjson::error_code error = json_.Parse(data, length, &root, readable);
  if (error != simdjson::SUCCESS) throw CodedError{codes::kJsonSyntax, SyntaxMessage(error, json_.Text(), length)};

  BatchWalker(json_.Text(), json_.TextLength(), limits, out).Walk(root);
}

std::unique_ptr<JsonPointsDecoder> JsonPointsDecoderPool::Take() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (idle_.empty()) return std::make_unique<JsonPointsDecoder>();
  std::unique_ptr<JsonPointsDecoder> decoder = std::move(idle_.back());
  idle_.pop_back();
  return decoder;
}

void JsonPointsDecoderPool::Give(std::unique_ptr<JsonPointsDecoder> decoder) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (idle_.size() < kMaxIdle) idle_.push_back(std::move(decoder));
}

namespace {

// Argument checks repeated natively: a wrong call throws, never crashes.
uint32_t ReadUint32Arg(const Napi::CallbackInfo& info, const char* fn, size_t i, const char* name, uint32_t min,
                       uint32_t max) {
  Napi::Env env = info.Env();
  if (!info[i].IsNumber()) {
    ThrowError(env, codes::kInvalidArg, std::string(fn) + "(" + name + "): expected an integer");
  }
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= min && v <= max) || std::floor(v) != v) {
    ThrowError(env, codes::kInvalidArg,
               std::string(fn) + "(" + name + "): expected an integer in [" + std::to_string(min) + ", " +
                   std::to_string(max) + "]");
  }
  return static_cast<uint32_t>(v);
}

// Bytes readable from the start of `bytes` to the end of its ArrayBuffer (its
// length when it is over a SharedArrayBuffer, which other threads may change).
size_t ReadableBytes(Napi::Env env, const Napi::Uint8Array& bytes) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_value buffer = nullptr;
  size_t offset = 0;
  if (napi_get_typedarray_info(env, bytes, &type, &length, &data, &buffer, &offset) != napi_ok) return 0;
  bool isArrayBuffer = false;
  if (napi_is_arraybuffer(env, buffer, &isArrayBuffer) != napi_ok || !isArrayBuffer) return length;
  void* bufferData = nullptr;
  size_t bufferLength = 0;
  if (napi_get_arraybuffer_info(env, buffer, &bufferData, &bufferLength) != napi_ok) return length;
  return bufferLength >= offset ? bufferLength - offset : length;
}

// (bytes, expectedDimension, maxPoints, maxPayloadBytes, maxIdBytes, maxInputBytes), as parse takes them.
Napi::Uint8Array ReadParseArgs(const Napi::CallbackInfo& info, const char* fn, JsonPointsLimits* limits) {
  Napi::Env env = info.Env();
  if (info.Length() != 6) {
    ThrowError(env, codes::kInvalidArg,
               std::string(fn) + ": expected 6 arguments, got " + std::to_string(info.Length()));
  }
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowError(env, codes::kInvalidArg, std::string(fn) + "(bytes): expected a Uint8Array");
  }
  limits->expectedDimension = ReadUint32Arg(info, fn, 1, "expectedDimension", 0, kJsonMaxDimension);
  limits->maxPoints = ReadUint32Arg(info, fn, 2, "maxPoints", 0, kJsonMaxPointsCap);
  limits->maxPayloadBytes = ReadUint32Arg(info, fn, 3, "maxPayloadBytes", 0, kJsonMaxInputBytesCap);
  limits->maxIdBytes = ReadUint32Arg(info, fn, 4, "maxIdBytes", 1, kJsonMaxInputBytesCap);
  limits->maxInputBytes = ReadUint32Arg(info, fn, 5, "maxInputBytes", 0, kJsonMaxInputBytesCap);
  return info[0].As<Napi::Uint8Array>();
}

// An ArrayBuffer over `bytes` of `storage`: copied (the storage is reused), or
// moved into a heap holder the buffer frees when collected (no copy), its size
// told to V8 so the collector feels the memory it holds.
template <typename Storage>
Napi::ArrayBuffer ToArrayBuffer(Napi::Env env, Storage& storage, bool move) {
  const size_t bytes = storage.size() * sizeof(storage[0]);
  if (!move || bytes == 0) {
    Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, bytes);
    if (bytes > 0) std::memcpy(buffer.Data(), storage.data(), bytes);
    return buffer;
  }
  auto* owned = new Storage(std::move(storage));
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(
      env, owned->data(), bytes,
      [](Napi::Env finalizeEnv, void*, Storage* held) {
        Napi::MemoryManagement::AdjustExternalMemory(
            finalizeEnv, -static_cast<int64_t>(held->size() * sizeof((*held)[0])));
        delete held;
      },
      owned);
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(bytes));
  return buffer;
}

// The JS shape of a parsed batch (JsonPointsBatch in src/native/json-points.ts).
Napi::Object BatchToJs(Napi::Env env, JsonPointsOutput& out, bool move) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("count", Napi::Number::New(env, out.count));
  result.Set("dimension", Napi::Number::New(env, out.dimension));
  const size_t floats = out.vectors.size();
  result.Set("vectors", Napi::Float32Array::New(env, floats, ToArrayBuffer(env, out.vectors, move), 0));

  Napi::Array ids = Napi::Array::New(env, out.count);
  for (uint32_t i = 0; i < out.count; i++) {
    uint32_t from = out.idOffsets[i];
    ids.Set(i, Napi::String::New(env, out.idBytes.data() + from, out.idOffsets[i + 1] - from));
  }
  result.Set("ids", ids);

  const size_t payloadBytes = out.payloadBytes.size();
  result.Set("payloadBytes",
             Napi::Uint8Array::New(env, payloadBytes, ToArrayBuffer(env, out.payloadBytes, move), 0));
  const size_t offsets = out.payloadOffsets.size();
  result.Set("payloadOffsets",
             Napi::Uint32Array::New(env, offsets, ToArrayBuffer(env, out.payloadOffsets, move), 0));
  return result;
}

// One parse on libuv's thread pool, settling a promise. The input stays
// referenced (so alive) until the task ends; the caller must not change it
// meanwhile.
class ParseWorker : public Napi::AsyncWorker {
 public:
  ParseWorker(Napi::Env env, Napi::Uint8Array bytes, const JsonPointsLimits& limits,
              std::shared_ptr<JsonPointsDecoderPool> pool)
      : Napi::AsyncWorker(env, "vrep.parseJsonPoints"),
        deferred_(Napi::Promise::Deferred::New(env)),
        data_(bytes.ByteLength() > 0 ? bytes.Data() : nullptr),
        length_(bytes.ByteLength()),
        readable_(ReadableBytes(env, bytes)),
        limits_(limits),
        pool_(std::move(pool)) {
    input_ = Napi::Persistent(static_cast<Napi::Object>(bytes));
  }
  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    std::unique_ptr<JsonPointsDecoder> decoder = pool_->Take();
    static const uint8_t kEmpty[1] = {0};
    try {
      decoder->Decode(data_ != nullptr ? data_ : kEmpty, length_, limits_, out_, data_ != nullptr ? readable_ : 0);
    } catch (const CodedError& e) {
      code_ = e.code;
      SetError(e.message);
    } catch (const std::exception& e) {  // bad_alloc, length_error
      code_ = codes::kInvalidArg;
      SetError(std::string("parseJsonPointsAsync: out of memory (") + e.what() + ")");
    }
    pool_->Give(std::move(decoder));
  }
  void OnOK() override {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(BatchToJs(env, out_, true));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(MakeError(Env(), code_, e.Message()).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference input_;
  const uint8_t* data_;
  size_t length_;
  size_t readable_;
  JsonPointsLimits limits_;
  std::shared_ptr<JsonPointsDecoderPool> pool_;
  JsonPointsOutput out_;
  const char* code_ = codes::kInvalidArg;
};

// parseJsonPointsAsync(bytes, expectedDimension, maxPoints, maxPayloadBytes, maxIdBytes, maxInputBytes)
Napi::Value JsParseJsonPointsAsync(const Napi::CallbackInfo& info) {
  auto* pool = static_cast<std::shared_ptr<JsonPointsDecoderPool>*>(info.Data());
  JsonPointsLimits limits;
  Napi::Uint8Array bytes = ReadParseArgs(info, "parseJsonPointsAsync", &limits);
  auto* worker = new ParseWorker(info.Env(), bytes, limits, *pool);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace

void JsonPointsParser::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor =
      DefineClass(env, "JsonPointsParser", {InstanceMethod<&JsonPointsParser::Parse>("parse")});
  AddonState::Of(env).constructors["JsonPointsParser"] = Napi::Persistent(ctor);
  exports.Set("JsonPointsParser", ctor);
}

JsonPointsParser::JsonPointsParser(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsonPointsParser>(info) {}

// parse(bytes, expectedDimension, maxPoints, maxPayloadBytes, maxIdBytes, maxInputBytes)
Napi::Value JsonPointsParser::Parse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  JsonPointsLimits limits;
  Napi::Uint8Array bytes = ReadParseArgs(info, "JsonPointsParser.parse", &limits);

  try {
    decoder_.Decode(bytes.Data(), bytes.ByteLength(), limits, output_, ReadableBytes(env, bytes));
  } catch (const CodedError& e) {
    output_.Clear();
    ThrowError(env, e.code, e.message);
  } catch (const std::exception& e) {  // bad_alloc, length_error
    output_.Clear();
    ThrowError(env, codes::kInvalidArg, std::string("JsonPointsParser.parse: out of memory (") + e.what() + ")");
  }

  Napi::Object result = BatchToJs(env, output_, false);
  output_.Clear();
  return result;
}

void InitJsonPoints(Napi::Env env, Napi::Object exports) {
  JsonPointsParser::Init(env, exports);
  // The instance's reference to the pool; tasks in flight hold their own.
  auto* pool = new std::shared_ptr<JsonPointsDecoderPool>(std::make_shared<JsonPointsDecoderPool>());
  env.AddCleanupHook([pool]() { delete pool; });
  exports.Set("parseJsonPointsAsync",
              Napi::Function::New(env, JsParseJsonPointsAsync, "parseJsonPointsAsync", pool));
}

}  // namespace vrep
