// Pieces of the GWLB target engines (tunnel.cc, inspect.cc) that are not
// their threads: counter tables, options and their readers, the
// source-prefix check, a writer-preferring lock, the
// per-datagram control messages, and the debugging hex dump.
#pragma once

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "geneve.h"
#include "raw_sender.h"
#include "reflector_support.h"
#include "udp_socket.h"

namespace gatehouse {

// Global counters: same names, same order as TUNNEL_COUNTER_NAMES in
// src/native/tunnel.ts (the contract in binding.ts, NativeTunnel).
enum TunnelCounter : size_t {
  kTnRxPackets,
  kTnRxBytes,
  kTnTxPackets,
  kTnTxBytes,
  kTnTxErrors,
  kTnRxOverflow,
  kTnDropSourceNotAllowed,
  kTnDropEndpointLimit,
  kTnDropEndpointRejected,
  kTnQueueDropped,
  kTnDropUnparsableInner,
  kTnDropNoFlow,
  kTnTunWriteErrors,
  kTnFlowsActive,
  kTnFlowsCreated,
  kTnFlowsExpired,
  kTnEndpointsSeen,
  kTnDroppedMalformed,
  kTnDropFlowLimit,
  kTnMalformedFirst,  // then one per GENEVE reason
};

inline std::vector<std::string> TunnelCounterNames() {
  std::vector<std::string> n = {
      "rx_packets",
      "rx_bytes",
      "tx_packets",
      "tx_bytes",
      "tx_errors",
      "rx_overflow",
      "drop_source_not_allowed",
      "drop_endpoint_limit",
      "drop_endpoint_rejected",
      "queue_dropped",
      "drop_unparsable_inner",
      "drop_no_flow",
      "tun_write_errors",
      "flows_active",
      "flows_created",
      "flows_expired",
      "endpoints_seen",
      "dropped_malformed",
      "drop_flow_limit",
  };
  for (int i = 0; i < kGeneveReasonCount; i++) n.push_back(std::string("malformed_") + kGeneveReasonNames[i]);
  return n;
}

// Per-endpoint counters (TUNNEL_ENDPOINT_COUNTER_NAMES).
enum EndpointCounter : size_t {
  kEpRxPackets,
  kEpRxBytes,
  kEpTxPackets,
  kEpTxBytes,
  kEpDropNoFlow,
  kEpTunWriteErrors,
  kEpQueueDropped,
  kEpCounterCount,
};

inline std::vector<std::string> EndpointCounterNames() {
  return {"rx_packets",   "rx_bytes",         "tx_packets",   "tx_bytes",
          "drop_no_flow", "tun_write_errors", "queue_dropped"};
}

// Worker counters: udp0..udpN-1 then tun0..tunM-1, two each.
constexpr size_t kWorkerHeartbeat = 0;
constexpr size_t kWorkerPackets = 1;
constexpr size_t kWorkerCounters = 2;

inline std::vector<std::string> WorkerCounterNames(int udp_threads, int tun_threads) {
  std::vector<std::string> n;
  auto add = [&n](const std::string& w) {
    n.push_back(w + "_heartbeat_ms");
    n.push_back(w + "_packets");
  };
  for (int i = 0; i < udp_threads; i++) add("udp" + std::to_string(i));
  for (int i = 0; i < tun_threads; i++) add("tun" + std::to_string(i));
  return n;
}

struct Ipv4Prefix {
  uint32_t network;  // host order, host bits cleared
  uint32_t mask;     // host order
};

struct TunnelConfig {
  std::string bind;
  uint16_t port = 6081;
  int udp_threads = 1;
  std::vector<int> udp_affinity;  // empty or one CPU per thread
  int tun_threads = 1;
  std::vector<int> tun_affinity;
  int rcvbuf = 0, sndbuf = 0;
  int batch = 64;
  uint32_t flow_idle_ms = 350000;
  size_t max_endpoints = 1024;
  size_t pending_queue = 256;               // packets per pending endpoint
  size_t pending_bytes = 16 << 20;          // inner bytes held by all pending endpoints together
  size_t max_flows = 2000000;               // flows of all endpoints together
  std::vector<Ipv4Prefix> allowed_sources;  // empty = any
  bool hexdump = false;
};

// Option readers shared by the GWLB target engines (see reflector_support.h
// for the scalar ones): an array of integers in [lo, hi], and
// allowedSources ({ address, prefixLength } objects).
inline std::vector<int> OptionIntArray(const Napi::Object& o, const char* key, int lo, int hi) {
  Napi::Value v = OptionValue(o, key);
  if (!v.IsArray()) throw OptionError{std::string("option ") + key + " must be an array"};
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value x = a.Get(i);
    if (!x.IsNumber()) throw OptionError{std::string("option ") + key + " must hold numbers"};
    const double d = x.As<Napi::Number>().DoubleValue();
    if (!(d >= lo && d <= hi) || double(int64_t(d)) != d)
      throw OptionError{std::string("option ") + key + " holds a value out of range"};
    out.push_back(int(d));
  }
  return out;
}

