// CRC32C (Castagnoli, reflected polynomial 0x82F63B78): the SSE4.2 / ARMv8
// instruction where the CPU has it, slice-by-8 tables otherwise.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace vrep {

// CRC32C of data[0, lengthBytes) continuing from `previous` (the finished CRC
// of the bytes before, 0 for none), so Crc32c(Crc32c(0, a), b) == Crc32c(0, a||b).
uint32_t Crc32c(uint32_t previous, const uint8_t* data, size_t lengthBytes);

// Same result through the table-driven path, whatever the CPU; for tests.
uint32_t Crc32cSoftware(uint32_t previous, const uint8_t* data, size_t lengthBytes);

// The CRC of a||b from crcA = Crc32c(0, a), crcB = Crc32c(0, b) and b's length,
// without reading a or b: a payload's CRC, taken once, serves every frame it goes in.
uint32_t Crc32cCombine(uint32_t crcA, uint32_t crcB, uint64_t lengthB);

// "sse4.2", "armv8-crc" or "software": the path Crc32c takes on this CPU.
const char* Crc32cImplementation();

}  // namespace vrep
