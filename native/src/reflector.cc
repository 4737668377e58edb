// Echo reflector: sends every GENEVE datagram back the way a gwlbtun target
// does (outer IPv4 addresses swapped, UDP ports kept as received, GENEVE
// header and inner packet untouched). It is the emulator's ceiling and the
// lab's passthrough appliance, so it is built for throughput:
//
//   socket i (SO_REUSEPORT) --recvmmsg--> slot[k] + 28 --header in place--> raw socket i --sendmmsg-->
//
// Each thread owns one UDP socket, one raw socket and its buffers: no locks
// and no copies on the packet path. Datagrams are received 28 bytes into
// their slot, so the outer IPv4 + UDP header is written into that headroom
// and the slot goes out as is.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "addon.h"
#include "counters.h"
#include "geneve.h"
#include "raw_sender.h"
#include "reflector_support.h"
#include "udp_socket.h"

namespace gatehouse {

namespace {

// Counter order: the contract in src/native/binding.ts (ReflectorOptions).
enum : size_t {
  kRxPackets,
  kRxBytes,
  kTxPackets,
  kTxBytes,
  kTxErrors,
  kRxOverflow,
  kDroppedMalformed,
  kMalformedFirst,  // + GeneveReason
};

std::vector<std::string> ReflectorCounterNames() {
  std::vector<std::string> n = {"rx_packets", "rx_bytes",    "tx_packets",       "tx_bytes",
                                "tx_errors",  "rx_overflow", "dropped_malformed"};
  for (const char* r : kGeneveReasonNames) n.push_back(std::string("malformed_") + r);
  return n;
}

// Largest datagram reflected: GWLB's 8500-byte endpoint MTU plus its 68 bytes
// of encapsulation fit with room to spare. Longer ones arrive truncated and
// are counted as tx_errors rather than sent back cut short.
constexpr size_t kMaxPayload = 9216;
constexpr size_t kSlot = kOuterHeaderLen + kMaxPayload + 4;  // keeps slots 8-byte aligned
constexpr size_t kControl = CMSG_SPACE(sizeof(uint32_t)) + CMSG_SPACE(sizeof(in_pktinfo));

struct ReflectorOptions {
  std::string bind;
  uint16_t port;
  int threads, rcvbuf, sndbuf, batch;
  bool validate;
};

// One socket pair, its buffers and its thread.
struct Worker {
  int udp_fd = -1;
  int raw_fd = -1;
  std::vector<uint8_t> slots;
  std::vector<mmsghdr> rx, tx;
  std::vector<iovec> rx_iov, tx_iov;
  std::vector<sockaddr_in> from, to;
  std::vector<uint8_t> control;
  std::thread thread;

  explicit Worker(size_t batch)
      : slots(batch * kSlot),
        rx(batch),
        tx(batch),
        rx_iov(batch),
        tx_iov(batch),
        from(batch),
        to(batch),
        control(batch * kControl) {}
};

class Reflector {
 public:
  // Opens every socket, then starts the threads; on failure closes what it
  // opened and returns nullptr with `*error` set.
  static std::shared_ptr<Reflector> Start(const ReflectorOptions& o, std::string* error);
  ~Reflector() { Stop(); }

  void Stop();
  const std::shared_ptr<CounterBlock>& counters() const { return counters_; }
  uint16_t port() const { return port_; }

 private:
  explicit Reflector(const ReflectorOptions& o)
      : opts_(o), counters_(std::make_shared<CounterBlock>(ReflectorCounterNames())) {}
  void Run(Worker* w);
  void CloseAll();

