// gatehouse tunnel's packet core: the GWLB target (see TunnelOptions and
// NativeTunnel in src/native/binding.ts for the contract).
//
//   GWLB ─UDP 6081─> udp thread i (recvmmsg on SO_REUSEPORT socket i)
//          source allowed? -> DecodeGeneve -> endpoint by ENI
//          -> flow table: key -> GENEVE header, GWLB address and port
//          -> write(gwi queue i % queues)        (pending endpoint: queued, bounded)
//   gwo/gwi queues ─read─> ReturnPath: flow lookup -> [IPv4|UDP][GENEVE][inner]
//          -> raw socket (sendmmsg) ─> GWLB
//   housekeeping thread: expires idle flows, hands endpoint events to
//   JavaScript in batches (a thread-safe function, at most one call per 50 ms).
//
// Who drains gwo, and why. A TUN write runs the kernel's whole receive path
// in the writer's context: with the passthrough setup (tc mirred gwi -> gwo)
// or plain routing, the packet is already queued on gwo when write()
// returns. On a VM, waking another thread for it costs more CPU than
// anything else done for the packet (measured: a cross-CPU wakeup ~9 us,
// a TUN write plus read through tc mirred ~1.6 us), so after its writes a
// UDP thread asks its own epoll (every gwo queue, never slept on) which gwo
// queues have packets and sends them back itself; that epoll holds every
// endpoint's gwo queues, so
// under load what an appliance returns later (NFQUEUE, a proxy) is also
// picked up within a batch. TUN thread j watches queue j of every gwo and
// gwi (gwlbtun also returns what the kernel routes out of gwi): in epoll
// while the UDP threads are idle, and while they are busy by sweeps every 1
// to 8 ms instead, since sleeping in epoll on gwo would mean being woken for
// each packet the UDP threads are about to drain. For the same reason the
// UDP threads share the load only when one is not enough (ReuseportBalancer).
//
// The endpoint table is read on every batch and changed only when an
// endpoint appears, is attached, rejected or detached: UDP threads hold its
// read lock for a whole batch (so a detached endpoint's TUNs are never
// touched by them after detachEndpoint), changes take the write lock. TUN
// threads reach endpoints only through their epoll registrations;
// detachEndpoint removes those and then waits until every TUN thread has
// begun a new loop turn, after which none can still hold the endpoint.
#include <arpa/inet.h>
#include <errno.h>
#include <napi.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include "addon.h"
#include "counters.h"
#include "engine_start.h"
#include "flow_key.h"
#include "geneve.h"
#include "raw_sender.h"
#include "reflector_support.h"
#include "reuseport_balancer.h"
#include "tunnel_endpoint.h"
#include "tunnel_flow_table.h"
#include "tunnel_return_path.h"
#include "tunnel_support.h"
#include "udp_socket.h"

namespace gatehouse {

namespace {

// Largest GENEVE datagram taken in: the endpoint MTU (8500) plus the
// largest GENEVE header (260) fit with room to spare. Longer ones arrive
// truncated and are counted in tun_write_errors, never written cut short.
constexpr size_t kMaxDatagram = 9216;

constexpr int kTurnMs = 100;  // every worker turns at least this often (heartbeats)
// TUN threads' sweeps while the UDP threads are busy: every kSweepMinMs
// after a sweep that found packets, doubling up to kSweepMaxMs while they
// find none (a passthrough or routing appliance: everything returns at once).
constexpr int kSweepMinMs = 1;
constexpr int kSweepMaxMs = 8;
constexpr uint64_t kBusyMs = 2;  // UDP threads count as busy this long after a batch
constexpr int kTickMs = 20;      // housekeeping period
constexpr uint64_t kEventEveryMs = 50;
constexpr size_t kEventsPerCall = 256;
constexpr size_t kMaxEpollEvents = 64;
// Smallest ring (txqueuelen) a TUN gets at attach: a few ms of a busy
// endpoint, so a TUN thread held off the CPU briefly loses nothing.
constexpr size_t kMinTunRing = 4096;

struct EndpointEvent {
  uint64_t eni;
  uint64_t attachment;
  uint32_t source;  // host order
};

struct EndpointInfo {
  uint64_t eni;
  EndpointState state;
  uint64_t last_in_ms, last_out_ms;
  size_t flows, queued;
};

class Tunnel {
 public:
  explicit Tunnel(TunnelConfig cfg)
      : cfg_(std::move(cfg)),
        counters_(std::make_shared<CounterBlock>(TunnelCounterNames())),
        workers_(std::make_shared<CounterBlock>(WorkerCounterNames(cfg_.udp_threads, cfg_.tun_threads))) {}

  // Covers an environment torn down without stop() (process exit), where a
  // joinable std::thread would abort.
  ~Tunnel() {
    StopThreads();
    CloseFds();
  }

  // Opens every socket, epoll and eventfd; false with `*error` on failure.
  bool Open(std::string* error);
  // Starts the threads (pinned where asked); throws std::runtime_error.
  void Start(Napi::ThreadSafeFunction tsfn);
  // Joins the threads (the last events are queued to JavaScript first),
  // closes the sockets, releases the thread-safe function. Idempotent;
  // JavaScript thread only.
  void Stop();

  std::shared_ptr<CounterBlock> Attach(uint64_t eni, const std::vector<int>& gwi, const std::vector<int>& gwo,
                                       std::string* error);
  bool Reject(uint64_t eni, uint64_t retry_after_ms, std::string* error);
  bool Detach(uint64_t eni, std::string* error);
  std::vector<EndpointInfo> Endpoints();

