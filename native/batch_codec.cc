#include "batch_codec.h"

#include <cstring>
#include <new>
#include <string>
#include <utility>

#include "addon.h"
#include "crc32c.h"
#include "errors.h"
#include "shuffle.h"

namespace vrep {
namespace batch {
namespace {

void PutU16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void PutU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint16_t GetU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

uint64_t AlignUp(uint64_t v) { return (v + kPartAlignBytes - 1) & ~uint64_t{kPartAlignBytes - 1}; }

[[noreturn]] void Corrupt(const std::string& why) { throw CodedError{codes::kCorruptFrame, "corrupt batch frame: " + why}; }

void CheckZstd(size_t result, const char* what) {
  if (ZSTD_isError(result)) {
    throw CodedError{codes::kCompression, std::string(what) + ": " + ZSTD_getErrorName(result)};
  }
}

size_t HeaderBytesFor(uint32_t partCount) {
  return kFixedHeaderBytes + size_t{partCount} * kPartEntryBytes + kHeaderCrcBytes;
}

}  // namespace

uint8_t* ByteBuffer::Reserve(size_t bytes) {
  if (bytes > capacity_) {
    data_.reset();  // free first: peak memory is the new buffer only
    capacity_ = 0;
    data_.reset(new uint8_t[bytes]);
    capacity_ = bytes;
  }
  return data_.get();
}

void ByteBuffer::ReleaseIfAbove(size_t bytes) {
  if (capacity_ > bytes) {
    data_.reset();
    capacity_ = 0;
  }
}

namespace {

uint64_t ShuffledBytes(const std::vector<PartIn>& parts) {
  uint64_t sum = 0;
  for (const PartIn& p : parts) sum += p.elementBytes ? p.lengthBytes : 0;
  return sum;
}

// One zstd frame of `bytes` bytes at `level`; returns its length.
size_t CompressSection(ZSTD_CCtx* cctx, int level, bool forceLiteralCompression, int workers, uint8_t* dst,
                       size_t capacity, const uint8_t* src, size_t bytes) {
  CheckZstd(ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters), "ZSTD_CCtx_reset");
  CheckZstd(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level), "ZSTD_c_compressionLevel");
  CheckZstd(ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, workers), "ZSTD_c_nbWorkers");
  // The decoder insists on the content size; integrity is our CRC32C.
  CheckZstd(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1), "ZSTD_c_contentSizeFlag");
  CheckZstd(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 0), "ZSTD_c_checksumFlag");
  if (forceLiteralCompression) {
    // Negative levels turn Huffman literals off by default; byte planes need
    // exactly that and nothing else.
    CheckZstd(ZSTD_CCtx_setParameter(cctx, ZSTD_c_literalCompressionMode, ZSTD_ps_enable),
              "ZSTD_c_literalCompressionMode");
  }
  const size_t written = ZSTD_compress2(cctx, dst, capacity, src, bytes);
  CheckZstd(written, "ZSTD_compress2");
  return written;
}

}  // namespace

