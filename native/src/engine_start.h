// How a packet engine (tunnel.cc, inspect.cc) is started from JavaScript:
// its options parsed (errors are TypeErrors naming the function), onEvents
// checked, its sockets opened, a thread-safe function made for its events
// that keeps the engine alive until it is released (the engine's Stop
// releases it), then its threads started (a failure stops it again).
#pragma once

#include <napi.h>

#include <exception>
#include <memory>
#include <string>

#include "reflector_support.h"

namespace gatehouse {

template <typename Engine, typename Config>
std::shared_ptr<Engine> StartEngine(const Napi::CallbackInfo& info, const std::string& fn,
                                    const std::string& label, Config (*parse)(const Napi::Object&)) {
  Napi::Env env = info.Env();
  Config cfg;
  try {
    if (!info[0].IsObject()) throw OptionError{fn + " expects an options object"};
    cfg = parse(info[0].As<Napi::Object>());
  } catch (const OptionError& e) {
    throw Napi::TypeError::New(env, fn + ": " + e.message);
  }
  Napi::Value cb = info[0].As<Napi::Object>().Get("onEvents");
  if (!cb.IsFunction()) throw Napi::TypeError::New(env, fn + ": onEvents must be a function");

  auto engine = std::make_shared<Engine>(std::move(cfg));
  std::string error;
  if (!engine->Open(&error)) throw Napi::Error::New(env, label + ": " + error);

  using Holder = std::shared_ptr<Engine>;
  auto* data = new Holder(engine);
  Napi::ThreadSafeFunction tsfn = Napi::ThreadSafeFunction::New(
      env, cb.As<Napi::Function>(), "gatehouse." + label + ".events", 0, 1, data,
      [](Napi::Env, Holder* d, Holder*) { delete d; }, data);
  try {
    engine->Start(tsfn);
  } catch (const std::exception& e) {  // a thread could not start or be pinned
    engine->Stop();
    throw Napi::Error::New(env, label + ": starting threads: " + e.what());
  }
  return engine;
}

}  // namespace gatehouse