  const std::shared_ptr<CounterBlock>& counters() const { return counters_; }
  const std::shared_ptr<CounterBlock>& workers() const { return workers_; }
  static Napi::Array EventsToJs(Napi::Env env, const std::vector<EndpointEvent>& events);

 private:
  struct UdpWorker {
    int index = 0;
    int fd = -1;
    int epoll_fd = -1;  // every gwo queue of every ready endpoint; polled, never slept on
    int raw_fd = -1;
    std::thread thread;
  };
  struct TunWorker {
    int index = 0;
    int epoll_fd = -1;  // queue `index` of every ready endpoint's gwo and gwi, and wake_fd
    int wake_fd = -1;
    int raw_fd = -1;
    std::atomic<uint64_t> turn{0};  // loop turns begun (detach waits for the next)
    std::thread thread;
  };

  void UdpLoop(UdpWorker* w);
  void TunLoop(TunWorker* w);
  void Housekeeping();

  Endpoint* FindLocked(uint64_t eni) {
    auto it = endpoints_.find(eni);
    return it == endpoints_.end() ? nullptr : it->second.get();
  }
  void Announce(uint64_t eni, uint64_t attachment, uint32_t source, uint64_t now_ms);
  // The pending queues' byte budget (cfg_.pending_bytes, all endpoints
  // together): a packet is queued only if its bytes fit.
  bool TakePendingBytes(size_t n) {
    size_t held = pending_bytes_.load(std::memory_order_relaxed);
    do {
      if (held + n > cfg_.pending_bytes) return false;
    } while (!pending_bytes_.compare_exchange_weak(held, held + n, std::memory_order_relaxed));
    return true;
  }
  // Empties a queue (its caller holds queue_mu), gives its bytes back and,
  // when `count`, counts its packets as queue_dropped.
  void DropQueueLocked(Endpoint* ep, bool count) {
    size_t bytes = 0;
    for (const std::vector<uint8_t>& p : ep->queue) bytes += p.size();
    pending_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
    if (count && !ep->queue.empty()) {
      counters_->Add(kTnQueueDropped, ep->queue.size());
      ep->counters->Add(kEpQueueDropped, ep->queue.size());
    }
    ep->queue.clear();
  }
  void EvictStaleRejected(uint64_t now_ms);
  static constexpr uint64_t kStaleRejectedMs = 30000;
  void SendEvents(std::vector<EndpointEvent>* batch);
  void WakeTunThreads();
  void WaitTunTurns();
  void StopThreads();
  void CloseFds();

  const TunnelConfig cfg_;
  std::shared_ptr<CounterBlock> counters_;
  std::shared_ptr<CounterBlock> workers_;
  uint32_t local_addr_ = 0;               // host order; 0 = bound to any: IP_PKTINFO per datagram
  StopSignal stop_;                       // workers
  StopSignal house_stop_;                 // the housekeeper, raised once the workers are joined
  std::atomic<uint64_t> udp_busy_ms_{0};  // when a UDP thread last wrote a batch to gwi
  std::atomic<size_t> pending_bytes_{0};  // see TakePendingBytes
  ReuseportBalancer balancer_;            // housekeeper only, once started
  std::vector<std::unique_ptr<UdpWorker>> udp_;
  std::vector<std::unique_ptr<TunWorker>> tun_;
  std::thread housekeeper_;
  bool threads_running_ = false;  // JavaScript thread only
  bool released_ = false;         // Stop() ran (JavaScript thread only)
  Napi::ThreadSafeFunction tsfn_;

  WriterFirstLock endpoints_mu_;
  std::unordered_map<uint64_t, std::unique_ptr<Endpoint>> endpoints_;

  std::mutex events_mu_;
  std::vector<EndpointEvent> events_;
};

bool Tunnel::Open(std::string* error) {
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
    w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epoll_fd < 0) {
      *error = std::string("epoll_create1: ") + strerror(errno);
      return false;
    }
  }
  balancer_.Open(udp_[0]->fd, udp_.size());
  for (int j = 0; j < cfg_.tun_threads; j++) {
    tun_.push_back(std::make_unique<TunWorker>());
    TunWorker* w = tun_.back().get();
    w->index = j;
    w->raw_fd = OpenRawIPv4Socket(cfg_.sndbuf, error);
    if (w->raw_fd < 0) return false;
    w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->epoll_fd < 0 || w->wake_fd < 0) {
      *error = std::string("epoll/eventfd: ") + strerror(errno);
      return false;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // the wake eventfd
    if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, w->wake_fd, &ev) < 0) {
      *error = std::string("epoll_ctl: ") + strerror(errno);
      return false;
    }
  }
  return true;
}

void Tunnel::Start(Napi::ThreadSafeFunction tsfn) {
  tsfn_ = tsfn;
  threads_running_ = true;
  std::string error;
  // Named and pinned from here, so both hold once startTunnel returns
  // (names show in top -H; at most 15 characters).
  auto pin = [&error](std::thread& t, const std::vector<int>& cpus, size_t i, const char* what) {
    pthread_setname_np(t.native_handle(),
                       (std::string("gh-tun-") + what + std::to_string(i)).substr(0, 15).c_str());
    if (i >= cpus.size()) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpus[i], &set);
    const int r = pthread_setaffinity_np(t.native_handle(), sizeof set, &set);
    if (r != 0 && error.empty())
      error = std::string("pinning ") + what + std::to_string(i) + " to CPU " + std::to_string(cpus[i]) +
              ": " + strerror(r);
  };
  for (auto& w : udp_) {
    UdpWorker* wp = w.get();
    w->thread = std::thread([this, wp] { UdpLoop(wp); });
    pin(w->thread, cfg_.udp_affinity, size_t(w->index), "udp");
    balancer_.AddThread(w->thread.native_handle());
  }
  for (auto& w : tun_) {
    TunWorker* wp = w.get();
    w->thread = std::thread([this, wp] { TunLoop(wp); });
    pin(w->thread, cfg_.tun_affinity, size_t(w->index), "tun");
  }
  housekeeper_ = std::thread([this] { Housekeeping(); });
  pthread_setname_np(housekeeper_.native_handle(), "gh-tun-house");
  if (!error.empty()) throw std::runtime_error(error);
}

