// gatehouse inspect's packet core: the GWLB target with a verdict per flow
// and no TUN round trip (the contract: InspectOptions and NativeInspect in
// src/native/binding.ts).
//
//   GWLB ─UDP 6081─> udp thread i (recvmmsg on SO_REUSEPORT socket i)
//          source allowed? -> DecodeGeneve -> endpoint by ENI
//          -> flow by inner key: its state decides
//               allow:   the datagram goes straight back (outer IPv4/UDP
//                        mirrored into the headroom in front of it) -> raw
//                        socket, sendmmsg
//               drop:    dropped
//               new / asked / inspect: held, and sent up as an event
//   JavaScript: setVerdicts (held packets released or dropped), inject.
//   housekeeping thread: expires idle flows (flow-end events), and keeps
//   light load on one UDP thread (ReuseportBalancer).
//
// The policy lives in TypeScript: this file only moves packets, keeps each
// flow's state and hands TypeScript the packets it must see. Events are
// queued by the UDP threads at the end of each batch and handed over in
// one call; the next call is made only once JavaScript took the previous
// batch, so a burst of new flows costs one call, not one per flow.
#include <arpa/inet.h>
#include <napi.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "addon.h"
#include "checksum.h"
#include "counters.h"
#include "engine_start.h"
#include "flow_key.h"
#include "geneve.h"
#include "inspect_flow.h"
#include "raw_sender.h"
#include "reflector_support.h"
#include "reuseport_balancer.h"
#include "tunnel_support.h"
#include "udp_socket.h"

namespace gatehouse {

namespace {

constexpr size_t kMaxDatagram = 9216;
// Every receive slot starts with room for the outer IPv4 + UDP header, so
// an allowed datagram goes back from where it was received.
constexpr size_t kSlot = kOuterHeaderLen + kMaxDatagram + 4;  // 9248: 8-byte aligned
constexpr int kTurnMs = 100;
constexpr int kTickMs = 20;
constexpr size_t kMaxQueuedEvents = 65536;
constexpr uint8_t kProtoTcp = 6, kProtoUdp = 17;
constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpAck = 0x10;

// Same names, same order as INSPECT_COUNTER_NAMES in src/native/inspect.ts.
enum InspectCounter : size_t {
  kInRxPackets,
  kInRxBytes,
  kInTxPackets,
  kInTxBytes,
  kInTxErrors,
  kInRxOverflow,
  kInDropSourceNotAllowed,
  kInDropEndpointLimit,
  kInDropUnparsableInner,
  kInDropFlowLimit,
  kInDroppedMalformed,
  kInFlowsActive,
  kInFlowsCreated,
  kInFlowsEnded,
  kInEndpointsSeen,
  kInUpcalls,
  kInUpcallsDropped,
  kInHeld,
  kInHeldDropped,
  kInPassedHandshake,
  kInVerdictAllowPackets,
  kInVerdictDropPackets,
  kInInjected,
  kInMalformedFirst,
};

std::vector<std::string> InspectCounterNames() {
  std::vector<std::string> n = {
      "rx_packets",
      "rx_bytes",
      "tx_packets",
      "tx_bytes",
      "tx_errors",
      "rx_overflow",
      "drop_source_not_allowed",
      "drop_endpoint_limit",
      "drop_unparsable_inner",
      "drop_flow_limit",
      "dropped_malformed",
      "flows_active",
      "flows_created",
      "flows_ended",
      "endpoints_seen",
      "upcalls",
      "upcalls_dropped",
      "held",
      "held_dropped",
      "passed_handshake",
      "verdict_allow_packets",
      "verdict_drop_packets",
      "injected",
  };
  for (int i = 0; i < kGeneveReasonCount; i++) n.push_back(std::string("malformed_") + kGeneveReasonNames[i]);
  return n;
}

struct InspectConfig {
  std::string bind;
  uint16_t port = 6081;
  int udp_threads = 1;
  int rcvbuf = 0, sndbuf = 0;
  int batch = 64;
  uint64_t flow_idle_ms = 350000;
  size_t max_endpoints = 64;
  size_t max_flows = 1000000;
  size_t held_per_flow = 32;
  size_t held_bytes = 32 << 20;
  uint16_t payload_upcalls = 8;
  uint16_t tap_packets = 8;
  std::vector<Ipv4Prefix> allowed_sources;
};

uint64_t WallMs() {
  timeval tv;
  gettimeofday(&tv, nullptr);
  return uint64_t(tv.tv_sec) * 1000 + uint64_t(tv.tv_usec) / 1000;
}

// The L4 payload of a parsed inner packet (TCP: after its header; UDP:
// after 8 bytes; anything else, ICMP included: the whole L4 message). A
// later fragment counts as payload (it is data of a datagram already seen).
void ReadPayload(const uint8_t* inner, const ParsedFlow& pf, PacketFacts* f) {
  const uint32_t off = pf.l4_offset, end = pf.ip_end;
  uint32_t start = off;
  if (pf.fragment != FragmentKind::kLater) {
    if (pf.key.protocol == kProtoTcp && end >= off + 20) {
      f->seq = LoadBe32(inner + off + 4);
      f->ack = LoadBe32(inner + off + 8);
      f->tcp_flags = inner[off + 13];
      start = off + std::max<uint32_t>(20, uint32_t(inner[off + 12] >> 4) * 4);
    } else if (pf.key.protocol == kProtoUdp) {
      start = off + 8;
    }
  }
  start = std::min(start, end);
  f->payload_offset = start;
  f->payload_len = end - start;
}

// An event for TypeScript, built by a UDP thread (or the JavaScript thread
// when a verdict of "inspect" sends held payload up).
struct InspectEventData {
  enum Kind : uint8_t { kEndpoint, kPacket, kFlowEnd } kind;
  // endpoint
  uint64_t eni = 0;
  uint64_t attachment = 0;
  uint32_t source = 0;
  // packet and flow-end (the endpoint is key.eni)
  uint64_t flow = 0;
  InspectKey key{};
  bool client_is_a = true;
  bool midstream = false;
  // packet
  bool first = false, tap = false;
  PacketFacts facts{};
  std::vector<uint8_t> packet;  // the inner packet
  // flow-end
  InspectState state = InspectState::kNew;
  uint64_t pkts[2] = {}, bytes[2] = {};
  uint64_t start_ms = 0, end_ms = 0;
  const char* reason = "timeout";
};

void FlowEndInto(const InspectFlow& f, const InspectKey& key, const char* reason, uint64_t now_wall,
                 InspectEventData* e) {
  e->kind = InspectEventData::kFlowEnd;
  e->flow = f.id;
  e->key = key;
  e->client_is_a = f.client_is_a;
  e->midstream = f.midstream;
  e->state = f.state;
  for (int d = 0; d < 2; d++) {
    e->pkts[d] = f.pkts[d];
    e->bytes[d] = f.bytes[d];
  }
  e->start_ms = f.start_wall_ms;
  e->end_ms = now_wall;
  e->reason = reason;
}

}  // namespace

struct InspectEndpoint : std::enable_shared_from_this<InspectEndpoint> {
  explicit InspectEndpoint(uint64_t e) : eni(e) {}
  const uint64_t eni;
  std::atomic<uint64_t> last_seen_ms{0}, rx_packets{0}, tx_packets{0}, flows{0};
};

namespace {

class Inspect;

// Datagrams on their way back to GWLB, sent in one sendmmsg.
class OutBatch {
 public:
  OutBatch(size_t n, int raw_fd) : raw_fd_(raw_fd), msgs_(n), iov_(n), to_(n), eps_(n) {}
  size_t size() const { return n_; }
  bool full() const { return n_ == msgs_.size(); }
  // `start` holds kOuterHeaderLen free bytes, then the GENEVE datagram.
  void Add(uint8_t* start, size_t geneve_len, const InspectFlow& f, uint16_t port, uint16_t* ip_id,
           InspectEndpoint* ep) {
    // Mirrored as gwlbtun does: addresses swapped, ports as GWLB sent them.
    WriteIPv4UdpHeader(start, f.local_addr, f.gwlb_addr, f.gwlb_port, port, geneve_len, (*ip_id)++);
    to_[n_] = {};
    to_[n_].sin_family = AF_INET;
    to_[n_].sin_addr.s_addr = htonl(f.gwlb_addr);
    iov_[n_] = {start, kOuterHeaderLen + geneve_len};
    PointMessage(&msgs_[n_].msg_hdr, &to_[n_], &iov_[n_]);
    eps_[n_] = ep;
    n_++;
  }
  // Returns how many datagrams the kernel took.
  size_t Flush(const StopSignal& stop, CounterBlock* c) {
    if (!n_) return 0;
    uint64_t bytes = 0, errors = 0;
    const size_t sent = SendAll(raw_fd_, msgs_.data(), n_, stop, &bytes, &errors);
    for (size_t k = 0; k < n_ && sent; k++)
      if (msgs_[k].msg_len != kNotSent && eps_[k])
        eps_[k]->tx_packets.fetch_add(1, std::memory_order_relaxed);
    if (sent) {
      c->Add(kInTxPackets, sent);
      c->Add(kInTxBytes, bytes - sent * kOuterHeaderLen);
    }
    if (errors) c->Add(kInTxErrors, errors);
    n_ = 0;
    return sent;
  }