size_t EncodeBatch(ZSTD_CCtx* cctx, const std::vector<PartIn>& parts, const EncodeOptions& options, ByteBuffer& input,
                   ByteBuffer& out) {
  if (parts.size() > kMaxParts) {
    throw CodedError{codes::kInvalidArg, "compressBatch: more than " + std::to_string(kMaxParts) + " parts"};
  }
  const uint32_t partCount = static_cast<uint32_t>(parts.size());
  uint64_t totalBytes = 0;
  bool anyShuffled = false;
  uint32_t crc = 0;
  for (uint32_t i = 0; i < partCount; i++) {
    const PartIn& p = parts[i];
    if (p.elementBytes != 0 && p.elementBytes != kShuffleElementBytes) {
      throw CodedError{codes::kInvalidArg, "compressBatch: part " + std::to_string(i) + " has element size " +
                                               std::to_string(p.elementBytes) + " (0 or 4 allowed)"};
    }
    if (p.elementBytes && p.lengthBytes % p.elementBytes != 0) {
      throw CodedError{codes::kInvalidArg, "compressBatch: part " + std::to_string(i) + " is shuffled as float32 but its " +
                                               std::to_string(p.lengthBytes) + " bytes are not a multiple of 4"};
    }
    if (p.lengthBytes > kMaxBatchBytes || totalBytes + p.lengthBytes > kMaxBatchBytes) {
      throw CodedError{codes::kInvalidArg,
                       "compressBatch: the parts hold more than " + std::to_string(kMaxBatchBytes) + " bytes"};
    }
    totalBytes += p.lengthBytes;
    anyShuffled = anyShuffled || p.elementBytes != 0;
    if (p.lengthBytes) crc = Crc32c(crc, p.data, p.lengthBytes);
  }

  const size_t headerBytes = HeaderBytesFor(partCount);
  size_t payloadBytes = 0;
  bool compressed = false;
  if (!options.store && totalBytes > 0) {
    // Decoded payload layout: the byte planes of the shuffled parts, then
    // the other parts, each group in part order (see the doc).
    const uint64_t planeBytes = ShuffledBytes(parts);
    const uint8_t* source;
    if (partCount == 1 && !anyShuffled) {
      source = parts[0].data;
    } else {
      uint8_t* planes = input.Reserve(totalBytes);
      uint8_t* rest = planes + planeBytes;
      source = planes;
      for (const PartIn& p : parts) {
        if (p.lengthBytes == 0) continue;
        if (p.elementBytes) {
          ShuffleBytes(p.data, planes, p.lengthBytes, p.elementBytes);
          planes += p.lengthBytes;
        } else {
          std::memcpy(rest, p.data, p.lengthBytes);
          rest += p.lengthBytes;
        }
      }
    }
    const size_t restBytes = totalBytes - planeBytes;
    const size_t bound = (planeBytes ? ZSTD_compressBound(planeBytes) : 0) + (restBytes ? ZSTD_compressBound(restBytes) : 0);
    uint8_t* frame = out.Reserve(headerBytes + bound);
    size_t at = headerBytes;
    if (planeBytes) {
      at += CompressSection(cctx, kPlaneLevel, true, options.workers, frame + at, headerBytes + bound - at, source,
                            planeBytes);
    }
    if (restBytes) {
      at += CompressSection(cctx, options.level, false, options.workers, frame + at, headerBytes + bound - at,
                            source + planeBytes, restBytes);
    }
    payloadBytes = at - headerBytes;
    compressed = payloadBytes < totalBytes;
  }
  uint8_t* frame;
  if (!compressed) {
    // Stored: the parts as they are, nothing shuffled.
    frame = out.Reserve(headerBytes + totalBytes);
    uint8_t* cursor = frame + headerBytes;
    for (const PartIn& p : parts) {
      if (p.lengthBytes) std::memcpy(cursor, p.data, p.lengthBytes);
      cursor += p.lengthBytes;
    }
    payloadBytes = totalBytes;
  } else {
    frame = out.data();
  }

  std::memcpy(frame, kMagic, 4);
  frame[4] = kVersion;
  frame[5] = compressed ? kFlagCompressed : 0;
  PutU16(frame + 6, 0);
  PutU32(frame + 8, partCount);
  PutU32(frame + 12, static_cast<uint32_t>(payloadBytes));
  PutU64(frame + 16, totalBytes);
  PutU32(frame + 24, crc);
  uint8_t* entry = frame + kFixedHeaderBytes;
  for (const PartIn& p : parts) {
    PutU32(entry, static_cast<uint32_t>(p.lengthBytes));
    entry[4] = compressed ? p.elementBytes : 0;
    entry[5] = entry[6] = entry[7] = 0;
    entry += kPartEntryBytes;
  }
  // The frame checksum covers the header and the payload, so a damaged byte
  // anywhere is caught even where zstd would decode it to the same content.
  PutU32(entry, Crc32c(Crc32c(0, frame, headerBytes - kHeaderCrcBytes), frame + headerBytes, payloadBytes));
  return headerBytes + payloadBytes;
}

