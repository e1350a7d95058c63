// One simdjson DOM parser plus the input handling every JSON entry point of
// the addon needs: the padded copy simdjson reads past the end of, and a
// retry for integers beyond 64 bits (simdjson 0.9.1 rejects them; JSON.parse
// reads them as doubles, and JSON.stringify writes 1e20 as 21 digits).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "simdjson.h"

namespace vrep {

// Buffers bigger than this are released after a call instead of kept for
// reuse, so one huge input does not pin memory for the life of the parser.
inline constexpr size_t kKeepBufferBytes = size_t{64} << 20;

// Deepest nesting (arrays and objects, the outermost is level 1) a parser
// here accepts by default: simdjson counts the document itself as one of its
// DEFAULT_MAX_DEPTH levels. Exported to TS as jsonMaxDepth.
inline constexpr uint32_t kJsonMaxDepth = simdjson::DEFAULT_MAX_DEPTH - 1;

// Inputs at least this large are parsed in place when they have padding to
// spare (smaller ones may share their memory with other buffers, and copying
// them costs little).
inline constexpr size_t kParseInPlaceMinBytes = size_t{1} << 20;

class PaddedJsonParser {
 public:
  // Parses data[0, length). On success *root stays valid until the next call,
  // and Text()/TextLength() are the bytes it was parsed from: the input, or
  // the input with ".0" appended to every integer beyond 64 bits.
  // `readable` is how many bytes from `data` may be read (at least length):
  // with SIMDJSON_PADDING to spare beyond `length` and a large input, the
  // input is parsed where it lies (simdjson reads the padding, whatever it
  // holds) instead of copied. The caller keeps those bytes unchanged meanwhile.
  simdjson::error_code Parse(const uint8_t* data, size_t length, simdjson::dom::element* root, size_t readable = 0);
  const uint8_t* Text() const { return text_; }
  size_t TextLength() const { return textLength_; }

  // The deepest nesting Parse accepts from now on (the outermost array or
  // object is level 1; at most kJsonMaxDepth); deeper is DEPTH_ERROR.
  simdjson::error_code SetMaxDepth(size_t maxDepth);

  // Frees buffers over kKeepBufferBytes; the max depth goes back to default.
  void ReleaseIfLarge();

 private:
  void CopyPadded(const uint8_t* bytes, size_t length);
  std::vector<uint8_t> padded_;
  const uint8_t* text_ = nullptr;
  std::string rewritten_;
  size_t textLength_ = 0;
  simdjson::dom::parser parser_;
};

}  // namespace vrep
