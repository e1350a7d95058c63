// Lock-free circular log ("ring"): variable-length records addressed by a
// monotonically increasing LSN, with Redis-backlog semantics (fixed capacity
// in bytes and in records; the oldest records are overwritten when full).
//
// The ring lives in a SharedArrayBuffer that the TS wrapper allocates, so
// worker threads read the same memory: the SAB is shared (not copied) by
// postMessage, and V8 keeps it alive while any thread holds it. One writer
// (RingWriter, on the thread that created the ring), any number of readers
// (RingReader, on any thread). Layout, protocol and the memory-ordering
// argument: docs/native/ring-log.md, and the comments at each atomic in
// ring_log.cc.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace vrep {
namespace ring {

// Byte offsets in the shared buffer. Everything multi-byte is host-endian
// (the buffer never leaves the process) and naturally aligned.
inline constexpr uint32_t kMagic = 0x474E5256;  // "VRNG" little-endian
inline constexpr uint32_t kVersion = 2;
inline constexpr size_t kOffMagic = 0;            // u32, published last by the writer
inline constexpr size_t kOffVersion = 4;          // u32
inline constexpr size_t kOffHeaderBytes = 8;      // u32
inline constexpr size_t kOffSlotBytes = 12;       // u32
inline constexpr size_t kOffCapacityRecords = 16; // u32
inline constexpr size_t kOffWriterClaim = 20;     // u32, 0 -> 1 by the one writer
inline constexpr size_t kOffCapacityBytes = 24;   // u64
inline constexpr size_t kOffStartLsn = 32;        // u64
inline constexpr size_t kOffTotalBytes = 40;      // u64 (the whole buffer)
inline constexpr size_t kOffDataOffset = 48;      // u64 (start of the data area)
// The two words that move live on their own cache lines so readers polling
// one do not false-share with the writer's stores to the other.
inline constexpr size_t kOffTailLsn = 64;   // u64: first (oldest) valid LSN
inline constexpr size_t kOffHeadLsn = 128;  // u64: next LSN to be written (last + 1)
// Bumped by every truncateAfter, on the head's cache line (the two move
// together). A reader whose copy spans a change reports kReadTruncated.
inline constexpr size_t kOffTruncations = 136;  // u64
inline constexpr size_t kHeaderBytes = 192;

// One index slot per record position (lsn % capacityRecords).
inline constexpr size_t kSlotLsn = 0;     // u64
inline constexpr size_t kSlotPos = 8;     // u64: monotonic byte position of the record
inline constexpr size_t kSlotLength = 16; // u32
inline constexpr size_t kSlotBytes = 24;

// Limits (also in src/native/ring-log.ts). LSNs cross the boundary as JS
// numbers, so every LSN is at most 2^53 - 1.
inline constexpr uint64_t kMaxCapacityBytes = uint64_t{1} << 31;    // 2 GiB
inline constexpr uint64_t kMaxCapacityRecords = uint64_t{1} << 24;  // 16 Mi slots (384 MiB of index)
inline constexpr uint64_t kMaxLsn = (uint64_t{1} << 53) - 1;

// Result codes of RingReader.read besides a record count >= 0.
inline constexpr int32_t kReadEvicted = -1;
inline constexpr int32_t kReadNotYetWritten = -2;
inline constexpr int32_t kReadBufferTooSmall = -3;
inline constexpr int32_t kReadCorrupt = -4;
// The writer truncated the log while the reader copied: nothing copied is
// to be trusted (the LSNs may hold other records now).
inline constexpr int32_t kReadTruncated = -5;

// Bytes the shared buffer needs for a ring of this geometry.
uint64_t ByteLength(uint64_t capacityBytes, uint64_t capacityRecords);

}  // namespace ring
}  // namespace vrep
