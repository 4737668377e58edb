// Byte-level framing for the HTTP relay (http_relay.cc): where a head ends,
// where a PROXY protocol header ends, and where a chunked body ends. Only
// framing lives here; what a head means (methods, fields, policy) is read
// in TypeScript from the head bytes this finds.
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

namespace gatehouse {

// Offset just past the first CRLF CRLF in [p, p+n), or 0 when there is none.
// `from` skips bytes already searched (minus the 3 a terminator may straddle).
inline size_t FindHeadEnd(const char* p, size_t n, size_t from) {
  size_t start = from > 3 ? from - 3 : 0;
  if (n < 4 || start > n - 4) return 0;
  const void* hit = memmem(p + start, n - start, "\r\n\r\n", 4);
  return hit == nullptr ? 0 : static_cast<const char*>(hit) - p + 4;
}

// The PROXY protocol header's length at the start of [p, p+n): > 0 when
// complete, 0 while it may still arrive, -1 when these bytes cannot start
// one (a v1 line longer than 107 bytes, or neither signature). Only the
// framing: TypeScript parses and judges the header's contents.
inline long ProxyHeaderLength(const unsigned char* p, size_t n) {
  static const unsigned char kV2[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                        0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
  static const char kV1[6] = {'P', 'R', 'O', 'X', 'Y', ' '};
  size_t v2 = n < 12 ? n : 12;
  if (memcmp(p, kV2, v2) == 0) {
    if (n < 16) return 0;
    return 16 + ((static_cast<long>(p[14]) << 8) | p[15]);
  }
  size_t v1 = n < 6 ? n : 6;
  if (memcmp(p, kV1, v1) != 0) return -1;
  size_t limit = n < 107 ? n : 107;
  for (size_t i = 1; i < limit; i++) {
    if (p[i - 1] == '\r' && p[i] == '\n') return static_cast<long>(i + 1);
  }
  return n >= 107 ? -1 : 0;
}

// Walks a chunked body (RFC 9112 section 7.1) as it streams past, strictly:
// hex sizes of at most 15 digits, CRLF line ends only, extensions and
// trailer lines skipped. It only finds where the body ends and which bytes
// are chunk data; the bytes themselves pass through untouched.
class ChunkScanner {
 public:
  enum Status { kMore, kDone, kBad };

  // Scans [p, p+n). Returns bytes consumed (up to the body's end; the rest
  // belongs to whatever follows). `on_data(offset, length)` is called for
  // each run of chunk data inside the scanned range.
  template <typename OnData>
  size_t Scan(const char* p, size_t n, OnData on_data) {
    size_t i = 0;
    while (i < n && status_ == kMore) {
      char c = p[i];
      switch (state_) {
        case kSize:
          if (Hex(c) >= 0 && digits_ < 15) {
            size_ = size_ * 16 + static_cast<uint64_t>(Hex(c));
            digits_++;
          } else if (digits_ > 0 && c == ';') {
            state_ = kExtension;
          } else if (digits_ > 0 && c == '\r') {
            state_ = kSizeLf;
          } else {
            status_ = kBad;
          }
          i++;
          break;
        case kExtension:
          if (c == '\r')
            state_ = kSizeLf;
          else if (c == '\n')
            status_ = kBad;
          i++;
          break;
        case kSizeLf:
          if (c != '\n') {
            status_ = kBad;
          } else if (size_ == 0) {
            state_ = kTrailerStart;
          } else {
            state_ = kData;
          }
          i++;
          break;
        case kData: {
          size_t take = n - i;
          if (take > size_) take = static_cast<size_t>(size_);
          on_data(i, take);
          size_ -= take;
          i += take;
          if (size_ == 0) state_ = kDataCr;
          break;
        }
        case kDataCr:
          if (c != '\r') status_ = kBad;
          state_ = kDataLf;
          i++;
          break;
        case kDataLf:
          if (c != '\n') status_ = kBad;
          state_ = kSize;
          digits_ = 0;
          i++;
          break;
        case kTrailerStart:
          state_ = c == '\r' ? kEndLf : kTrailer;
          if (c == '\n') status_ = kBad;
          i++;
          break;
        case kTrailer:
          if (c == '\r')
            state_ = kTrailerLf;
          else if (c == '\n')
            status_ = kBad;
          i++;
          break;
        case kTrailerLf:
          if (c != '\n') status_ = kBad;
          state_ = kTrailerStart;
          i++;
          break;
        case kEndLf:
          status_ = c == '\n' ? kDone : kBad;
          i++;
          break;
      }
    }
    return i;
  }

  Status status() const { return status_; }

 private:
  enum State {
    kSize,
    kExtension,
    kSizeLf,
    kData,
    kDataCr,
    kDataLf,
    kTrailerStart,
    kTrailer,
    kTrailerLf,
    kEndLf
  };
  static int Hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  State state_ = kSize;
  Status status_ = kMore;
  uint64_t size_ = 0;
  int digits_ = 0;
};

}  // namespace gatehouse
