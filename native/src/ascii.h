// ASCII comparisons the relay's head readers share (http_route.h,
// sigv4_target.h).
#pragma once

#include <stddef.h>
#include <string.h>

namespace gatehouse {

// [p, p+n) equals `lower` (a lower-case literal), ASCII case ignored.
inline bool EqualsLower(const char* p, size_t n, const char* lower) {
  size_t len = strlen(lower);
  if (n != len) return false;
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c | 0x20);
    if (c != lower[i]) return false;
  }
  return true;
}

}  // namespace gatehouse
