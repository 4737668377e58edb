// Placeholder until this engine is written; keeps the addon building.
#include "addon.h"

namespace gatehouse {
void InitGenerator(Napi::Env, Napi::Object) {}
}  // namespace gatehouse
