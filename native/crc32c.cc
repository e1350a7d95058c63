#include "crc32c.h"

#include <cstring>
#include <string>

#include "addon.h"
#include "errors.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <nmmintrin.h>
#define VREP_CRC32C_X64 1
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
// Only when the compiler already targets the CRC extension (e.g. Apple
// silicon, -march=armv8.1-a and later): no run-time probe needed then.
#include <arm_acle.h>
#define VREP_CRC32C_ARM 1
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "crc32c.cc assumes a little-endian host (the 8-byte loads)"
#endif

namespace vrep {
namespace {

constexpr uint32_t kPolyReflected = 0x82F63B78u;

struct SliceTables {
  uint32_t t[8][256];
};

// t[0] is the byte-at-a-time table; t[k][b] is the CRC of byte b followed by
// k zero bytes, which lets the loop fold 8 input bytes per step.
constexpr SliceTables MakeSliceTables() {
  SliceTables x{};
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; bit++) crc = (crc & 1) ? (crc >> 1) ^ kPolyReflected : crc >> 1;
    x.t[0][i] = crc;
  }
  for (int k = 1; k < 8; k++) {
    for (uint32_t i = 0; i < 256; i++) x.t[k][i] = (x.t[k - 1][i] >> 8) ^ x.t[0][x.t[k - 1][i] & 0xff];
  }
  return x;
}

constexpr SliceTables kTables = MakeSliceTables();

uint32_t Crc32cSlice8(uint32_t crc, const uint8_t* p, size_t n) {
  const auto& t = kTables.t;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    v ^= crc;
    crc = t[7][v & 0xff] ^ t[6][(v >> 8) & 0xff] ^ t[5][(v >> 16) & 0xff] ^ t[4][(v >> 24) & 0xff] ^
          t[3][(v >> 32) & 0xff] ^ t[2][(v >> 40) & 0xff] ^ t[1][(v >> 48) & 0xff] ^ t[0][v >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return crc;
}

#if VREP_CRC32C_X64
// The crc32 instruction has a latency of 3 cycles and a throughput of 1 per
// cycle, so three independent streams over adjacent blocks run ~3x faster
// than one; their registers are then combined. A CRC register is linear:
//   R(r, A||B) = Shift(R(r, A), |B|) ^ R(0, B)
// where Shift(v, n) advances v over n zero bytes, itself linear in v and so a
// lookup in 4 tables of 256 (one per byte of v).
constexpr size_t kStreamBytes = 256;

struct ShiftTables {
  uint32_t t[4][256];
};

constexpr uint32_t ShiftOverZeros(uint32_t v, size_t zeroBytes) {
  for (size_t i = 0; i < zeroBytes; i++) v = kTables.t[0][v & 0xff] ^ (v >> 8);
  return v;
}

constexpr ShiftTables MakeShiftTables(size_t zeroBytes) {
  uint32_t basis[32] = {};
  for (int bit = 0; bit < 32; bit++) basis[bit] = ShiftOverZeros(uint32_t{1} << bit, zeroBytes);
  ShiftTables s{};
  for (int j = 0; j < 4; j++) {
    for (uint32_t b = 0; b < 256; b++) {
      uint32_t v = 0;
      for (int k = 0; k < 8; k++) {
        if ((b >> k) & 1) v ^= basis[8 * j + k];
      }
      s.t[j][b] = v;
    }
  }
  return s;
}

constexpr ShiftTables kShiftOne = MakeShiftTables(kStreamBytes);
constexpr ShiftTables kShiftTwo = MakeShiftTables(2 * kStreamBytes);

inline uint32_t Shift(const ShiftTables& s, uint32_t v) {
  return s.t[0][v & 0xff] ^ s.t[1][(v >> 8) & 0xff] ^ s.t[2][(v >> 16) & 0xff] ^ s.t[3][v >> 24];
}

inline uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// The addon is built for baseline x86-64, so only this function may use
// SSE4.2; it is called only after the CPU check below.
__attribute__((target("sse4.2"))) uint32_t Crc32cSse42(uint32_t crc, const uint8_t* p, size_t n) {
  while (n >= 3 * kStreamBytes) {
    uint64_t c0 = crc, c1 = 0, c2 = 0;
    for (size_t i = 0; i < kStreamBytes; i += 8) {
      c0 = _mm_crc32_u64(c0, Load64(p + i));
      c1 = _mm_crc32_u64(c1, Load64(p + kStreamBytes + i));
      c2 = _mm_crc32_u64(c2, Load64(p + 2 * kStreamBytes + i));
    }
    crc = Shift(kShiftTwo, static_cast<uint32_t>(c0)) ^ Shift(kShiftOne, static_cast<uint32_t>(c1)) ^
          static_cast<uint32_t>(c2);
    p += 3 * kStreamBytes;
    n -= 3 * kStreamBytes;
  }
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}

// Static const: a CPU property, the same for every addon instance.
const bool kHasSse42 = __builtin_cpu_supports("sse4.2");
#endif

#if VREP_CRC32C_ARM
uint32_t Crc32cArm(uint32_t crc, const uint8_t* p, size_t n) {
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    crc = __crc32cd(crc, v);
    p += 8;
    n -= 8;
  }
  while (n--) crc = __crc32cb(crc, *p++);
  return crc;
}
#endif

// ---- combine ----------------------------------------------------------------
//
// With the standard conditioning (register starts at ~0, result inverted),
// CRC(a||b) = CRC(a) * x^(8 len(b)) mod P  xor  CRC(b): the conditioning
// terms cancel. Polynomials here are in the reflected order of the CRC
// itself: bit 31 holds the coefficient of x^0, bit 0 that of x^31.

