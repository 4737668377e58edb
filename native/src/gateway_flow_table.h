// The lab gateway's flow table: one entry per symmetric flow key (both
// directions of a conversation share it), each with the random cookie and
// the outer UDP source port the gateway gave it, findable by key (packets
// from the TUN) and by cookie (packets back from the appliance).
//
// Not thread-safe by itself: the gateway's two threads share one table
// under a mutex (the lab is not the hot path; a batch takes the lock once).
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <unordered_map>
#include <vector>

#include "flow_key.h"

namespace gatehouse {

struct GatewayFlow {
  FlowKey key;
  uint8_t src[16];  // as first seen
  uint8_t dst[16];
  uint16_t src_port;
  uint16_t dst_port;
  uint32_t cookie;
  uint16_t source_port;  // outer UDP source port
  uint64_t last_seen_ms;
  uint64_t packets;  // read from the TUN, both directions
  uint64_t bytes;
};

struct GatewayFlowEvent {
  bool expired;  // false: new
  GatewayFlow flow;
};

class GatewayFlowTable {
 public:
  GatewayFlowTable(uint16_t port_low, uint16_t port_high, uint64_t idle_ms)
      : port_low_(port_low), port_span_(uint32_t(port_high) - port_low + 1), idle_ms_(idle_ms) {
    std::random_device rd;
    std::seed_seq seed{rd(), rd(), rd(), rd()};
    rng_.seed(seed);
  }

  // The flow of a parsed packet, created when new (`*created` = true).
  GatewayFlow* FindOrCreate(const ParsedFlow& pf, uint64_t now_ms, bool* created) {
    auto it = flows_.find(pf.key);
    if (it != flows_.end()) {
      *created = false;
      return &it->second;
    }
    GatewayFlow f{};
    f.key = pf.key;
    memcpy(f.src, pf.src, 16);
    memcpy(f.dst, pf.dst, 16);
    f.src_port = pf.src_port;
    f.dst_port = pf.dst_port;
    f.cookie = NewCookie();
    // The same conversation always gets the same port, so a restarted
    // gateway looks like GWLB does to the appliance (port = f(5-tuple)).
    f.source_port = uint16_t(port_low_ + HashFlowKey(pf.key) % port_span_);
    f.last_seen_ms = now_ms;
    // unordered_map never moves its nodes, so by_cookie_ may keep pointers.
    GatewayFlow* stored = &flows_.emplace(pf.key, f).first->second;
    by_cookie_[stored->cookie] = stored;
    *created = true;
    return stored;
  }

  GatewayFlow* FindByCookie(uint32_t cookie) {
    auto it = by_cookie_.find(cookie);
    return it == by_cookie_.end() ? nullptr : it->second;
  }

  // Removes flows idle for longer than the idle time; reports each.
  void ExpireIdle(uint64_t now_ms, std::vector<GatewayFlowEvent>* events) {
    for (auto it = flows_.begin(); it != flows_.end();) {
      if (now_ms - it->second.last_seen_ms > idle_ms_) {
        events->push_back({true, it->second});
        by_cookie_.erase(it->second.cookie);
        it = flows_.erase(it);
      } else {
        ++it;
      }
    }
  }

  size_t size() const { return flows_.size(); }

 private:
  // Random, non-zero and unique among live flows, like GWLB's cookies.
  uint32_t NewCookie() {
    for (;;) {
      const uint32_t c = uint32_t(rng_());
      if (c != 0 && by_cookie_.find(c) == by_cookie_.end()) return c;
    }
  }

  uint16_t port_low_;
  uint32_t port_span_;
  uint64_t idle_ms_;
  std::mt19937 rng_;
  std::unordered_map<FlowKey, GatewayFlow, FlowKeyHasher> flows_;
  std::unordered_map<uint32_t, GatewayFlow*> by_cookie_;
};

}  // namespace gatehouse
