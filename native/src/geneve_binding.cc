// Test bindings: the native GENEVE decoder and the outer IPv4+UDP header
// writer, exposed so TypeScript tests can hold them against the TypeScript
// codec and against an independent checksum computation. Not used per packet.
#include <arpa/inet.h>

#include <cstring>

#include "addon.h"
#include "geneve.h"
#include "raw_sender.h"
#include "udp_socket.h"

namespace gatehouse {

namespace {

// Bytes of a Uint8Array (a Buffer is one) argument, or a thrown TypeError.
bool Uint8Arg(const Napi::CallbackInfo& info, size_t i, const uint8_t** data, size_t* len) {
  Napi::Value v = info[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a Uint8Array")
        .ThrowAsJavaScriptException();
    return false;
  }
  Napi::Uint8Array a = v.As<Napi::Uint8Array>();
  *data = a.Data();
  *len = a.ElementLength();
  return true;
}

Napi::Value DecodeGeneveJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint8_t* p;
  size_t len;
  if (!Uint8Arg(info, 0, &p, &len)) return env.Undefined();
  GeneveInfo g{};
  GeneveReason r = DecodeGeneve(p, len, &g);
  Napi::Object out = Napi::Object::New(env);
  if (r != GeneveReason::kOk) {
    out.Set("ok", false);
    out.Set("reason", kGeneveReasonNames[int(r)]);
    return out;
  }
  out.Set("ok", true);
  out.Set("headerLength", g.header_len);
  out.Set("protocol", g.protocol);
  out.Set("eni", Napi::BigInt::New(env, g.eni));
  out.Set("attachment", Napi::BigInt::New(env, g.attachment));
  out.Set("cookie", double(g.cookie));
  return out;
}

bool PortArg(const Napi::CallbackInfo& info, size_t i, uint16_t* out) {
  Napi::Value v = info[i];
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (d >= 0 && d <= 65535 && d == double(int(d))) {
      *out = uint16_t(d);
      return true;
    }
  }
  Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a port (0..65535)")
      .ThrowAsJavaScriptException();
  return false;
}

bool AddressArg(const Napi::CallbackInfo& info, size_t i, uint32_t* out) {
  in_addr a{};
  if (info[i].IsString() && ParseIPv4(info[i].As<Napi::String>().Utf8Value(), &a)) {
    *out = ntohl(a.s_addr);
    return true;
  }
  Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be an IPv4 address string")
      .ThrowAsJavaScriptException();
  return false;
}

// buildIPv4Udp(src, dst, sport, dport, payload): the bytes the raw sender
// puts on the wire (IP id 0, TTL 64).
Napi::Value BuildIPv4UdpJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t src, dst;
  uint16_t sport, dport;
  const uint8_t* payload;
  size_t len;
  if (!AddressArg(info, 0, &src) || !AddressArg(info, 1, &dst) || !PortArg(info, 2, &sport) ||
      !PortArg(info, 3, &dport) || !Uint8Arg(info, 4, &payload, &len))
    return env.Undefined();
  if (len > 65535 - kOuterHeaderLen) {
    Napi::RangeError::New(env, "payload longer than an IPv4 datagram can carry").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, kOuterHeaderLen + len);
  if (len) memcpy(out.Data() + kOuterHeaderLen, payload, len);
  WriteIPv4UdpHeader(out.Data(), src, dst, sport, dport, len, 0);
  return out;
}

}  // namespace

void InitGeneveBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("decodeGeneve", Napi::Function::New(env, DecodeGeneveJs, "decodeGeneve"));
  exports.Set("buildIPv4Udp", Napi::Function::New(env, BuildIPv4UdpJs, "buildIPv4Udp"));
}

}  // namespace gatehouse
