// The inspect engine's flow table (inspect.cc): symmetric inner flow key ->
// the flow's verdict state, its orientation (which side opened it), what is
// needed to send its packets back to GWLB, its counts, and the packets held
// while TypeScript decides.
//
// Shape, and why: 64 shards, each a mutex and an unordered_map. Unlike the
// tunnel's table (tunnel_flow_table.h), which must hold a million flows in
// little memory, an inspected flow carries state that changes (verdict,
// held packets) and is looked up by TypeScript too (verdicts, injects), so
// plain maps keep this small and obviously correct; the per-packet cost is
// one lock and one lookup either way. Keys (InspectKey: the inner flow key
// and the endpoint) are hashed with a per-table random seed so crafted inner 5-tuples cannot pile up in one
// bucket chain.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <unordered_map>
#include <vector>

#include "flow_key.h"

namespace gatehouse {

struct InspectEndpoint;  // inspect.cc

// A flow is its inner 5-tuple *within one GWLB endpoint*: two VPCs behind
// different endpoints may use the same addresses (overlapping CIDRs), and
// their flows must not share a verdict. This is also the handle TypeScript
// passes back with a verdict.
struct InspectKey {
  FlowKey flow;
  uint16_t reserved;  // zero: keys compare and hash as plain bytes
  uint64_t eni;
  bool operator==(const InspectKey& o) const { return memcmp(this, &o, sizeof o) == 0; }
};
static_assert(sizeof(InspectKey) == 48,
              "InspectKey must have no padding: it is compared and hashed as bytes");

enum class InspectState : uint8_t {
  kNew,      // created by this packet: ask TypeScript
  kAsked,    // waiting for the first verdict: hold everything
  kInspect,  // handshake passes, payload is held and sent up
  kAllow,
  kDrop,
};

inline const char* InspectStateName(InspectState s) {
  switch (s) {
    case InspectState::kNew:
    case InspectState::kAsked:
      return "asked";
    case InspectState::kInspect:
      return "inspect";
    case InspectState::kAllow:
      return "allow";
    case InspectState::kDrop:
      return "drop";
  }
  return "asked";
}

// What one packet of a flow carries that TypeScript may need.
struct PacketFacts {
  bool from_client = true;
  uint8_t tcp_flags = 0;
  uint32_t seq = 0, ack = 0;
  uint32_t payload_offset = 0;  // in the inner packet
  uint32_t payload_len = 0;     // L4 payload bytes (0: handshake or control)
};

// A datagram waiting for its flow's verdict: kOuterHeaderLen bytes of
// headroom, then the GENEVE datagram as received, with the facts read from
// it when it arrived (sent up later without parsing it again).
struct HeldPacket {
  std::vector<uint8_t> bytes;
  uint32_t inner_offset;  // where the inner packet starts in `bytes`
  PacketFacts facts;
  bool upcalled;  // already sent up as a packet event
};

struct InspectFlow {
  uint64_t id = 0;
  // Held so that ending a flow never needs the endpoint table's lock (which
  // UDP threads take before a shard lock, the other way round).
  std::shared_ptr<InspectEndpoint> endpoint;
  InspectState state = InspectState::kNew;
  bool client_is_a = true;  // the client is the key's side A
  bool midstream = false;
  bool tap = false;
  uint16_t upcalls = 0;
  uint16_t taps = 0;
  // Where its packets go back: from the last inbound packet.
  uint32_t gwlb_addr = 0, local_addr = 0;  // host order
  uint16_t gwlb_port = 0;
  std::vector<uint8_t> header;           // its GENEVE header as last received
  uint64_t pkts[2] = {}, bytes[2] = {};  // [0] client -> server, [1] server -> client
  uint64_t start_wall_ms = 0, last_ms = 0;
  std::vector<HeldPacket> held;
  size_t held_bytes = 0;
};

class InspectFlowTable {
 public:
  static constexpr size_t kShards = 64;

  InspectFlowTable() {
    std::random_device rd;
    seed_ = uint64_t(rd()) << 32 | rd();
  }

  struct Hasher {
    uint64_t seed;
    size_t operator()(const InspectKey& k) const {
      return size_t(SeededFlowHash(k.flow, seed ^ (k.eni * 0x9e3779b97f4a7c15ull)));
    }
  };

  struct alignas(64) Shard {
    std::mutex mu;
    std::unordered_map<InspectKey, InspectFlow, Hasher> flows;
  };

  Shard& ShardOf(const InspectKey& key) { return shards_[Hasher{seed_}(key) % kShards]; }
  Shard& ShardAt(size_t i) { return shards_[i % kShards]; }

  void Init() {
    for (Shard& s : shards_) s.flows = std::unordered_map<InspectKey, InspectFlow, Hasher>(16, Hasher{seed_});
  }

 private:
  uint64_t seed_;
  Shard shards_[kShards];
};

}  // namespace gatehouse
