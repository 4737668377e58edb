// Placeholder until this engine is written; keeps the addon building.
#include "addon.h"

namespace gatehouse {
void InitGateway(Napi::Env, Napi::Object) {}
}  // namespace gatehouse