inline std::vector<Ipv4Prefix> OptionPrefixes(const Napi::Object& o, const char* key) {
  Napi::Value v = OptionValue(o, key);
  if (!v.IsArray()) throw OptionError{std::string("option ") + key + " must be an array"};
  Napi::Array a = v.As<Napi::Array>();
  std::vector<Ipv4Prefix> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value x = a.Get(i);
    if (!x.IsObject()) throw OptionError{std::string("option ") + key + " must hold prefixes"};
    Napi::Object p = x.As<Napi::Object>();
    in_addr addr{};
    if (!ParseIPv4(OptionString(p, "address"), &addr))
      throw OptionError{std::string("option ") + key + " holds an address that is not IPv4"};
    const int len = int(OptionNumber(p, "prefixLength", 0, 32));
    const uint32_t mask = len == 0 ? 0 : ~uint32_t(0) << (32 - len);
    out.push_back({ntohl(addr.s_addr) & mask, mask});
  }
  return out;
}

// One UDP worker's sockets: its SO_REUSEPORT socket on bind:port for GENEVE
// (with IP_PKTINFO when bound to any address, so each datagram tells which
// of our addresses GWLB sent it to: the reply's source) and the raw socket
// its replies leave on. False with `*error` set; the caller closes what was opened.
inline bool OpenGwlbSockets(const std::string& bind, uint16_t port, int rcvbuf, int sndbuf, bool pktinfo,
                            int* fd, int* raw_fd, std::string* error) {
  UdpSocketOptions so;
  so.bind_address = bind;
  so.port = port;
  so.reuse_port = true;
  so.rcvbuf = rcvbuf;
  so.sndbuf = sndbuf;
  *fd = OpenUdpSocket(so, error);
  if (*fd < 0) return false;
  int one = 1;
  if (pktinfo && setsockopt(*fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) < 0) {
    *error = std::string("setsockopt(IP_PKTINFO): ") + strerror(errno);
    return false;
  }
  *raw_fd = OpenRawIPv4Socket(sndbuf, error);
  return *raw_fd >= 0;
}

inline bool SourceAllowed(const std::vector<Ipv4Prefix>& allowed, uint32_t addr) {
  if (allowed.empty()) return true;
  for (const Ipv4Prefix& p : allowed)
    if ((addr & p.mask) == p.network) return true;
  return false;
}

// A reader/writer lock that lets a waiting writer in: glibc's default
// rwlock prefers readers, and UDP threads under load hold the read lock
// nearly all the time, so attach/detach (the JavaScript thread) could wait
// for ever.
class WriterFirstLock {
 public:
  WriterFirstLock() {
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&lock_, &a);
    pthread_rwlockattr_destroy(&a);
  }
  ~WriterFirstLock() { pthread_rwlock_destroy(&lock_); }
  WriterFirstLock(const WriterFirstLock&) = delete;
  WriterFirstLock& operator=(const WriterFirstLock&) = delete;

  void lock() { pthread_rwlock_wrlock(&lock_); }
  void unlock() { pthread_rwlock_unlock(&lock_); }
  void lock_shared() { pthread_rwlock_rdlock(&lock_); }
  void unlock_shared() { pthread_rwlock_unlock(&lock_); }

 private:
  pthread_rwlock_t lock_;
};

