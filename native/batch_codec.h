// zstd batch frames: several byte parts (some of them float32 blocks to
// byte-shuffle) in one self-checking frame. Format: docs/native/batch-codec.md.
#pragma once

#include <napi.h>
// For ZSTD_c_literalCompressionMode: libzstd is linked statically from the
// same source, so its experimental API is safe to use.
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace vrep {
namespace batch {

inline constexpr uint8_t kMagic[4] = {'V', 'R', 'Z', 'B'};
inline constexpr uint8_t kVersion = 1;
inline constexpr uint8_t kFlagCompressed = 0x01;
inline constexpr size_t kFixedHeaderBytes = 28;
inline constexpr size_t kPartEntryBytes = 8;
inline constexpr size_t kHeaderCrcBytes = 4;
// Limits on every frame, enforced by both the encoder and the decoder.
inline constexpr uint32_t kMaxParts = 1u << 20;
inline constexpr uint64_t kMaxBatchBytes = uint64_t{1} << 30;
// The only element size a part may be shuffled with (float32).
inline constexpr uint8_t kShuffleElementBytes = 4;
// Decoded parts start at multiples of this in the output buffer, so a
// float32 (or float64) view over a part needs no copy.
inline constexpr size_t kPartAlignBytes = 8;
// Level of the zstd frame holding the byte planes of shuffled parts, with
// Huffman literals forced on: planes of float32 data have almost no matches
// (the low mantissa planes are noise), so entropy coding alone gives the
// same or a better ratio than level 1 at 2-3x its speed (bench/codec.bench.ts).
inline constexpr int kPlaneLevel = -5000;
// Most zstd worker threads one compression may use (ZSTD_c_nbWorkers).
inline constexpr int kMaxWorkers = 8;
// Sync scratch buffers larger than this are released after the call.
inline constexpr size_t kRetainScratchBytes = size_t{32} << 20;

// An uninitialised byte buffer that only grows (std::vector would zero it).
class ByteBuffer {
 public:
  uint8_t* Reserve(size_t bytes);
  uint8_t* data() const { return data_.get(); }
  size_t capacity() const { return capacity_; }
  void ReleaseIfAbove(size_t bytes);

 private:
  std::unique_ptr<uint8_t[]> data_;
  size_t capacity_ = 0;
};

struct PartIn {
  const uint8_t* data;
  size_t lengthBytes;
  uint8_t elementBytes;  // 0: as is, 4: shuffle as float32
};

struct EncodeOptions {
  int level;
  bool store;    // skip zstd
  int workers;   // 0: compress on the calling thread; n: n zstd threads
};

// Encodes a frame into `out` (whose capacity may exceed the returned frame
// length); `input` is scratch for the shuffled, concatenated parts. Throws
// CodedError (ERR_INVALID_ARG, ERR_COMPRESSION).
size_t EncodeBatch(ZSTD_CCtx* cctx, const std::vector<PartIn>& parts, const EncodeOptions& options, ByteBuffer& input,
                   ByteBuffer& out);

struct FrameHeader {
  bool compressed = false;
  uint32_t partCount = 0;
  uint32_t payloadBytes = 0;
  uint64_t totalBytes = 0;
  uint64_t shuffledBytes = 0;  // sum of the shuffled parts' lengths
  uint32_t contentCrc = 0;
  size_t headerBytes = 0;
  // Bytes of the decoded output: the parts, each padded to kPartAlignBytes.
  uint64_t outputBytes = 0;
  // The validated part table, copied out of the frame so that a frame
  // written to while it is decoded (a SharedArrayBuffer, or during async
  // work) cannot change a length after it was checked.
  std::vector<uint32_t> partLengths;
  std::vector<uint8_t> partElementBytes;
};

// Validates everything that can be validated without decoding; allocates
// only the copy of the part table (at most 5/8 of the frame's own length).
// Throws CodedError: ERR_CORRUPT_FRAME, or ERR_FRAME_TOO_LARGE when
// the frame declares more than maxBytes (or kMaxBatchBytes) of content.
FrameHeader ParseHeader(const uint8_t* frame, size_t frameBytes, uint64_t maxBytes);

// Decodes the payload into out[0, header.outputBytes), parts at aligned
// offsets, and checks the content CRC. Throws CodedError (ERR_CORRUPT_FRAME).
void DecodeBatch(ZSTD_DCtx* dctx, const FrameHeader& header, const uint8_t* frame, uint8_t* out, ByteBuffer& scratch);

}  // namespace batch
}  // namespace vrep
