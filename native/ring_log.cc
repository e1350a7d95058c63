// Lock-free circular log; see ring_log.h and docs/native/ring-log.md.
//
// Memory-ordering protocol (one writer W, readers R), in short:
//  - W publishes a record by writing its bytes and its index slot, then
//    storing headLsn = lsn + 1 with RELEASE. R loads headLsn with ACQUIRE, so
//    every record below the head it saw is fully visible to R.
//  - Before W overwrites bytes or a slot of an old record it advances
//    tailLsn past that record and issues a RELEASE fence, then writes. R
//    copies, issues an ACQUIRE fence, then re-loads tailLsn: if R's copy saw
//    any byte W wrote after the fence, the fences synchronize and R's re-load
//    sees the advanced tail (seqlock pattern, Boehm 2012). So a copy is
//    trusted only when tailLsn (re-loaded after the copy) <= the first LSN
//    copied; otherwise it is reported as evicted.
// The copies themselves are memcpy over bytes that may be concurrently
// overwritten; their result is discarded whenever that may have happened.
// (The C++ model calls such a race undefined; every seqlock in practice
// relies on plain copies being merely "garbage" on the hardware we target,
// x86-64 and AArch64, and so does this one.)
#include "ring_log.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <string>

#include "addon.h"
#include "errors.h"

namespace vrep {
namespace ring {

uint64_t ByteLength(uint64_t capacityBytes, uint64_t capacityRecords) {
  // Slots are 8-byte aligned already; round the index up to a cache line so
  // the data area starts on one.
  uint64_t index = (capacityRecords * kSlotBytes + 63) & ~uint64_t{63};
  return kHeaderBytes + index + capacityBytes;
}

namespace {

uint64_t DataOffset(uint64_t capacityRecords) {
  return kHeaderBytes + ((capacityRecords * kSlotBytes + 63) & ~uint64_t{63});
}

// Typed accessors for words of the shared buffer. All offsets are multiples
// of the word size and the buffer base is checked to be 8-byte aligned, so
// the __atomic builtins operate on naturally aligned words (lock-free on
// every target we build for).
inline uint64_t* U64(uint8_t* base, size_t off) { return reinterpret_cast<uint64_t*>(base + off); }
inline uint32_t* U32(uint8_t* base, size_t off) { return reinterpret_cast<uint32_t*>(base + off); }

// ---- argument checks (the TS wrapper checks first with precise messages;
// these guard direct calls of the raw binding) ----

[[noreturn]] void Invalid(Napi::Env env, const std::string& msg) { ThrowError(env, codes::kInvalidArg, msg); }

uint64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name, uint64_t min,
                uint64_t max) {
  Napi::Env env = info.Env();
  if (info.Length() <= i || !info[i].IsNumber()) {
    Invalid(env, std::string(fn) + "(" + name + "): expected a number");
  }
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || std::floor(v) != v) {
    Invalid(env, std::string(fn) + "(" + name + "): expected an integer");
  }
  if (v < static_cast<double>(min) || v > static_cast<double>(max)) {
    Invalid(env, std::string(fn) + "(" + name + "): out of range [" + std::to_string(min) + ", " +
                     std::to_string(max) + "]");
  }
  return static_cast<uint64_t>(v);
}

Napi::TypedArray ArgTyped(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name,
                          napi_typedarray_type type, const char* typeName) {
  if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != type) {
    Invalid(info.Env(), std::string(fn) + "(" + name + "): expected a " + typeName);
  }
  return info[i].As<Napi::TypedArray>();
}

Napi::Uint8Array ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  return ArgTyped(info, i, fn, name, napi_uint8_array, "Uint8Array").As<Napi::Uint8Array>();
}

Napi::Uint32Array ArgLengths(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  return ArgTyped(info, i, fn, name, napi_uint32_array, "Uint32Array").As<Napi::Uint32Array>();
}

