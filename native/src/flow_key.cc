#include "flow_key.h"

#include <arpa/inet.h>
#include <napi.h>
#include <time.h>

#include "checksum.h"

namespace gatehouse {

const char* const kFlowKeyReasonNames[kFlowKeyReasonCount] = {
    "empty",          "bad_version",         "ipv4_truncated", "ipv4_bad_header_length",
    "ipv6_truncated", "extension_truncated", "l4_truncated",
};

namespace {

constexpr uint8_t kProtoHopByHop = 0;
constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoDccp = 33;
constexpr uint8_t kProtoRouting = 43;
constexpr uint8_t kProtoFragment = 44;
constexpr uint8_t kProtoAh = 51;
constexpr uint8_t kProtoIcmpv6 = 58;
constexpr uint8_t kProtoDestOpts = 60;
constexpr uint8_t kProtoSctp = 132;
constexpr uint8_t kProtoUdpLite = 136;

// Protocols whose first four L4 bytes are source and destination port.
bool HasPorts(uint8_t proto) {
  return proto == kProtoTcp || proto == kProtoUdp || proto == kProtoDccp || proto == kProtoSctp ||
         proto == kProtoUdpLite;
}

bool IsIcmpEcho(uint8_t family, uint8_t type) {
  if (family == 4) return type == 8 || type == 0;  // echo request, echo reply
  return type == 128 || type == 129;
}

uint64_t Fnv1a(const uint8_t* p, size_t n, uint64_t h = 1469598103934665603ull) {
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

// Final avalanche (from SplitMix64) so that low bits, used for slot and port
// choice, depend on every input byte.
uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Skips AH (RFC 4302): its Payload Len counts 4-byte words minus 2.
bool SkipAh(const uint8_t* p, size_t end, size_t* off, uint8_t* proto) {
  if (*off + 2 > end) return false;
  const size_t hl = (size_t(p[*off + 1]) + 2) * 4;
  if (*off + hl > end) return false;
  *proto = p[*off];
  *off += hl;
  return true;
}

}  // namespace

uint64_t HashFlowKey(const FlowKey& key) {
  return Mix(Fnv1a(reinterpret_cast<const uint8_t*>(&key), sizeof key));
}

uint64_t MonotonicMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

size_t FragmentTracker::SlotOf(uint8_t family, const uint8_t* src, const uint8_t* dst, uint32_t id,
                               uint8_t ip_protocol) const {
  uint8_t head[6] = {family, ip_protocol};
  StoreBe32(head + 2, id);
  uint64_t h = Fnv1a(head, sizeof head);
  h = Fnv1a(src, 16, h);
  h = Fnv1a(dst, 16, h);
  return size_t(Mix(h) % kSlots);
}

void FragmentTracker::Remember(uint8_t family, const uint8_t* src, const uint8_t* dst, uint32_t id,
                               uint8_t ip_protocol, uint8_t protocol, uint16_t src_port, uint16_t dst_port,
                               uint64_t now_ms) {
  Slot& s = slots_[SlotOf(family, src, dst, id, ip_protocol)];
  s.used = true;
  s.family = family;
  s.ip_protocol = ip_protocol;
  s.protocol = protocol;
  s.src_port = src_port;
  s.dst_port = dst_port;
  s.id = id;
  s.seen_ms = now_ms;
  memcpy(s.src, src, 16);
  memcpy(s.dst, dst, 16);
}

bool FragmentTracker::Lookup(uint8_t family, const uint8_t* src, const uint8_t* dst, uint32_t id,
                             uint8_t ip_protocol, uint64_t now_ms, uint8_t* protocol, uint16_t* src_port,
                             uint16_t* dst_port) const {
  const Slot& s = slots_[SlotOf(family, src, dst, id, ip_protocol)];
  if (!s.used || s.family != family || s.ip_protocol != ip_protocol || s.id != id ||
      memcmp(s.src, src, 16) != 0 || memcmp(s.dst, dst, 16) != 0)
    return false;
  if (now_ms - s.seen_ms > kFragmentTtlMs) return false;
  *protocol = s.protocol;
  *src_port = s.src_port;
  *dst_port = s.dst_port;
  return true;
}

FlowKeyReason ParseFlowKey(const uint8_t* p, size_t len, FragmentTracker* tracker, uint64_t now_ms,
                           ParsedFlow* out) {
  *out = ParsedFlow{};
  if (len == 0) return FlowKeyReason::kEmpty;
  const uint8_t version = p[0] >> 4;
  uint8_t family, proto;
  // ip_protocol names the datagram for the fragment tracker: the IPv4
  // header's protocol; 0 for IPv6, where the fragment id alone does.
  uint8_t ip_protocol = 0;
  size_t off, end;

  if (version == 4) {
    if (len < 20) return FlowKeyReason::kIPv4Truncated;
    const size_t ihl = size_t(p[0] & 0x0f) * 4;
    const size_t total = LoadBe16(p + 2);
    if (ihl < 20 || total < ihl) return FlowKeyReason::kIPv4BadHeaderLength;
    if (total > len) return FlowKeyReason::kIPv4Truncated;
    family = 4;
    end = total;  // bytes past the total length are link padding, not packet
    memcpy(out->src, p + 12, 4);
    memcpy(out->dst, p + 16, 4);
    proto = ip_protocol = p[9];
    off = ihl;
    const uint16_t frag = LoadBe16(p + 6);
    out->fragment_id = LoadBe16(p + 4);
    out->fragment_offset = uint16_t((frag & 0x1fff) * 8);
    out->more_fragments = (frag & 0x2000) != 0;
    if (out->fragment_offset != 0) {
      out->fragment = FragmentKind::kLater;
    } else if (out->more_fragments) {
      out->fragment = FragmentKind::kFirst;
    }
    // AH sits in front of the transport header; a later fragment has neither.
    while (proto == kProtoAh && out->fragment != FragmentKind::kLater) {
      if (!SkipAh(p, end, &off, &proto)) return FlowKeyReason::kExtensionTruncated;
    }
  } else if (version == 6) {
    if (len < 40) return FlowKeyReason::kIPv6Truncated;
    // A payload length of 0 would announce a jumbogram (RFC 2675); those
    // never fit a TUN device, so it is taken literally like any other.
    end = 40 + size_t(LoadBe16(p + 4));
    if (end > len) return FlowKeyReason::kIPv6Truncated;
    family = 6;
    memcpy(out->src, p + 8, 16);
    memcpy(out->dst, p + 24, 16);
    proto = p[6];
    off = 40;
    // Every step advances at least 8 bytes, so the walk ends within `end`.
    bool walking = true;
    while (walking) {
      switch (proto) {
        case kProtoHopByHop:
        case kProtoRouting:
        case kProtoDestOpts: {
          if (off + 8 > end) return FlowKeyReason::kExtensionTruncated;
          const size_t hl = (size_t(p[off + 1]) + 1) * 8;
          if (off + hl > end) return FlowKeyReason::kExtensionTruncated;
          proto = p[off];
          off += hl;
          break;
        }
        case kProtoAh:
          if (!SkipAh(p, end, &off, &proto)) return FlowKeyReason::kExtensionTruncated;
          break;
        case kProtoFragment: {
          if (off + 8 > end) return FlowKeyReason::kExtensionTruncated;
          const uint16_t fo = LoadBe16(p + off + 2);
          proto = p[off];
          out->fragment_id = LoadBe32(p + off + 4);
          out->fragment_offset = uint16_t(fo & 0xfff8);
          out->more_fragments = (fo & 1) != 0;
          off += 8;
          if (out->fragment_offset != 0) {
            out->fragment = FragmentKind::kLater;
            walking = false;  // the rest is the middle of someone else's headers or data
          } else if (out->more_fragments) {
            out->fragment = FragmentKind::kFirst;
          }
          // Offset 0 without M is an atomic fragment (RFC 6946): a whole packet.
          break;
        }
        default:
          walking = false;
      }
    }
  } else {
    return FlowKeyReason::kBadVersion;
  }

  if (out->fragment == FragmentKind::kNone) {
    out->fragment_id = 0;
    out->fragment_offset = 0;
    out->more_fragments = false;
  }
  uint16_t sport = 0, dport = 0;
  bool icmp_echo = false;
  if (out->fragment == FragmentKind::kLater) {
    if (tracker && tracker->Lookup(family, out->src, out->dst, out->fragment_id, ip_protocol, now_ms, &proto,
                                   &sport, &dport)) {
      out->ports_from = PortsFrom::kTracker;
      icmp_echo = (family == 4 && proto == kProtoIcmp) || (family == 6 && proto == kProtoIcmpv6);
    } else {
      out->ports_from = PortsFrom::kUnknown;
    }
  } else {
    const size_t l4 = end - off;
    if (HasPorts(proto)) {
      if (l4 < 4) return FlowKeyReason::kL4Truncated;
      sport = LoadBe16(p + off);
      dport = LoadBe16(p + off + 2);
    } else if ((family == 4 && proto == kProtoIcmp) || (family == 6 && proto == kProtoIcmpv6)) {
      // Every ICMP and ICMPv6 message has at least 8 bytes of header.
      if (l4 < 8) return FlowKeyReason::kL4Truncated;
      out->icmp_type = p[off];
      if (IsIcmpEcho(family, p[off])) {
        icmp_echo = true;
        sport = LoadBe16(p + off + 4);  // identifier; same in request and reply
      }
    }
    if (out->fragment == FragmentKind::kFirst && tracker)
      tracker->Remember(family, out->src, out->dst, out->fragment_id, ip_protocol, proto, sport, dport,
                        now_ms);
  }

  out->src_port = sport;
  out->dst_port = dport;
  out->l4_offset = uint32_t(off);
  out->ip_end = uint32_t(end);
  FlowKey& k = out->key;
  k.family = family;
  k.protocol = proto;
  const int cmp = memcmp(out->src, out->dst, 16);
  // An echo id belongs to the conversation, not to one side: it stays in
  // port_a whichever way the packet goes, and only addresses decide order.
  out->reversed = cmp > 0 || (cmp == 0 && !icmp_echo && sport > dport);
  memcpy(k.addr_a, out->reversed ? out->dst : out->src, 16);
  memcpy(k.addr_b, out->reversed ? out->src : out->dst, 16);
  if (icmp_echo) {
    k.port_a = sport;
    k.port_b = 0;
  } else {
    k.port_a = out->reversed ? dport : sport;
    k.port_b = out->reversed ? sport : dport;
  }
  return FlowKeyReason::kOk;
}

// ---- JavaScript binding (tests, and the TypeScript wrapper in src/native/flow-key.ts) ----

namespace {

// Marks objects made by newFragmentTracker so a stray object is refused.
const napi_type_tag kTrackerTag = {0x67617465686f7573ull, 0x6672616774726b31ull};

std::string AddressString(uint8_t family, const uint8_t* a) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(family == 4 ? AF_INET : AF_INET6, a, buf, sizeof buf);
  return buf;
}

const char* FragmentKindName(FragmentKind k) {
  switch (k) {
    case FragmentKind::kFirst:
      return "first";
    case FragmentKind::kLater:
      return "later";
    default:
      return "none";
  }
}

const char* PortsFromName(PortsFrom f) {
  switch (f) {
    case PortsFrom::kTracker:
      return "tracker";
    case PortsFrom::kUnknown:
      return "unknown";
    default:
      return "header";
  }
}

Napi::Value NewFragmentTracker(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object obj = Napi::Object::New(env);
  obj.TypeTag(&kTrackerTag);
  auto* tracker = new FragmentTracker();
  napi_status st = napi_wrap(
      env, obj, tracker, [](napi_env, void* data, void*) { delete static_cast<FragmentTracker*>(data); },
      nullptr, nullptr);
  if (st != napi_ok) {
    delete tracker;
    NAPI_THROW(Napi::Error::New(env, "napi_wrap failed for the fragment tracker"), env.Undefined());
  }
  return obj;
}

Napi::Value ParseFlowKeyJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    NAPI_THROW(Napi::TypeError::New(env, "parseFlowKey: expected a Uint8Array"), env.Undefined());
  FragmentTracker* tracker = nullptr;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsObject() || !info[1].As<Napi::Object>().CheckTypeTag(&kTrackerTag))
      NAPI_THROW(Napi::TypeError::New(env, "parseFlowKey: expected a tracker from newFragmentTracker()"),
                 env.Undefined());
    void* data = nullptr;
    napi_unwrap(env, info[1], &data);
    tracker = static_cast<FragmentTracker*>(data);
  }
  Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
  ParsedFlow f;
  FlowKeyReason r = ParseFlowKey(bytes.Data(), bytes.ByteLength(), tracker, MonotonicMs(), &f);
  Napi::Object out = Napi::Object::New(env);
  if (r != FlowKeyReason::kOk) {
    out.Set("ok", false);
    out.Set("reason", kFlowKeyReasonNames[int(r)]);
    return out;
  }
  const FlowKey& k = f.key;
  out.Set("ok", true);
  out.Set("version", k.family);
  out.Set("protocol", k.protocol);
  out.Set("src", AddressString(k.family, f.src));
  out.Set("dst", AddressString(k.family, f.dst));
  out.Set("srcPort", f.src_port);
  out.Set("dstPort", f.dst_port);
  out.Set("reversed", f.reversed);
  Napi::Object key = Napi::Object::New(env);
  key.Set("a", AddressString(k.family, k.addr_a));
  key.Set("aPort", k.port_a);
  key.Set("b", AddressString(k.family, k.addr_b));
  key.Set("bPort", k.port_b);
  key.Set("hash", Napi::BigInt::New(env, HashFlowKey(k)));
  out.Set("key", key);
  const bool icmp = (k.family == 4 && k.protocol == 1) || (k.family == 6 && k.protocol == 58);
  if (icmp && f.ports_from == PortsFrom::kHeader)
    out.Set("icmpType", f.icmp_type);
  else
    out.Set("icmpType", env.Null());
  out.Set("fragment", FragmentKindName(f.fragment));
  out.Set("fragmentId", f.fragment_id);
  out.Set("fragmentOffset", f.fragment_offset);
  out.Set("moreFragments", f.more_fragments);
  out.Set("portsFrom", PortsFromName(f.ports_from));
  return out;
}

}  // namespace

void InitFlowKeyBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("parseFlowKey", Napi::Function::New(env, ParseFlowKeyJs, "parseFlowKey"));
  exports.Set("newFragmentTracker", Napi::Function::New(env, NewFragmentTracker, "newFragmentTracker"));
}

}  // namespace gatehouse
