#include "geneve.h"

namespace gatehouse {

const char* const kGeneveReasonNames[kGeneveReasonCount] = {
    "truncated_header", "bad_version",       "options_past_datagram", "option_past_area",
    "eni_missing",      "eni_bad_length",    "attachment_missing",    "attachment_bad_length",
    "cookie_missing",   "cookie_bad_length", "bad_protocol",          "ip_version_mismatch",
    "inner_truncated",
};

static inline uint16_t Be16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
static inline uint32_t Be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
static inline uint64_t Be64(const uint8_t* p) { return uint64_t(Be32(p)) << 32 | Be32(p + 4); }

GeneveReason DecodeGeneve(const uint8_t* p, size_t len, GeneveInfo* out) {
  if (len < 8) return GeneveReason::kTruncatedHeader;
  if ((p[0] >> 6) != 0) return GeneveReason::kBadVersion;
  const size_t header_len = 8 + size_t(p[0] & 0x3f) * 4;
  if (header_len > len) return GeneveReason::kOptionsPastDatagram;

  // Walk the option area. A later duplicate of an AWS option overrides an
  // earlier one, exactly as the TypeScript codec does.
  int eni_len = -1, att_len = -1, cookie_len = -1;
  size_t off = 8;
  while (off < header_len) {
    if (off + 4 > header_len) return GeneveReason::kOptionPastArea;
    const size_t data_len = size_t(p[off + 3] & 0x1f) * 4;
    if (off + 4 + data_len > header_len) return GeneveReason::kOptionPastArea;
    if (Be16(p + off) == kAwsOptionClass) {
      const uint8_t type = p[off + 2];
      const uint8_t* d = p + off + 4;
      if (type == 1) {
        eni_len = int(data_len);
        if (data_len == 8) out->eni = Be64(d);
      } else if (type == 2) {
        att_len = int(data_len);
        if (data_len == 8) out->attachment = Be64(d);
      } else if (type == 3) {
        cookie_len = int(data_len);
        if (data_len == 4) out->cookie = Be32(d);
      }
    }
    off += 4 + data_len;
  }
  if (eni_len < 0) return GeneveReason::kEniMissing;
  if (eni_len != 8) return GeneveReason::kEniBadLength;
  if (att_len < 0) return GeneveReason::kAttachmentMissing;
  if (att_len != 8) return GeneveReason::kAttachmentBadLength;
  if (cookie_len < 0) return GeneveReason::kCookieMissing;
  if (cookie_len != 4) return GeneveReason::kCookieBadLength;

  const uint16_t proto = Be16(p + 2);
  if (proto != kEtherTypeIPv4 && proto != kEtherTypeIPv6) return GeneveReason::kBadProtocol;
  const size_t inner_len = len - header_len;
  // An empty inner packet has no version nibble to disagree with: too short.
  if (inner_len == 0) return GeneveReason::kInnerTruncated;
  const uint8_t version = p[header_len] >> 4;
  if ((proto == kEtherTypeIPv4 && version != 4) || (proto == kEtherTypeIPv6 && version != 6))
    return GeneveReason::kIpVersionMismatch;
  if (proto == kEtherTypeIPv4) {
    const size_t ihl = size_t(p[header_len] & 0x0f) * 4;
    if (inner_len < 20 || ihl < 20 || inner_len < ihl) return GeneveReason::kInnerTruncated;
  } else if (inner_len < 40) {
    return GeneveReason::kInnerTruncated;
  }
  out->header_len = uint16_t(header_len);
  out->protocol = proto;
  return GeneveReason::kOk;
}

}  // namespace gatehouse