// The ring must be a view of a SharedArrayBuffer: an ordinary ArrayBuffer
// could be detached (transferred) under our cached pointer. A typed array's
// buffer is either an ArrayBuffer or a SharedArrayBuffer, and
// napi_is_arraybuffer is false for the latter, so "not an ArrayBuffer" is the
// check that cannot be fooled by prototype tricks.
Napi::Uint8Array ArgRingView(const Napi::CallbackInfo& info, const char* fn) {
  Napi::Uint8Array view = ArgBytes(info, 0, fn, "buffer");
  if (view.ArrayBuffer().IsArrayBuffer()) {
    Invalid(info.Env(), std::string(fn) + "(buffer): expected a view of a SharedArrayBuffer");
  }
  if (reinterpret_cast<uintptr_t>(view.Data()) % 8 != 0) {
    Invalid(info.Env(), std::string(fn) + "(buffer): view must start at an 8-byte aligned offset");
  }
  return view;
}


Napi::Value RingByteLength(const Napi::CallbackInfo& info) {
  uint64_t capacityBytes = ArgInt(info, 0, "ringByteLength", "capacityBytes", 1, kMaxCapacityBytes);
  uint64_t capacityRecords = ArgInt(info, 1, "ringByteLength", "capacityRecords", 1, kMaxCapacityRecords);
  return Napi::Number::New(info.Env(), static_cast<double>(ByteLength(capacityBytes, capacityRecords)));
}

// Geometry both sides use, fixed when the object is built. Readers copy it out
// of the header once, after validating it, and never re-read it, so a later
// scribble on the header cannot steer an access out of bounds.
struct Geometry {
  uint8_t* base = nullptr;
  uint64_t capacityBytes = 0;
  uint64_t capacityRecords = 0;
  uint8_t* data = nullptr;
  uint64_t totalBytes = 0;

  uint8_t* Slot(uint64_t lsn) const { return base + kHeaderBytes + (lsn % capacityRecords) * kSlotBytes; }
  uint64_t* TailLsn() const { return U64(base, kOffTailLsn); }
  uint64_t* HeadLsn() const { return U64(base, kOffHeadLsn); }
  uint64_t* Truncations() const { return U64(base, kOffTruncations); }
};

// ---------------------------------------------------------------- writer