// The UDP sockets of one SO_REUSEPORT group: every datagram to the group's
// first socket (a one-instruction classic BPF program: "return 0"), or
// spread by the kernel's 4-tuple hash again (program detached).
inline bool SteerReuseportToFirst(int fd) {
  sock_filter code[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
  sock_fprog prog{1, code};
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) == 0;
}
inline bool SpreadReuseport(int fd) {
  int unused = 0;
  return setsockopt(fd, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &unused, sizeof unused) == 0;
}

// Control space per datagram: the socket's drop count and, when bound to
// any address, the address the datagram was sent to.
constexpr size_t kTunnelControl = CMSG_SPACE(sizeof(uint32_t)) + CMSG_SPACE(sizeof(in_pktinfo));

// Reads a datagram's IP_PKTINFO destination (host order; 0 if absent) and
// SO_RXQ_OVFL drop count (`*drops` untouched if absent).
inline uint32_t ReadControl(msghdr* h, uint32_t* drops) {
  uint32_t dst = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof pi);
      dst = ntohl(pi.ipi_addr.s_addr);
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
      memcpy(drops, CMSG_DATA(c), sizeof *drops);
    }
  }
  return dst;
}

// Makes the TUN behind `fd` queue at least `len` packets per queue on its
// way out (the kernel sizes each queue's ring by txqueuelen: 500 for a new
// TUN). What does not fit is dropped by the kernel, counted only in the
// interface's tx_dropped; attachEndpoint writes a whole pending queue into
// gwi at once, and all of it comes out of gwo before anyone reads.
inline bool EnsureTunTxQueueLen(int fd, int len, std::string* error) {
  ifreq ifr{};
  if (ioctl(fd, TUNGETIFF, &ifr) < 0) {
    *error = std::string("ioctl(TUNGETIFF) on fd ") + std::to_string(fd) + ": " + strerror(errno);
    return false;
  }
  const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    *error = std::string("socket: ") + strerror(errno);
    return false;
  }
  bool ok = true;
  if (ioctl(s, SIOCGIFTXQLEN, &ifr) < 0 || ifr.ifr_qlen < len) {
    ifr.ifr_qlen = len;
    if (ioctl(s, SIOCSIFTXQLEN, &ifr) < 0) {
      *error = std::string("setting the txqueuelen of ") + ifr.ifr_name + ": " + strerror(errno);
      ok = false;
    }
  }
  close(s);
  return ok;
}

// -x: one packet to stderr as "tunnel <dir> eni <17 hex> <len> bytes" and
// 16-byte hex lines. Debugging only: slow, and serialised so lines from
// several threads do not interleave.
inline void HexDump(const char* direction, uint64_t eni, const uint8_t* p, size_t len) {
  static std::mutex mu;
  std::string out;
  out.reserve(64 + len * 3 + len / 16 * 8);
  char line[96];
  snprintf(line, sizeof line, "tunnel %s eni %017llx %zu bytes\n", direction, (unsigned long long)eni, len);
  out += line;
  for (size_t off = 0; off < len; off += 16) {
    int n = snprintf(line, sizeof line, "  %04zx ", off);
    for (size_t i = off; i < off + 16 && i < len; i++)
      n += snprintf(line + n, sizeof line - size_t(n), " %02x", p[i]);
    line[n++] = '\n';
    out.append(line, size_t(n));
  }
  std::lock_guard<std::mutex> lock(mu);
  fwrite(out.data(), 1, out.size(), stderr);
}

}  // namespace gatehouse
