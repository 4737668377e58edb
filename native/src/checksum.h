// Internet checksum (RFC 1071) and incremental update (RFC 1624), used for
// the outer IPv4/UDP headers we write and the inner packets emu stamps.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gatehouse {

// One's-complement sum of `len` bytes as big-endian 16-bit words, folded
// into 32 bits (not yet complemented); chain calls by passing `sum`.
inline uint32_t ChecksumPartial(const uint8_t* p, size_t len, uint32_t sum = 0) {
  uint64_t s = sum;
  while (len >= 2) {
    s += uint32_t(p[0]) << 8 | p[1];
    p += 2;
    len -= 2;
  }
  if (len) s += uint32_t(p[0]) << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return uint32_t(s);
}

inline uint16_t ChecksumFinish(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum & 0xffff);
}

// RFC 1624 eqn. 3: new checksum after a 16-bit word changed from `old_word`
// to `new_word`; `csum` and the result are as stored in the header.
inline uint16_t ChecksumAdjust(uint16_t csum, uint16_t old_word, uint16_t new_word) {
  uint32_t s = uint32_t(uint16_t(~csum)) + uint16_t(~old_word) + new_word;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return uint16_t(~s & 0xffff);
}

inline uint16_t LoadBe16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
inline void StoreBe16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
inline uint32_t LoadBe32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
inline void StoreBe32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}

}  // namespace gatehouse
