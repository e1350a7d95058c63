// Placeholder: filled in by its module's work.
#include "addon.h"
namespace vrep {
void InitBatchCodec(Napi::Env env, Napi::Object exports) {}
}  // namespace vrep
