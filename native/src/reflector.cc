// Placeholder until this engine is written; keeps the addon building.
#include "addon.h"

namespace gatehouse {
void InitReflector(Napi::Env, Napi::Object) {}
}  // namespace gatehouse
