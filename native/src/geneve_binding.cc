// Placeholder until this engine is written; keeps the addon building.
#include "addon.h"

namespace gatehouse {
void InitGeneveBinding(Napi::Env, Napi::Object) {}
}  // namespace gatehouse
