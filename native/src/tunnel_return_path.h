// The tunnel's way back to GWLB, used by every thread that drains a TUN
// queue:
//
//   read(TUN queue) -> slot + kHeadroom
//   flow lookup: the stored GENEVE header is copied right in front of the
//   inner packet, the outer IPv4 + UDP header (mirrored: addresses swapped,
//   ports as GWLB sent them, both checksums) in front of that
//   -> the slot goes out as one datagram on a raw socket (sendmmsg)
//
// One ReturnPath per thread: its buffers and raw socket are that thread's.
#pragma once

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <mutex>
#include <vector>

#include "counters.h"
#include "flow_key.h"
#include "raw_sender.h"
#include "reflector_support.h"
#include "tunnel_endpoint.h"
#include "tunnel_flow_table.h"
#include "tunnel_support.h"
#include "udp_socket.h"

namespace gatehouse {

// Headroom in front of each inner packet: the largest GENEVE header (260)
// and the outer IPv4 + UDP header (28).
constexpr size_t kReturnHeadroom = kOuterHeaderLen + TunnelFlowTable::kMaxHeader;
// Largest inner packet read from a TUN (the endpoint MTU is 8500).
constexpr size_t kReturnMaxInner = 9216;
constexpr size_t kReturnSlot = kReturnHeadroom + kReturnMaxInner;
static_assert(kReturnSlot % 8 == 0, "keep slots 8-byte aligned");

class ReturnPath {
 public:
  enum class Drained { kEmpty, kMore, kBroken };

  ReturnPath(size_t batch, int raw_fd, uint16_t port, bool hexdump, CounterBlock* counters,
             const StopSignal* stop)
      : batch_(batch),
        raw_fd_(raw_fd),
        port_(port),
        hexdump_(hexdump),
        counters_(counters),
        stop_(stop),
        slots_(batch * kReturnSlot),
        lens_(batch),
        owners_(batch),
        msgs_(batch),
        iov_(batch),
        to_(batch) {
    for (sockaddr_in& a : to_) {
      a = {};
      a.sin_family = AF_INET;
    }
  }
  ~ReturnPath() { Release(); }

  // Reads what is queued on `q` (up to `max` packets) into the batch, and
  // keeps q->drain until Flush: a flow's packets (the kernel keeps a flow on
  // one queue) then leave in the order they were queued even when several
  // threads drain the queue, and packets from several queues still go out
  // in one sendmmsg. kMore: `max` was reached with more queued; kBroken: the
  // fd fails with something other than EAGAIN (its interface is gone), so
  // the caller should stop watching it. Adds packets read to `*packets`.
  Drained Collect(TunQueue* q, size_t max, uint64_t now_ms, EndpointTally* tally, size_t* packets) {
    Hold(q, now_ms, tally);
    for (size_t taken = 0;; taken++) {
      if (n_ == batch_) {
        Flush(now_ms, tally);
        Hold(q, now_ms, tally);
      }
      if (taken == max) return Drained::kMore;
      const ssize_t got = read(q->fd, &slots_[n_ * kReturnSlot + kReturnHeadroom], kReturnMaxInner);
      if (got <= 0)
        return got == 0 || (errno != EAGAIN && errno != EINTR) ? Drained::kBroken : Drained::kEmpty;
      lens_[n_] = size_t(got);
      owners_[n_] = q->endpoint;
      n_++;
      (*packets)++;
    }
  }

  // Sends what was collected and lets go of the queues.
  void Flush(uint64_t now_ms, EndpointTally* tally) {
    if (n_) Send(now_ms, tally);
    n_ = 0;
    Release();
  }

 private:
  // Takes q->drain unless held already. Never waits while holding another
  // queue (threads take queues in any order): a busy queue means sending
  // what was collected first.
  void Hold(TunQueue* q, uint64_t now_ms, EndpointTally* tally) {
    for (TunQueue* h : held_)
      if (h == q) return;
    if (!q->drain.try_lock()) {
      Flush(now_ms, tally);
      q->drain.lock();
    }
    held_.push_back(q);
  }

  void Release() {
    for (TunQueue* h : held_) h->drain.unlock();
    held_.clear();
  }

  void Send(uint64_t now_ms, EndpointTally* tally) {
    uint64_t no_flow = 0, unparsable = 0;
    size_t out = 0;
    for (size_t i = 0; i < n_; i++) {
      Endpoint* ep = owners_[i];
      uint8_t* inner = &slots_[i * kReturnSlot + kReturnHeadroom];
      ParsedFlow pf;
      if (!InnerFlowKey(ep, inner, lens_[i], now_ms, &pf)) {
        unparsable++;
        continue;
      }
      TunnelFlowReturn r;
      if (!ep->flows.Lookup(pf.key, inner, uint32_t(now_ms), &r)) {
        no_flow++;
        tally->For(ep, now_ms)[kEpDropNoFlow]++;
        continue;
      }
      uint8_t* start = inner - r.header_len - kOuterHeaderLen;
      const size_t payload = r.header_len + lens_[i];
      // Mirrored as gwlbtun does: addresses swapped, ports as GWLB sent them.
      WriteIPv4UdpHeader(start, r.local_addr, r.gwlb_addr, r.gwlb_port, port_, payload, ip_id_++);
      if (hexdump_) HexDump("out", ep->eni, start + kOuterHeaderLen, payload);
      to_[out].sin_addr.s_addr = htonl(r.gwlb_addr);
      iov_[out] = {start, kOuterHeaderLen + payload};
      PointMessage(&msgs_[out].msg_hdr, &to_[out], &iov_[out]);
      owners_[out] = ep;  // out <= i: this slot's owner was read already
      out++;
    }
    uint64_t bytes = 0, errors = 0;
    const size_t sent = out ? SendAll(raw_fd_, msgs_.data(), out, *stop_, &bytes, &errors) : 0;
    for (size_t k = 0; k < out && sent; k++) {
      if (msgs_[k].msg_len == kNotSent) continue;
      uint64_t* t = tally->For(owners_[k], now_ms);
      t[kEpTxPackets]++;
      t[kEpTxBytes] += msgs_[k].msg_len - kOuterHeaderLen;  // GENEVE bytes, comparable with rx_bytes
    }
    if (sent) {
      counters_->Add(kTnTxPackets, sent);
      counters_->Add(kTnTxBytes, bytes - sent * kOuterHeaderLen);
    }
    if (errors) counters_->Add(kTnTxErrors, errors);
    if (no_flow) counters_->Add(kTnDropNoFlow, no_flow);
    if (unparsable) counters_->Add(kTnDropUnparsableInner, unparsable);
  }

  const size_t batch_;
  const int raw_fd_;
  const uint16_t port_;
  const bool hexdump_;
  CounterBlock* counters_;
  const StopSignal* stop_;
  std::vector<uint8_t> slots_;
  std::vector<size_t> lens_;
  std::vector<Endpoint*> owners_;
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iov_;
  std::vector<sockaddr_in> to_;
  std::vector<TunQueue*> held_;
  size_t n_ = 0;
  uint16_t ip_id_ = 0;
};

}  // namespace gatehouse
