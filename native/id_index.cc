// IdIndex: a collection's point ids -> row numbers, outside the JS heap.
//
// Why not a JS Map: a Map holds at most 2^24 entries (a collection's
// 16,777,217th point threw RangeError inside apply, after its record was
// durable), every insert hashes a fresh JS string, a doubling rehashes on
// the event loop (26-106 ms at 500k ids, measured), and a million entries
// are tens of MB the garbage collector marks again and again.
//
// Layout: the rows are dense (0..size-1, as the collection's), each with its
// id's UTF-8 bytes in one arena, the offset, length and hash. An open
// addressing table (linear probing, at most 3/4 full, backward-shift
// deletion, so no tombstones) holds {hash, row + 1} per slot: growing moves
// 8-byte slots by their stored hash and never touches an id. Deleting swaps
// the last row into the hole, as the collection does with its vectors.
// Hashes are SipHash-1-3 under a random key per index: ids come from
// clients, and a predictable hash would let one make every insert collide.
#include <napi.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "addon.h"
#include "errors.h"
#include "simdjson.h"

namespace vrep {
namespace {

// Rows are handed back in Int32Arrays.
constexpr uint32_t kMaxRows = 0x7FFFFFFF;
// Longer than any id the API or a record allows (1024 UTF-8 bytes); a
// guard here, not the rule.
constexpr size_t kMaxIdBytes = 64 * 1024;
constexpr size_t kMinSlots = 16;
// The arena is compacted once deleted ids are more than half of it.
constexpr size_t kCompactMinGarbageBytes = 1 << 20;

inline uint64_t Rotl(uint64_t x, int bits) { return (x << bits) | (x >> (64 - bits)); }

// SipHash-1-3 (Aumasson and Bernstein): one compression round per 8-byte
// word, three finalization rounds. Words are read in host order; the hash
// never leaves the process, so it only has to be consistent.
uint64_t SipHash13(uint64_t k0, uint64_t k1, const uint8_t* in, size_t length) {
  uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
  uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
  uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
  uint64_t v3 = 0x7465646279746573ULL ^ k1;
  auto round = [&]() {
    v0 += v1;
    v1 = Rotl(v1, 13);
    v1 ^= v0;
    v0 = Rotl(v0, 32);
    v2 += v3;
    v3 = Rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = Rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = Rotl(v1, 17);
    v1 ^= v2;
    v2 = Rotl(v2, 32);
  };
  const size_t whole = length & ~size_t{7};
  for (size_t i = 0; i < whole; i += 8) {
    uint64_t word;
    std::memcpy(&word, in + i, 8);
    v3 ^= word;
    round();
    v0 ^= word;
  }
  uint64_t last = static_cast<uint64_t>(length) << 56;
  for (size_t i = 0; i < (length & 7); i++) last |= static_cast<uint64_t>(in[whole + i]) << (8 * i);
  v3 ^= last;
  round();
  v0 ^= last;
  v2 ^= 0xff;
  round();
  round();
  round();
  return v0 ^ v1 ^ v2 ^ v3;
}

class Table {
 public:
  Table() : slots_(kMinSlots, Slot{0, 0}), mask_(kMinSlots - 1) {
    std::random_device random;
    k0_ = (static_cast<uint64_t>(random()) << 32) ^ random();
    k1_ = (static_cast<uint64_t>(random()) << 32) ^ random();
  }

  uint32_t Size() const { return static_cast<uint32_t>(offsets_.size()); }

  size_t MemoryBytes() const {
    return slots_.capacity() * sizeof(Slot) + arena_.capacity() + offsets_.capacity() * sizeof(uint64_t) +
           lengths_.capacity() * sizeof(uint32_t) + hashes_.capacity() * sizeof(uint32_t);
  }

  uint32_t Hash(const uint8_t* key, size_t length) const {
    return static_cast<uint32_t>(SipHash13(k0_, k1_, key, length));
  }

  // Starts loading the home slot of `hash`: a batch hashes its ids first and
  // prefetches, so the table's cache misses overlap instead of queueing.
  void Prefetch(uint32_t hash) const {
#if defined(__GNUC__)
    __builtin_prefetch(&slots_[hash & mask_]);
#endif
  }

  // The row of `key` (whose Hash is `hash`), or -1.
  int64_t Find(const uint8_t* key, size_t length, uint32_t hash) const {
    size_t at = Probe(key, length, hash);
    return slots_[at].rowPlus1 == 0 ? -1 : static_cast<int64_t>(slots_[at].rowPlus1) - 1;
  }