 private:
  int raw_fd_;
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iov_;
  std::vector<sockaddr_in> to_;
  std::vector<InspectEndpoint*> eps_;
  size_t n_ = 0;
};

class Inspect : public std::enable_shared_from_this<Inspect> {
 public:
  explicit Inspect(InspectConfig cfg)
      : cfg_(std::move(cfg)),
        counters_(std::make_shared<CounterBlock>(InspectCounterNames())),
        workers_(std::make_shared<CounterBlock>(WorkerCounterNames(cfg_.udp_threads, 0))) {
    flows_.Init();
  }
  ~Inspect() { Stop(nullptr); }

  bool Open(std::string* error);
  void Start(Napi::ThreadSafeFunction tsfn);
  // Joins the threads; the flows still open go to `*open` (if given).
  void Stop(std::vector<InspectEventData>* open = nullptr);
  size_t SetVerdict(const InspectKey& key, uint64_t id, InspectState state, bool tap);
  size_t Inject(const InspectKey& key, uint64_t id, const std::vector<std::vector<uint8_t>>& packets);
  void ForgetEndpoint(uint64_t eni);
  std::vector<std::shared_ptr<InspectEndpoint>> Endpoints();
  std::shared_ptr<CounterBlock> counters() { return counters_; }
  std::shared_ptr<CounterBlock> workers() { return workers_; }
  void TakeEvents(std::vector<InspectEventData>* out);

 private:
  struct UdpWorker {
    int index = 0;
    int fd = -1, raw_fd = -1;
    std::thread thread;
  };

  void UdpLoop(UdpWorker* w);
  void Housekeeping();
  InspectEndpoint* FindEndpoint(uint64_t eni, uint32_t source, uint64_t attachment, uint64_t now,
                                std::vector<InspectEventData>* events);
  void Queue(std::vector<InspectEventData>* events);
  void PacketEvent(const InspectFlow& f, const InspectKey& key, bool first, bool tap, const PacketFacts& pf,
                   const uint8_t* inner, size_t inner_len, std::vector<InspectEventData>* events);
  bool Hold(InspectFlow* f, const uint8_t* datagram, size_t len, uint32_t inner_offset,
            const PacketFacts& facts, bool upcalled);
  void DropHeld(InspectFlow* f, size_t counter);
  // Removes flows for which `gone` says so, as flow-end events; caller holds no shard lock.
  template <typename Pred>
  void EndFlows(size_t shard, Pred gone, const char* reason, std::vector<InspectEventData>* events);

