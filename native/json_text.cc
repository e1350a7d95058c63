#include "json_text.h"

#include <algorithm>
#include <cstring>
#include <string_view>

namespace vrep {
namespace {

// Plain integer digits that simdjson stores neither as int64 nor as uint64
// (same digit count: text order is numeric order).
bool OutsideInt64Range(const uint8_t* digits, size_t count, bool negative) {
  std::string_view limit = negative ? "9223372036854775808" : "18446744073709551615";
  if (count != limit.size()) return count > limit.size();
  return std::string_view(reinterpret_cast<const char*>(digits), count) > limit;
}

// Appends ".0" to every integer outside the 64-bit range outside strings, so
// a retry parses them as doubles with the same value JSON.parse gives.
// Returns false when there is none.
bool RewriteBigIntegers(const uint8_t* text, size_t length, std::string& out) {
  out.clear();
  bool changed = false;
  size_t copiedUpTo = 0;
  size_t i = 0;
  while (i < length) {
    uint8_t c = text[i];
    if (c == '"') {
      for (i++; i < length && text[i] != '"'; i++) {
        if (text[i] == '\\') i++;
      }
      i++;
      continue;
    }
    if (c != '-' && (c < '0' || c > '9')) {
      i++;
      continue;
    }
    size_t start = i;
    bool negative = c == '-';
    bool digitsOnly = true;
    size_t digits = 0;
    for (; i < length; i++) {
      uint8_t d = text[i];
      if (d >= '0' && d <= '9') {
        digits++;
      } else if (d == '.' || d == 'e' || d == 'E' || d == '+' || (d == '-' && i > start)) {
        digitsOnly = false;
      } else if (!(d == '-' && i == start)) {
        break;
      }
    }
    if (digitsOnly && OutsideInt64Range(text + start + negative, digits, negative)) {
      out.append(reinterpret_cast<const char*>(text) + copiedUpTo, i - copiedUpTo);
      out += ".0";
      copiedUpTo = i;
      changed = true;
    }
  }
  if (changed) out.append(reinterpret_cast<const char*>(text) + copiedUpTo, length - copiedUpTo);
  return changed;
}

// simdjson 0.9.1 documents stay below 4 GiB.
constexpr size_t kMaxTextBytes = 0xFFFFFFFFu - simdjson::SIMDJSON_PADDING;

}  // namespace

void PaddedJsonParser::CopyPadded(const uint8_t* bytes, size_t length) {
  if (padded_.size() < length + simdjson::SIMDJSON_PADDING) padded_.resize(length + simdjson::SIMDJSON_PADDING);
  if (length > 0) std::memcpy(padded_.data(), bytes, length);
  std::memset(padded_.data() + length, 0, simdjson::SIMDJSON_PADDING);
  text_ = padded_.data();
}

simdjson::error_code PaddedJsonParser::Parse(const uint8_t* data, size_t length, simdjson::dom::element* root,
                                             size_t readable) {
  if (length >= kParseInPlaceMinBytes && readable >= length + simdjson::SIMDJSON_PADDING) {
    text_ = data;
  } else {
    CopyPadded(data, length);
  }
  textLength_ = length;
  simdjson::error_code error = parser_.parse(text_, length, false).get(*root);
  if (error == simdjson::NUMBER_ERROR && RewriteBigIntegers(text_, length, rewritten_) &&
      rewritten_.size() <= kMaxTextBytes) {
    CopyPadded(reinterpret_cast<const uint8_t*>(rewritten_.data()), rewritten_.size());
    simdjson::dom::element retried;
    if (parser_.parse(padded_.data(), rewritten_.size(), false).get(retried) == simdjson::SUCCESS) {
      *root = retried;
      textLength_ = rewritten_.size();
      return simdjson::SUCCESS;
    }
  }
  return error;
}

simdjson::error_code PaddedJsonParser::SetMaxDepth(size_t maxDepth) {
  // simdjson's max_depth counts the document as a level (see kJsonMaxDepth).
  size_t simdjsonDepth = maxDepth + 1;
  if (parser_.max_depth() == simdjsonDepth && parser_.capacity() > 0) return simdjson::SUCCESS;
  // Keeps the capacity; later growth (parse's ensure_capacity) keeps the depth.
  return parser_.allocate(std::max(parser_.capacity(), simdjson::dom::MINIMAL_DOCUMENT_CAPACITY), simdjsonDepth);
}

void PaddedJsonParser::ReleaseIfLarge() {
  if (padded_.capacity() > kKeepBufferBytes) std::vector<uint8_t>().swap(padded_);
  if (rewritten_.capacity() > kKeepBufferBytes) std::string().swap(rewritten_);
  if (parser_.capacity() > kKeepBufferBytes) parser_ = simdjson::dom::parser();
}

}  // namespace vrep
