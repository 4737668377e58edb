// UDP sockets for the packet engines, and the batch buffers that go with
// recvmmsg/sendmmsg. Each engine thread owns one socket and one UdpBatch:
// no locks on the packet path.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

namespace gatehouse {

struct UdpSocketOptions {
  std::string bind_address;  // IPv4 dotted quad; "0.0.0.0" for any
  uint16_t port = 0;         // 0 = ephemeral
  bool reuse_port = false;   // SO_REUSEPORT, so several threads share a port
  int rcvbuf = 0;            // SO_RCVBUF bytes, 0 = kernel default
  int sndbuf = 0;            // SO_SNDBUF bytes, 0 = kernel default
};

// Opens a non-blocking UDP/IPv4 socket with SO_RXQ_OVFL enabled, so every
// recvmmsg batch reports the kernel's cumulative drop count for the socket.
// Returns the fd, or -1 with `*error` set to a message naming the failing call.
int OpenUdpSocket(const UdpSocketOptions& opts, std::string* error);

// The local port a socket is bound to (after binding to port 0).
uint16_t LocalPort(int fd);

// Fixed buffers for one batch of up to `count` datagrams of up to `mtu` bytes.
class UdpBatch {
 public:
  UdpBatch(size_t count, size_t mtu);
  // recvmmsg into the batch; returns how many arrived (0 if none / EAGAIN).
  // `*overflow` gets the socket's cumulative SO_RXQ_OVFL count when reported.
  int Receive(int fd, uint32_t* overflow);
  uint8_t* data(size_t i) { return &buf_[i * mtu_]; }
  size_t length(size_t i) const { return msgs_[i].msg_len; }
  const sockaddr_in& from(size_t i) const { return addrs_[i]; }
  size_t capacity() const { return count_; }
  size_t mtu() const { return mtu_; }

 private:
  size_t count_, mtu_;
  std::vector<uint8_t> buf_;
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iovs_;
  std::vector<sockaddr_in> addrs_;
  std::vector<uint8_t> control_;
};

// Collects datagrams (pointer + length + destination) and flushes them with
// sendmmsg. The caller keeps the bytes alive until Flush returns.
class SendBatch {
 public:
  explicit SendBatch(size_t count);
  // Queues one datagram; returns false when the batch is full (Flush first).
  bool Add(const uint8_t* p, size_t len, const sockaddr_in& to);
  // Sends everything queued, retrying partial sends; returns datagrams sent.
  // Datagrams the kernel refuses (ENOBUFS, EAGAIN after retries) are counted
  // in `*errors` and dropped rather than blocking the engine.
  size_t Flush(int fd, uint64_t* errors);
  size_t size() const { return n_; }

 private:
  size_t count_, n_ = 0;
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iovs_;
  std::vector<sockaddr_in> addrs_;
};

bool ParseIPv4(const std::string& s, in_addr* out);

// Points one recvmmsg/sendmmsg entry at one buffer and one IPv4 address (and,
// for receiving, a control buffer). recvmmsg rewrites the lengths, so
// receive loops call this again before every batch.
inline void PointMessage(msghdr* h, sockaddr_in* addr, iovec* iov, void* control = nullptr,
                         size_t control_len = 0) {
  *h = {};
  h->msg_name = addr;
  h->msg_namelen = sizeof(sockaddr_in);
  h->msg_iov = iov;
  h->msg_iovlen = 1;
  h->msg_control = control;
  h->msg_controllen = control_len;
}

}  // namespace gatehouse
