// SigV4 in the relay, for the ingress's kept routes (http_route.h,
// RepeatIngressRequest): the canonical URI and query of a request target,
// and the signature over a canonical request whose other parts TypeScript
// made with @smithy/signature-v4 (the credentials, the day's signing key,
// the second's date and scope, the host's canonical headers).
//
// Only targets whose canonical form needs no encoding are handled here:
// a path of unreserved characters and "/" without dot segments, a query of
// `name[=value]` pairs of unreserved characters. For those, smithy's rules
// (path segments normalised, each empty segment dropped; query pairs
// decoded, encoded again, sorted by name then by the encoded pair) reduce
// to what CanonicalTarget does, and the tests compare its signatures with
// smithy's sign(). Anything else returns false, and TypeScript signs it.
#pragma once

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stddef.h>
#include <string.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "ascii.h"

namespace gatehouse {

namespace sigv4_detail {

// RFC 3986 unreserved: what SigV4's URI encoding leaves as it is.
inline bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

inline void AppendHex(std::string* out, const unsigned char* bytes, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out->push_back(kDigits[bytes[i] >> 4]);
    out->push_back(kDigits[bytes[i] & 15]);
  }
}

}  // namespace sigv4_detail

// The canonical URI and query of the path part [path, path+path_len) and
// query part [query, query+query_len) (without its "?"), appended to `out`
// as "URI\nQUERY". False when they are not plain enough (see above).
inline bool CanonicalTarget(const char* path, size_t path_len, const char* query, size_t query_len,
                            std::string* out) {
  using sigv4_detail::IsUnreserved;
  if (path_len == 0 || path[0] != '/') return false;
  // URI: the path's non-empty segments joined by "/", its final "/" kept.
  out->push_back('/');
  bool any = false;
  size_t i = 0;
  while (i < path_len) {
    size_t j = i;
    while (j < path_len && path[j] != '/') {
      if (!IsUnreserved(static_cast<unsigned char>(path[j]))) return false;
      j++;
    }
    size_t n = j - i;
    if (n > 0) {
      if ((n == 1 && path[i] == '.') || (n == 2 && path[i] == '.' && path[i + 1] == '.')) return false;
      if (any) out->push_back('/');
      out->append(path + i, n);
      any = true;
    }
    i = j + 1;
  }
  if (any && path[path_len - 1] == '/') out->push_back('/');
  out->push_back('\n');
  // Query: "name=value" pairs sorted (by name, then value: the same order
  // as smithy's sort of names and then of a name's encoded pairs).
  std::vector<std::pair<std::string, std::string>> pairs;
  i = 0;
  while (i < query_len) {
    size_t j = i, eq = std::string::npos;
    while (j < query_len && query[j] != '&') {
      unsigned char c = static_cast<unsigned char>(query[j]);
      if (c == '=') {
        if (eq != std::string::npos) return false;  // "=" in a value is encoded
        eq = j;
      } else if (!IsUnreserved(c)) {
        return false;
      }
      j++;
    }
    if (j > i) {
      size_t name_end = eq == std::string::npos ? j : eq;
      std::string name(query + i, name_end - i);
      // smithy leaves out a parameter named X-Amz-Signature (any case), and
      // a plain object cannot hold one named __proto__: TypeScript's.
      if (name == "__proto__" || EqualsLower(name.data(), name.size(), "x-amz-signature")) return false;
      pairs.emplace_back(std::move(name),
                         eq == std::string::npos ? std::string() : std::string(query + eq + 1, j - eq - 1));
    }
    i = j + 1;
  }
  std::sort(pairs.begin(), pairs.end());
  for (size_t k = 0; k < pairs.size(); k++) {
    if (k > 0) out->push_back('&');
    out->append(pairs[k].first);
    out->push_back('=');
    out->append(pairs[k].second);
  }
  return true;
}

namespace sigv4_detail {

// OpenSSL 3 looks the algorithm up by name on every one-shot call
// (SHA256(), HMAC()): a third of a signature's cost here. Fetched once.
inline const EVP_MD* Sha256Method() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

inline bool Sha256(const void* data, size_t n, unsigned char digest[SHA256_DIGEST_LENGTH]) {
  const EVP_MD* md = Sha256Method();
  return md != nullptr && EVP_Digest(data, n, digest, nullptr, md, nullptr) == 1;
}

}  // namespace sigv4_detail

// Hex SHA-256 of `data`, appended to `out`; false if OpenSSL fails.
inline bool AppendSha256Hex(const std::string& data, std::string* out) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  if (!sigv4_detail::Sha256(data.data(), data.size(), digest)) return false;
  sigv4_detail::AppendHex(out, digest, sizeof(digest));
  return true;
}

// Hex HMAC-SHA256 (RFC 2104) of `data` under `key`, appended to `out`,
// built on the fetched SHA-256 (see above); false if OpenSSL fails or the
// key is longer than a block (SigV4's signing key is 32 bytes).
inline bool AppendHmacSha256Hex(const std::string& key, const std::string& data, std::string* out) {
  constexpr size_t kBlock = 64;
  if (key.size() > kBlock) return false;
  std::string inner(kBlock + data.size(), '\0');
  unsigned char outer[kBlock + SHA256_DIGEST_LENGTH];
  for (size_t i = 0; i < kBlock; i++) {
    unsigned char k = i < key.size() ? static_cast<unsigned char>(key[i]) : 0;
    inner[i] = static_cast<char>(k ^ 0x36);
    outer[i] = static_cast<unsigned char>(k ^ 0x5c);
  }
  memcpy(&inner[kBlock], data.data(), data.size());
  unsigned char mac[SHA256_DIGEST_LENGTH];
  if (!sigv4_detail::Sha256(inner.data(), inner.size(), outer + kBlock) ||
      !sigv4_detail::Sha256(outer, sizeof(outer), mac))
    return false;
  sigv4_detail::AppendHex(out, mac, sizeof(mac));
  return true;
}

}  // namespace gatehouse
