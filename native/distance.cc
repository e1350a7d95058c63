// Placeholder: filled in by its module's work.
#include "addon.h"
namespace vrep {
void InitDistance(Napi::Env env, Napi::Object exports) {}
}  // namespace vrep
