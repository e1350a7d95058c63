// prefaultAsync(view): maps in the pages under a typed array on a libuv
// thread, without changing a byte (Linux MADV_POPULATE_WRITE), so the first
// writes to fresh memory do not fault page by page on the event loop. A
// collection's new vector chunk (48 MiB at dimension 768) used to fault in
// as its rows were copied in: the largest self time of a replica's apply
// here (2.1 s of a quick replication bench run, 0.3 s with the prefault).
// Safe while JS writes the same memory: the kernel only maps pages, it never
// writes data. Resolves true when the kernel did it, false where it cannot
// (not Linux, kernels before 5.14): the pages then fault in on first touch.
#include <napi.h>

#include <cstdint>

#include "addon.h"
#include "errors.h"

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace vrep {
namespace {

// Bytes mapped per madvise call (a multiple of any page size).
constexpr uintptr_t kSliceBytes = 256 * 1024;

class PrefaultWorker : public Napi::AsyncWorker {
 public:
  PrefaultWorker(Napi::Env env, Napi::TypedArray view)
      : Napi::AsyncWorker(env, "vrep.prefault"),
        deferred_(Napi::Promise::Deferred::New(env)),
        data_(static_cast<uint8_t*>(TypedArrayData(env, view))),
        bytes_(view.ByteLength()) {
    // Keeps the memory alive until the work is done.
    view_ = Napi::Persistent(static_cast<Napi::Object>(view));
  }
  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    // madvise takes whole pages: the partial pages at either end fault in as before.
    const uintptr_t start = (reinterpret_cast<uintptr_t>(data_) + page - 1) & ~(page - 1);
    const uintptr_t end = (reinterpret_cast<uintptr_t>(data_) + bytes_) & ~(page - 1);
    // In slices: one call over 48 MiB holds the process's memory-map lock
    // for its whole run (100-200 ms where the hypervisor backs fresh memory
    // lazily), and an mmap or munmap queued behind it stalls every other
    // page fault of the process, the event loop's included.
    done_ = end > start;
    for (uintptr_t at = start; at < end && done_; at += kSliceBytes) {
      const uintptr_t to = end - at < kSliceBytes ? end : at + kSliceBytes;
      done_ = madvise(reinterpret_cast<void*>(at), to - at, MADV_POPULATE_WRITE) == 0;
    }
#endif
  }
  void OnOK() override { deferred_.Resolve(Napi::Boolean::New(Env(), done_)); }
  void OnError(const Napi::Error&) override { deferred_.Resolve(Napi::Boolean::New(Env(), false)); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference view_;
  uint8_t* data_;
  size_t bytes_;
  bool done_ = false;
};

Napi::Value JsPrefaultAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsTypedArray()) {
    ThrowError(env, codes::kInvalidArg, "prefaultAsync(view): expected a typed array");
  }
  auto view = info[0].As<Napi::TypedArray>();
  auto* worker = new PrefaultWorker(env, view);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace

void InitPrefault(Napi::Env env, Napi::Object exports) {
  exports.Set("prefaultAsync", Napi::Function::New(env, JsPrefaultAsync, "prefaultAsync"));
}

}  // namespace vrep
