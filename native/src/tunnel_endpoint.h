// A GWLB endpoint as the tunnel engine keeps it (tunnel.cc), the TUN queues
// it is served through, and small helpers both directions share.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "counters.h"
#include "flow_key.h"
#include "tunnel_flow_table.h"
#include "tunnel_support.h"

namespace gatehouse {

enum class EndpointState : uint8_t { kPending, kReady, kRejected };

inline const char* EndpointStateName(EndpointState s) {
  switch (s) {
    case EndpointState::kPending:
      return "pending";
    case EndpointState::kReady:
      return "ready";
    case EndpointState::kRejected:
      return "rejected";
  }
  return "pending";
}

struct Endpoint;

// One queue (fd) of an endpoint's gwo or gwi TUN, as epoll hands it back.
// Whoever reads it holds `drain`, and sends what it read before letting go,
// so the packets of a flow (the kernel puts a flow on one queue) leave in
// the order they were queued even when several threads drain the queue.
struct TunQueue {
  Endpoint* endpoint = nullptr;
  int fd = -1;
  std::mutex drain;
};

struct Endpoint {
  explicit Endpoint(uint64_t e) : eni(e), counters(std::make_shared<CounterBlock>(EndpointCounterNames())) {}

  const uint64_t eni;
  // Guarded by the engine's endpoint lock: written under its write lock, read under either.
  EndpointState state = EndpointState::kPending;
  uint64_t retry_at_ms = 0;
  size_t queues = 0;                     // once ready: TUN queues per TUN (one per TUN thread)
  std::unique_ptr<TunQueue[]> gwo, gwi;  // [queues] each

  // Inner packets that arrived while pending, in order (read lock + queue_mu).
  std::mutex queue_mu;
  std::deque<std::vector<uint8_t>> queue;

  TunnelFlowTable flows;
  // Fragments are rare: one tracker per endpoint, made on first use, shared
  // by both directions so a later fragment finds the ports its first
  // fragment carried whichever thread saw that one.
  std::mutex fragments_mu;
  std::unique_ptr<FragmentTracker> fragments;

  std::shared_ptr<CounterBlock> counters;
  std::atomic<uint64_t> last_in_ms{0}, last_out_ms{0};
};

// The inner packet's flow key; fragments go through the endpoint's tracker.
inline bool InnerFlowKey(Endpoint* ep, const uint8_t* p, size_t len, uint64_t now_ms, ParsedFlow* pf) {
  if (ParseFlowKey(p, len, nullptr, now_ms, pf) != FlowKeyReason::kOk) return false;
  if (pf->fragment == FragmentKind::kNone) return true;
  std::lock_guard<std::mutex> lock(ep->fragments_mu);
  if (!ep->fragments) ep->fragments = std::make_unique<FragmentTracker>();
  return ParseFlowKey(p, len, ep->fragments.get(), now_ms, pf) == FlowKeyReason::kOk;
}

// Per-endpoint counts gathered over one batch, added once at its end: the
// counters are shared with other threads, and an atomic add per packet on a
// line two cores write costs more than the packet's flow lookup.
class EndpointTally {
 public:
  uint64_t* For(Endpoint* ep, uint64_t now_ms) {
    for (size_t i = 0; i < n_; i++)
      if (rows_[i].ep == ep) return rows_[i].v;
    if (n_ == kRows) Flush(now_ms);
    Row& r = rows_[n_++];
    r.ep = ep;
    std::fill(std::begin(r.v), std::end(r.v), 0);
    return r.v;
  }

  // Must run while the endpoints counted are still held (read lock / loop turn).
  void Flush(uint64_t now_ms) {
    for (size_t i = 0; i < n_; i++) {
      Row& r = rows_[i];
      for (size_t k = 0; k < kEpCounterCount; k++)
        if (r.v[k]) r.ep->counters->Add(k, r.v[k]);
      if (r.v[kEpRxPackets]) Touch(&r.ep->last_in_ms, now_ms);
      if (r.v[kEpTxPackets]) Touch(&r.ep->last_out_ms, now_ms);
    }
    n_ = 0;
  }

 private:
  static void Touch(std::atomic<uint64_t>* t, uint64_t now_ms) {
    if (t->load(std::memory_order_relaxed) != now_ms) t->store(now_ms, std::memory_order_relaxed);
  }
  static constexpr size_t kRows = 8;
  struct Row {
    Endpoint* ep;
    uint64_t v[kEpCounterCount];
  };
  Row rows_[kRows];
  size_t n_ = 0;
};

}  // namespace gatehouse
