#include "udp_socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <cstring>

namespace gatehouse {

static std::string Errno(const char* what) { return std::string(what) + ": " + strerror(errno); }

bool ParseIPv4(const std::string& s, in_addr* out) { return inet_pton(AF_INET, s.c_str(), out) == 1; }

int OpenUdpSocket(const UdpSocketOptions& opts, std::string* error) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(opts.port);
  if (!ParseIPv4(opts.bind_address, &addr.sin_addr)) {
    *error = "not an IPv4 address: " + opts.bind_address;
    return -1;
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = Errno("socket(AF_INET, SOCK_DGRAM)");
    return -1;
  }
  int one = 1;
  auto fail = [&](const char* what) {
    *error = Errno(what);
    close(fd);
    return -1;
  };
  if (opts.reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
    return fail("setsockopt(SO_REUSEPORT)");
  // SO_RCVBUFFORCE / SO_SNDBUFFORCE pass net.core.*mem_max when we are
  // privileged; fall back to the capped option otherwise.
  if (opts.rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &opts.rcvbuf, sizeof(int)) < 0 &&
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &opts.rcvbuf, sizeof(int)) < 0)
    return fail("setsockopt(SO_RCVBUF)");
  if (opts.sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &opts.sndbuf, sizeof(int)) < 0 &&
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &opts.sndbuf, sizeof(int)) < 0)
    return fail("setsockopt(SO_SNDBUF)");
  if (setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one) < 0) return fail("setsockopt(SO_RXQ_OVFL)");
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    std::string what = "bind(" + opts.bind_address + ":" + std::to_string(opts.port) + ")";
    return fail(what.c_str());
  }
  return fd;
}

uint16_t LocalPort(int fd) {
  sockaddr_in a{};
  socklen_t l = sizeof a;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &l) < 0) return 0;
  return ntohs(a.sin_port);
}

static constexpr size_t kControlLen = CMSG_SPACE(sizeof(uint32_t));

UdpBatch::UdpBatch(size_t count, size_t mtu)
    : count_(count),
      mtu_(mtu),
      buf_(count * mtu),
      msgs_(count),
      iovs_(count),
      addrs_(count),
      control_(count * kControlLen) {}

int UdpBatch::Receive(int fd, uint32_t* overflow) {
  for (size_t i = 0; i < count_; i++) {
    iovs_[i] = {data(i), mtu_};
    PointMessage(&msgs_[i].msg_hdr, &addrs_[i], &iovs_[i], &control_[i * kControlLen], kControlLen);
    msgs_[i].msg_len = 0;
  }
  int n = recvmmsg(fd, msgs_.data(), unsigned(count_), MSG_DONTWAIT, nullptr);
  if (n <= 0) return 0;
  // The kernel attaches SO_RXQ_OVFL to each datagram; the last is the newest.
  msghdr& last = msgs_[n - 1].msg_hdr;
  for (cmsghdr* c = CMSG_FIRSTHDR(&last); c; c = CMSG_NXTHDR(&last, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL)
      memcpy(overflow, CMSG_DATA(c), sizeof(uint32_t));
  }
  return n;
}

SendBatch::SendBatch(size_t count) : count_(count), msgs_(count), iovs_(count), addrs_(count) {}

bool SendBatch::Add(const uint8_t* p, size_t len, const sockaddr_in& to) {
  if (n_ == count_) return false;
  addrs_[n_] = to;
  iovs_[n_] = {const_cast<uint8_t*>(p), len};
  PointMessage(&msgs_[n_].msg_hdr, &addrs_[n_], &iovs_[n_]);
  n_++;
  return true;
}

size_t SendBatch::Flush(int fd, uint64_t* errors) {
  size_t done = 0, sent = 0;
  int retries = 0;
  while (done < n_) {
    int r = sendmmsg(fd, &msgs_[done], unsigned(n_ - done), 0);
    if (r > 0) {
      done += size_t(r);
      sent += size_t(r);
      continue;
    }
    if (r < 0 && (errno == EAGAIN || errno == ENOBUFS || errno == EINTR) && ++retries < 64) continue;
    // The datagram at `done` is refused for good (e.g. EMSGSIZE): skip it.
    (*errors)++;
    done++;
  }
  n_ = 0;
  return sent;
}

}  // namespace gatehouse