void Tunnel::WakeTunThreads() {
  const uint64_t one = 1;
  for (auto& w : tun_)
    if (w->wake_fd >= 0 && write(w->wake_fd, &one, sizeof one) < 0) {
      // Only fails when the counter would overflow: it is readable already.
    }
}

void Tunnel::StopThreads() {
  stop_.Raise();
  WakeTunThreads();
  for (auto& w : udp_)
    if (w->thread.joinable()) w->thread.join();
  for (auto& w : tun_)
    if (w->thread.joinable()) w->thread.join();
  house_stop_.Raise();  // after the workers: it sends the events they queued last
  if (housekeeper_.joinable()) housekeeper_.join();
  threads_running_ = false;
}

void Tunnel::CloseFds() {
  for (auto& w : udp_) {
    for (int* fd : {&w->fd, &w->epoll_fd, &w->raw_fd}) {
      if (*fd >= 0) close(*fd);
      *fd = -1;
    }
  }
  for (auto& w : tun_) {
    for (int* fd : {&w->raw_fd, &w->epoll_fd, &w->wake_fd}) {
      if (*fd >= 0) close(*fd);
      *fd = -1;
    }
  }
}

void Tunnel::Stop() {
  if (released_) return;
  released_ = true;
  StopThreads();
  CloseFds();
  tsfn_.Release();
}

// ---- endpoint lifecycle ----

// UDP thread, without the endpoint lock: records a new endpoint as pending
// (or a rejected one whose retry time came) and queues its event.
void Tunnel::Announce(uint64_t eni, uint64_t attachment, uint32_t source, uint64_t now_ms) {
  std::lock_guard<WriterFirstLock> lock(endpoints_mu_);
  auto it = endpoints_.find(eni);
  if (it == endpoints_.end()) {
    // An endpoint refused long ago that never came back (or an ENI a stranger
    // made up) gives its slot back, so it cannot keep real endpoints out.
    if (endpoints_.size() >= cfg_.max_endpoints) EvictStaleRejected(now_ms);
    if (endpoints_.size() >= cfg_.max_endpoints) return;  // the caller finds none: drop_endpoint_limit
    endpoints_.emplace(eni, std::make_unique<Endpoint>(eni));
  } else if (it->second->state == EndpointState::kRejected && now_ms >= it->second->retry_at_ms) {
    it->second->state = EndpointState::kPending;
  } else {
    return;  // another UDP thread announced it meanwhile
  }
  counters_->Add(kTnEndpointsSeen);
  std::lock_guard<std::mutex> events(events_mu_);
  events_.push_back({eni, attachment, source});
}

// Under the write lock. A rejected endpoint never had TUN queues (Reject
// only takes pending ones), so no TUN thread can hold it, and UDP threads
// drop their cached pointer whenever they let the read lock go for Announce.
// Only entries whose back-off ended kStaleRejectedMs ago go: an endpoint
// still sending is announced again long before that.
void Tunnel::EvictStaleRejected(uint64_t now_ms) {
  for (auto it = endpoints_.begin(); it != endpoints_.end();) {
    const Endpoint& ep = *it->second;
    if (ep.state == EndpointState::kRejected && now_ms >= ep.retry_at_ms + kStaleRejectedMs) {
      it = endpoints_.erase(it);
    } else {
      ++it;
    }
  }
}

// Registers queue `q` in `epoll_fd`; false with `*error` set on failure.
bool Watch(int epoll_fd, TunQueue* q, std::string* error) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = q;
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, q->fd, &ev) == 0) return true;
  *error = std::string("epoll_ctl(ADD, fd ") + std::to_string(q->fd) + "): " + strerror(errno);
  return false;
}

void Unwatch(int epoll_fd, TunQueue* q) {
  // ENOENT: a thread already dropped an fd that failed; EBADF: closed early. Either way it is out.
  epoll_ctl(epoll_fd, EPOLL_CTL_DEL, q->fd, nullptr);
}

