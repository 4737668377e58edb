// Kept routes (http_relay.cc): the relay's repeat of a decision TypeScript
// made. After TypeScript forwards a plain GET or HEAD, it may tell the relay
// that the next requests on the same connection with the same method and
// the same target prefix (`http://authority`, byte for byte) go the same
// way: same checked address, same Host, same Via and X-Forwarded-For. The
// policy's facts (client, endpoint, host, port, method) are the same for
// such a request, so its decision is too; the route expires with the DNS
// answer it was checked against and with every policy reload.
//
// Only the plainest heads are repeated here. Anything TypeScript reads
// more carefully (a body, Transfer-Encoding, Connection naming fields,
// HTTP/1.0, a 1xx or a close-delimited answer, a malformed line) makes the
// functions below return false, and the head goes to TypeScript as usual:
// these functions never refuse anything, they only decline. What they
// produce is byte for byte what src/proxy/server/headers.ts produces.
//
// The ingress keeps routes too (src/ingress/server/relay-front.ts), in two
// forms: exact (a head repeated byte for byte goes upstream as the head
// made for it) and ingress routes (the same Host, User-Agent and Referer
// with another plain target and other fields: the head
// src/ingress/server/upstream-headers.ts would make and, on a signed
// route, a SigV4 signature made here, sigv4_target.h).
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <string>

#include "ascii.h"
#include "sigv4_target.h"