class RingWriter : public Napi::ObjectWrap<RingWriter> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "RingWriter",
                       {InstanceMethod<&RingWriter::Append>("append"),
                        InstanceMethod<&RingWriter::AppendBatch>("appendBatch"),
                        InstanceMethod<&RingWriter::TruncateAfter>("truncateAfter"),
                        InstanceMethod<&RingWriter::ResetTo>("resetTo")});
  }

  // new RingWriter(view, capacityBytes, capacityRecords, startLsn): formats a
  // zeroed shared buffer and becomes its only writer.
  explicit RingWriter(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingWriter>(info) {
    Napi::Env env = info.Env();
    const char* fn = "RingWriter";
    Napi::Uint8Array view = ArgRingView(info, fn);
    uint64_t capacityBytes = ArgInt(info, 1, fn, "capacityBytes", 1, kMaxCapacityBytes);
    uint64_t capacityRecords = ArgInt(info, 2, fn, "capacityRecords", 1, kMaxCapacityRecords);
    uint64_t startLsn = ArgInt(info, 3, fn, "startLsn", 1, kMaxLsn);
    uint64_t total = ByteLength(capacityBytes, capacityRecords);
    if (view.ByteLength() != total) {
      Invalid(env, std::string(fn) + "(buffer): expected " + std::to_string(total) + " bytes, got " +
                       std::to_string(view.ByteLength()));
    }
    uint8_t* base = view.Data();
    // One writer per ring: claim the buffer with a CAS so a second writer on
    // the same memory (say, from a worker) fails instead of corrupting it.
    // Relaxed is enough: the claim orders nothing, it only arbitrates.
    uint32_t expected = 0;
    if (!__atomic_compare_exchange_n(U32(base, kOffWriterClaim), &expected, 1u, false, __ATOMIC_RELAXED,
                                     __ATOMIC_RELAXED)) {
      Invalid(env, std::string(fn) + "(buffer): this ring already has a writer");
    }
    // Geometry words are written before the magic; readers check the magic
    // first (acquire), so seeing it guarantees they see these.
    __atomic_store_n(U32(base, kOffVersion), kVersion, __ATOMIC_RELAXED);
    __atomic_store_n(U32(base, kOffHeaderBytes), static_cast<uint32_t>(kHeaderBytes), __ATOMIC_RELAXED);
    __atomic_store_n(U32(base, kOffSlotBytes), static_cast<uint32_t>(kSlotBytes), __ATOMIC_RELAXED);
    __atomic_store_n(U32(base, kOffCapacityRecords), static_cast<uint32_t>(capacityRecords), __ATOMIC_RELAXED);
    __atomic_store_n(U64(base, kOffCapacityBytes), capacityBytes, __ATOMIC_RELAXED);
    __atomic_store_n(U64(base, kOffStartLsn), startLsn, __ATOMIC_RELAXED);
    __atomic_store_n(U64(base, kOffTotalBytes), total, __ATOMIC_RELAXED);
    __atomic_store_n(U64(base, kOffDataOffset), DataOffset(capacityRecords), __ATOMIC_RELAXED);
    __atomic_store_n(U64(base, kOffTailLsn), startLsn, __ATOMIC_RELAXED);
    __atomic_store_n(U64(base, kOffHeadLsn), startLsn, __ATOMIC_RELAXED);
    __atomic_store_n(U64(base, kOffTruncations), uint64_t{0}, __ATOMIC_RELAXED);
    // RELEASE: publishes every header word above to a reader that acquires
    // the magic.
    __atomic_store_n(U32(base, kOffMagic), kMagic, __ATOMIC_RELEASE);

    g_.base = base;
    g_.capacityBytes = capacityBytes;
    g_.capacityRecords = capacityRecords;
    g_.data = base + DataOffset(capacityRecords);
    g_.totalBytes = total;
    head_ = tail_ = startLsn;
    viewRef_ = Napi::Persistent(view);  // keeps the SharedArrayBuffer alive
  }

 private:
  // append(data) -> lsn
  Napi::Value Append(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Uint8Array data = ArgBytes(info, 0, "append", "data");
    size_t length = data.ByteLength();
    if (length > g_.capacityBytes) {
      ThrowError(env, codes::kRecordTooLarge,
                 "append(data): record of " + std::to_string(length) + " bytes exceeds capacityBytes " +
                     std::to_string(g_.capacityBytes));
    }
    if (head_ > kMaxLsn) ThrowError(env, codes::kInvalidArg, "append: LSN space exhausted (2^53 - 1)");
    uint64_t lsn = head_;
    Put(data.Data(), length);
    return Napi::Number::New(env, static_cast<double>(lsn));
  }

  // appendBatch(data, lengths) -> first lsn of the batch. All-or-nothing
  // with respect to argument errors: everything is checked before anything
  // is written.
  Napi::Value AppendBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Uint8Array data = ArgBytes(info, 0, "appendBatch", "data");
    Napi::Uint32Array lengths = ArgLengths(info, 1, "appendBatch", "lengths");
    size_t count = lengths.ElementLength();
    const uint32_t* lens = lengths.Data();
    uint64_t sum = 0;
    for (size_t i = 0; i < count; i++) {
      if (lens[i] > g_.capacityBytes) {
        ThrowError(env, codes::kRecordTooLarge,
                   "appendBatch(lengths): record " + std::to_string(i) + " of " + std::to_string(lens[i]) +
                       " bytes exceeds capacityBytes " + std::to_string(g_.capacityBytes));
      }
      sum += lens[i];
    }
    if (sum != data.ByteLength()) {
      Invalid(env, "appendBatch(lengths): lengths sum to " + std::to_string(sum) + " but data has " +
                       std::to_string(data.ByteLength()) + " bytes");
    }
    if (count > 0 && head_ + (count - 1) > kMaxLsn) {
      ThrowError(env, codes::kInvalidArg, "appendBatch: LSN space exhausted (2^53 - 1)");
    }
    uint64_t first = head_;
    const uint8_t* src = data.Data();
    uint64_t remaining = sum;
    for (size_t i = 0; i < count; i++) {
      // Each length is read once more and re-checked: `lengths` may be a
      // view of a SharedArrayBuffer another thread changes under us, and a
      // changed length must not make us read past `data`.
      uint32_t length = lens[i];
      if (length > remaining || length > g_.capacityBytes) {
        Invalid(env, "appendBatch(lengths): changed while appending (shared memory?); appended " +
                         std::to_string(i) + " of " + std::to_string(count) + " records");
      }
      Put(src, length);
      src += length;
      remaining -= length;
    }
    return Napi::Number::New(env, static_cast<double>(first));
  }


  // truncateAfter(lsn) -> number of records dropped. Drops every record
  // above `lsn` (a deposed leader's tail, a follower's divergent one); the
  // next append gets lsn + 1. `lsn` may be below the oldest record held:
  // the ring is then empty and continues at lsn + 1.
  //
  // Order (see the reader's side in DoRead): tail and head are stored first,
  // then the truncation count with RELEASE and a RELEASE fence, and only
  // then may later appends overwrite the dropped records' bytes and slots.
  // A reader that loads the count (ACQUIRE) before the head and sees the new
  // count therefore sees the lowered head; a reader that saw the old count
  // and copies bytes written after the fence sees the new count when it
  // re-loads it after its ACQUIRE fence, and reports kReadTruncated. The
  // dropped records' space is reused by later appends, but only after that
  // fence, so a copy that saw neither change holds records that were valid
  // before the truncation, and one that saw a rewrite sees the new count.
  Napi::Value TruncateAfter(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t lsn = ArgInt(info, 0, "truncateAfter", "lsn", 0, kMaxLsn);
    if (lsn + 1 >= head_) return Napi::Number::New(env, 0);
    uint64_t dropped = head_ - (lsn + 1);
    if (lsn >= tail_) {
      // Space of the dropped records is reused: the next record goes right
      // after record `lsn` (relaxed: the writer reads back its own slot).
      const uint8_t* slot = g_.Slot(lsn);
      dataHead_ = __atomic_load_n(reinterpret_cast<const uint64_t*>(slot + kSlotPos), __ATOMIC_RELAXED) +
                  __atomic_load_n(reinterpret_cast<const uint32_t*>(slot + kSlotLength), __ATOMIC_RELAXED);
    }
    head_ = lsn + 1;
    if (tail_ > head_) tail_ = head_;
    // Tail first, so firstLsn <= lastLsn + 1 holds for a reader loading tail
    // then head (bounds()) at every moment.
    __atomic_store_n(g_.TailLsn(), tail_, __ATOMIC_RELEASE);
    __atomic_store_n(g_.HeadLsn(), head_, __ATOMIC_RELEASE);
    truncations_++;
    __atomic_store_n(g_.Truncations(), truncations_, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    return Napi::Number::New(env, static_cast<double>(dropped));
  }

  // resetTo(nextLsn): empties the ring; the next append gets nextLsn, which
  // may be above the head (a follower that installed a snapshot continues
  // after it). Readers see it as a truncation (same ordering as above).
  Napi::Value ResetTo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t next = ArgInt(info, 0, "resetTo", "nextLsn", 1, kMaxLsn);
    head_ = tail_ = next;
    __atomic_store_n(g_.TailLsn(), tail_, __ATOMIC_RELEASE);
    __atomic_store_n(g_.HeadLsn(), head_, __ATOMIC_RELEASE);
    truncations_++;
    __atomic_store_n(g_.Truncations(), truncations_, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    return env.Undefined();
  }

  // Appends one record of `length` <= capacityBytes bytes.
  void Put(const uint8_t* src, uint64_t length) {
    const uint64_t lsn = head_;
    // Evict until the record fits in both capacities. tail_ < head_ guards
    // against a slot scribbled by someone else (the writer's own reads of
    // its slots are otherwise exact).
    uint64_t oldTail = tail_;
    if (head_ - tail_ >= g_.capacityRecords) tail_ = head_ - g_.capacityRecords + 1;
    while (tail_ < head_ && dataHead_ + length - TailPos() > g_.capacityBytes) tail_++;
    if (tail_ != oldTail) {
      // Readers must see the new tail before they can see any byte of the
      // evicted records being overwritten: store the tail, then a RELEASE
      // fence that orders it before every store below (pairs with the
      // ACQUIRE fence a reader issues after its copy, in DoRead). The store
      // itself is RELEASE too, so a reader that acquires this tail also sees
      // a head >= it (bounds() relies on firstLsn <= lastLsn + 1).
      __atomic_store_n(g_.TailLsn(), tail_, __ATOMIC_RELEASE);
      __atomic_thread_fence(__ATOMIC_RELEASE);
    }
    // Bytes, possibly split at the end of the data area. memmove: the source
    // may be any caller view, even (perversely) of the ring itself.
    uint64_t at = dataHead_ % g_.capacityBytes;
    uint64_t first = std::min<uint64_t>(length, g_.capacityBytes - at);
    if (first > 0) std::memmove(g_.data + at, src, first);
    if (length > first) std::memmove(g_.data, src + first, length - first);
    // Slot words: relaxed, published by the head store below. A reader racing
    // an overwrite of this slot is caught by the tail re-check.
    uint8_t* slot = g_.Slot(lsn);
    __atomic_store_n(U64(slot, kSlotLsn), lsn, __ATOMIC_RELAXED);
    __atomic_store_n(U64(slot, kSlotPos), dataHead_, __ATOMIC_RELAXED);
    __atomic_store_n(U32(slot, kSlotLength), static_cast<uint32_t>(length), __ATOMIC_RELAXED);
    dataHead_ += length;
    head_ = lsn + 1;
    // RELEASE: the bytes and slot above happen-before any reader that loads
    // this head value with ACQUIRE.
    __atomic_store_n(g_.HeadLsn(), head_, __ATOMIC_RELEASE);
  }

  // Byte position of the oldest live record (dataHead_ when empty).
  uint64_t TailPos() const {
    if (tail_ == head_) return dataHead_;
    // Relaxed: the writer reads back its own store.
    uint64_t pos = __atomic_load_n(U64(g_.Slot(tail_), kSlotPos), __ATOMIC_RELAXED);
    return pos <= dataHead_ ? pos : dataHead_;
  }

  Geometry g_;
  uint64_t head_ = 0;      // next LSN (the published headLsn)
  uint64_t tail_ = 0;      // oldest live LSN (the published tailLsn)
  uint64_t dataHead_ = 0;  // monotonic byte position of the next record
  uint64_t truncations_ = 0;  // the published truncation count
  Napi::Reference<Napi::Uint8Array> viewRef_;
};