std::shared_ptr<CounterBlock> Tunnel::Attach(uint64_t eni, const std::vector<int>& gwi,
                                             const std::vector<int>& gwo, std::string* error) {
  if (released_) {
    *error = "the tunnel is stopped";
    return nullptr;
  }
  const size_t queues = size_t(cfg_.tun_threads);
  if (gwi.size() != queues || gwo.size() != queues) {
    *error = "expected " + std::to_string(queues) + " gwi and gwo fds (one per TUN thread)";
    return nullptr;
  }
  std::lock_guard<WriterFirstLock> lock(endpoints_mu_);
  Endpoint* ep = FindLocked(eni);
  if (!ep || ep->state != EndpointState::kPending) {
    *error = std::string("endpoint is ") + (ep ? EndpointStateName(ep->state) : "unknown") + ", not pending";
    return nullptr;
  }
  // Room for the pending queue, which goes into gwi below in one go, and for
  // packets arriving meanwhile.
  const int ring = int(std::max<size_t>(kMinTunRing, cfg_.pending_queue + 2 * size_t(cfg_.batch)));
  if (!EnsureTunTxQueueLen(gwi[0], ring, error) || !EnsureTunTxQueueLen(gwo[0], ring, error)) return nullptr;
  std::unique_ptr<TunQueue[]> in(new TunQueue[queues]), out(new TunQueue[queues]);
  for (size_t j = 0; j < queues; j++) {
    in[j].endpoint = out[j].endpoint = ep;
    in[j].fd = gwi[j];
    out[j].fd = gwo[j];
  }
  // Every UDP thread watches every gwo queue (the kernel picks a flow's gwo
  // queue by its hash); TUN thread j watches queue j of both TUNs (gwlbtun
  // returns what the kernel routes out of gwi too).
  std::vector<std::pair<int, TunQueue*>> done;
  bool ok = true;
  for (auto& w : udp_)
    for (size_t j = 0; j < queues && ok; j++)
      if ((ok = Watch(w->epoll_fd, &out[j], error))) done.push_back({w->epoll_fd, &out[j]});
  for (size_t j = 0; j < queues && ok; j++) {
    if ((ok = Watch(tun_[j]->epoll_fd, &out[j], error))) done.push_back({tun_[j]->epoll_fd, &out[j]});
    if (ok && (ok = Watch(tun_[j]->epoll_fd, &in[j], error))) done.push_back({tun_[j]->epoll_fd, &in[j]});
  }
  if (!ok) {
    for (auto& d : done) Unwatch(d.first, d.second);
    WaitTunTurns();  // a TUN thread may have seen a registration already
    return nullptr;
  }
  ep->queues = queues;
  ep->gwi = std::move(in);
  ep->gwo = std::move(out);
  // No UDP thread is inside a batch (we hold the write lock): the queue goes
  // out first, in order, and later packets follow it.
  uint64_t write_errors = 0;
  {
    std::lock_guard<std::mutex> q(ep->queue_mu);
    for (const std::vector<uint8_t>& p : ep->queue)
      if (write(gwi[0], p.data(), p.size()) != ssize_t(p.size())) write_errors++;
    DropQueueLocked(ep, false);
  }
  if (write_errors) {
    counters_->Add(kTnTunWriteErrors, write_errors);
    ep->counters->Add(kEpTunWriteErrors, write_errors);
  }
  ep->state = EndpointState::kReady;
  return ep->counters;
}

bool Tunnel::Reject(uint64_t eni, uint64_t retry_after_ms, std::string* error) {
  std::lock_guard<WriterFirstLock> lock(endpoints_mu_);
  Endpoint* ep = FindLocked(eni);
  if (!ep || ep->state != EndpointState::kPending) {
    *error = std::string("endpoint is ") + (ep ? EndpointStateName(ep->state) : "unknown") + ", not pending";
    return false;
  }
  ep->state = EndpointState::kRejected;
  ep->retry_at_ms = MonotonicMs() + retry_after_ms;
  std::lock_guard<std::mutex> q(ep->queue_mu);
  DropQueueLocked(ep, true);
  return true;
}

void Tunnel::WaitTunTurns() {
  if (!threads_running_) return;
  std::vector<uint64_t> seen;
  for (auto& w : tun_) seen.push_back(w->turn.load(std::memory_order_acquire));
  WakeTunThreads();
  for (size_t j = 0; j < tun_.size(); j++) {
    while (tun_[j]->turn.load(std::memory_order_acquire) == seen[j]) {
      timespec nap{0, 50 * 1000};
      nanosleep(&nap, nullptr);
    }
  }
}

bool Tunnel::Detach(uint64_t eni, std::string* error) {
  std::unique_ptr<Endpoint> ep;
  {
    std::lock_guard<WriterFirstLock> lock(endpoints_mu_);
    auto it = endpoints_.find(eni);
    if (it == endpoints_.end()) {
      *error = "endpoint is unknown";
      return false;
    }
    ep = std::move(it->second);
    endpoints_.erase(it);
    // UDP threads reach TUN queues only inside a batch, under the read lock.
    for (auto& w : udp_)
      for (size_t j = 0; j < ep->queues; j++) Unwatch(w->epoll_fd, &ep->gwo[j]);
  }
  // TUN threads may still hold it from an epoll_wait that returned before
  // the removal: wait them out.
  for (size_t j = 0; j < ep->queues; j++) {
    Unwatch(tun_[j]->epoll_fd, &ep->gwo[j]);
    Unwatch(tun_[j]->epoll_fd, &ep->gwi[j]);
  }
  WaitTunTurns();
  {
    std::lock_guard<std::mutex> q(ep->queue_mu);
    DropQueueLocked(ep.get(), true);
  }
  counters_->Add(kTnFlowsActive, uint64_t(0) - ep->flows.size());
  return true;  // `ep` and its flows go now
}

std::vector<EndpointInfo> Tunnel::Endpoints() {
  std::vector<EndpointInfo> out;
  std::shared_lock<WriterFirstLock> lock(endpoints_mu_);
  for (auto& kv : endpoints_) {
    Endpoint* ep = kv.second.get();
    size_t queued;
    {
      std::lock_guard<std::mutex> q(ep->queue_mu);
      queued = ep->queue.size();
    }
    out.push_back({ep->eni, ep->state, ep->last_in_ms.load(std::memory_order_relaxed),
                   ep->last_out_ms.load(std::memory_order_relaxed), ep->flows.size(), queued});
  }
  return out;
}