  const ReflectorOptions opts_;
  std::shared_ptr<CounterBlock> counters_;
  uint16_t port_ = 0;
  uint32_t local_addr_ = 0;  // host order; 0 = bound to any: read IP_PKTINFO per datagram
  StopSignal stop_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::mutex stop_mutex_;
  bool stopped_ = false;
};

std::shared_ptr<Reflector> Reflector::Start(const ReflectorOptions& o, std::string* error) {
  std::shared_ptr<Reflector> r(new Reflector(o));
  if (!r->stop_.ok()) {
    *error = std::string("eventfd: ") + strerror(errno);
    return nullptr;
  }
  in_addr bind_addr{};
  if (!ParseIPv4(o.bind, &bind_addr)) {
    *error = "not an IPv4 address: " + o.bind;
    return nullptr;
  }
  r->local_addr_ = ntohl(bind_addr.s_addr);
  r->port_ = o.port;
  for (int i = 0; i < o.threads; i++) {
    r->workers_.push_back(std::make_unique<Worker>(size_t(o.batch)));
    Worker* w = r->workers_.back().get();
    UdpSocketOptions so;
    so.bind_address = o.bind;
    so.port = r->port_;  // the first socket may get an ephemeral port: the others join it
    so.reuse_port = true;
    so.rcvbuf = o.rcvbuf;
    so.sndbuf = o.sndbuf;
    w->udp_fd = OpenUdpSocket(so, error);
    if (w->udp_fd < 0) break;
    if (r->port_ == 0) r->port_ = LocalPort(w->udp_fd);
    int one = 1;
    if (r->local_addr_ == 0 && setsockopt(w->udp_fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) < 0) {
      *error = std::string("setsockopt(IP_PKTINFO): ") + strerror(errno);
      break;
    }
    w->raw_fd = OpenRawIPv4Socket(o.sndbuf, error);
    if (w->raw_fd < 0) break;
  }
  if (!error->empty()) {
    r->CloseAll();
    return nullptr;
  }
  try {
    for (auto& w : r->workers_) {
      Worker* wp = w.get();
      Reflector* self = r.get();  // threads never own the engine: ~Reflector joins them
      w->thread = std::thread([self, wp] { self->Run(wp); });
    }
  } catch (const std::system_error& e) {
    *error = std::string("starting a reflector thread: ") + e.what();
    r->Stop();
    return nullptr;
  }
  return r;
}

void Reflector::CloseAll() {
  for (auto& w : workers_) {
    if (w->udp_fd >= 0) close(w->udp_fd);
    if (w->raw_fd >= 0) close(w->raw_fd);
    w->udp_fd = w->raw_fd = -1;
  }
}

void Reflector::Stop() {
  std::lock_guard<std::mutex> lock(stop_mutex_);
  if (stopped_) return;
  stopped_ = true;
  stop_.Raise();
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
  CloseAll();
}

// The destination address of a datagram, from its IP_PKTINFO (host order).
uint32_t PacketDestination(msghdr* h) {
  for (cmsghdr* c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof pi);
      return ntohl(pi.ipi_addr.s_addr);
    }
  }
  return 0;
}

// The socket's cumulative drop count, if this datagram carries it (the
// kernel only attaches SO_RXQ_OVFL once something was dropped).
bool PacketDrops(msghdr* h, uint32_t* drops) {
  for (cmsghdr* c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
      memcpy(drops, CMSG_DATA(c), sizeof *drops);
      return true;
    }
  }
  return false;
}