  // The row of `key` (hash `hash`); an absent key becomes row Size(). False (nothing
  // changed) when the index holds kMaxRows ids already.
  bool Upsert(const uint8_t* key, size_t length, uint32_t hash, uint32_t* row) {
    size_t at = Probe(key, length, hash);
    if (slots_[at].rowPlus1 != 0) {
      *row = slots_[at].rowPlus1 - 1;
      return true;
    }
    if (Size() >= kMaxRows) return false;
    if ((static_cast<uint64_t>(Size()) + 1) * 4 > static_cast<uint64_t>(slots_.size()) * 3) {
      Resize(slots_.size() * 2);
      at = Probe(key, length, hash);
    }
    *row = Size();
    offsets_.push_back(arena_.size());
    lengths_.push_back(static_cast<uint32_t>(length));
    hashes_.push_back(hash);
    arena_.insert(arena_.end(), key, key + length);
    slots_[at] = Slot{hash, *row + 1};
    return true;
  }

  const uint8_t* KeyOf(uint32_t row, uint32_t* length) const {
    *length = lengths_[row];
    return arena_.data() + offsets_[row];
  }

  // Removes row `row`'s id; the last row's id, if another, takes row `row`.
  void RemoveSwap(uint32_t row) {
    uint32_t last = Size() - 1;
    DeleteSlot(SlotOfRow(row));
    garbageBytes_ += lengths_[row];
    if (row != last) {
      slots_[SlotOfRow(last)].rowPlus1 = row + 1;
      offsets_[row] = offsets_[last];
      lengths_[row] = lengths_[last];
      hashes_[row] = hashes_[last];
    }
    offsets_.pop_back();
    lengths_.pop_back();
    hashes_.pop_back();
    // Memory follows deletes: a table 1/8 full halves, per-row fields 1/4 used shrink, a
    // mostly dead arena is rewritten.
    if (slots_.size() > kMinSlots && static_cast<uint64_t>(Size()) * 8 < slots_.size()) Resize(slots_.size() / 2);
    if (offsets_.capacity() > 1024 && static_cast<uint64_t>(Size()) * 4 < offsets_.capacity()) {
      offsets_.shrink_to_fit();
      lengths_.shrink_to_fit();
      hashes_.shrink_to_fit();
    }
    if (garbageBytes_ >= kCompactMinGarbageBytes && garbageBytes_ * 2 > arena_.size()) Compact();
  }

 private:
  struct Slot {
    uint32_t hash;
    uint32_t rowPlus1;  // 0: empty
  };

  // The slot holding `key`, or the empty slot where it would go.
  size_t Probe(const uint8_t* key, size_t length, uint32_t hash) const {
    size_t at = hash & mask_;
    for (;;) {
      const Slot& slot = slots_[at];
      if (slot.rowPlus1 == 0) return at;
      if (slot.hash == hash) {
        uint32_t row = slot.rowPlus1 - 1;
        if (lengths_[row] == length && (length == 0 || std::memcmp(arena_.data() + offsets_[row], key, length) == 0))
          return at;
      }
      at = (at + 1) & mask_;
    }
  }

  size_t SlotOfRow(uint32_t row) const {
    size_t at = hashes_[row] & mask_;
    while (slots_[at].rowPlus1 != row + 1) at = (at + 1) & mask_;
    return at;
  }

  // Backward-shift deletion: later slots of the same probe run move up, so
  // every key stays reachable from its home slot without tombstones.
  void DeleteSlot(size_t hole) {
    size_t at = hole;
    for (;;) {
      at = (at + 1) & mask_;
      if (slots_[at].rowPlus1 == 0) break;
      size_t home = slots_[at].hash & mask_;
      if (((at - home) & mask_) >= ((at - hole) & mask_)) {
        slots_[hole] = slots_[at];
        hole = at;
      }
    }
    slots_[hole] = Slot{0, 0};
  }

  void Resize(size_t slotCount) {
    std::vector<Slot> old(slotCount, Slot{0, 0});
    old.swap(slots_);
    mask_ = slotCount - 1;
    for (const Slot& slot : old) {
      if (slot.rowPlus1 == 0) continue;
      size_t at = slot.hash & mask_;
      while (slots_[at].rowPlus1 != 0) at = (at + 1) & mask_;
      slots_[at] = slot;
    }
  }

  void Compact() {
    std::vector<uint8_t> arena;
    arena.reserve(arena_.size() - garbageBytes_);
    for (size_t row = 0; row < offsets_.size(); row++) {
      const uint8_t* key = arena_.data() + offsets_[row];
      offsets_[row] = arena.size();
      arena.insert(arena.end(), key, key + lengths_[row]);
    }
    arena_.swap(arena);
    arena_.shrink_to_fit();
    garbageBytes_ = 0;
  }

