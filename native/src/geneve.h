// GENEVE (RFC 8926) as AWS Gateway Load Balancer speaks it.
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |Ver|  Opt Len  |O|C|    Rsvd.  |          Protocol Type        |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |        Virtual Network Identifier (VNI)       |    Reserved   |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |          Option Class         |      Type     |R|R|R| Length  |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                 Variable-Length Option Data                   |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Opt Len and each option's Length count 4-byte words. GWLB always sends
// class 0x0108 type 1 (endpoint ENI id, 8 bytes), type 2 (attachment id,
// 8 bytes) and type 3 (flow cookie, 4 bytes). The inner packet is L3
// (protocol type = EtherType 0x0800 or 0x86DD), no Ethernet header.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gatehouse {

constexpr uint16_t kGenevePort = 6081;
constexpr uint16_t kAwsOptionClass = 0x0108;
constexpr uint16_t kEtherTypeIPv4 = 0x0800;
constexpr uint16_t kEtherTypeIPv6 = 0x86DD;

// Same names, same order as GENEVE_REASONS in src/geneve/reasons.ts; the
// decoders check in this order so both give the same reason for any bytes.
enum class GeneveReason : uint8_t {
  kOk = 0xff,
  kTruncatedHeader = 0,
  kBadVersion,
  kOptionsPastDatagram,
  kOptionPastArea,
  kEniMissing,
  kEniBadLength,
  kAttachmentMissing,
  kAttachmentBadLength,
  kCookieMissing,
  kCookieBadLength,
  kBadProtocol,
  kIpVersionMismatch,
  kInnerTruncated,
};
constexpr int kGeneveReasonCount = 13;
extern const char* const kGeneveReasonNames[kGeneveReasonCount];

struct GeneveInfo {
  uint16_t header_len;  // 8 + options: where the inner packet starts
  uint16_t protocol;    // EtherType of the inner packet
  uint64_t eni;         // option 1
  uint64_t attachment;  // option 2
  uint32_t cookie;      // option 3, network order kept as read (big-endian value)
};

// Validates `len` bytes at `p`. Returns kOk and fills `out`, or the first
// reason the datagram is malformed. Never reads outside [p, p+len).
GeneveReason DecodeGeneve(const uint8_t* p, size_t len, GeneveInfo* out);

}  // namespace gatehouse