FrameHeader ParseHeader(const uint8_t* frame, size_t frameBytes, uint64_t maxBytes) {
  if (frameBytes < HeaderBytesFor(0)) Corrupt("shorter than a header (" + std::to_string(frameBytes) + " bytes)");
  if (std::memcmp(frame, kMagic, 4) != 0) Corrupt("bad magic");
  if (frame[4] != kVersion) Corrupt("unsupported version " + std::to_string(frame[4]));
  if ((frame[5] & ~kFlagCompressed) != 0 || GetU16(frame + 6) != 0) Corrupt("unknown flags");
  FrameHeader h;
  h.compressed = (frame[5] & kFlagCompressed) != 0;
  h.partCount = GetU32(frame + 8);
  if (h.partCount > kMaxParts) Corrupt("part count " + std::to_string(h.partCount) + " over the limit");
  h.headerBytes = HeaderBytesFor(h.partCount);
  if (frameBytes < h.headerBytes) Corrupt("truncated part table");
  // Checked before any length in the header is trusted (the whole frame is
  // in memory already; CRC32C costs about 0.1 ms per MB).
  const size_t crcAt = h.headerBytes - kHeaderCrcBytes;
  const uint32_t frameCrc = Crc32c(Crc32c(0, frame, crcAt), frame + h.headerBytes, frameBytes - h.headerBytes);
  if (frameCrc != GetU32(frame + crcAt)) Corrupt("frame checksum mismatch");
  h.payloadBytes = GetU32(frame + 12);
  h.totalBytes = GetU64(frame + 16);
  h.contentCrc = GetU32(frame + 24);
  if (h.totalBytes > maxBytes || h.totalBytes > kMaxBatchBytes) {
    throw CodedError{codes::kFrameTooLarge, "batch frame declares " + std::to_string(h.totalBytes) +
                                                " bytes, over the limit of " +
                                                std::to_string(maxBytes < kMaxBatchBytes ? maxBytes : kMaxBatchBytes)};
  }
  if (frameBytes - h.headerBytes != h.payloadBytes) {
    Corrupt("payload is " + std::to_string(frameBytes - h.headerBytes) + " bytes, header says " +
            std::to_string(h.payloadBytes));
  }
  uint64_t sum = 0;
  uint64_t outputBytes = 0;
  h.partLengths.resize(h.partCount);
  h.partElementBytes.resize(h.partCount);
  for (uint32_t i = 0; i < h.partCount; i++) {
    const uint8_t* e = frame + kFixedHeaderBytes + size_t{i} * kPartEntryBytes;
    const uint32_t len = GetU32(e);
    const uint8_t elementBytes = e[4];
    if (e[5] != 0 || e[6] != 0 || e[7] != 0) Corrupt("part " + std::to_string(i) + " has reserved bits set");
    if (elementBytes != 0 &&
        (elementBytes != kShuffleElementBytes || !h.compressed || len % kShuffleElementBytes != 0)) {
      Corrupt("part " + std::to_string(i) + " has a bad element size");
    }
    h.partLengths[i] = len;
    h.partElementBytes[i] = elementBytes;
    if (elementBytes) h.shuffledBytes += len;
    sum += len;  // at most 2^20 * (2^32 - 1): no overflow
    outputBytes = AlignUp(outputBytes) + len;
  }
  if (sum != h.totalBytes) Corrupt("part lengths do not add up to the declared size");
  h.outputBytes = AlignUp(outputBytes);
  if (!h.compressed && h.payloadBytes != h.totalBytes) Corrupt("stored payload length differs from the declared size");
  return h;
}