// a * b mod P.
constexpr uint32_t MultiplyModP(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (int i = 0; i < 32; i++) {
    if (a & 0x80000000u) product ^= b;
    a <<= 1;
    b = (b & 1) ? (b >> 1) ^ kPolyReflected : b >> 1;  // b *= x
  }
  return product;
}

struct PowerTable {
  // x^(2^k) mod P for k in [0, 64).
  uint32_t x2k[64];
};

constexpr PowerTable MakePowerTable() {
  PowerTable t{};
  uint32_t p = 0x40000000u;  // x^1
  for (int k = 0; k < 64; k++) {
    t.x2k[k] = p;
    p = MultiplyModP(p, p);
  }
  return t;
}

constexpr PowerTable kPowers = MakePowerTable();

// ---- JS surface -------------------------------------------------------------

// info[i] as a uint32 (a CRC); throws ERR_INVALID_ARG naming `fn(what)`.
uint32_t ReadUint32Arg(const Napi::CallbackInfo& info, size_t i, const std::string& fn, const char* what) {
  Napi::Env env = info.Env();
  if (!info[i].IsNumber()) ThrowError(env, codes::kInvalidArg, fn + "(" + what + "): expected a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= 4294967295.0) || v != static_cast<double>(static_cast<uint32_t>(v))) {
    ThrowError(env, codes::kInvalidArg, fn + "(" + what + "): expected an integer in [0, 2^32-1]");
  }
  return static_cast<uint32_t>(v);
}

struct Crc32cArgs {
  const uint8_t* data;
  size_t lengthBytes;
  uint32_t previous;
};

Crc32cArgs ReadArgs(const Napi::CallbackInfo& info, const char* fn) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || info.Length() > 2) {
    ThrowError(env, codes::kInvalidArg, std::string(fn) + "(data, previous?): expected 1 or 2 arguments");
  }
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowError(env, codes::kInvalidArg, std::string(fn) + "(data): expected a Uint8Array");
  }
  auto data = info[0].As<Napi::Uint8Array>();
  uint32_t previous = 0;
  if (info.Length() == 2 && !info[1].IsUndefined()) previous = ReadUint32Arg(info, 1, fn, "previous");
  return {data.ByteLength() ? data.Data() : nullptr, data.ByteLength(), previous};
}

template <uint32_t (*kCrc)(uint32_t, const uint8_t*, size_t)>
Napi::Value JsCrc(const Napi::CallbackInfo& info) {
  Crc32cArgs a = ReadArgs(info, kCrc == Crc32cSoftware ? "crc32cSoftware" : "crc32c");
  return Napi::Number::New(info.Env(), kCrc(a.previous, a.data, a.lengthBytes));
}

Napi::Value JsCrc32cCombine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3) ThrowError(env, codes::kInvalidArg, "crc32cCombine(crcA, crcB, lengthB): expected 3 arguments");
  uint32_t a = ReadUint32Arg(info, 0, "crc32cCombine", "crcA");
  uint32_t b = ReadUint32Arg(info, 1, "crc32cCombine", "crcB");
  if (!info[2].IsNumber()) ThrowError(env, codes::kInvalidArg, "crc32cCombine(lengthB): expected a number");
  double len = info[2].As<Napi::Number>().DoubleValue();
  if (!(len >= 0 && len <= 9007199254740991.0) || len != static_cast<double>(static_cast<uint64_t>(len))) {
    ThrowError(env, codes::kInvalidArg, "crc32cCombine(lengthB): expected an integer in [0, 2^53-1]");
  }
  return Napi::Number::New(env, Crc32cCombine(a, b, static_cast<uint64_t>(len)));
}

Napi::Value JsCrc32cImplementation(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), Crc32cImplementation());
}

}  // namespace

uint32_t Crc32cSoftware(uint32_t previous, const uint8_t* data, size_t lengthBytes) {
  return ~Crc32cSlice8(~previous, data, lengthBytes);
}

uint32_t Crc32c(uint32_t previous, const uint8_t* data, size_t lengthBytes) {
#if VREP_CRC32C_X64
  if (kHasSse42) return ~Crc32cSse42(~previous, data, lengthBytes);
#elif VREP_CRC32C_ARM
  return ~Crc32cArm(~previous, data, lengthBytes);
#endif
  return Crc32cSoftware(previous, data, lengthBytes);
}

uint32_t Crc32cCombine(uint32_t crcA, uint32_t crcB, uint64_t lengthB) {
  // crcA * x^(8 lengthB): one multiply per set bit of the bit count (it fits in 64 bits below 2^61 bytes).
  uint64_t bits = lengthB << 3;
  uint32_t shifted = crcA;
  for (int k = 0; bits != 0 && k < 64; k++, bits >>= 1) {
    if (bits & 1) shifted = MultiplyModP(shifted, kPowers.x2k[k]);
  }
  return shifted ^ crcB;
}

const char* Crc32cImplementation() {
#if VREP_CRC32C_X64
  if (kHasSse42) return "sse4.2";
#elif VREP_CRC32C_ARM
  return "armv8-crc";
#endif
  return "software";
}

void InitCrc32c(Napi::Env env, Napi::Object exports) {
  exports.Set("crc32c", Napi::Function::New(env, JsCrc<Crc32c>, "crc32c"));
  exports.Set("crc32cSoftware", Napi::Function::New(env, JsCrc<Crc32cSoftware>, "crc32cSoftware"));
  exports.Set("crc32cCombine", Napi::Function::New(env, JsCrc32cCombine, "crc32cCombine"));
  exports.Set("crc32cImplementation", Napi::Function::New(env, JsCrc32cImplementation, "crc32cImplementation"));
}

}  // namespace vrep
