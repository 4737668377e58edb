// Each engine registers its exports from its own file; addon.cc only calls
// these in turn, so engines can be added without touching each other.
#pragma once

#include <napi.h>

namespace gatehouse {
void InitGeneveBinding(Napi::Env env, Napi::Object exports);  // geneve_binding.cc
void InitReflector(Napi::Env env, Napi::Object exports);      // reflector.cc
void InitGenerator(Napi::Env env, Napi::Object exports);      // generator.cc
void InitTun(Napi::Env env, Napi::Object exports);            // tun.cc
void InitGateway(Napi::Env env, Napi::Object exports);        // gateway.cc
void InitTunnel(Napi::Env env, Napi::Object exports);         // tunnel.cc
void InitInspect(Napi::Env env, Napi::Object exports);        // inspect.cc
void InitHttpRelay(Napi::Env env, Napi::Object exports);      // http_relay.cc
}  // namespace gatehouse
