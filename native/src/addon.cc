// The gatehouse packet core. TypeScript drives it through src/native/binding.ts,
// which describes every export; nothing here is called once per packet.
#include "addon.h"

namespace gatehouse {

Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  InitGeneveBinding(env, exports);
  InitReflector(env, exports);
  InitGenerator(env, exports);
  InitTun(env, exports);
  InitGateway(env, exports);
  InitTunnel(env, exports);
  InitInspect(env, exports);
  InitHttpRelay(env, exports);
  return exports;
}

}  // namespace gatehouse

// NODE_API_MODULE pastes its second argument into a name: no namespace here.
static Napi::Object InitGatehouse(Napi::Env env, Napi::Object exports) {
  return gatehouse::InitAddon(env, exports);
}
NODE_API_MODULE(NODE_GYP_MODULE_NAME, InitGatehouse)