// ---------------------------------------------------------------- reader

class RingReader : public Napi::ObjectWrap<RingReader> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "RingReader",
                       {InstanceMethod<&RingReader::Read>("read"), InstanceMethod<&RingReader::Peek>("peek")});
  }

  // new RingReader(view): attaches to a ring a writer has formatted,
  // validating every header field against the view.
  explicit RingReader(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingReader>(info) {
    Napi::Env env = info.Env();
    Napi::Uint8Array view = ArgRingView(info, "RingReader");
    uint8_t* base = view.Data();
    uint64_t length = view.ByteLength();
    auto bad = [&](const std::string& what) {
      ThrowError(env, codes::kCorruptFrame, "RingReader(buffer): not a ring buffer: " + what);
    };
    if (length < kHeaderBytes) bad("shorter than the header");
    // ACQUIRE: pairs with the writer's release store of the magic, making
    // the geometry words below visible.
    if (__atomic_load_n(U32(base, kOffMagic), __ATOMIC_ACQUIRE) != kMagic) bad("bad magic");
    if (__atomic_load_n(U32(base, kOffVersion), __ATOMIC_RELAXED) != kVersion) bad("unsupported version");
    if (__atomic_load_n(U32(base, kOffHeaderBytes), __ATOMIC_RELAXED) != kHeaderBytes) bad("bad header size");
    if (__atomic_load_n(U32(base, kOffSlotBytes), __ATOMIC_RELAXED) != kSlotBytes) bad("bad slot size");
    uint64_t capacityRecords = __atomic_load_n(U32(base, kOffCapacityRecords), __ATOMIC_RELAXED);
    uint64_t capacityBytes = __atomic_load_n(U64(base, kOffCapacityBytes), __ATOMIC_RELAXED);
    uint64_t startLsn = __atomic_load_n(U64(base, kOffStartLsn), __ATOMIC_RELAXED);
    uint64_t total = __atomic_load_n(U64(base, kOffTotalBytes), __ATOMIC_RELAXED);
    uint64_t dataOffset = __atomic_load_n(U64(base, kOffDataOffset), __ATOMIC_RELAXED);
    if (capacityRecords < 1 || capacityRecords > kMaxCapacityRecords) bad("capacityRecords out of range");
    if (capacityBytes < 1 || capacityBytes > kMaxCapacityBytes) bad("capacityBytes out of range");
    if (startLsn < 1 || startLsn > kMaxLsn) bad("startLsn out of range");
    if (dataOffset != DataOffset(capacityRecords)) bad("bad data offset");
    uint64_t expected = ByteLength(capacityBytes, capacityRecords);
    if (total != expected || length != expected) bad("sizes do not match the buffer");
    g_.base = base;
    g_.capacityBytes = capacityBytes;
    g_.capacityRecords = capacityRecords;
    g_.data = base + dataOffset;
    g_.totalBytes = total;
    viewRef_ = Napi::Persistent(view);
  }

 private:
  // read(from, to, out, outLengths) -> count >= 0, or one of kRead* (< 0).
  // Copies whole records from..min(to, last) into `out` back to back, their
  // lengths into outLengths, until either runs out of room.
  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t from = ArgInt(info, 0, "read", "from", 1, kMaxLsn);
    uint64_t to = ArgInt(info, 1, "read", "to", 1, kMaxLsn);
    if (to < from) Invalid(env, "read(to): must be >= from");
    Napi::Uint8Array out = ArgBytes(info, 2, "read", "out");
    Napi::Uint32Array outLengths = ArgLengths(info, 3, "read", "outLengths");
    if (outLengths.ElementLength() == 0) Invalid(env, "read(outLengths): must have room for one record");
    uint8_t* dst = out.Data();
    size_t room = out.ByteLength();
    uint32_t* lens = outLengths.Data();
    // The count is returned as an int32.
    size_t maxRecords = std::min<size_t>(outLengths.ElementLength(), INT32_MAX);
    if (Overlaps(dst, room, g_.base, g_.totalBytes) ||
        Overlaps(lens, maxRecords * sizeof(uint32_t), g_.base, g_.totalBytes)) {
      Invalid(env, "read(out): output buffers must not be views of the ring itself");
    }
    return Napi::Number::New(env, DoRead(from, to, dst, room, lens, maxRecords));
  }


  // peek(lsn, offset, out) -> bytes copied (out.length, or fewer when the
  // record ends first), or one of kRead* (< 0). Copies part of one record
  // (a header field, say) without copying the whole record; the same checks
  // as read() decide whether the copy can be trusted.
  Napi::Value Peek(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t lsn = ArgInt(info, 0, "peek", "lsn", 1, kMaxLsn);
    uint64_t offset = ArgInt(info, 1, "peek", "offset", 0, kMaxCapacityBytes);
    Napi::Uint8Array out = ArgBytes(info, 2, "peek", "out");
    uint8_t* dst = out.Data();
    size_t room = out.ByteLength();
    if (Overlaps(dst, room, g_.base, g_.totalBytes)) {
      Invalid(env, "peek(out): output buffer must not be a view of the ring itself");
    }
    uint64_t truncationsBefore = __atomic_load_n(g_.Truncations(), __ATOMIC_ACQUIRE);
    uint64_t head = __atomic_load_n(g_.HeadLsn(), __ATOMIC_ACQUIRE);
    uint64_t tail = __atomic_load_n(g_.TailLsn(), __ATOMIC_RELAXED);
    if (lsn < tail) return Napi::Number::New(env, kReadEvicted);
    if (lsn >= head) return Napi::Number::New(env, kReadNotYetWritten);
    const uint8_t* slot = g_.Slot(lsn);
    uint64_t slotLsn = __atomic_load_n(reinterpret_cast<const uint64_t*>(slot + kSlotLsn), __ATOMIC_RELAXED);
    uint64_t pos = __atomic_load_n(reinterpret_cast<const uint64_t*>(slot + kSlotPos), __ATOMIC_RELAXED);
    uint64_t length = __atomic_load_n(reinterpret_cast<const uint32_t*>(slot + kSlotLength), __ATOMIC_RELAXED);
    bool inconsistent = slotLsn != lsn || length > g_.capacityBytes;
    uint64_t n = 0;
    if (!inconsistent && offset < length) {
      n = std::min<uint64_t>(room, length - offset);
      uint64_t at = (pos + offset) % g_.capacityBytes;
      uint64_t first = std::min<uint64_t>(n, g_.capacityBytes - at);
      if (first > 0) std::memcpy(dst, g_.data + at, first);
      if (n > first) std::memcpy(dst + first, g_.data, n - first);
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint64_t tailAfter = __atomic_load_n(g_.TailLsn(), __ATOMIC_RELAXED);
    uint64_t truncationsAfter = __atomic_load_n(g_.Truncations(), __ATOMIC_RELAXED);
    if (truncationsAfter != truncationsBefore) return Napi::Number::New(env, kReadTruncated);
    if (tailAfter > lsn) return Napi::Number::New(env, kReadEvicted);
    if (inconsistent) return Napi::Number::New(env, kReadCorrupt);
    return Napi::Number::New(env, static_cast<double>(n));
  }

  int32_t DoRead(uint64_t from, uint64_t to, uint8_t* dst, size_t room, uint32_t* lens, size_t maxRecords) const {
    // ACQUIRE, before the head: a reader that sees a truncation's count sees
    // the head it lowered (the writer stores the head first; TruncateAfter).
    uint64_t truncationsBefore = __atomic_load_n(g_.Truncations(), __ATOMIC_ACQUIRE);
    // ACQUIRE: every record below this head is completely written and
    // visible (pairs with the writer's release store of headLsn).
    uint64_t head = __atomic_load_n(g_.HeadLsn(), __ATOMIC_ACQUIRE);
    // Relaxed: only a fast early answer; the verdict is the re-load below.
    uint64_t tail = __atomic_load_n(g_.TailLsn(), __ATOMIC_RELAXED);
    if (from < tail) return kReadEvicted;
    if (from >= head) return kReadNotYetWritten;
    uint64_t last = std::min(to, head - 1);
    size_t count = 0;
    size_t used = 0;
    bool tooSmall = false;
    bool inconsistent = false;
    for (uint64_t lsn = from; lsn <= last && count < maxRecords; lsn++) {
      const uint8_t* slot = g_.Slot(lsn);
      // Relaxed slot loads: if the slot is being rewritten for a newer LSN,
      // the tail re-check below rejects the whole copy.
      uint64_t slotLsn = __atomic_load_n(reinterpret_cast<const uint64_t*>(slot + kSlotLsn), __ATOMIC_RELAXED);
      uint64_t pos = __atomic_load_n(reinterpret_cast<const uint64_t*>(slot + kSlotPos), __ATOMIC_RELAXED);
      uint64_t length = __atomic_load_n(reinterpret_cast<const uint32_t*>(slot + kSlotLength), __ATOMIC_RELAXED);
      if (slotLsn != lsn || length > g_.capacityBytes) {
        inconsistent = true;
        break;
      }
      if (length > room - used) {
        tooSmall = count == 0;
        break;
      }
      // Bounded regardless of what the slot says: at < capacityBytes and
      // length <= capacityBytes, split at the end of the data area.
      uint64_t at = pos % g_.capacityBytes;
      uint64_t first = std::min<uint64_t>(length, g_.capacityBytes - at);
      if (first > 0) std::memcpy(dst + used, g_.data + at, first);
      if (length > first) std::memcpy(dst + used + first, g_.data, length - first);
      lens[count++] = static_cast<uint32_t>(length);
      used += length;
    }
    // ACQUIRE fence, then re-load the tail: if any byte or slot word copied
    // above was written by the writer after it advanced the tail (and issued
    // its release fence), this load sees that advanced tail. A tail still <=
    // from therefore proves nothing copied was overwritten.
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint64_t tailAfter = __atomic_load_n(g_.TailLsn(), __ATOMIC_RELAXED);
    // The same fence covers the truncation count: bytes written by an
    // append after a truncation are only written after its release fence.
    uint64_t truncationsAfter = __atomic_load_n(g_.Truncations(), __ATOMIC_RELAXED);
    if (truncationsAfter != truncationsBefore) return kReadTruncated;
    if (tailAfter > from) return kReadEvicted;
    // A slot that disagrees while the tail says it is live: the memory was
    // written by someone other than the writer.
    if (inconsistent) return kReadCorrupt;
    if (tooSmall) return kReadBufferTooSmall;
    return static_cast<int32_t>(count);
  }

  Geometry g_;
  Napi::Reference<Napi::Uint8Array> viewRef_;
};

}  // namespace
}  // namespace ring

void InitRing(Napi::Env env, Napi::Object exports) {
  AddonState& state = AddonState::Of(env);
  Napi::Function writer = ring::RingWriter::Define(env);
  Napi::Function reader = ring::RingReader::Define(env);
  state.constructors["RingWriter"] = Napi::Persistent(writer);
  state.constructors["RingReader"] = Napi::Persistent(reader);
  exports.Set("RingWriter", writer);
  exports.Set("RingReader", reader);
  exports.Set("ringByteLength", Napi::Function::New(env, ring::RingByteLength, "ringByteLength"));
}

}  // namespace vrep