// ---- UDP threads: GWLB -> gwi (and what comes straight back out of gwo) ----

// Global counts of one batch, added once at its end.
struct UdpBatchCounts {
  uint64_t rx_packets = 0, rx_bytes = 0, not_allowed = 0, endpoint_limit = 0, rejected = 0, queue_dropped = 0,
           unparsable = 0, write_errors = 0, flows_created = 0, malformed = 0, flow_limit = 0;
  uint64_t by_reason[kGeneveReasonCount] = {};
};

void Tunnel::UdpLoop(UdpWorker* w) {
  TightenTimerSlack();
  const size_t batch = size_t(cfg_.batch);
  std::vector<uint8_t> slots(batch * kMaxDatagram);
  std::vector<mmsghdr> rx(batch);
  std::vector<iovec> iov(batch);
  std::vector<sockaddr_in> from(batch);
  std::vector<uint8_t> control(batch * kTunnelControl);
  for (size_t i = 0; i < batch; i++) iov[i] = {&slots[i * kMaxDatagram], kMaxDatagram};
  ReturnPath back(batch, w->raw_fd, cfg_.port, cfg_.hexdump, counters_.get(), &stop_);
  epoll_event ready[kMaxEpollEvents];
  CounterBlock& c = *counters_;
  CounterBlock& wc = *workers_;
  const size_t wbase = size_t(w->index) * kWorkerCounters;
  uint32_t drops_seen = 0;
  EndpointTally tally;

  // recvmmsg rewrites the name and control lengths and the flags of the
  // entries it fills: those are reset after each batch, not all of them.
  auto reset = [&](size_t n) {
    for (size_t i = 0; i < n; i++)
      PointMessage(&rx[i].msg_hdr, &from[i], &iov[i], &control[i * kTunnelControl], kTunnelControl);
  };
  reset(batch);
  bool wait_first = false;

  while (!stop_.raised()) {
    // After a part-full batch the socket is most likely empty: poll (which
    // returns at once if it is not) instead of a recvmmsg that finds nothing.
    if (wait_first) stop_.WaitReadable(w->fd, kTurnMs);
    const uint64_t now = MonotonicMs();
    wc.Set(wbase + kWorkerHeartbeat, now);
    const int got = recvmmsg(w->fd, rx.data(), unsigned(batch), MSG_DONTWAIT, nullptr);
    if (got <= 0) {
      wait_first = true;  // idle (or ENOMEM): sleep until data, stop or the next turn
      continue;
    }
    wait_first = size_t(got) < batch;
    uint32_t drops = drops_seen;
    const uint32_t last_dst = ReadControl(&rx[size_t(got) - 1].msg_hdr, &drops);
    if (drops != drops_seen) {
      c.Add(kTnRxOverflow, uint32_t(drops - drops_seen));  // unsigned: survives wrap-around
      drops_seen = drops;
    }

    UdpBatchCounts bc;
    size_t written = 0, returned = 0;
    endpoints_mu_.lock_shared();
    Endpoint* cached = nullptr;
    for (int i = 0; i < got; i++) {
      msghdr& h = rx[size_t(i)].msg_hdr;
      uint8_t* d = &slots[size_t(i) * kMaxDatagram];
      const size_t len = rx[size_t(i)].msg_len;
      bc.rx_packets++;
      bc.rx_bytes += len;
      if (h.msg_flags & MSG_TRUNC) {
        bc.write_errors++;  // bigger than any endpoint MTU allows: it could not go to gwi whole
        continue;
      }
      const uint32_t source = ntohl(from[size_t(i)].sin_addr.s_addr);
      if (!SourceAllowed(cfg_.allowed_sources, source)) {
        bc.not_allowed++;
        continue;
      }
      GeneveInfo g;
      const GeneveReason reason = DecodeGeneve(d, len, &g);
      if (reason != GeneveReason::kOk) {
        bc.malformed++;
        bc.by_reason[int(reason)]++;
        continue;
      }
      Endpoint* ep = cached && cached->eni == g.eni ? cached : FindLocked(g.eni);
      if (!ep || (ep->state == EndpointState::kRejected && now >= ep->retry_at_ms)) {
        // A new endpoint (or one whose retry time came): rare, so the read
        // lock is let go for the write lock rather than held by both paths.
        tally.Flush(now);
        endpoints_mu_.unlock_shared();
        Announce(g.eni, g.attachment, source, now);
        endpoints_mu_.lock_shared();
        cached = nullptr;  // Announce may have evicted the endpoint it pointed to
        ep = FindLocked(g.eni);
        if (!ep) {
          cached = nullptr;
          bc.endpoint_limit++;
          continue;
        }
      }
      cached = ep;
      if (ep->state == EndpointState::kRejected) {
        bc.rejected++;
        continue;
      }
      const uint8_t* inner = d + g.header_len;
      const size_t inner_len = len - g.header_len;
      ParsedFlow pf;
      if (!InnerFlowKey(ep, inner, inner_len, now, &pf)) {
        bc.unparsable++;
        continue;
      }
      uint32_t ignored;
      const uint32_t local =
          local_addr_ ? local_addr_ : (i == got - 1 ? last_dst : ReadControl(&h, &ignored));
      const TunnelFlowSource fs{d, g.header_len, source, local, ntohs(from[size_t(i)].sin_port)};
      // The cap is checked against the count at the batch's start plus this
      // batch's new flows: other threads may overshoot it by a batch each.
      const auto up = ep->flows.Upsert(pf.key, fs, uint32_t(now), [&] {
        return c.Get(kTnFlowsActive) + bc.flows_created < cfg_.max_flows;
      });
      if (up == TunnelFlowTable::Upserted::kCreated) {
        bc.flows_created++;
      } else if (up == TunnelFlowTable::Upserted::kRefused) {
        bc.flow_limit++;
        continue;
      }
      uint64_t* t = tally.For(ep, now);
      t[kEpRxPackets]++;
      t[kEpRxBytes] += len;
      if (cfg_.hexdump) HexDump("in", ep->eni, d, len);
      if (ep->state == EndpointState::kPending) {
        std::lock_guard<std::mutex> q(ep->queue_mu);
        if (ep->queue.size() < cfg_.pending_queue && TakePendingBytes(inner_len)) {
          ep->queue.emplace_back(inner, inner + inner_len);
        } else {
          bc.queue_dropped++;
          t[kEpQueueDropped]++;
        }
        continue;
      }
      if (write(ep->gwi[size_t(w->index) % ep->queues].fd, inner, inner_len) == ssize_t(inner_len)) {
        written++;
      } else {
        bc.write_errors++;
        t[kEpTunWriteErrors]++;
      }
    }
    if (written) {
      // What the kernel handed straight back (see the top of this file).
      const int n = epoll_wait(w->epoll_fd, ready, int(kMaxEpollEvents), 0);
      for (int e = 0; e < n; e++) {
        TunQueue* q = static_cast<TunQueue*>(ready[e].data.ptr);
        if (back.Collect(q, SIZE_MAX, now, &tally, &returned) == ReturnPath::Drained::kBroken)
          epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, q->fd, nullptr);  // its interface is gone
      }
      back.Flush(now, &tally);
      if (udp_busy_ms_.load(std::memory_order_relaxed) != now)
        udp_busy_ms_.store(now, std::memory_order_relaxed);
    }
    tally.Flush(now);
    endpoints_mu_.unlock_shared();

    c.Add(kTnRxPackets, bc.rx_packets);
    c.Add(kTnRxBytes, bc.rx_bytes);
    wc.Add(wbase + kWorkerPackets, bc.rx_packets + returned);
    if (bc.not_allowed) c.Add(kTnDropSourceNotAllowed, bc.not_allowed);
    if (bc.endpoint_limit) c.Add(kTnDropEndpointLimit, bc.endpoint_limit);
    if (bc.rejected) c.Add(kTnDropEndpointRejected, bc.rejected);
    if (bc.queue_dropped) c.Add(kTnQueueDropped, bc.queue_dropped);
    if (bc.flow_limit) c.Add(kTnDropFlowLimit, bc.flow_limit);
    if (bc.unparsable) c.Add(kTnDropUnparsableInner, bc.unparsable);
    if (bc.write_errors) c.Add(kTnTunWriteErrors, bc.write_errors);
    if (bc.flows_created) {
      c.Add(kTnFlowsCreated, bc.flows_created);
      c.Add(kTnFlowsActive, bc.flows_created);
    }
    if (bc.malformed) {
      c.Add(kTnDroppedMalformed, bc.malformed);
      for (int k = 0; k < kGeneveReasonCount; k++)
        if (bc.by_reason[k]) c.Add(kTnMalformedFirst + size_t(k), bc.by_reason[k]);
    }
    reset(size_t(got));
    PaceReceive(size_t(got), batch);
  }
}