  const InspectConfig cfg_;
  std::shared_ptr<CounterBlock> counters_;
  std::shared_ptr<CounterBlock> workers_;
  uint32_t local_addr_ = 0;
  StopSignal stop_;
  StopSignal house_stop_;
  std::vector<std::unique_ptr<UdpWorker>> udp_;
  std::thread housekeeper_;
  bool running_ = false;
  Napi::ThreadSafeFunction tsfn_;
  std::atomic<uint64_t> next_flow_{1};
  std::atomic<size_t> held_bytes_{0};

  InspectFlowTable flows_;
  ReuseportBalancer balancer_;  // housekeeper only, once started

  WriterFirstLock endpoints_mu_;
  std::unordered_map<uint64_t, std::shared_ptr<InspectEndpoint>> endpoints_;

  std::mutex events_mu_;
  std::vector<InspectEventData> events_;
  bool call_pending_ = false;  // under events_mu_: a call is on its way to JavaScript

  // The JavaScript thread's own way out (verdicts release held packets, inject).
  std::mutex js_send_mu_;
  int js_raw_fd_ = -1;
  uint16_t js_ip_id_ = 0;
};

bool Inspect::Open(std::string* error) {
  if (!stop_.ok() || !house_stop_.ok()) {
    *error = std::string("eventfd: ") + strerror(errno);
    return false;
  }
  in_addr bind_addr{};
  if (!ParseIPv4(cfg_.bind, &bind_addr)) {
    *error = "not an IPv4 address: " + cfg_.bind;
    return false;
  }
  local_addr_ = ntohl(bind_addr.s_addr);
  for (int i = 0; i < cfg_.udp_threads; i++) {
    udp_.push_back(std::make_unique<UdpWorker>());
    UdpWorker* w = udp_.back().get();
    w->index = i;
    if (!OpenGwlbSockets(cfg_.bind, cfg_.port, cfg_.rcvbuf, cfg_.sndbuf, local_addr_ == 0, &w->fd, &w->raw_fd,
                         error))
      return false;
  }
  balancer_.Open(udp_[0]->fd, udp_.size());
  js_raw_fd_ = OpenRawIPv4Socket(cfg_.sndbuf, error);
  return js_raw_fd_ >= 0;
}

void Inspect::Start(Napi::ThreadSafeFunction tsfn) {
  tsfn_ = tsfn;
  running_ = true;
  for (auto& w : udp_) {
    UdpWorker* wp = w.get();
    w->thread = std::thread([this, wp] { UdpLoop(wp); });
    pthread_setname_np(w->thread.native_handle(),
                       ("gh-insp-udp" + std::to_string(w->index)).substr(0, 15).c_str());
    balancer_.AddThread(w->thread.native_handle());
  }
  housekeeper_ = std::thread([this] { Housekeeping(); });
  pthread_setname_np(housekeeper_.native_handle(), "gh-insp-house");
}

void Inspect::Stop(std::vector<InspectEventData>* open) {
  if (running_) {
    stop_.Raise();
    for (auto& w : udp_)
      if (w->thread.joinable()) w->thread.join();
    house_stop_.Raise();
    if (housekeeper_.joinable()) housekeeper_.join();
    running_ = false;
    tsfn_.Release();
  }
  for (auto& w : udp_) {
    if (w->fd >= 0) close(w->fd);
    if (w->raw_fd >= 0) close(w->raw_fd);
    w->fd = w->raw_fd = -1;
  }
  if (js_raw_fd_ >= 0) close(js_raw_fd_);
  js_raw_fd_ = -1;
  if (!open) return;
  for (size_t s = 0; s < InspectFlowTable::kShards; s++)
    EndFlows(
        s, [](const InspectFlow&) { return true; }, "shutdown", open);
}

// A new endpoint is recorded (and announced) while fewer than
// max_endpoints are known. Called under the endpoint read lock, which it
// may let go and take again.
InspectEndpoint* Inspect::FindEndpoint(uint64_t eni, uint32_t source, uint64_t attachment, uint64_t now,
                                       std::vector<InspectEventData>* events) {
  auto it = endpoints_.find(eni);
  if (it != endpoints_.end()) return it->second.get();
  endpoints_mu_.unlock_shared();
  {
    std::lock_guard<WriterFirstLock> lock(endpoints_mu_);
    if (!endpoints_.count(eni) && endpoints_.size() < cfg_.max_endpoints) {
      auto ep = std::make_shared<InspectEndpoint>(eni);
      ep->last_seen_ms.store(now, std::memory_order_relaxed);
      endpoints_.emplace(eni, ep);
      counters_->Add(kInEndpointsSeen);
      InspectEventData e;
      e.kind = InspectEventData::kEndpoint;
      e.eni = eni;
      e.attachment = attachment;
      e.source = source;
      events->push_back(std::move(e));
    }
  }
  endpoints_mu_.lock_shared();
  it = endpoints_.find(eni);
  return it == endpoints_.end() ? nullptr : it->second.get();
}

Napi::Array EventsToJs(Napi::Env env, std::vector<InspectEventData>* events);

// Hands a batch of events over; one call to JavaScript is on its way at a
// time, and it takes everything queued by then.
void Inspect::Queue(std::vector<InspectEventData>* events) {
  if (events->empty()) return;
  bool call = false;
  {
    std::lock_guard<std::mutex> lock(events_mu_);
    for (auto& e : *events) {
      if (events_.size() >= kMaxQueuedEvents) {
        counters_->Add(kInUpcallsDropped);
        continue;
      }
      events_.push_back(std::move(e));
    }
    if (!call_pending_ && !events_.empty()) call = call_pending_ = true;
  }
  events->clear();
  if (!call) return;
  auto* weak = new std::weak_ptr<Inspect>(shared_from_this());
  const napi_status st =
      tsfn_.NonBlockingCall(weak, [](Napi::Env env, Napi::Function fn, std::weak_ptr<Inspect>* w) {
        std::unique_ptr<std::weak_ptr<Inspect>> owned(w);
        std::shared_ptr<Inspect> self = owned->lock();
        if (!self || env == nullptr || fn.IsEmpty()) return;  // stopped, or the environment is closing
        std::vector<InspectEventData> batch;
        self->TakeEvents(&batch);
        if (!batch.empty()) fn.Call({EventsToJs(env, &batch)});
      });
  if (st != napi_ok) delete weak;  // closing: nobody is listening any more
}

void Inspect::TakeEvents(std::vector<InspectEventData>* out) {
  std::lock_guard<std::mutex> lock(events_mu_);
  out->swap(events_);
  call_pending_ = false;
}

void Inspect::PacketEvent(const InspectFlow& f, const InspectKey& key, bool first, bool tap,
                          const PacketFacts& pf, const uint8_t* inner, size_t inner_len,
                          std::vector<InspectEventData>* events) {
  InspectEventData e;
  e.kind = InspectEventData::kPacket;
  e.flow = f.id;
  e.key = key;
  e.client_is_a = f.client_is_a;
  e.midstream = f.midstream;
  e.first = first;
  e.tap = tap;
  e.facts = pf;
  e.packet.assign(inner, inner + inner_len);
  events->push_back(std::move(e));
  counters_->Add(kInUpcalls);
}

// Holds a datagram for its flow (bounded per flow and over all flows).
bool Inspect::Hold(InspectFlow* f, const uint8_t* datagram, size_t len, uint32_t inner_offset,
                   const PacketFacts& facts, bool upcalled) {
  size_t held = held_bytes_.load(std::memory_order_relaxed);
  do {
    if (f->held.size() >= cfg_.held_per_flow || held + len > cfg_.held_bytes) {
      counters_->Add(kInHeldDropped);
      return false;
    }
  } while (!held_bytes_.compare_exchange_weak(held, held + len, std::memory_order_relaxed));
  HeldPacket h;
  h.bytes.resize(kOuterHeaderLen + len);
  memcpy(h.bytes.data() + kOuterHeaderLen, datagram, len);
  h.inner_offset = uint32_t(kOuterHeaderLen) + inner_offset;
  h.facts = facts;
  h.upcalled = upcalled;
  f->held.push_back(std::move(h));
  f->held_bytes += len;
  counters_->Add(kInHeld);
  return true;
}

void Inspect::DropHeld(InspectFlow* f, size_t counter) {
  if (f->held.empty()) return;
  counters_->Add(counter, f->held.size());
  held_bytes_.fetch_sub(f->held_bytes, std::memory_order_relaxed);
  f->held.clear();
  f->held_bytes = 0;
}

template <typename Pred>
void Inspect::EndFlows(size_t shard, Pred gone, const char* reason, std::vector<InspectEventData>* events) {
  InspectFlowTable::Shard& s = flows_.ShardAt(shard);
  const uint64_t now_wall = WallMs();
  std::lock_guard<std::mutex> lock(s.mu);
  for (auto it = s.flows.begin(); it != s.flows.end();) {
    InspectFlow& f = it->second;
    if (!gone(f)) {
      ++it;
      continue;
    }
    DropHeld(&f, kInHeldDropped);
    InspectEventData e;
    FlowEndInto(f, it->first, reason, now_wall, &e);
    events->push_back(std::move(e));
    if (f.endpoint) f.endpoint->flows.fetch_sub(1, std::memory_order_relaxed);
    it = s.flows.erase(it);
    counters_->Add(kInFlowsActive, uint64_t(0) - 1);
    counters_->Add(kInFlowsEnded);
  }
}

// ---- UDP threads ----

void Inspect::UdpLoop(UdpWorker* w) {
  TightenTimerSlack();
  const size_t batch = size_t(cfg_.batch);
  std::vector<uint8_t> slots(batch * kSlot);
  std::vector<mmsghdr> rx(batch);
  std::vector<iovec> iov(batch);
  std::vector<sockaddr_in> from(batch);
  std::vector<uint8_t> control(batch * kTunnelControl);
  for (size_t i = 0; i < batch; i++) iov[i] = {&slots[i * kSlot + kOuterHeaderLen], kMaxDatagram};
  OutBatch out(batch, w->raw_fd);
  FragmentTracker fragments;
  std::vector<InspectEventData> events;
  CounterBlock& c = *counters_;
  CounterBlock& wc = *workers_;
  const size_t wbase = size_t(w->index) * kWorkerCounters;
  uint32_t drops_seen = 0;
  uint16_t ip_id = uint16_t(w->index << 12);
  uint64_t by_reason[kGeneveReasonCount];

  auto reset = [&](size_t n) {
    for (size_t i = 0; i < n; i++)
      PointMessage(&rx[i].msg_hdr, &from[i], &iov[i], &control[i * kTunnelControl], kTunnelControl);
  };
  reset(batch);
  bool wait_first = false;

  while (!stop_.raised()) {
    if (wait_first) stop_.WaitReadable(w->fd, kTurnMs);
    const uint64_t now = MonotonicMs();
    wc.Set(wbase + kWorkerHeartbeat, now);
    const int got = recvmmsg(w->fd, rx.data(), unsigned(batch), MSG_DONTWAIT, nullptr);
    if (got <= 0) {
      wait_first = true;
      continue;
    }
    wait_first = size_t(got) < batch;
    uint32_t drops = drops_seen;
    const uint32_t last_dst = ReadControl(&rx[size_t(got) - 1].msg_hdr, &drops);
    if (drops != drops_seen) {
      c.Add(kInRxOverflow, uint32_t(drops - drops_seen));
      drops_seen = drops;
    }
    uint64_t rx_bytes = 0, not_allowed = 0, endpoint_limit = 0, unparsable = 0, flow_limit = 0, malformed = 0,
             created = 0, allowed = 0, dropped = 0, handshake = 0;
    memset(by_reason, 0, sizeof by_reason);
    const uint64_t now_wall = WallMs();

    endpoints_mu_.lock_shared();
    InspectEndpoint* cached = nullptr;  // valid while the read lock is held
    for (int i = 0; i < got; i++) {
      msghdr& h = rx[size_t(i)].msg_hdr;
      uint8_t* start = &slots[size_t(i) * kSlot];
      uint8_t* d = start + kOuterHeaderLen;
      const size_t len = rx[size_t(i)].msg_len;
      rx_bytes += len;
      if (h.msg_flags & MSG_TRUNC) {
        unparsable++;
        continue;
      }
      const uint32_t source = ntohl(from[size_t(i)].sin_addr.s_addr);
      if (!SourceAllowed(cfg_.allowed_sources, source)) {
        not_allowed++;
        continue;
      }
      GeneveInfo g;
      const GeneveReason reason = DecodeGeneve(d, len, &g);
      if (reason != GeneveReason::kOk) {
        malformed++;
        by_reason[int(reason)]++;
        continue;
      }
      // Datagrams of one endpoint come in runs: one map lookup per run.
      InspectEndpoint* ep =
          cached && cached->eni == g.eni ? cached : FindEndpoint(g.eni, source, g.attachment, now, &events);
      cached = ep;
      if (!ep) {
        endpoint_limit++;
        continue;
      }
      const uint8_t* inner = d + g.header_len;
      const size_t inner_len = len - g.header_len;
      ParsedFlow pf;
      if (ParseFlowKey(inner, inner_len, &fragments, now, &pf) != FlowKeyReason::kOk) {
        unparsable++;
        continue;
      }
      if (ep->last_seen_ms.load(std::memory_order_relaxed) != now)
        ep->last_seen_ms.store(now, std::memory_order_relaxed);
      ep->rx_packets.fetch_add(1, std::memory_order_relaxed);
      PacketFacts facts;
      ReadPayload(inner, pf, &facts);
      uint32_t ignored;
      const uint32_t local =
          local_addr_ ? local_addr_ : (i == got - 1 ? last_dst : ReadControl(&h, &ignored));
      const uint16_t gwlb_port = ntohs(from[size_t(i)].sin_port);

      const InspectKey key{pf.key, 0, g.eni};
      InspectFlowTable::Shard& s = flows_.ShardOf(key);
      std::lock_guard<std::mutex> lock(s.mu);
      auto it = s.flows.find(key);
      bool first = false;
      if (it == s.flows.end()) {
        if (c.Get(kInFlowsActive) + created >= cfg_.max_flows) {
          flow_limit++;
          continue;
        }
        it = s.flows.emplace(key, InspectFlow{}).first;
        InspectFlow& f = it->second;
        f.id = next_flow_.fetch_add(1, std::memory_order_relaxed);
        f.endpoint = ep->shared_from_this();
        f.start_wall_ms = now_wall;
        // The client is the side that sent a bare SYN; a TCP flow seen
        // first in any other way arrived mid-stream (GWLB moved it here).
        bool client_is_src = true;
        if (pf.key.protocol == kProtoTcp) {
          const bool syn = facts.tcp_flags & kTcpSyn, ack = facts.tcp_flags & kTcpAck;
          f.midstream = !(syn && !ack);
          if (syn && ack) client_is_src = false;
        }
        f.client_is_a = client_is_src ? !pf.reversed : pf.reversed;
        ep->flows.fetch_add(1, std::memory_order_relaxed);
        created++;
        first = true;
      }
      InspectFlow& f = it->second;
      f.last_ms = now;
      f.gwlb_addr = source;
      f.local_addr = local;
      f.gwlb_port = gwlb_port;
      if (f.header.size() != g.header_len || memcmp(f.header.data(), d, g.header_len) != 0)
        f.header.assign(d, d + g.header_len);
      facts.from_client = f.client_is_a == !pf.reversed;
      const int dir = facts.from_client ? 0 : 1;
      f.pkts[dir]++;
      f.bytes[dir] += inner_len;

      switch (f.state) {
        case InspectState::kAllow:
          out.Add(start, len, f, cfg_.port, &ip_id, ep);
          allowed++;
          if (f.tap && !facts.from_client && facts.payload_len && f.taps < cfg_.tap_packets) {
            f.taps++;
            PacketEvent(f, it->first, false, true, facts, inner, inner_len, &events);
          }
          break;
        case InspectState::kDrop:
          dropped++;
          break;
        case InspectState::kNew:
          // Held first, so a verdict that comes back before this batch is
          // queued still finds the packet.
          Hold(&f, d, len, g.header_len, facts, true);
          PacketEvent(f, it->first, first, false, facts, inner, inner_len, &events);
          f.state = InspectState::kAsked;
          break;
        case InspectState::kAsked:
          Hold(&f, d, len, g.header_len, facts, false);
          break;
        case InspectState::kInspect:
          if (facts.payload_len == 0 && !(facts.tcp_flags & (kTcpFin | kTcpRst))) {
            out.Add(start, len, f, cfg_.port, &ip_id, ep);
            handshake++;
          } else {
            const bool up = facts.payload_len && f.upcalls < cfg_.payload_upcalls;
            if (Hold(&f, d, len, g.header_len, facts, up) && up) {
              f.upcalls++;
              PacketEvent(f, it->first, false, false, facts, inner, inner_len, &events);
            }
          }
          break;
      }
      if (out.full()) {
        // Sent under the shard lock at most once per batch: rare, and keeps order.
        out.Flush(stop_, &c);
      }
    }
    endpoints_mu_.unlock_shared();
    out.Flush(stop_, &c);
    Queue(&events);

    c.Add(kInRxPackets, uint64_t(got));
    c.Add(kInRxBytes, rx_bytes);
    wc.Add(wbase + kWorkerPackets, uint64_t(got));
    if (not_allowed) c.Add(kInDropSourceNotAllowed, not_allowed);
    if (endpoint_limit) c.Add(kInDropEndpointLimit, endpoint_limit);
    if (unparsable) c.Add(kInDropUnparsableInner, unparsable);
    if (flow_limit) c.Add(kInDropFlowLimit, flow_limit);
    if (created) {
      c.Add(kInFlowsCreated, created);
      c.Add(kInFlowsActive, created);
    }
    if (allowed) c.Add(kInVerdictAllowPackets, allowed);
    if (dropped) c.Add(kInVerdictDropPackets, dropped);
    if (handshake) c.Add(kInPassedHandshake, handshake);
    if (malformed) {
      c.Add(kInDroppedMalformed, malformed);
      for (int k = 0; k < kGeneveReasonCount; k++)
        if (by_reason[k]) c.Add(kInMalformedFirst + size_t(k), by_reason[k]);
    }
    reset(size_t(got));
    PaceReceive(size_t(got), batch);
  }
}

// ---- verdicts and injects (JavaScript thread) ----

size_t Inspect::SetVerdict(const InspectKey& key, uint64_t id, InspectState state, bool tap) {
  InspectFlowTable::Shard& s = flows_.ShardOf(key);
  std::vector<InspectEventData> events;
  std::lock_guard<std::mutex> send_lock(js_send_mu_);
  OutBatch out(64, js_raw_fd_);
  {
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.flows.find(key);
    if (it == s.flows.end() || it->second.id != id) return 0;
    InspectFlow& f = it->second;
    f.state = state;
    f.tap = tap;
    InspectEndpoint* ep = f.endpoint.get();
    if (state == InspectState::kDrop) {
      DropHeld(&f, kInVerdictDropPackets);
    } else {
      // allow: everything held goes, in order. inspect: the handshake goes;
      // payload stays held, and what was not sent up yet is now.
      std::vector<HeldPacket> keep, sent;  // `sent`: the batch points into them until flushed
      size_t kept_bytes = 0;
      for (HeldPacket& h : f.held) {
        const size_t geneve_len = h.bytes.size() - kOuterHeaderLen;
        if (state == InspectState::kAllow || h.facts.payload_len == 0) {
          if (out.full()) out.Flush(stop_, counters_.get());
          out.Add(h.bytes.data(), geneve_len, f, cfg_.port, &js_ip_id_, ep);
          sent.push_back(std::move(h));
          continue;
        }
        if (!h.upcalled && f.upcalls < cfg_.payload_upcalls) {
          h.upcalled = true;
          f.upcalls++;
          const uint8_t* inner = h.bytes.data() + h.inner_offset;
          PacketEvent(f, it->first, false, false, h.facts, inner, h.bytes.size() - h.inner_offset, &events);
        }
        kept_bytes += geneve_len;
        keep.push_back(std::move(h));
      }
      out.Flush(stop_, counters_.get());
      counters_->Add(kInVerdictAllowPackets, sent.size());
      held_bytes_.fetch_sub(f.held_bytes - kept_bytes, std::memory_order_relaxed);
      f.held = std::move(keep);
      f.held_bytes = kept_bytes;
    }
  }
  Queue(&events);
  return 1;
}

size_t Inspect::Inject(const InspectKey& key, uint64_t id, const std::vector<std::vector<uint8_t>>& packets) {
  InspectFlowTable::Shard& s = flows_.ShardOf(key);
  std::lock_guard<std::mutex> send_lock(js_send_mu_);
  OutBatch out(packets.size() ? packets.size() : 1, js_raw_fd_);
  std::vector<std::vector<uint8_t>> bufs;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.flows.find(key);
    if (it == s.flows.end() || it->second.id != id) return 0;
    const InspectFlow& f = it->second;
    for (const auto& p : packets) {
      bufs.emplace_back(kOuterHeaderLen + f.header.size() + p.size());
      std::vector<uint8_t>& b = bufs.back();
      memcpy(b.data() + kOuterHeaderLen, f.header.data(), f.header.size());
      memcpy(b.data() + kOuterHeaderLen + f.header.size(), p.data(), p.size());
      // The inner protocol may differ from the header's (an ICMPv6 error for
      // an IPv6 flow is still IPv6): set it from the packet's version.
      const uint16_t proto = (p[0] >> 4) == 6 ? kEtherTypeIPv6 : kEtherTypeIPv4;
      b[kOuterHeaderLen + 2] = uint8_t(proto >> 8);
      b[kOuterHeaderLen + 3] = uint8_t(proto);
      out.Add(b.data(), f.header.size() + p.size(), f, cfg_.port, &js_ip_id_, nullptr);
    }
  }
  // Counted from the send itself: UDP threads add to tx_packets meanwhile.
  const size_t sent = out.Flush(stop_, counters_.get());
  counters_->Add(kInInjected, sent);
  return sent;
}

void Inspect::ForgetEndpoint(uint64_t eni) {
  {
    std::lock_guard<WriterFirstLock> lock(endpoints_mu_);
    endpoints_.erase(eni);
  }
  std::vector<InspectEventData> events;
  for (size_t s = 0; s < InspectFlowTable::kShards; s++)
    EndFlows(
        s, [eni](const InspectFlow& f) { return f.endpoint->eni == eni; }, "endpoint", &events);
  Queue(&events);
}

std::vector<std::shared_ptr<InspectEndpoint>> Inspect::Endpoints() {
  endpoints_mu_.lock_shared();
  std::vector<std::shared_ptr<InspectEndpoint>> out;
  for (auto& e : endpoints_) out.push_back(e.second);
  endpoints_mu_.unlock_shared();
  return out;
}

// ---- housekeeping: idle flows end ----

void Inspect::Housekeeping() {
  // A full sweep every quarter of the idle time (at most every second),
  // a few shards per tick so no lock is held long.
  const uint64_t sweep_ms = std::max<uint64_t>(kTickMs, std::min<uint64_t>(1000, cfg_.flow_idle_ms / 4));
  const size_t per_tick = std::min<size_t>(InspectFlowTable::kShards,
                                           (InspectFlowTable::kShards * kTickMs + sweep_ms - 1) / sweep_ms);
  size_t next = 0;
  std::vector<InspectEventData> events;
  while (house_stop_.WaitReadable(-1, kTickMs)) {
    const uint64_t now = MonotonicMs();
    balancer_.Tick(now);
    for (size_t k = 0; k < per_tick; k++, next++) {
      EndFlows(
          next % InspectFlowTable::kShards,
          [&](const InspectFlow& f) { return now > f.last_ms && now - f.last_ms > cfg_.flow_idle_ms; },
          "timeout", &events);
    }
    Queue(&events);
  }
}

// ---- JavaScript ----

std::string AddressText(const FlowKey& k, bool side_a) {
  const uint8_t* a = side_a ? k.addr_a : k.addr_b;
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(k.family == 6 ? AF_INET6 : AF_INET, a, buf, sizeof buf);
  return buf;
}

void SetTuple(Napi::Env env, Napi::Object o, const InspectEventData& e) {
  const FlowKey& k = e.key.flow;
  o.Set("flow", Napi::BigInt::New(env, e.flow));
  o.Set("handle", Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(&e.key), sizeof e.key));
  o.Set("eni", Napi::BigInt::New(env, e.key.eni));
  o.Set("family", double(k.family));
  o.Set("protocol", double(k.protocol));
  const bool icmp_echo = k.port_b == 0 && (k.protocol == 1 || k.protocol == 58);
  o.Set("client", AddressText(k, e.client_is_a));
  o.Set("server", AddressText(k, !e.client_is_a));
  // An ICMP echo id sits in port_a whichever side asked.
  o.Set("clientPort", double(icmp_echo ? k.port_a : e.client_is_a ? k.port_a : k.port_b));
  o.Set("serverPort", double(icmp_echo ? 0 : e.client_is_a ? k.port_b : k.port_a));
  o.Set("midstream", e.midstream);
}