void Reflector::Run(Worker* w) {
  NameThread("gh-reflect");
  TightenTimerSlack();
  const size_t batch = size_t(opts_.batch);
  for (size_t i = 0; i < batch; i++) {
    w->rx_iov[i] = {&w->slots[i * kSlot + kOuterHeaderLen], kMaxPayload};
    w->to[i] = {};
    w->to[i].sin_family = AF_INET;
  }
  CounterBlock& c = *counters_;
  uint16_t ip_id = 0;
  uint32_t drops_seen = 0;
  uint64_t malformed[kGeneveReasonCount];

  while (!stop_.raised()) {
    // recvmmsg rewrites the name and control lengths: reset them every time.
    for (size_t i = 0; i < batch; i++)
      PointMessage(&w->rx[i].msg_hdr, &w->from[i], &w->rx_iov[i], &w->control[i * kControl], kControl);
    int got = recvmmsg(w->udp_fd, w->rx.data(), unsigned(batch), MSG_DONTWAIT, nullptr);
    if (got <= 0) {
      // Idle (or a transient error such as ENOMEM): sleep until data or stop.
      stop_.WaitReadable(w->udp_fd);
      continue;
    }

    uint64_t rx_bytes = 0, dropped = 0, truncated = 0;
    size_t out = 0;
    if (opts_.validate) std::fill(std::begin(malformed), std::end(malformed), 0);
    for (int i = 0; i < got; i++) {
      msghdr& h = w->rx[i].msg_hdr;
      uint8_t* slot = &w->slots[size_t(i) * kSlot];
      const size_t len = w->rx[i].msg_len;
      rx_bytes += len;
      if (h.msg_flags & MSG_TRUNC) {
        truncated++;
        continue;
      }
      if (opts_.validate) {
        GeneveInfo g;
        GeneveReason reason = DecodeGeneve(slot + kOuterHeaderLen, len, &g);
        if (reason != GeneveReason::kOk) {
          malformed[int(reason)]++;
          dropped++;
          continue;
        }
      }
      const sockaddr_in& from = w->from[i];
      const uint32_t local = local_addr_ ? local_addr_ : PacketDestination(&h);
      // Mirror as gwlbtun does: addresses swapped, ports as received.
      WriteIPv4UdpHeader(slot, local, ntohl(from.sin_addr.s_addr), ntohs(from.sin_port), port_, len, ip_id++);
      w->to[out].sin_addr = from.sin_addr;
      w->tx_iov[out] = {slot, kOuterHeaderLen + len};
      PointMessage(&w->tx[out].msg_hdr, &w->to[out], &w->tx_iov[out]);
      out++;
    }
    uint32_t drops;
    if (PacketDrops(&w->rx[got - 1].msg_hdr, &drops) && drops != drops_seen) {
      c.Add(kRxOverflow, uint32_t(drops - drops_seen));  // unsigned: survives wrap-around
      drops_seen = drops;
    }

    uint64_t tx_bytes = 0, tx_errors = truncated;
    size_t sent = out ? SendAll(w->raw_fd, w->tx.data(), out, stop_, &tx_bytes, &tx_errors) : 0;
    c.Add(kRxPackets, uint64_t(got));
    c.Add(kRxBytes, rx_bytes);
    if (sent) {
      c.Add(kTxPackets, sent);
      c.Add(kTxBytes, tx_bytes - sent * kOuterHeaderLen);  // GENEVE bytes, comparable with rx_bytes
    }
    if (tx_errors) c.Add(kTxErrors, tx_errors);
    if (dropped) {
      c.Add(kDroppedMalformed, dropped);
      for (int k = 0; k < kGeneveReasonCount; k++)
        if (malformed[k]) c.Add(kMalformedFirst + size_t(k), malformed[k]);
    }
    PaceReceive(size_t(got), batch);
  }
}

Napi::Value StartReflectorJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ReflectorOptions o;
  try {
    if (!info[0].IsObject()) throw OptionError{"startReflector expects an options object"};
    Napi::Object js = info[0].As<Napi::Object>();
    o.bind = OptionString(js, "bind");
    o.port = uint16_t(OptionNumber(js, "port", 0, 65535));
    o.threads = int(OptionNumber(js, "threads", 1, 16));
    o.rcvbuf = int(OptionNumber(js, "rcvbuf", 0, INT32_MAX));
    o.sndbuf = int(OptionNumber(js, "sndbuf", 0, INT32_MAX));
    o.batch = int(OptionNumber(js, "batch", 1, 1024));
    o.validate = OptionBool(js, "validate");
  } catch (const OptionError& e) {
    Napi::TypeError::New(env, e.message).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string error;
  std::shared_ptr<Reflector> r;
  try {
    r = Reflector::Start(o, &error);
  } catch (const std::bad_alloc&) {
    error = "out of memory for reflector buffers";
  }
  if (!r) {
    Napi::Error::New(env, "reflector: " + error).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  // The counters outlive the engine (JS may read totals after stop); the
  // engine lives as long as its stop function, and stops when collected.
  out.Set("counters", ExportCounters(env, r->counters().get(), r->counters()));
  out.Set("port", r->port());
  out.Set("stop", Napi::Function::New(
                      env,
                      [r](const Napi::CallbackInfo& ci) -> Napi::Value {
                        r->Stop();
                        return ci.Env().Undefined();
                      },
                      "stop"));
  return out;
}

}  // namespace

void InitReflector(Napi::Env env, Napi::Object exports) {
  exports.Set("startReflector", Napi::Function::New(env, StartReflectorJs, "startReflector"));
}

}  // namespace gatehouse
