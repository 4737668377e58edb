// The flow key of an inner IPv4/IPv6 packet: protocol, addresses and ports,
// in a canonical (symmetric) order so that both directions of a conversation
// give the same key. Used by the lab's gateway and, later, by the GWLB target.
//
// What counts as "ports":
//   TCP, UDP, UDP-Lite, SCTP, DCCP  the two 16-bit ports at the start of L4.
//   ICMP / ICMPv6 echo request and reply: the echo identifier as the source
//                                   "port", destination port 0 (both
//                                   directions share it).
//   Any other ICMP type, any other protocol: ports 0.
// IPv4 options are skipped (IHL honoured); IPv6 extension headers are walked
// (hop-by-hop 0, routing 43, fragment 44, destination options 60, AH 51), and
// AH is walked in IPv4 too, so the key names the upper-layer protocol.
//
// Fragments: only a first fragment carries the L4 header. A FragmentTracker
// remembers the ports of first fragments by (src, dst, IP id) so that later
// fragments of the same datagram get the same key; when the first fragment
// was not seen (or was forgotten) later fragments get ports 0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace gatehouse {

// Same names, same order as FLOW_KEY_REASONS in src/native/flow-key.ts.
enum class FlowKeyReason : uint8_t {
  kOk = 0xff,
  kEmpty = 0,            // zero bytes
  kBadVersion,           // version nibble neither 4 nor 6
  kIPv4Truncated,        // fewer than 20 bytes, or fewer than total length / IHL
  kIPv4BadHeaderLength,  // IHL < 5, or total length < IHL * 4
  kIPv6Truncated,        // fewer than 40 bytes, or fewer than 40 + payload length
  kExtensionTruncated,   // an extension header (or AH) runs past the packet
  kL4Truncated,          // the transport header is too short for its ports / ICMP header
};
constexpr int kFlowKeyReasonCount = 7;
extern const char* const kFlowKeyReasonNames[kFlowKeyReasonCount];

// The canonical key: side A is the lower (address, port) pair, so the key
// does not depend on the direction. IPv4 addresses use the first 4 bytes of
// the 16; the rest stays zero so keys compare and hash as plain bytes.
struct FlowKey {
  uint8_t family;    // 4 or 6
  uint8_t protocol;  // upper-layer protocol number
  uint16_t port_a;   // host order
  uint16_t port_b;
  uint8_t addr_a[16];
  uint8_t addr_b[16];

  bool operator==(const FlowKey& o) const { return memcmp(this, &o, sizeof(FlowKey)) == 0; }
  bool operator!=(const FlowKey& o) const { return !(*this == o); }
};
static_assert(sizeof(FlowKey) == 38, "FlowKey must have no padding: it is compared and hashed as bytes");

// A 64-bit hash of the key's bytes (FNV-1a, then a final mix): the same for
// both directions because the key is.
uint64_t HashFlowKey(const FlowKey& key);

// A keyed hash for flow tables: FlowKey's 38 bytes as five 64-bit words,
// each folded in with a multiply-xorshift round, then a final avalanche.
// Five times faster than HashFlowKey, and with a per-table random `seed`
// crafted inner 5-tuples cannot be made to pile up in one probe run.
inline uint64_t SeededFlowHash(const FlowKey& key, uint64_t seed) {
  uint64_t w[5] = {};
  memcpy(w, &key, sizeof key);
  uint64_t h = seed;
  for (uint64_t x : w) {
    h = (h ^ x) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 32;
  }
  h = (h ^ (h >> 29)) * 0xbf58476d1ce4e5b9ull;
  return h ^ (h >> 32);
}

struct FlowKeyHasher {
  size_t operator()(const FlowKey& k) const { return size_t(HashFlowKey(k)); }
};

enum class FragmentKind : uint8_t {
  kNone = 0,   // not a fragment (or an IPv6 atomic fragment: offset 0, no M flag)
  kFirst = 1,  // offset 0 with more fragments: carries the L4 header
  kLater = 2,  // offset > 0: no L4 header
};

enum class PortsFrom : uint8_t {
  kHeader = 0,   // read from this packet's L4 header (or not applicable)
  kTracker = 1,  // a later fragment; ports remembered from its first fragment
  kUnknown = 2,  // a later fragment whose first fragment was not seen: ports 0
};

struct ParsedFlow {
  FlowKey key;
  bool reversed;  // true when this packet goes from side B to side A
  // As seen in this packet (source first).
  uint8_t src[16];
  uint8_t dst[16];
  uint16_t src_port;
  uint16_t dst_port;
  uint8_t icmp_type;  // ICMP/ICMPv6 type when protocol is 1 / 58 and ports are from the header
  FragmentKind fragment;
  uint32_t fragment_id;      // IPv4 identification or IPv6 fragment identification (0 if not a fragment)
  uint16_t fragment_offset;  // bytes
  bool more_fragments;
  PortsFrom ports_from;
  // Where the L4 header starts and where the IP packet ends (its length
  // field, not the buffer): what follows the L4 header is the payload.
  // For a later fragment, where its fragment data starts.
  uint32_t l4_offset;
  uint32_t ip_end;
};

// Remembers (src, dst, id) -> (protocol, ports) of recent first fragments.
// Fixed size, direct-mapped (a newer first fragment overwrites an older one
// in the same slot) and entries older than kFragmentTtlMs are ignored, so
// memory and time per packet are bounded. One per thread: no locking.
class FragmentTracker {
 public:
  static constexpr size_t kSlots = 1024;
  static constexpr uint64_t kFragmentTtlMs = 30000;  // Linux's ipfrag_time

  void Remember(uint8_t family, const uint8_t* src, const uint8_t* dst, uint32_t id, uint8_t ip_protocol,
                uint8_t protocol, uint16_t src_port, uint16_t dst_port, uint64_t now_ms);
  // Fills protocol and ports for a later fragment; false when not known.
  bool Lookup(uint8_t family, const uint8_t* src, const uint8_t* dst, uint32_t id, uint8_t ip_protocol,
              uint64_t now_ms, uint8_t* protocol, uint16_t* src_port, uint16_t* dst_port) const;

 private:
  struct Slot {
    bool used = false;
    uint8_t family = 0;
    uint8_t ip_protocol = 0;  // IPv4: the header's protocol; IPv6: 0 (the id alone names the datagram)
    uint8_t protocol = 0;
    uint16_t src_port = 0, dst_port = 0;
    uint32_t id = 0;
    uint64_t seen_ms = 0;
    uint8_t src[16] = {}, dst[16] = {};
  };
  size_t SlotOf(uint8_t family, const uint8_t* src, const uint8_t* dst, uint32_t id,
                uint8_t ip_protocol) const;
  Slot slots_[kSlots];
};

// Parses `len` bytes of an inner IP packet. Never reads outside [p, p+len).
// `tracker` may be null (later fragments then always get ports 0); `now_ms`
// is any monotonic millisecond clock, used only for the tracker.
FlowKeyReason ParseFlowKey(const uint8_t* p, size_t len, FragmentTracker* tracker, uint64_t now_ms,
                           ParsedFlow* out);

// Milliseconds on CLOCK_MONOTONIC (for the tracker and flow idle times).
uint64_t MonotonicMs();

}  // namespace gatehouse