Napi::Array EventsToJs(Napi::Env env, std::vector<InspectEventData>* events) {
  Napi::Array arr = Napi::Array::New(env, events->size());
  for (size_t i = 0; i < events->size(); i++) {
    InspectEventData& e = (*events)[i];
    Napi::Object o = Napi::Object::New(env);
    if (e.kind == InspectEventData::kEndpoint) {
      in_addr a{htonl(e.source)};
      char source[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &a, source, sizeof source);
      o.Set("type", "endpoint");
      o.Set("eni", Napi::BigInt::New(env, e.eni));
      o.Set("attachment", Napi::BigInt::New(env, e.attachment));
      o.Set("source", source);
    } else if (e.kind == InspectEventData::kPacket) {
      o.Set("type", "packet");
      SetTuple(env, o, e);
      o.Set("first", e.first);
      o.Set("tap", e.tap);
      o.Set("fromClient", e.facts.from_client);
      o.Set("tcpFlags", double(e.facts.tcp_flags));
      o.Set("seq", double(e.facts.seq));
      o.Set("ack", double(e.facts.ack));
      Napi::Buffer<uint8_t> packet = Napi::Buffer<uint8_t>::Copy(env, e.packet.data(), e.packet.size());
      o.Set("packet", packet);
      o.Set("payload", Napi::Uint8Array::New(env, e.facts.payload_len, packet.ArrayBuffer(),
                                             packet.ByteOffset() + e.facts.payload_offset));
    } else {
      o.Set("type", "flow-end");
      SetTuple(env, o, e);
      o.Set("verdict", InspectStateName(e.state));
      o.Set("pktsToServer", double(e.pkts[0]));
      o.Set("pktsToClient", double(e.pkts[1]));
      o.Set("bytesToServer", double(e.bytes[0]));
      o.Set("bytesToClient", double(e.bytes[1]));
      o.Set("startMs", double(e.start_ms));
      o.Set("endMs", double(e.end_ms));
      o.Set("reason", e.reason);
    }
    arr.Set(uint32_t(i), o);
  }
  return arr;
}