namespace gatehouse {

struct KeptRoute {
  bool set = false;
  uint32_t generation = 0;
  int64_t expires = 0;  // monotonic ms
  std::string method;   // GET or HEAD, as the client spelled it (uppercase)
  std::string prefix;   // "http://authority" as the client wrote it
  std::string host;     // the Host value sent upstream (the parsed authority)
  std::string ip;       // the checked address
  int port = 0;
  std::string via;        // appended to Via; empty: Via untouched
  std::string forwarded;  // appended to X-Forwarded-For; empty: untouched
  // An exact route (the ingress): no rewrite here. A request whose head is
  // byte for byte `request` goes upstream as `upstream_head`, the head
  // TypeScript made for it (its signature included, valid until expires).
  // An ingress route holds its last request there too (first the one
  // TypeScript decided), repeated the same way.
  bool exact = false;
  std::string request;
  std::string upstream_head;
  std::string path;     // the request's target, for the log
  int64_t idle_ms = 0;  // the exchange's inactivity limit (0: the relay's)
  // An ingress route: a request with the route's method, the route's Host,
  // User-Agent and Referer (the log's facts) and a plain target (see
  // sigv4_target.h) under `match_prefix` goes upstream with the head
  // src/ingress/server/upstream-headers.ts would make for it (its own
  // target after `upstream_prefix`, its own fields rewritten) and, on a
  // signed route, its own signature, made here within `second` (the second
  // of `amz_fields`' X-Amz-Date) only.
  bool ingress = false;
  std::string client_host;           // the Host value the route's request sent (also its X-Forwarded-Host)
  std::string user_agent;            // its User-Agent ('' without one)
  std::string referer;               // its Referer ('' without one)
  std::string match_prefix;          // the route's path prefix (src/ingress/routes/path.ts)
  std::string upstream_prefix;       // put before the target upstream
  std::string client;                // appended to X-Forwarded-For
  std::string proto;                 // X-Forwarded-Proto
  bool strip_authorization = false;  // an unsigned route drops the client's Authorization
  bool sign = false;
  int64_t second = 0;  // Unix time, seconds
  std::string
      amz_fields;   // "X-Amz-Date: ...\r\nX-Amz-Content-Sha256: ...\r\n[X-Amz-Security-Token: ...\r\n]"
  std::string key;  // the day's signing key
  std::string string_to_sign_prefix;  // "AWS4-HMAC-SHA256\n<date>\n<scope>\n"
  std::string canonical_rest;         // the canonical request after its query line
  std::string authorization_prefix;   // "AWS4-HMAC-SHA256 Credential=..., Signature="
};

namespace route_detail {

// tchar (RFC 9110 section 5.6.2).
inline bool IsToken(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// One field line: name and value (value trimmed of SP and HTAB).
struct Field {
  const char* name;
  size_t name_len;
  const char* value;
  size_t value_len;
};

// A field's value equals `want` byte for byte (an absent field, value_len 0, equals '').
inline bool ValueIs(const Field& f, const std::string& want) {
  return f.value_len == want.size() && (want.empty() || memcmp(f.value, want.data(), want.size()) == 0);
}

// Reads the field line at `*at` (which ends before `end`, the head's final
// CRLF CRLF excluded) with the strictness of src/http1/fields.ts; false
// for anything it would refuse. Advances `*at` past the line's CRLF.
inline bool NextField(const char* head, size_t end, size_t* at, Field* f) {
  size_t start = *at;
  const void* crlf = memmem(head + start, end - start, "\r\n", 2);
  size_t line_end = crlf == nullptr ? end : static_cast<const char*>(crlf) - head;
  size_t colon = start;
  while (colon < line_end && head[colon] != ':') {
    if (!IsToken(static_cast<unsigned char>(head[colon]))) return false;  // obs-fold starts with SP/HTAB
    colon++;
  }
  if (colon == start || colon == line_end) return false;
  size_t from = colon + 1, to = line_end;
  for (size_t i = from; i < to; i++) {
    unsigned char c = static_cast<unsigned char>(head[i]);
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  while (from < to && (head[from] == ' ' || head[from] == '\t')) from++;
  while (to > from && (head[to - 1] == ' ' || head[to - 1] == '\t')) to--;
  *f = Field{head + start, colon - start, head + from, to - from};
  *at = line_end + 2;
  return true;
}

// A Connection (or Proxy-Connection) value that names only `close` and
// `keep-alive`: anything else names hop-by-hop fields, which TypeScript
// removes. False for such a list; `*close` (when given) says whether close
// was named: only Connection's close counts, as in TypeScript.
inline bool PlainConnection(const Field& f, bool* close) {
  size_t i = 0;
  while (i <= f.value_len) {
    size_t j = i;
    while (j < f.value_len && f.value[j] != ',') j++;
    size_t a = i, b = j;
    while (a < b && (f.value[a] == ' ' || f.value[a] == '\t')) a++;
    while (b > a && (f.value[b - 1] == ' ' || f.value[b - 1] == '\t')) b--;
    if (EqualsLower(f.value + a, b - a, "close")) {
      if (close != nullptr) *close = true;
    } else if (b > a && !EqualsLower(f.value + a, b - a, "keep-alive")) {
      return false;
    }
    i = j + 1;
  }
  return true;
}

// Fields removed in both directions (RFC 9110 section 7.6.1), as in headers.ts.
inline bool AlwaysHopByHop(const Field& f) {
  return EqualsLower(f.name, f.name_len, "keep-alive") ||
         EqualsLower(f.name, f.name_len, "proxy-authorization") ||
         EqualsLower(f.name, f.name_len, "proxy-authenticate") || EqualsLower(f.name, f.name_len, "te") ||
         EqualsLower(f.name, f.name_len, "trailer") || EqualsLower(f.name, f.name_len, "upgrade");
}

inline void AppendField(std::string* out, const char* name, size_t name_len, const char* value,
                        size_t value_len) {
  out->append(name, name_len);
  out->append(": ", 2);
  out->append(value, value_len);
  out->append("\r\n", 2);
}

// A list field (Via, X-Forwarded-For): every value of the head joined, then ours.
inline void AppendList(std::string* out, const char* name, const std::string& values,
                       const std::string& ours) {
  out->append(name);
  out->append(": ", 2);
  if (!values.empty()) {
    out->append(values);
    out->append(", ", 2);
  }
  out->append(ours);
  out->append("\r\n", 2);
}

inline void AddToList(std::string* list, const Field& f) {
  if (f.value_len == 0) return;
  if (!list->empty()) list->append(", ", 2);
  list->append(f.value, f.value_len);
}

}  // namespace route_detail

// The upstream head for a request on a kept route, from the client's head
// [head, head+len) (ending with CRLF CRLF). False when the request is not
// the route's repeat or not plain enough (see above). `path` gets the
// origin-form target (for the log), `keep_alive` whether the client allows
// another request.
inline bool RewriteRoutedRequest(const char* head, size_t len, const KeptRoute& r, std::string* out,
                                 std::string* path, bool* keep_alive) {
  using namespace route_detail;
  size_t end = len - 4;
  const void* crlf = memmem(head, len - 2, "\r\n", 2);
  size_t line_end = static_cast<const char*>(crlf) - head;  // a head always holds a CRLF
  // "METHOD SP http://authority/path SP HTTP/1.1", method and prefix as the route's.
  size_t m = r.method.size(), p = r.prefix.size();
  static const char kVersion[] = " HTTP/1.1";
  constexpr size_t kVersionLen = sizeof(kVersion) - 1;
  if (line_end < m + 1 + p + 1 + kVersionLen) return false;
  if (memcmp(head, r.method.data(), m) != 0 || head[m] != ' ') return false;
  if (memcmp(head + m + 1, r.prefix.data(), p) != 0) return false;
  size_t path_start = m + 1 + p, path_end = line_end - kVersionLen;
  if (memcmp(head + path_end, kVersion, kVersionLen) != 0 || head[path_start] != '/') return false;
  for (size_t i = path_start; i < path_end; i++) {
    unsigned char c = static_cast<unsigned char>(head[i]);
    if (c < 0x21 || c > 0x7e || c == '#') return false;  // a fragment is cut in TypeScript
  }
  path->assign(head + path_start, path_end - path_start);

  out->clear();
  out->append(r.method);
  out->push_back(' ');
  out->append(*path);
  out->append(" HTTP/1.1\r\nHost: ", 17);
  out->append(r.host);
  out->append("\r\n", 2);
  std::string vias, forwarded;
  bool close = false;
  size_t at = line_end + 2;
  while (at < end) {
    Field f;
    if (!NextField(head, end, &at, &f)) return false;
    const char* n = f.name;
    size_t nl = f.name_len;
    if (EqualsLower(n, nl, "content-length") || EqualsLower(n, nl, "transfer-encoding"))
      return false;  // a body: TypeScript frames it
    if (EqualsLower(n, nl, "connection") || EqualsLower(n, nl, "proxy-connection")) {
      if (!PlainConnection(f, EqualsLower(n, nl, "connection") ? &close : nullptr)) return false;
    } else if (EqualsLower(n, nl, "host") || AlwaysHopByHop(f)) {
      // replaced, or this connection's own
    } else if (!r.via.empty() && EqualsLower(n, nl, "via")) {
      AddToList(&vias, f);
    } else if (!r.forwarded.empty() && EqualsLower(n, nl, "x-forwarded-for")) {
      AddToList(&forwarded, f);
    } else {
      AppendField(out, n, nl, f.value, f.value_len);
    }
  }
  if (!r.via.empty()) AppendList(out, "Via", vias, r.via);
  if (!r.forwarded.empty()) AppendList(out, "X-Forwarded-For", forwarded, r.forwarded);
  out->append("\r\n", 2);
  *keep_alive = !close;
  return true;
}

// The upstream head for a request on an exact kept route: the one made for
// the route's request when this head repeats it byte for byte, else false.
inline bool RepeatExactRequest(const char* head, size_t len, const KeptRoute& r, std::string* out,
                               std::string* path, bool* keep_alive) {
  if (len != r.request.size() || memcmp(head, r.request.data(), len) != 0) return false;
  *out = r.upstream_head;
  *path = r.path;
  *keep_alive = true;  // only a request that lets its connection go on is kept exactly
  return true;
}

// `/api/` matches what starts with it; `/api` matches `/api` and `/api/...`
// (prefixMatches in src/ingress/routes/path.ts).
inline bool PrefixMatches(const std::string& prefix, const char* path, size_t len) {
  size_t n = prefix.size();
  if (len < n || memcmp(path, prefix.data(), n) != 0) return false;
  if (n > 0 && prefix[n - 1] == '/') return true;
  return len == n || path[n] == '/';
}

// The client's fields [at, end) of a request on an ingress route
// rewritten as upstream-headers.ts rewrites them, appended to `out`
// between Host and the signature; `forwarded` gets the X-Forwarded-For
// chain. False when the head is not the route's (another Host, User-Agent
// or Referer) or not plain: a body, Expect or Upgrade, a Connection naming
// fields or close, a malformed line.
inline bool RewriteIngressFields(const char* head, size_t at, size_t end, const KeptRoute& r,
                                 std::string* out, std::string* forwarded) {
  using namespace route_detail;
  // Where the (last) Host, User-Agent and Referer values lie in the head:
  // compared with the route's at the end, never copied.
  Field host{}, user_agent{}, referer{};
  int hosts = 0;
  while (at < end) {
    Field f;
    if (!NextField(head, end, &at, &f)) return false;
    const char* n = f.name;
    size_t nl = f.name_len;
    if (EqualsLower(n, nl, "content-length") || EqualsLower(n, nl, "transfer-encoding") ||
        EqualsLower(n, nl, "expect") || EqualsLower(n, nl, "upgrade"))
      return false;  // a body, 100-continue, an upgrade: TypeScript's
    if (EqualsLower(n, nl, "connection") || EqualsLower(n, nl, "proxy-connection")) {
      bool close = false;
      if (!PlainConnection(f, &close) || close) return false;
      continue;
    }
    if (EqualsLower(n, nl, "host")) {
      host = f;
      hosts++;
      continue;
    }
    if (EqualsLower(n, nl, "x-forwarded-for")) {
      // As readRequestHead joins them: an empty first value is replaced by the next.
      if (!forwarded->empty()) forwarded->append(", ", 2);
      forwarded->append(f.value, f.value_len);
      continue;
    }
    if (EqualsLower(n, nl, "x-forwarded-proto") || EqualsLower(n, nl, "x-forwarded-host") ||
        AlwaysHopByHop(f))
      continue;
    if (nl >= 15 && EqualsLower(n, 15, "x-amzn-lattice-")) continue;
    if (r.sign ? EqualsLower(n, nl, "authorization") || EqualsLower(n, nl, "x-amz-date") ||
                     EqualsLower(n, nl, "x-amz-content-sha256") || EqualsLower(n, nl, "x-amz-security-token")
               : r.strip_authorization && EqualsLower(n, nl, "authorization"))
      continue;
    if (EqualsLower(n, nl, "user-agent")) user_agent = f;
    if (EqualsLower(n, nl, "referer")) referer = f;
    AppendField(out, n, nl, f.value, f.value_len);
  }
  return hosts == 1 && ValueIs(host, r.client_host) && ValueIs(user_agent, r.user_agent) &&
         ValueIs(referer, r.referer);
}

// The upstream head for a request on an ingress route (see KeptRoute),
// from the client's head [head, head+len); false when the request is not
// the route's or not plain enough, or a signed route's second is over (and
// the request is not the last one sent again).
inline bool RepeatIngressRequest(const char* head, size_t len, KeptRoute& r, int64_t second, std::string* out,
                                 std::string* path, bool* keep_alive) {
  // The last request again: its head as sent, its signature at most the route's lifetime old.
  if (RepeatExactRequest(head, len, r, out, path, keep_alive)) return true;
  if (r.sign && second != r.second) return false;
  const void* crlf = memmem(head, len - 2, "\r\n", 2);
  size_t line_end = static_cast<const char*>(crlf) - head;
  static const char kVersion[] = " HTTP/1.1";
  constexpr size_t kVersionLen = sizeof(kVersion) - 1;
  size_t m = r.method.size();
  if (line_end < m + 2 + kVersionLen) return false;
  if (memcmp(head, r.method.data(), m) != 0 || head[m] != ' ') return false;
  size_t target = m + 1, target_end = line_end - kVersionLen;
  if (memcmp(head + target_end, kVersion, kVersionLen) != 0) return false;
  size_t fields = line_end + 2;
  *keep_alive = true;  // HTTP/1.1 without close (RewriteIngressFields declines close)
  path->assign(head + target, target_end - target);
  size_t mark = path->find('?');
  size_t path_len = mark == std::string::npos ? path->size() : mark;
  if (!PrefixMatches(r.match_prefix, path->data(), path_len)) return false;
  std::string upstream_target = r.upstream_prefix + *path;
  size_t up_path_len = r.upstream_prefix.size() + path_len;
  // Plain targets only, signed or not: TypeScript routes and signs the rest.
  std::string canonical = r.method;
  canonical.push_back('\n');
  size_t query_at = std::min(up_path_len + 1, upstream_target.size());
  if (!CanonicalTarget(upstream_target.data(), up_path_len, upstream_target.data() + query_at,
                       upstream_target.size() - query_at, &canonical))
    return false;
  out->assign(r.method);
  out->push_back(' ');
  out->append(upstream_target);
  out->append(" HTTP/1.1\r\nHost: ", 17);
  out->append(r.host);
  out->append("\r\n", 2);
  std::string forwarded;
  if (!RewriteIngressFields(head, fields, len - 4, r, out, &forwarded)) return false;
  if (r.sign) {
    canonical.push_back('\n');
    canonical.append(r.canonical_rest);
    std::string to_sign = r.string_to_sign_prefix;
    out->append(r.amz_fields);
    out->append("Authorization: ", 15);
    out->append(r.authorization_prefix);
    if (!AppendSha256Hex(canonical, &to_sign) || !AppendHmacSha256Hex(r.key, to_sign, out)) return false;
    out->append("\r\n", 2);
  }
  route_detail::AppendList(out, "X-Forwarded-For", forwarded, r.client);
  out->append("X-Forwarded-Proto: ", 19);
  out->append(r.proto);
  out->append("\r\nX-Forwarded-Host: ", 20);
  out->append(r.client_host);
  out->append("\r\n\r\n", 4);
  r.request.assign(head, len);
  r.upstream_head = *out;
  r.path = *path;
  return true;
}

// The client's copy of an upstream answer on a kept route.
struct RoutedAnswer {
  std::string head;
  int status = 0;
  bool has_content_type = false;
  std::string content_type;
  enum Body { kNone, kLength, kChunked } body = kNone;
  uint64_t length = 0;
  bool reusable = false;  // the upstream connection may carry another request
};

// Reads the upstream's head [head, head+len) (ending with CRLF CRLF) for an
// HTTP/1.1 client; false when it is not plain enough: HTTP/1.0, a 1xx, a
// body delimited by the close, Transfer-Encoding other than one `chunked`,
// a Content-Length list, a Connection naming fields, a malformed line.
inline bool RewriteRoutedResponse(const char* head, size_t len, bool head_request, const std::string& via,
                                  bool keep_alive, RoutedAnswer* a) {
  using namespace route_detail;
  size_t end = len - 4;
  const void* crlf = memmem(head, len - 2, "\r\n", 2);
  size_t line_end = static_cast<const char*>(crlf) - head;
  // "HTTP/1.1 SP 3DIGIT [SP reason]"
  if (line_end < 12 || memcmp(head, "HTTP/1.1 ", 9) != 0) return false;
  for (size_t i = 9; i < 12; i++) {
    if (head[i] < '0' || head[i] > '9') return false;
  }
  int status = (head[9] - '0') * 100 + (head[10] - '0') * 10 + (head[11] - '0');
  if (status < 200) return false;  // 1xx (and 0xx): TypeScript relays or refuses them
  size_t reason = line_end;
  if (line_end > 12) {
    if (head[12] != ' ') return false;
    reason = 13;
  }
  for (size_t i = reason; i < line_end; i++) {
    unsigned char c = static_cast<unsigned char>(head[i]);
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  std::string& out = a->head;
  out.assign("HTTP/1.1 ", 9);
  out.append(head + 9, 3);
  out.push_back(' ');
  out.append(head + reason, line_end - reason);
  out.append("\r\n", 2);
  std::string vias;
  bool chunked = false, has_length = false, close = false;
  uint64_t length = 0;
  size_t at = line_end + 2;
  size_t length_field_at = std::string::npos, length_field_len = 0;
  while (at < end) {
    Field f;
    if (!NextField(head, end, &at, &f)) return false;
    const char* n = f.name;
    size_t nl = f.name_len;
    if (EqualsLower(n, nl, "transfer-encoding")) {
      if (chunked || !EqualsLower(f.value, f.value_len, "chunked")) return false;
      chunked = true;
    } else if (EqualsLower(n, nl, "content-length")) {
      if (has_length || f.value_len == 0 || f.value_len > 15) return false;
      for (size_t i = 0; i < f.value_len; i++) {
        if (f.value[i] < '0' || f.value[i] > '9') return false;
        length = length * 10 + static_cast<uint64_t>(f.value[i] - '0');
      }
      has_length = true;
      length_field_at = out.size();
      AppendField(&out, n, nl, f.value, f.value_len);
      length_field_len = out.size() - length_field_at;
    } else if (EqualsLower(n, nl, "connection") || EqualsLower(n, nl, "proxy-connection")) {
      if (!PlainConnection(f, EqualsLower(n, nl, "connection") ? &close : nullptr)) return false;
    } else if (AlwaysHopByHop(f)) {
      // this connection's own
    } else if (!via.empty() && EqualsLower(n, nl, "via")) {
      AddToList(&vias, f);
    } else {
      if (!a->has_content_type &&
          EqualsLower(n, nl, "content-type")) {  // the first one, as TypeScript logs it
        a->has_content_type = true;
        a->content_type.assign(f.value, f.value_len);
      }
      AppendField(&out, n, nl, f.value, f.value_len);
    }
  }
  if (chunked && has_length) return false;  // both: TypeScript reads it and closes after
  bool bodiless = head_request || status == 204 || status == 304;
  if (!bodiless && !chunked && !has_length) return false;  // until the close
  if (!bodiless && chunked && length_field_at != std::string::npos)
    out.erase(length_field_at, length_field_len);
  if (!via.empty()) AppendList(&out, "Via", vias, via);
  if (!bodiless && chunked) out.append("Transfer-Encoding: chunked\r\n");
  if (!keep_alive) out.append("Connection: close\r\n");
  out.append("\r\n", 2);
  a->status = status;
  a->reusable = !close;
  if (bodiless) {
    a->body = RoutedAnswer::kNone;
  } else if (chunked) {
    a->body = RoutedAnswer::kChunked;
  } else {
    a->body = RoutedAnswer::kLength;
    a->length = length;
  }
  return true;
}

}  // namespace gatehouse