void DecodeBatch(ZSTD_DCtx* dctx, const FrameHeader& h, const uint8_t* frame, uint8_t* out, ByteBuffer& scratch) {
  const uint8_t* payload = frame + h.headerBytes;
  const uint8_t* source = payload;
  // When no part is shuffled and every part but the last already ends on an
  // aligned offset, the decoded stream is the output layout: decode in place.
  bool direct = true;
  for (uint32_t i = 0; i < h.partCount && direct; i++) {
    if (h.partElementBytes[i] != 0 || (i + 1 < h.partCount && h.partLengths[i] % kPartAlignBytes != 0)) direct = false;
  }
  if (h.compressed) {
    uint8_t* target = direct ? out : scratch.Reserve(h.totalBytes);
    const uint8_t* at = payload;
    size_t remaining = h.payloadBytes;
    const uint64_t sections[2] = {h.shuffledBytes, h.totalBytes - h.shuffledBytes};
    uint64_t filled = 0;
    for (uint64_t contentBytes : sections) {
      if (contentBytes == 0) continue;  // an empty section has no zstd frame
      const unsigned long long declared = ZSTD_getFrameContentSize(at, remaining);
      if (declared == ZSTD_CONTENTSIZE_ERROR || declared == ZSTD_CONTENTSIZE_UNKNOWN) {
        Corrupt("zstd frame header unreadable or without content size");
      }
      if (declared != contentBytes) Corrupt("zstd content size differs from the declared size");
      const size_t frameLen = ZSTD_findFrameCompressedSize(at, remaining);
      if (ZSTD_isError(frameLen)) Corrupt(std::string("zstd frame: ") + ZSTD_getErrorName(frameLen));
      const size_t got = ZSTD_decompressDCtx(dctx, target + filled, contentBytes, at, frameLen);
      if (ZSTD_isError(got)) Corrupt(std::string("zstd: ") + ZSTD_getErrorName(got));
      if (got != contentBytes) Corrupt("zstd produced fewer bytes than declared");
      filled += contentBytes;
      at += frameLen;
      remaining -= frameLen;
    }
    if (remaining != 0) Corrupt("bytes after the last zstd frame");
    source = target;
  }
  uint32_t crc = 0;
  uint64_t planeAt = 0;              // shuffled parts come first in the payload
  uint64_t restAt = h.shuffledBytes;  // then the others
  uint64_t outAt = 0;
  for (uint32_t i = 0; i < h.partCount; i++) {
    const uint32_t len = h.partLengths[i];
    outAt = AlignUp(outAt);
    uint8_t* dst = out + outAt;
    if (len) {
      if (h.partElementBytes[i]) {
        UnshuffleBytes(source + planeAt, dst, len, h.partElementBytes[i]);
        planeAt += len;
      } else {
        if (source + restAt != dst) std::memcpy(dst, source + restAt, len);
        restAt += len;
      }
      crc = Crc32c(crc, dst, len);
    }
    outAt += len;
  }
  if (crc != h.contentCrc) Corrupt("content checksum mismatch");
}

// ---- JS surface -------------------------------------------------------------
namespace {

// Sync calls reuse these per addon instance (one per thread).
struct CodecState {
  ZSTD_CCtx* cctx = nullptr;
  ZSTD_DCtx* dctx = nullptr;
  ByteBuffer input;
  ByteBuffer out;

  ~CodecState() {
    ZSTD_freeCCtx(cctx);
    ZSTD_freeDCtx(dctx);
  }
  void Trim() {
    input.ReleaseIfAbove(kRetainScratchBytes);
    out.ReleaseIfAbove(kRetainScratchBytes);
  }
};

ZSTD_CCtx* NewCCtx() {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  if (!c) throw CodedError{codes::kCompression, "ZSTD_createCCtx: out of memory"};
  return c;
}
ZSTD_DCtx* NewDCtx() {
  ZSTD_DCtx* d = ZSTD_createDCtx();
  if (!d) throw CodedError{codes::kCompression, "ZSTD_createDCtx: out of memory"};
  return d;
}

struct CCtxOwner {
  ZSTD_CCtx* p = nullptr;
  ~CCtxOwner() { ZSTD_freeCCtx(p); }
};
struct DCtxOwner {
  ZSTD_DCtx* p = nullptr;
  ~DCtxOwner() { ZSTD_freeDCtx(p); }
};

// Runs `body`, turning CodedError / bad_alloc into the project's JS errors.
template <typename F>
auto Guarded(Napi::Env env, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const CodedError& e) {
    ThrowError(env, e.code, e.message);
  } catch (const std::bad_alloc&) {
    ThrowError(env, codes::kCompression, "out of memory");
  }
}

bool IsUint8Array(const Napi::Value& v) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
}