// ---- TUN threads: what comes back later, from gwo and gwi ----

void Tunnel::TunLoop(TunWorker* w) {
  TightenTimerSlack();
  const size_t batch = size_t(cfg_.batch);
  ReturnPath back(batch, w->raw_fd, cfg_.port, cfg_.hexdump, counters_.get(), &stop_);
  epoll_event events[kMaxEpollEvents];
  CounterBlock& wc = *workers_;
  const size_t wbase = (size_t(cfg_.udp_threads) + size_t(w->index)) * kWorkerCounters;
  EndpointTally tally;
  bool more = false;  // a queue still had packets after a batch: do not sleep
  uint64_t now = MonotonicMs();
  int sweep_ms = kSweepMinMs;

  while (!stop_.raised()) {
    w->turn.fetch_add(1, std::memory_order_acq_rel);
    int timeout = more ? 0 : kTurnMs;
    const bool sweep = !more && now - udp_busy_ms_.load(std::memory_order_relaxed) <= kBusyMs;
    if (sweep) {
      // UDP threads are busy draining gwo: sleep on the wake fd alone, then sweep.
      pollfd p{w->wake_fd, POLLIN, 0};
      poll(&p, 1, sweep_ms);
      timeout = 0;
    }
    const int ready = epoll_wait(w->epoll_fd, events, int(kMaxEpollEvents), timeout);
    now = MonotonicMs();
    wc.Set(wbase + kWorkerHeartbeat, now);
    more = false;
    size_t read_total = 0;
    for (int e = 0; e < ready; e++) {
      TunQueue* q = static_cast<TunQueue*>(events[e].data.ptr);
      if (!q) {
        uint64_t v;
        if (read(w->wake_fd, &v, sizeof v) < 0) {
          // EAGAIN: another wake already drained it.
        }
        continue;
      }
      // At most a batch per queue and turn, so one busy endpoint cannot
      // starve the others; what is left is reported again (level-triggered).
      switch (back.Collect(q, batch, now, &tally, &read_total)) {
        case ReturnPath::Drained::kMore:
          more = true;
          break;
        case ReturnPath::Drained::kBroken:
          // A TUN gone bad (its interface deleted...) would be reported
          // ready for ever: stop watching it.
          epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, q->fd, nullptr);
          break;
        case ReturnPath::Drained::kEmpty:
          break;
      }
    }
    back.Flush(now, &tally);
    tally.Flush(now);
    if (read_total) wc.Add(wbase + kWorkerPackets, read_total);
    if (sweep) sweep_ms = read_total ? kSweepMinMs : std::min(2 * sweep_ms, kSweepMaxMs);
  }
}