  std::vector<Slot> slots_;
  size_t mask_;
  std::vector<uint8_t> arena_;
  std::vector<uint64_t> offsets_;
  std::vector<uint32_t> lengths_;
  std::vector<uint32_t> hashes_;
  uint64_t garbageBytes_ = 0;
  uint64_t k0_ = 0;
  uint64_t k1_ = 0;
};

class IdIndex : public Napi::ObjectWrap<IdIndex> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "IdIndex",
                       {InstanceMethod<&IdIndex::UpsertMany>("upsert"),
                        InstanceMethod<&IdIndex::Get>("get"),
                        InstanceMethod<&IdIndex::RemoveSwap>("removeSwap"),
                        InstanceMethod<&IdIndex::IdAt>("idAt"), InstanceMethod<&IdIndex::Pack>("pack"),
                        InstanceMethod<&IdIndex::UpsertPacked>("upsertPacked"),
                        InstanceAccessor<&IdIndex::SizeGetter>("size"),
                        InstanceAccessor<&IdIndex::MemoryBytesGetter>("memoryBytes")});
  }

  explicit IdIndex(const Napi::CallbackInfo& info) : Napi::ObjectWrap<IdIndex>(info), scratch_(4096) {}

 private:
  // upsert(ids: string[], rows: Int32Array): number. Row of every id, new
  // ids taking the next rows in order (a repeated id gets its first row).
  // Stops at the first id that is not a string or too long, or when the
  // index is full, throwing; the ids before it stay in.
  Napi::Value UpsertMany(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto [ids, count, rows] = Batch(info, "upsert");
    ForEachId(env, ids, count, "upsert", [&](uint32_t i, const uint8_t* key, size_t length, uint32_t hash) {
      uint32_t row = 0;
      if (!table_.Upsert(key, length, hash, &row)) {
        ThrowError(env, codes::kInvalidArg,
                   "IdIndex.upsert: the index holds " + std::to_string(kMaxRows) + " ids, its limit");
      }
      rows[i] = static_cast<int32_t>(row);
    });
    return Napi::Number::New(env, table_.Size());
  }

  // upsertPacked(lengths: Uint8Array, bytes: Uint8Array, rows: Int32Array):
  // number. As upsert, for ids packed as pack() gives them (u32 LE lengths,
  // then the bytes), so a snapshot loads without a JS string per id. The
  // bytes must be UTF-8 and exactly the lengths' sum (checked first; nothing
  // goes in otherwise).
  Napi::Value UpsertPacked(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 3 || !IsU8(info[0]) || !IsU8(info[1]) || !info[2].IsTypedArray() ||
        info[2].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      ThrowError(env, codes::kInvalidArg,
                 "IdIndex.upsertPacked(lengths, bytes, rows): two Uint8Arrays and an Int32Array");
    }
    Napi::Uint8Array lengthBytes = info[0].As<Napi::Uint8Array>();
    Napi::Uint8Array bytes = info[1].As<Napi::Uint8Array>();
    Napi::Int32Array rows = info[2].As<Napi::Int32Array>();
    if (lengthBytes.ByteLength() % 4 != 0) {
      ThrowError(env, codes::kInvalidArg, "IdIndex.upsertPacked: lengths is not a whole number of u32");
    }
    size_t count = lengthBytes.ByteLength() / 4;
    if (rows.ElementLength() < count) {
      ThrowError(env, codes::kInvalidArg,
                 "IdIndex.upsertPacked: rows holds " + std::to_string(rows.ElementLength()) + ", ids are " +
                     std::to_string(count));
    }
    const uint8_t* lengthData = lengthBytes.Data();
    auto lengthAt = [&](size_t i) {
      const uint8_t* p = lengthData + 4 * i;
      return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
             static_cast<uint32_t>(p[3]) << 24;
    };
    uint64_t total = 0;
    for (size_t i = 0; i < count; i++) {
      uint32_t length = lengthAt(i);
      if (length > kMaxIdBytes) {
        ThrowError(env, codes::kInvalidArg,
                   "IdIndex.upsertPacked: id " + std::to_string(i) + " is " + std::to_string(length) +
                       " bytes, limit " + std::to_string(kMaxIdBytes));
      }
      total += length;
    }
    if (total != bytes.ByteLength()) {
      ThrowError(env, codes::kInvalidArg,
                 "IdIndex.upsertPacked: the lengths add up to " + std::to_string(total) + " bytes, bytes holds " +
                     std::to_string(bytes.ByteLength()));
    }
    const uint8_t* data = bytes.Data();
    if (!simdjson::validate_utf8(reinterpret_cast<const char*>(data), bytes.ByteLength())) {
      ThrowError(env, codes::kInvalidArg, "IdIndex.upsertPacked: the ids are not UTF-8");
    }
    constexpr size_t kGroup = 16;
    uint32_t hashes[kGroup];
    size_t at = 0;
    int32_t* out = rows.Data();
    for (size_t start = 0; start < count; start += kGroup) {
      size_t n = std::min(kGroup, count - start);
      size_t groupAt = at;
      for (size_t j = 0; j < n; j++) {
        uint32_t length = lengthAt(start + j);
        hashes[j] = table_.Hash(data + groupAt, length);
        table_.Prefetch(hashes[j]);
        groupAt += length;
      }
      for (size_t j = 0; j < n; j++) {
        uint32_t length = lengthAt(start + j);
        uint32_t row = 0;
        if (!table_.Upsert(data + at, length, hashes[j], &row)) {
          ThrowError(env, codes::kInvalidArg,
                     "IdIndex.upsertPacked: the index holds " + std::to_string(kMaxRows) + " ids, its limit");
        }
        out[start + j] = static_cast<int32_t>(row);
        at += length;
      }
    }
    return Napi::Number::New(env, table_.Size());
  }

  static bool IsU8(const Napi::Value& value) {
    return value.IsTypedArray() && value.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
  }

  // Calls visit(i, bytes, length, hash) for ids[0..count) in order, reading
  // and hashing them kGroup at a time (prefetching their slots) first. An id
  // that cannot be read throws after the ids before it were visited.
  template <typename Visit>
  void ForEachId(Napi::Env env, napi_value ids, uint32_t count, const char* method, Visit visit) {
    constexpr uint32_t kGroup = 16;
    size_t offsets[kGroup];
    size_t lengths[kGroup];
    uint32_t hashes[kGroup];
    for (uint32_t start = 0; start < count; start += kGroup) {
      uint32_t n = std::min(kGroup, count - start);
      group_.clear();
      uint32_t read = 0;
      std::string failure;
      for (; read < n; read++) {
        napi_value id;
        if (napi_get_element(env, ids, start + read, &id) != napi_ok) throw Napi::Error::New(env);
        size_t length = 0;
        failure = ReadString(env, id, &length);
        if (!failure.empty()) break;
        offsets[read] = group_.size();
        lengths[read] = length;
        group_.insert(group_.end(), scratch_.data(), scratch_.data() + length);
        hashes[read] = table_.Hash(scratch_.data(), length);
        table_.Prefetch(hashes[read]);
      }
      for (uint32_t j = 0; j < read; j++) visit(start + j, group_.data() + offsets[j], lengths[j], hashes[j]);
      if (!failure.empty()) {
        ThrowError(env, codes::kInvalidArg,
                   std::string("IdIndex.") + method + ": ids[" + std::to_string(start + read) + "] " + failure);
      }
    }
  }

  // get(id: string): number, the row or -1.
  Napi::Value Get(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 1) ThrowError(env, codes::kInvalidArg, "IdIndex.get(id): one argument");
    size_t length = 0;
    std::string failure = ReadString(env, info[0], &length);
    if (!failure.empty()) ThrowError(env, codes::kInvalidArg, "IdIndex.get: id " + failure);
    uint32_t hash = table_.Hash(scratch_.data(), length);
    return Napi::Number::New(env, static_cast<double>(table_.Find(scratch_.data(), length, hash)));
  }

  // removeSwap(row): drops row `row`'s id; the last row's id moves to `row`.
  Napi::Value RemoveSwap(const Napi::CallbackInfo& info) {
    table_.RemoveSwap(RowArg(info, 0, "removeSwap", table_.Size()));
    return info.Env().Undefined();
  }

  // idAt(row): string, the id of `row`.
  Napi::Value IdAt(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t row = RowArg(info, 0, "idAt", table_.Size());
    uint32_t length = 0;
    const uint8_t* key = table_.KeyOf(row, &length);
    return Napi::String::New(env, reinterpret_cast<const char*>(key), length);
  }

  // pack(fromRow, count): [lengths, bytes], copies of the ids of rows
  // [fromRow, fromRow + count): u32 little-endian UTF-8 byte lengths, and
  // the bytes back to back (a snapshot chunk's id parts, as written).
  Napi::Value Pack(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t size = table_.Size();
    uint32_t from = RowArg(info, 0, "pack", size + 1);
    uint32_t count = RowArg(info, 1, "pack", size - from + 1);
    size_t total = 0;
    for (uint32_t row = from; row < from + count; row++) {
      uint32_t length = 0;
      table_.KeyOf(row, &length);
      total += length;
    }
    Napi::Uint8Array lengths = Napi::Uint8Array::New(env, size_t{count} * 4);
    Napi::Uint8Array bytes = Napi::Uint8Array::New(env, total);
    uint8_t* lengthOut = lengths.Data();
    uint8_t* bytesOut = bytes.Data();
    for (uint32_t row = from; row < from + count; row++) {
      uint32_t length = 0;
      const uint8_t* key = table_.KeyOf(row, &length);
      for (int b = 0; b < 4; b++) *lengthOut++ = static_cast<uint8_t>(length >> (8 * b));
      if (length > 0) std::memcpy(bytesOut, key, length);
      bytesOut += length;
    }
    Napi::Array out = Napi::Array::New(env, 2);
    out.Set(uint32_t{0}, lengths);
    out.Set(uint32_t{1}, bytes);
    return out;
  }

  // Argument `i` as an integer in [0, limit).
  static uint32_t RowArg(const Napi::CallbackInfo& info, size_t i, const char* method, uint64_t limit) {
    Napi::Env env = info.Env();
    double value = info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : -1;
    if (!(value >= 0 && value < static_cast<double>(limit) && value == static_cast<double>(static_cast<uint32_t>(value)))) {
      ThrowError(env, codes::kInvalidArg,
                 std::string("IdIndex.") + method + ": argument " + std::to_string(i + 1) +
                     " must be an integer in [0, " + std::to_string(limit) + ")");
    }
    return static_cast<uint32_t>(value);
  }

  Napi::Value SizeGetter(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), table_.Size()); }

  Napi::Value MemoryBytesGetter(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(table_.MemoryBytes()));
  }

  struct BatchArgs {
    napi_value ids;
    uint32_t count;
    int32_t* rows;
  };

  // (ids: string[], rows: Int32Array with room for every id); TS checks these too.
  static BatchArgs Batch(const Napi::CallbackInfo& info, const char* method) {
    Napi::Env env = info.Env();
    auto name = [&]() { return std::string("IdIndex.") + method; };
    if (info.Length() != 2 || !info[0].IsArray() || !info[1].IsTypedArray() ||
        info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      ThrowError(env, codes::kInvalidArg, name() + "(ids, rows): an array of strings and an Int32Array");
    }
    Napi::Array ids = info[0].As<Napi::Array>();
    Napi::Int32Array rows = info[1].As<Napi::Int32Array>();
    if (rows.ElementLength() < ids.Length()) {
      ThrowError(env, codes::kInvalidArg,
                 name() + ": rows holds " + std::to_string(rows.ElementLength()) + ", ids are " +
                     std::to_string(ids.Length()));
    }
    return BatchArgs{ids, ids.Length(), rows.Data()};
  }

  // The UTF-8 bytes of a string into scratch_ (lone surrogates become
  // U+FFFD, as when a record is encoded, so ids match their logged form).
  // Returns "" or what is wrong with the value ("is not a string").
  std::string ReadString(Napi::Env env, napi_value value, size_t* length) {
    napi_status status = napi_get_value_string_utf8(env, value, reinterpret_cast<char*>(scratch_.data()),
                                                    scratch_.size(), length);
    if (status == napi_string_expected) return "is not a string";
    if (status != napi_ok) throw Napi::Error::New(env);
    if (*length + 1 < scratch_.size()) return "";
    // It may not have fitted: measure, and read it again into room enough.
    if (napi_get_value_string_utf8(env, value, nullptr, 0, length) != napi_ok) throw Napi::Error::New(env);
    if (*length > kMaxIdBytes) {
      return "is " + std::to_string(*length) + " UTF-8 bytes, limit " + std::to_string(kMaxIdBytes);
    }
    scratch_.resize(*length + 1);
    if (napi_get_value_string_utf8(env, value, reinterpret_cast<char*>(scratch_.data()), scratch_.size(),
                                   length) != napi_ok) {
      throw Napi::Error::New(env);
    }
    return "";
  }

  Table table_;
  std::vector<uint8_t> scratch_;
  // The bytes of the ids of one group (ForEachId).
  std::vector<uint8_t> group_;
};

}  // namespace

void InitIdIndex(Napi::Env env, Napi::Object exports) {
  AddonState& state = AddonState::Of(env);
  Napi::Function index = IdIndex::Define(env);
  state.constructors["IdIndex"] = Napi::Persistent(index);
  exports.Set("IdIndex", index);
}

}  // namespace vrep