struct CompressArgs {
  std::vector<PartIn> parts;
  EncodeOptions options;
  Napi::Array keepAlive;  // the parts, referenced by async work
};

// compressBatch(parts: Uint8Array[], elementBytes: Uint8Array, level, store, workers)
CompressArgs ReadCompressArgs(const Napi::CallbackInfo& info, const std::string& fn) {
  Napi::Env env = info.Env();
  if (info.Length() != 5) {
    ThrowError(env, codes::kInvalidArg, fn + "(parts, elementBytes, level, store, workers): expected 5 arguments");
  }
  if (!info[0].IsArray()) ThrowError(env, codes::kInvalidArg, fn + "(parts): expected an array");
  auto arr = info[0].As<Napi::Array>();
  const uint32_t n = arr.Length();
  if (n > kMaxParts) ThrowError(env, codes::kInvalidArg, fn + "(parts): more than " + std::to_string(kMaxParts) + " parts");
  if (!IsUint8Array(info[1]) || info[1].As<Napi::Uint8Array>().ElementLength() != n) {
    ThrowError(env, codes::kInvalidArg, fn + "(elementBytes): expected a Uint8Array with one entry per part");
  }
  auto eb = info[1].As<Napi::Uint8Array>();
  if (!info[2].IsNumber()) ThrowError(env, codes::kInvalidArg, fn + "(level): expected a number");
  const double level = info[2].As<Napi::Number>().DoubleValue();
  if (!(level >= ZSTD_minCLevel() && level <= ZSTD_maxCLevel()) || level != static_cast<double>(static_cast<int>(level))) {
    ThrowError(env, codes::kInvalidArg, fn + "(level): expected an integer in [" + std::to_string(ZSTD_minCLevel()) + ", " +
                                            std::to_string(ZSTD_maxCLevel()) + "]");
  }
  if (!info[3].IsBoolean()) ThrowError(env, codes::kInvalidArg, fn + "(store): expected a boolean");
  const double workers = info[4].IsNumber() ? info[4].As<Napi::Number>().DoubleValue() : -1;
  if (!(workers >= 0 && workers <= kMaxWorkers) || workers != static_cast<double>(static_cast<int>(workers))) {
    ThrowError(env, codes::kInvalidArg, fn + "(workers): expected an integer in [0, " + std::to_string(kMaxWorkers) + "]");
  }
  CompressArgs a{{},
                 {static_cast<int>(level), info[3].As<Napi::Boolean>().Value(), static_cast<int>(workers)},
                 Napi::Array::New(env, n)};
  a.parts.reserve(n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value v = arr.Get(i);
    if (!IsUint8Array(v)) ThrowError(env, codes::kInvalidArg, fn + "(parts[" + std::to_string(i) + "]): expected a Uint8Array");
    auto part = v.As<Napi::Uint8Array>();
    a.parts.push_back({part.ByteLength() ? part.Data() : nullptr, part.ByteLength(), eb[i]});
    a.keepAlive.Set(i, v);
  }
  return a;
}

Napi::Uint8Array CopyToJs(Napi::Env env, const uint8_t* data, size_t bytes) {
  auto ab = Napi::ArrayBuffer::New(env, bytes);
  if (bytes) std::memcpy(ab.Data(), data, bytes);
  return Napi::Uint8Array::New(env, bytes, ab, 0);
}

Napi::Value JsCompressBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* state = static_cast<CodecState*>(info.Data());
  CompressArgs a = ReadCompressArgs(info, "compressBatch");
  size_t frameBytes = Guarded(env, [&] {
    if (!state->cctx) state->cctx = NewCCtx();
    return EncodeBatch(state->cctx, a.parts, a.options, state->input, state->out);
  });
  Napi::Uint8Array result = CopyToJs(env, state->out.data(), frameBytes);
  state->Trim();
  return result;
}