InspectConfig ParseConfig(const Napi::Object& js) {
  InspectConfig c;
  c.bind = OptionString(js, "bind");
  c.port = uint16_t(OptionNumber(js, "port", 1, 65535));
  c.udp_threads = int(OptionNumber(js, "udpThreads", 1, 64));
  c.rcvbuf = int(OptionNumber(js, "rcvbuf", 0, INT32_MAX));
  c.sndbuf = int(OptionNumber(js, "sndbuf", 0, INT32_MAX));
  c.batch = int(OptionNumber(js, "batch", 1, 1024));
  c.flow_idle_ms = uint64_t(OptionNumber(js, "flowIdleMs", 1, 1e12));
  c.max_endpoints = size_t(OptionNumber(js, "maxEndpoints", 1, 1 << 20));
  c.max_flows = size_t(OptionNumber(js, "maxFlows", 1, double(1ull << 32)));
  c.held_per_flow = size_t(OptionNumber(js, "heldPerFlow", 0, 1 << 16));
  c.held_bytes = size_t(OptionNumber(js, "heldBytes", 0, double(1ull << 40)));
  c.payload_upcalls = uint16_t(OptionNumber(js, "payloadUpcalls", 1, 1024));
  c.tap_packets = uint16_t(OptionNumber(js, "tapPackets", 0, 65535));
  c.allowed_sources = OptionPrefixes(js, "allowedSources");
  return c;
}

