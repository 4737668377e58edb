// Placeholder until the tunnel engine is written; keeps the addon building.
#include "addon.h"

namespace gatehouse {
void InitTunnel(Napi::Env, Napi::Object) {}
}  // namespace gatehouse