// An AsyncWorker that settles a promise: Run() does the off-thread work and
// may throw CodedError; the code travels to the rejection.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, const char* name)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Result() = 0;

  void Execute() final {
    try {
      Run();
    } catch (const CodedError& e) {
      code_ = e.code;
      SetError(e.message);
    } catch (const std::bad_alloc&) {
      code_ = codes::kCompression;
      SetError("out of memory");
    }
  }
  void OnOK() final { deferred_.Resolve(Result()); }
  void OnError(const Napi::Error& e) final { deferred_.Reject(MakeError(Env(), code_, e.Message()).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  const char* code_ = codes::kCompression;
};

class CompressWorker : public PromiseWorker {
 public:
  CompressWorker(Napi::Env env, CompressArgs&& a) : PromiseWorker(env, "vrep.compressBatch"), args_(std::move(a)) {
    keepAlive_ = Napi::Persistent(static_cast<Napi::Object>(args_.keepAlive));
  }

 protected:
  void Run() override {
    CCtxOwner cctx{NewCCtx()};
    ByteBuffer input;
    frameBytes_ = EncodeBatch(cctx.p, args_.parts, args_.options, input, out_);
  }
  Napi::Value Result() override { return CopyToJs(Env(), out_.data(), frameBytes_); }

 private:
  CompressArgs args_;
  Napi::ObjectReference keepAlive_;
  ByteBuffer out_;
  size_t frameBytes_ = 0;
};

Napi::Value JsCompressBatchAsync(const Napi::CallbackInfo& info) {
  CompressArgs a = ReadCompressArgs(info, "compressBatchAsync");
  auto* worker = new CompressWorker(info.Env(), std::move(a));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

struct DecompressArgs {
  Napi::Uint8Array frame;
  uint64_t maxBytes;
  // The caller's buffer to decode into (decompressBatchAsync's third
  // argument), or empty: a fresh ArrayBuffer then.
  Napi::Uint8Array output;
};

uint64_t ReadMaxBytes(const Napi::CallbackInfo& info, size_t i, const std::string& fn) {
  Napi::Env env = info.Env();
  if (!info[i].IsNumber()) ThrowError(env, codes::kInvalidArg, fn + "(maxBytes): expected a number");
  const double maxBytes = info[i].As<Napi::Number>().DoubleValue();
  if (!(maxBytes >= 0 && maxBytes <= 9007199254740991.0) || maxBytes != static_cast<double>(static_cast<uint64_t>(maxBytes))) {
    ThrowError(env, codes::kInvalidArg, fn + "(maxBytes): expected a non-negative integer");
  }
  return static_cast<uint64_t>(maxBytes);
}

// decompressBatch(frame: Uint8Array, maxBytes: number[, output: Uint8Array])
DecompressArgs ReadDecompressArgs(const Napi::CallbackInfo& info, const std::string& fn, bool intoAllowed) {
  Napi::Env env = info.Env();
  const bool into = intoAllowed && info.Length() == 3;
  if (info.Length() != 2 && !into) ThrowError(env, codes::kInvalidArg, fn + "(frame, maxBytes): expected 2 arguments");
  if (!IsUint8Array(info[0])) ThrowError(env, codes::kInvalidArg, fn + "(frame): expected a Uint8Array");
  DecompressArgs a{info[0].As<Napi::Uint8Array>(), ReadMaxBytes(info, 1, fn), Napi::Uint8Array()};
  if (into) {
    if (!IsUint8Array(info[2])) ThrowError(env, codes::kInvalidArg, fn + "(output): expected a Uint8Array");
    a.output = info[2].As<Napi::Uint8Array>();
  }
  return a;
}

// The output the caller gave must hold the decoded frame, and must not be
// the frame's memory: decoding reads the one while it writes the other.
uint8_t* CheckedOutput(Napi::Env env, DecompressArgs& a, const FrameHeader& h, const std::string& fn) {
  const size_t have = a.output.ByteLength();
  if (have < h.outputBytes) {
    ThrowError(env, codes::kInvalidArg,
               fn + "(output): " + std::to_string(have) + " bytes, the frame decodes to " + std::to_string(h.outputBytes));
  }
  uint8_t* out = a.output.Data();
  if (Overlaps(out, have, a.frame.ByteLength() ? a.frame.Data() : nullptr, a.frame.ByteLength())) {
    ThrowError(env, codes::kInvalidArg, fn + "(output): overlaps the frame");
  }
  if (reinterpret_cast<uintptr_t>(out) % kPartAlignBytes != 0) {
    ThrowError(env, codes::kInvalidArg, fn + "(output): must start at a multiple of " + std::to_string(kPartAlignBytes) + " bytes");
  }
  return out;
}

const uint8_t* FrameData(const Napi::Uint8Array& frame) {
  // An empty typed array may have no backing store; ParseHeader rejects it
  // on its length before reading.
  static const uint8_t kEmpty[1] = {0};
  return frame.ByteLength() ? frame.Data() : kEmpty;
}

// Where the decoded parts lie in the output: [offset, length] per part,
// flattened. The caller's output may be a SharedArrayBuffer's, which
// node-api cannot make views of: the caller makes them from these.
Napi::Array PartOffsets(Napi::Env env, const FrameHeader& h) {
  Napi::Array out = Napi::Array::New(env, size_t{h.partCount} * 2);
  uint64_t at = 0;
  for (uint32_t i = 0; i < h.partCount; i++) {
    at = (at + kPartAlignBytes - 1) & ~uint64_t{kPartAlignBytes - 1};
    out.Set(2 * i, Napi::Number::New(env, static_cast<double>(at)));
    out.Set(2 * i + 1, Napi::Number::New(env, h.partLengths[i]));
    at += h.partLengths[i];
  }
  return out;
}

// The decoded parts as views into `output`, at their aligned offsets.
Napi::Array PartViews(Napi::Env env, const FrameHeader& h, Napi::ArrayBuffer output) {
  Napi::Array parts = Napi::Array::New(env, h.partCount);
  uint64_t at = 0;
  for (uint32_t i = 0; i < h.partCount; i++) {
    const uint32_t len = h.partLengths[i];
    at = (at + kPartAlignBytes - 1) & ~uint64_t{kPartAlignBytes - 1};
    parts.Set(i, Napi::Uint8Array::New(env, len, output, at));
    at += len;
  }
  return parts;
}

Napi::Value JsDecompressBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* state = static_cast<CodecState*>(info.Data());
  DecompressArgs a = ReadDecompressArgs(info, "decompressBatch", false);
  const uint8_t* frame = FrameData(a.frame);
  FrameHeader h = Guarded(env, [&] { return ParseHeader(frame, a.frame.ByteLength(), a.maxBytes); });
  Napi::ArrayBuffer output = Napi::ArrayBuffer::New(env, h.outputBytes);
  Guarded(env, [&] {
    if (!state->dctx) state->dctx = NewDCtx();
    DecodeBatch(state->dctx, h, frame, static_cast<uint8_t*>(output.Data()), state->input);
  });
  // The views are built from the validated copy of the table.
  Napi::Array parts = PartViews(env, h, output);
  state->Trim();
  return parts;
}

class DecompressWorker : public PromiseWorker {
 public:
  // `output` is a fresh ArrayBuffer (the result is views into it), or the
  // caller's Uint8Array (`into`: the result is the parts' offsets in it).
  DecompressWorker(Napi::Env env, const DecompressArgs& a, FrameHeader&& h, Napi::Object output, uint8_t* outputData,
                   bool into)
      : PromiseWorker(env, "vrep.decompressBatch"),
        header_(std::move(h)),
        frameData_(FrameData(a.frame)),
        outputData_(outputData),
        into_(into) {
    frame_ = Napi::Persistent(static_cast<Napi::Object>(a.frame));
    output_ = Napi::Persistent(output);
  }

 protected:
  void Run() override {
    DCtxOwner dctx{NewDCtx()};
    ByteBuffer scratch;
    DecodeBatch(dctx.p, header_, frameData_, outputData_, scratch);
  }
  Napi::Value Result() override {
    if (into_) return PartOffsets(Env(), header_);
    return PartViews(Env(), header_, output_.Value().As<Napi::ArrayBuffer>());
  }

 private:
  FrameHeader header_;
  const uint8_t* frameData_;
  uint8_t* outputData_;
  bool into_;
  Napi::ObjectReference frame_;
  Napi::ObjectReference output_;
};

Napi::Value JsDecompressBatchAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DecompressArgs a = ReadDecompressArgs(info, "decompressBatchAsync", true);
  // Header checks (and the size limit) run here, before anything is
  // allocated; a bad frame rejects the promise like a bad payload does.
  FrameHeader h;
  try {
    h = ParseHeader(FrameData(a.frame), a.frame.ByteLength(), a.maxBytes);
  } catch (const CodedError& e) {
    auto rejected = Napi::Promise::Deferred::New(env);
    rejected.Reject(MakeError(env, e.code, e.message).Value());
    return rejected.Promise();
  }
  DecompressWorker* worker;
  if (!a.output.IsEmpty()) {
    uint8_t* out = CheckedOutput(env, a, h, "decompressBatchAsync");
    worker = new DecompressWorker(env, a, std::move(h), a.output, out, true);
  } else {
    Napi::ArrayBuffer output = Napi::ArrayBuffer::New(env, h.outputBytes);
    worker = new DecompressWorker(env, a, std::move(h), output, static_cast<uint8_t*>(output.Data()), false);
  }
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// inspectBatchFrame(frame[, maxBytes]) -> { partCount, totalBytes, outputBytes, payloadBytes, compressed }
Napi::Value JsInspectBatchFrame(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if ((info.Length() != 1 && info.Length() != 2) || !IsUint8Array(info[0])) {
    ThrowError(env, codes::kInvalidArg, "inspectBatchFrame(frame[, maxBytes]): expected a Uint8Array");
  }
  auto frame = info[0].As<Napi::Uint8Array>();
  const uint64_t maxBytes = info.Length() == 2 ? ReadMaxBytes(info, 1, "inspectBatchFrame") : kMaxBatchBytes;
  FrameHeader h = Guarded(env, [&] { return ParseHeader(FrameData(frame), frame.ByteLength(), maxBytes); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("partCount", Napi::Number::New(env, h.partCount));
  o.Set("totalBytes", Napi::Number::New(env, static_cast<double>(h.totalBytes)));
  o.Set("outputBytes", Napi::Number::New(env, static_cast<double>(h.outputBytes)));
  o.Set("payloadBytes", Napi::Number::New(env, h.payloadBytes));
  o.Set("compressed", Napi::Boolean::New(env, h.compressed));
  return o;
}

}  // namespace
}  // namespace batch

void InitBatchCodec(Napi::Env env, Napi::Object exports) {
  using namespace batch;
  auto* state = new CodecState();
  // Freed when this instance's environment goes away (thread exit).
  env.AddCleanupHook([state]() { delete state; });
  exports.Set("compressBatch", Napi::Function::New(env, JsCompressBatch, "compressBatch", state));
  exports.Set("compressBatchAsync", Napi::Function::New(env, JsCompressBatchAsync, "compressBatchAsync", state));
  exports.Set("decompressBatch", Napi::Function::New(env, JsDecompressBatch, "decompressBatch", state));
  exports.Set("decompressBatchAsync", Napi::Function::New(env, JsDecompressBatchAsync, "decompressBatchAsync", state));
  exports.Set("inspectBatchFrame", Napi::Function::New(env, JsInspectBatchFrame, "inspectBatchFrame"));
  Napi::Object limits = Napi::Object::New(env);
  limits.Set("maxParts", Napi::Number::New(env, kMaxParts));
  limits.Set("maxBatchBytes", Napi::Number::New(env, static_cast<double>(kMaxBatchBytes)));
  limits.Set("minLevel", Napi::Number::New(env, ZSTD_minCLevel()));
  limits.Set("maxLevel", Napi::Number::New(env, ZSTD_maxCLevel()));
  limits.Set("maxWorkers", Napi::Number::New(env, kMaxWorkers));
  limits.Set("partAlignBytes", Napi::Number::New(env, static_cast<double>(kPartAlignBytes)));
  limits.Set("shuffleElementBytes", Napi::Number::New(env, kShuffleElementBytes));
  exports.Set("batchCodecLimits", limits);
  InitShuffle(env, exports);
}

}  // namespace vrep