std::shared_ptr<Inspect> Live(const std::weak_ptr<Inspect>& weak, Napi::Env env, const char* fn) {
  std::shared_ptr<Inspect> t = weak.lock();
  if (!t) throw Napi::Error::New(env, std::string(fn) + ": the inspect engine is stopped");
  return t;
}

// A flow reference from JavaScript: its id and its 48-byte handle (the key).
void FlowRef(Napi::Env env, Napi::Value flow, Napi::Value handle, const char* fn, uint64_t* id,
             InspectKey* key) {
  bool lossless = false;
  *id = flow.IsBigInt() ? flow.As<Napi::BigInt>().Uint64Value(&lossless) : 0;
  if (!lossless) throw Napi::TypeError::New(env, std::string(fn) + ": flow must be a 64-bit bigint");
  if (!handle.IsTypedArray() || handle.As<Napi::TypedArray>().ByteLength() != sizeof(InspectKey))
    throw Napi::TypeError::New(env,
                               std::string(fn) + ": handle must be the 48-byte handle of a packet event");
  Napi::Uint8Array h = handle.As<Napi::Uint8Array>();
  memcpy(key, h.Data(), sizeof(InspectKey));
}

Napi::Value StartInspectJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<Inspect> engine = StartEngine<Inspect>(info, "startInspect", "inspect", ParseConfig);
  std::weak_ptr<Inspect> weak = engine;
  Napi::Object out = Napi::Object::New(env);
  out.Set("counters", ExportCounters(env, engine->counters().get(), engine->counters()));
  out.Set("workers", ExportCounters(env, engine->workers().get(), engine->workers()));
  out.Set("setVerdicts", Napi::Function::New(
                             env,
                             [weak](const Napi::CallbackInfo& ci) -> Napi::Value {
                               Napi::Env e = ci.Env();
                               std::shared_ptr<Inspect> t = Live(weak, e, "setVerdicts");
                               if (!ci[0].IsArray())
                                 throw Napi::TypeError::New(e, "setVerdicts: expects an array");
                               Napi::Array list = ci[0].As<Napi::Array>();
                               size_t found = 0;
                               for (uint32_t i = 0; i < list.Length(); i++) {
                                 Napi::Object v = list.Get(i).As<Napi::Object>();
                                 uint64_t id;
                                 InspectKey key;
                                 FlowRef(e, v.Get("flow"), v.Get("handle"), "setVerdicts", &id, &key);
                                 const std::string action = v.Get("action").ToString().Utf8Value();
                                 const InspectState state = action == "allow"     ? InspectState::kAllow
                                                            : action == "drop"    ? InspectState::kDrop
                                                            : action == "inspect" ? InspectState::kInspect
                                                                                  : InspectState::kNew;
                                 if (state == InspectState::kNew)
                                   throw Napi::TypeError::New(
                                       e, "setVerdicts: action must be allow, drop or inspect");
                                 const bool tap = v.Get("tap").ToBoolean().Value();
                                 found += t->SetVerdict(key, id, state, tap);
                               }
                               return Napi::Number::New(e, double(found));
                             },
                             "setVerdicts"));
  out.Set("inject", Napi::Function::New(
                        env,
                        [weak](const Napi::CallbackInfo& ci) -> Napi::Value {
                          Napi::Env e = ci.Env();
                          std::shared_ptr<Inspect> t = Live(weak, e, "inject");
                          uint64_t id;
                          InspectKey key;
                          FlowRef(e, ci[0], ci[1], "inject", &id, &key);
                          if (!ci[2].IsArray())
                            throw Napi::TypeError::New(e, "inject: packets must be an array");
                          Napi::Array list = ci[2].As<Napi::Array>();
                          std::vector<std::vector<uint8_t>> packets;
                          for (uint32_t i = 0; i < list.Length(); i++) {
                            Napi::Value p = list.Get(i);
                            if (!p.IsTypedArray())
                              throw Napi::TypeError::New(e, "inject: packets must be bytes");
                            Napi::Uint8Array b = p.As<Napi::Uint8Array>();
                            if (b.ByteLength() < 20 || b.ByteLength() > 9000)
                              throw Napi::TypeError::New(e, "inject: a packet must be 20 to 9000 bytes");
                            packets.emplace_back(b.Data(), b.Data() + b.ByteLength());
                          }
                          return Napi::Number::New(e, double(t->Inject(key, id, packets)));
                        },
                        "inject"));
  out.Set("forgetEndpoint",
          Napi::Function::New(
              env,
              [weak](const Napi::CallbackInfo& ci) -> Napi::Value {
                bool lossless = false;
                const uint64_t eni = ci[0].IsBigInt() ? ci[0].As<Napi::BigInt>().Uint64Value(&lossless) : 0;
                if (!lossless) throw Napi::TypeError::New(ci.Env(), "forgetEndpoint: eni must be a bigint");
                Live(weak, ci.Env(), "forgetEndpoint")->ForgetEndpoint(eni);
                return ci.Env().Undefined();
              },
              "forgetEndpoint"));
  out.Set("endpoints", Napi::Function::New(
                           env,
                           [weak](const Napi::CallbackInfo& ci) -> Napi::Value {
                             Napi::Env e = ci.Env();
                             std::shared_ptr<Inspect> t = weak.lock();
                             auto list = t ? t->Endpoints() : std::vector<std::shared_ptr<InspectEndpoint>>{};
                             Napi::Array arr = Napi::Array::New(e, list.size());
                             for (size_t i = 0; i < list.size(); i++) {
                               Napi::Object o = Napi::Object::New(e);
                               o.Set("eni", Napi::BigInt::New(e, list[i]->eni));
                               o.Set("flows", double(list[i]->flows.load()));
                               o.Set("lastSeenMs", double(list[i]->last_seen_ms.load()));
                               o.Set("rxPackets", double(list[i]->rx_packets.load()));
                               o.Set("txPackets", double(list[i]->tx_packets.load()));
                               arr.Set(uint32_t(i), o);
                             }
                             return arr;
                           },
                           "endpoints"));
  // stop() keeps the engine alive to the end of the call: the last flows are
  // read after the threads are joined.
  auto holder = std::make_shared<std::shared_ptr<Inspect>>(engine);
  out.Set("stop", Napi::Function::New(
                      env,
                      [holder](const Napi::CallbackInfo& ci) -> Napi::Value {
                        std::vector<InspectEventData> open;
                        if (std::shared_ptr<Inspect> t = *holder) {
                          holder->reset();
                          t->Stop(&open);
                        }
                        return EventsToJs(ci.Env(), &open);
                      },
                      "stop"));
  return out;
}

}  // namespace

void InitInspect(Napi::Env env, Napi::Object exports) {
  exports.Set("startInspect", Napi::Function::New(env, StartInspectJs, "startInspect"));
}

}  // namespace gatehouse