// ---- housekeeping: events to JavaScript, flow expiry ----

void Tunnel::SendEvents(std::vector<EndpointEvent>* all) {
  for (size_t off = 0; off < all->size(); off += kEventsPerCall) {
    const size_t end = std::min(all->size(), off + kEventsPerCall);
    auto* batch = new std::vector<EndpointEvent>(all->begin() + long(off), all->begin() + long(end));
    const napi_status st = tsfn_.NonBlockingCall(
        batch, [](Napi::Env env, Napi::Function fn, std::vector<EndpointEvent>* events) {
          std::unique_ptr<std::vector<EndpointEvent>> owned(events);
          if (env == nullptr || fn.IsEmpty()) return;  // environment shutting down
          fn.Call({EventsToJs(env, *owned)});
        });
    if (st != napi_ok) delete batch;  // closing: nobody is listening any more
  }
  all->clear();
}

Napi::Array Tunnel::EventsToJs(Napi::Env env, const std::vector<EndpointEvent>& events) {
  Napi::Array arr = Napi::Array::New(env, events.size());
  for (size_t i = 0; i < events.size(); i++) {
    in_addr a{htonl(events[i].source)};
    char source[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a, source, sizeof source);
    Napi::Object e = Napi::Object::New(env);
    e.Set("type", "endpoint");
    e.Set("eni", Napi::BigInt::New(env, events[i].eni));
    e.Set("attachment", Napi::BigInt::New(env, events[i].attachment));
    e.Set("source", source);
    arr.Set(uint32_t(i), e);
  }
  return arr;
}

void Tunnel::Housekeeping() {
  // A full expiry sweep every quarter of the idle time (at most every
  // second), spread over the ticks a few shards at a time so no lock is held
  // long.
  const uint64_t sweep_ms = std::max<uint64_t>(kTickMs, std::min<uint64_t>(1000, cfg_.flow_idle_ms / 4));
  const size_t shards_per_tick = std::min<size_t>(
      TunnelFlowTable::kShards, (TunnelFlowTable::kShards * kTickMs + sweep_ms - 1) / sweep_ms);
  size_t next_shard = 0;
  uint64_t last_events = 0;
  std::vector<EndpointEvent> batch;
  for (;;) {
    const bool stopping = !house_stop_.WaitReadable(-1, kTickMs);
    const uint64_t now = MonotonicMs();
    if (stopping || now - last_events >= kEventEveryMs) {
      // When stopping, the workers have been joined: these are the last events.
      {
        std::lock_guard<std::mutex> lock(events_mu_);
        batch.swap(events_);
      }
      if (!batch.empty()) SendEvents(&batch);
      last_events = now;
    }
    if (stopping) return;
    balancer_.Tick(now);
    uint64_t expired = 0;
    {
      std::shared_lock<WriterFirstLock> lock(endpoints_mu_);
      for (auto& kv : endpoints_)
        for (size_t k = 0; k < shards_per_tick; k++)
          expired += kv.second->flows.ExpireShard(next_shard + k, uint32_t(now), cfg_.flow_idle_ms);
    }
    next_shard = (next_shard + shards_per_tick) % TunnelFlowTable::kShards;
    if (expired) {
      counters_->Add(kTnFlowsExpired, expired);
      counters_->Add(kTnFlowsActive, uint64_t(0) - expired);
    }
  }
}

// ---- JavaScript binding ----

TunnelConfig ParseConfig(const Napi::Object& js) {
  TunnelConfig c;
  c.bind = OptionString(js, "bind");
  c.port = uint16_t(OptionNumber(js, "port", 1, 65535));
  c.udp_threads = int(OptionNumber(js, "udpThreads", 1, 64));
  c.udp_affinity = OptionIntArray(js, "udpAffinity", 0, CPU_SETSIZE - 1);
  c.tun_threads = int(OptionNumber(js, "tunThreads", 1, 64));
  c.tun_affinity = OptionIntArray(js, "tunAffinity", 0, CPU_SETSIZE - 1);
  c.rcvbuf = int(OptionNumber(js, "rcvbuf", 0, INT32_MAX));
  c.sndbuf = int(OptionNumber(js, "sndbuf", 0, INT32_MAX));
  c.batch = int(OptionNumber(js, "batch", 1, 1024));
  // 32-bit millisecond flow times: idle times up to 24 days.
  c.flow_idle_ms = uint32_t(OptionNumber(js, "flowIdleMs", 1, 0x7fffffff));
  c.max_endpoints = size_t(OptionNumber(js, "maxEndpoints", 1, 1 << 20));
  c.pending_queue = size_t(OptionNumber(js, "pendingQueue", 0, 1 << 20));
  c.pending_bytes = size_t(OptionNumber(js, "pendingBytes", 0, double(1ull << 40)));
  c.max_flows = size_t(OptionNumber(js, "maxFlows", 1, double(1ull << 32)));
  c.allowed_sources = OptionPrefixes(js, "allowedSources");
  c.hexdump = OptionBool(js, "hexdump");
  return c;
}

