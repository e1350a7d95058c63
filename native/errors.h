// Native errors carry a string code (ERR_*) and are instances of the
// project's VrepError class once src/native/addon.ts has registered it.
#pragma once

#include <napi.h>

#include <string>

namespace vrep {

// Codes shared with src/errors.ts (keep the two lists in step).
namespace codes {
inline constexpr const char* kInvalidArg = "ERR_INVALID_ARG";
inline constexpr const char* kLsnEvicted = "ERR_LSN_EVICTED";
inline constexpr const char* kLsnNotYetWritten = "ERR_LSN_NOT_YET_WRITTEN";
inline constexpr const char* kRecordTooLarge = "ERR_RECORD_TOO_LARGE";
inline constexpr const char* kBufferTooSmall = "ERR_BUFFER_TOO_SMALL";
inline constexpr const char* kCorruptFrame = "ERR_CORRUPT_FRAME";
inline constexpr const char* kFrameTooLarge = "ERR_FRAME_TOO_LARGE";
inline constexpr const char* kCompression = "ERR_COMPRESSION";
inline constexpr const char* kJsonSyntax = "ERR_JSON_SYNTAX";
inline constexpr const char* kJsonPoint = "ERR_JSON_POINT";
inline constexpr const char* kUnsupported = "ERR_UNSUPPORTED";
}  // namespace codes

// Builds (does not throw) an error object with `code` set.
Napi::Error MakeError(Napi::Env env, const char* code, const std::string& message);

// Throws MakeError(...) as a C++ exception; node-addon-api turns it into a
// pending JS exception at the N-API boundary.
[[noreturn]] void ThrowError(Napi::Env env, const char* code, const std::string& message);

// A C++ exception that carries a code, for work done off the main thread
// (AsyncWorker::Execute cannot touch napi_env); converted with MakeError in
// OnError.
struct CodedError {
  const char* code;
  std::string message;
};

}  // namespace vrep