std::vector<int> FdArray(const Napi::Value& v, const char* what) {
  if (!v.IsArray())
    throw Napi::TypeError::New(v.Env(), std::string("attachEndpoint: ") + what + " must be an array");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value x = a.Get(i);
    const double d = x.IsNumber() ? x.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= INT32_MAX) || double(int64_t(d)) != d)
      throw Napi::TypeError::New(v.Env(), std::string("attachEndpoint: ") + what + " must hold fds");
    out.push_back(int(d));
  }
  return out;
}

uint64_t EniArg(const Napi::CallbackInfo& info, const char* fn) {
  bool lossless = false;
  uint64_t eni = info[0].IsBigInt() ? info[0].As<Napi::BigInt>().Uint64Value(&lossless) : 0;
  if (!lossless) throw Napi::TypeError::New(info.Env(), std::string(fn) + ": eni must be a 64-bit bigint");
  return eni;
}

std::shared_ptr<Tunnel> Live(const std::weak_ptr<Tunnel>& weak, Napi::Env env, const char* fn) {
  std::shared_ptr<Tunnel> t = weak.lock();
  if (!t) throw Napi::Error::New(env, std::string(fn) + ": the tunnel is stopped");
  return t;
}

Napi::Value StartTunnelJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<Tunnel> tunnel = StartEngine<Tunnel>(info, "startTunnel", "tunnel", ParseConfig);
  std::weak_ptr<Tunnel> weak = tunnel;
  Napi::Object out = Napi::Object::New(env);
  out.Set("counters", ExportCounters(env, tunnel->counters().get(), tunnel->counters()));
  out.Set("workers", ExportCounters(env, tunnel->workers().get(), tunnel->workers()));
  out.Set("attachEndpoint", Napi::Function::New(
                                env,
                                [weak](const Napi::CallbackInfo& ci) -> Napi::Value {
                                  const uint64_t eni = EniArg(ci, "attachEndpoint");
                                  const std::vector<int> gwi = FdArray(ci[1], "gwi"),
                                                         gwo = FdArray(ci[2], "gwo");
                                  std::string err;
                                  std::shared_ptr<CounterBlock> block =
                                      Live(weak, ci.Env(), "attachEndpoint")->Attach(eni, gwi, gwo, &err);
                                  if (!block) throw Napi::Error::New(ci.Env(), "attachEndpoint: " + err);
                                  return ExportCounters(ci.Env(), block.get(), block);
                                },
                                "attachEndpoint"));
  out.Set("rejectEndpoint",
          Napi::Function::New(
              env,
              [weak](const Napi::CallbackInfo& ci) -> Napi::Value {
                const uint64_t eni = EniArg(ci, "rejectEndpoint");
                const double ms = ci[1].IsNumber() ? ci[1].As<Napi::Number>().DoubleValue() : -1;
                if (!(ms >= 0 && ms <= 1e12))
                  throw Napi::TypeError::New(ci.Env(), "rejectEndpoint: retryAfterMs out of range");
                std::string err;
                if (!Live(weak, ci.Env(), "rejectEndpoint")->Reject(eni, uint64_t(ms), &err))
                  throw Napi::Error::New(ci.Env(), "rejectEndpoint: " + err);
                return ci.Env().Undefined();
              },
              "rejectEndpoint"));
  out.Set("detachEndpoint", Napi::Function::New(
                                env,
                                [weak](const Napi::CallbackInfo& ci) -> Napi::Value {
                                  const uint64_t eni = EniArg(ci, "detachEndpoint");
                                  std::string err;
                                  if (!Live(weak, ci.Env(), "detachEndpoint")->Detach(eni, &err))
                                    throw Napi::Error::New(ci.Env(), "detachEndpoint: " + err);
                                  return ci.Env().Undefined();
                                },
                                "detachEndpoint"));
  out.Set("endpoints", Napi::Function::New(
                           env,
                           [weak](const Napi::CallbackInfo& ci) -> Napi::Value {
                             Napi::Env e = ci.Env();
                             std::shared_ptr<Tunnel> t = weak.lock();
                             std::vector<EndpointInfo> list =
                                 t ? t->Endpoints() : std::vector<EndpointInfo>{};
                             Napi::Array arr = Napi::Array::New(e, list.size());
                             for (size_t i = 0; i < list.size(); i++) {
                               Napi::Object o = Napi::Object::New(e);
                               o.Set("eni", Napi::BigInt::New(e, list[i].eni));
                               o.Set("state", EndpointStateName(list[i].state));
                               o.Set("lastInMs", double(list[i].last_in_ms));
                               o.Set("lastOutMs", double(list[i].last_out_ms));
                               o.Set("flows", double(list[i].flows));
                               o.Set("queued", double(list[i].queued));
                               arr.Set(uint32_t(i), o);
                             }
                             return arr;
                           },
                           "endpoints"));
  out.Set("stop", Napi::Function::New(
                      env,
                      [weak](const Napi::CallbackInfo& ci) -> Napi::Value {
                        if (auto t = weak.lock()) t->Stop();
                        return ci.Env().Undefined();
                      },
                      "stop"));
  return out;
}

Napi::Value MonotonicMsJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(MonotonicMs()));
}

}  // namespace

void InitTunnel(Napi::Env env, Napi::Object exports) {
  exports.Set("startTunnel", Napi::Function::New(env, StartTunnelJs, "startTunnel"));
  exports.Set("monotonicMs", Napi::Function::New(env, MonotonicMsJs, "monotonicMs"));
}

}  // namespace gatehouse
