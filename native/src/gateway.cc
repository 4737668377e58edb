// The lab's Gateway Load Balancer (see GatewayOptions in src/native/binding.ts).
//
//   TUN ──read──> TunLoop: flow key -> flow (cookie, source port)
//                          -> [IPv4|UDP bind:<flow port> -> target:port][GENEVE 40][inner]
//                          -> raw socket (sendmmsg)
//   bind:port ──recvmmsg──> UdpLoop: from target? GENEVE ok? cookie known?
//                          ENI + attachment ours? inner key = flow key? -> write to TUN
//
// Two threads share the flow table under one mutex. The TUN thread also
// expires idle flows and hands new/expired flow events to JavaScript in
// batches through a thread-safe function; no JavaScript runs per packet.
#include <arpa/inet.h>
#include <errno.h>
#include <napi.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "addon.h"
#include "checksum.h"
#include "counters.h"
#include "flow_key.h"
#include "gateway_flow_table.h"
#include "geneve.h"
#include "raw_sender.h"
#include "tun.h"
#include "udp_socket.h"

namespace gatehouse {

void InitFlowKeyBinding(Napi::Env env, Napi::Object exports);  // flow_key.cc

namespace {

// Same names, same order as GATEWAY_COUNTERS in src/native/gateway.ts.
enum Counter : size_t {
  kTunRxPackets,
  kTunRxBytes,
  kEncapTxPackets,
  kEncapTxBytes,
  kTxErrors,
  kUdpRxPackets,
  kUdpRxBytes,
  kTunTxPackets,
  kTunTxBytes,
  kFlowsActive,
  kFlowsCreated,
  kFlowsExpired,
  kDropUnparsableInner,
  kDropNotFromTarget,
  kDropUnknownFlow,
  kDropOptionMismatch,
  kDropTupleMismatch,
  kDropNotRouted,
  kDropWrongPort,
  kRxOverflow,
  kMalformedFirst,  // then one per GENEVE reason
};

std::vector<std::string> CounterNames() {
  std::vector<std::string> n = {
      "tun_rx_packets",
      "tun_rx_bytes",
      "encap_tx_packets",
      "encap_tx_bytes",
      "tx_errors",
      "udp_rx_packets",
      "udp_rx_bytes",
      "tun_tx_packets",
      "tun_tx_bytes",
      "flows_active",
      "flows_created",
      "flows_expired",
      "drop_unparsable_inner",
      "drop_not_from_target",
      "drop_unknown_flow",
      "drop_option_mismatch",
      "drop_tuple_mismatch",
      "drop_not_routed",
      "drop_wrong_port",
      "rx_overflow",
  };
  for (int i = 0; i < kGeneveReasonCount; i++) n.push_back(std::string("malformed_") + kGeneveReasonNames[i]);
  return n;
}

// Multicast destinations and unspecified sources never reach a GWLB endpoint.
static bool IsRoutedUnicast(const ParsedFlow& pf) {
  const bool v6 = pf.key.family == 6;
  if (v6) {
    static const uint8_t kUnspecified[16] = {};
    return pf.dst[0] != 0xff && memcmp(pf.src, kUnspecified, 16) != 0;
  }
  return (pf.dst[0] & 0xf0) != 0xe0 &&
         !(pf.dst[0] == 255 && pf.dst[1] == 255 && pf.dst[2] == 255 && pf.dst[3] == 255);
}

// GENEVE header as GWLB writes it: 8 fixed bytes, then class 0x0108 options
// type 1 (ENI, 8 bytes), type 2 (attachment, 8 bytes), type 3 (cookie, 4).
constexpr size_t kGeneveLen = 8 + (4 + 8) + (4 + 8) + (4 + 4);
static_assert(kGeneveLen == 40, "GWLB's GENEVE header is 40 bytes");
constexpr size_t kHeadroom = kOuterHeaderLen + kGeneveLen;
constexpr size_t kBatch = 64;
constexpr size_t kMaxPacket = 65535;
constexpr int kPollMs = 100;            // stop latency and event batching period
constexpr size_t kEventBatchMax = 256;  // events per JavaScript call

void StoreBe64(uint8_t* p, uint64_t v) {
  StoreBe32(p, uint32_t(v >> 32));
  StoreBe32(p + 4, uint32_t(v));
}

void WriteGeneve(uint8_t* g, uint16_t protocol, uint64_t eni, uint64_t attachment, uint32_t cookie) {
  g[0] = uint8_t((kGeneveLen - 8) / 4);  // version 0, Opt Len in words
  g[1] = 0;                              // O and C clear
  StoreBe16(g + 2, protocol);
  StoreBe32(g + 4, 0);  // VNI 0, reserved
  uint8_t* o = g + 8;
  auto option = [&o](uint8_t type, uint8_t words) {
    StoreBe16(o, kAwsOptionClass);
    o[2] = type;
    o[3] = words;
    o += 4;
  };
  option(1, 2);
  StoreBe64(o, eni);
  o += 8;
  option(2, 2);
  StoreBe64(o, attachment);
  o += 8;
  option(3, 1);
  StoreBe32(o, cookie);
}

struct GatewayConfig {
  std::string tun_name;
  std::string bind;
  in_addr bind_addr;
  in_addr target_addr;
  uint16_t port;
  uint64_t eni;
  uint64_t attachment;
  uint16_t source_port_low;
  uint16_t source_port_high;
  uint64_t flow_idle_ms;
};

class Gateway {
 public:
  explicit Gateway(GatewayConfig cfg)
      : cfg_(std::move(cfg)),
        counters_(CounterNames()),
        table_(cfg_.source_port_low, cfg_.source_port_high, cfg_.flow_idle_ms) {}

  // Normally Stop() ran long before; this covers an environment torn down
  // without it (process exit), where a joinable std::thread would abort.
  ~Gateway() {
    StopThreads();
    CloseFds();
  }

  // Opens the TUN queue, raw socket, UDP socket and stop eventfd.
  bool Open(std::string* error) {
    std::string actual;
    tun_fd_ = TunOpenQueue(cfg_.tun_name, &actual, error);
    if (tun_fd_ < 0) return false;
    // Up at once, so whoever waits for the interface to appear can route
    // into it straight away.
    if (!TunSetUp(actual, true, error)) return false;
    raw_fd_ = OpenRawIPv4Socket(0, error);
    if (raw_fd_ < 0) return false;
    UdpSocketOptions uo;
    uo.bind_address = cfg_.bind;
    uo.port = cfg_.port;
    udp_fd_ = OpenUdpSocket(uo, error);
    if (udp_fd_ < 0) return false;
    stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (stop_fd_ < 0) {
      *error = std::string("eventfd: ") + strerror(errno);
      return false;
    }
    return true;
  }

  // Starts both threads. `tsfn` delivers event batches; the gateway
  // releases it in Stop().
  void Start(Napi::ThreadSafeFunction tsfn) {
    tsfn_ = tsfn;
    tun_thread_ = std::thread([this] { TunLoop(); });
    udp_thread_ = std::thread([this] { UdpLoop(); });
  }

  // Joins the threads (the TUN thread sends its last events first), then
  // releases the thread-safe function so the event loop may exit.
  // Idempotent; JavaScript thread only.
  void Stop() {
    if (released_) return;
    released_ = true;
    StopThreads();
    CloseFds();
    tsfn_.Release();
  }

  CounterBlock* counters() { return &counters_; }

 private:
  void CloseFds() {
    for (int* fd : {&tun_fd_, &raw_fd_, &udp_fd_, &stop_fd_}) {
      if (*fd >= 0) close(*fd);
      *fd = -1;
    }
  }

  void StopThreads() {
    stopped_.store(true);
    const uint64_t one = 1;
    // Wakes both polls at once; should the write fail, they still see
    // stopped_ within one poll period.
    if (stop_fd_ >= 0 && write(stop_fd_, &one, sizeof one) < 0) stopped_.store(true);
    if (tun_thread_.joinable()) tun_thread_.join();
    if (udp_thread_.joinable()) udp_thread_.join();
  }

  bool Stopping() const { return stopped_.load(std::memory_order_relaxed); }

  // Waits for `fd` to be readable, the stop eventfd, or the poll period.
  // Returns false when the gateway is stopping.
  bool Wait(int fd, bool* readable) {
    pollfd p[2] = {{fd, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    const int r = poll(p, 2, kPollMs);
    *readable = r > 0 && (p[0].revents & POLLIN);
    return !(r > 0 && (p[1].revents & POLLIN)) && !Stopping();
  }

  void SendEvents(std::vector<GatewayFlowEvent>* pending) {
    if (pending->empty()) return;
    auto* batch = new std::vector<GatewayFlowEvent>(std::move(*pending));
    pending->clear();
    napi_status st = tsfn_.NonBlockingCall(
        batch, [](Napi::Env env, Napi::Function fn, std::vector<GatewayFlowEvent>* events) {
          std::unique_ptr<std::vector<GatewayFlowEvent>> owned(events);
          if (env == nullptr || fn.IsEmpty()) return;  // environment shutting down
          fn.Call({EventsToJs(env, *owned)});
        });
    if (st != napi_ok) delete batch;  // closing: nobody is listening any more
  }

  static Napi::Array EventsToJs(Napi::Env env, const std::vector<GatewayFlowEvent>& events) {
    Napi::Array arr = Napi::Array::New(env, events.size());
    for (size_t i = 0; i < events.size(); i++) {
      const GatewayFlow& f = events[i].flow;
      const int af = f.key.family == 4 ? AF_INET : AF_INET6;
      char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
      inet_ntop(af, f.src, src, sizeof src);
      inet_ntop(af, f.dst, dst, sizeof dst);
      Napi::Object e = Napi::Object::New(env);
      e.Set("type", events[i].expired ? "expired" : "new");
      e.Set("protocol", f.key.protocol);
      e.Set("src", src);
      e.Set("dst", dst);
      e.Set("srcPort", f.src_port);
      e.Set("dstPort", f.dst_port);
      e.Set("cookie", f.cookie);
      e.Set("sourcePort", f.source_port);
      e.Set("packets", double(f.packets));
      e.Set("bytes", double(f.bytes));
      arr.Set(uint32_t(i), e);
    }
    return arr;
  }

  void TunLoop() {
    const size_t slot_size = kHeadroom + kMaxPacket;
    std::vector<uint8_t> buf(kBatch * slot_size);
    size_t lens[kBatch];
    uint16_t sports[kBatch];
    uint32_t cookies[kBatch];
    SendBatch send(kBatch);
    auto tracker = std::make_unique<FragmentTracker>();
    std::vector<GatewayFlowEvent> pending;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr = cfg_.target_addr;
    uint16_t ip_id = 0;
    // Check for idle flows often enough for short lab idle times, at most
    // once a second.
    const uint64_t expiry_every = std::max<uint64_t>(10, std::min<uint64_t>(1000, cfg_.flow_idle_ms / 4));
    uint64_t next_expiry = MonotonicMs() + expiry_every;
    uint64_t last_events = MonotonicMs();

    bool readable = false;
    while (Wait(tun_fd_, &readable)) {
      size_t n = 0;
      while (readable && n < kBatch) {
        const ssize_t got = read(tun_fd_, &buf[n * slot_size + kHeadroom], kMaxPacket);
        if (got <= 0) break;  // EAGAIN: the queue is empty
        lens[n++] = size_t(got);
      }
      const uint64_t now = MonotonicMs();
      if (n > 0) {
        std::lock_guard<std::mutex> lock(mu_);
        for (size_t i = 0; i < n; i++) {
          // A GWLB endpoint is a route target: it only ever carries routed
          // unicast. The kernel's own multicast on the TUN (MLD reports from
          // ::, sent even with multicast off) is not traffic to emulate, and
          // is counted only in drop_not_routed.
          ParsedFlow pf;
          const bool fits = lens[i] <= kMaxPacket - kHeadroom;  // fits one outer IPv4 packet
          const bool parsed = fits && ParseFlowKey(&buf[i * slot_size + kHeadroom], lens[i], tracker.get(),
                                                   now, &pf) == FlowKeyReason::kOk;
          if (parsed && !IsRoutedUnicast(pf)) {
            counters_.Add(kDropNotRouted);
            lens[i] = 0;
            continue;
          }
          counters_.Add(kTunRxPackets);
          counters_.Add(kTunRxBytes, lens[i]);
          if (!fits || !parsed) {
            counters_.Add(fits ? kDropUnparsableInner : kTxErrors);
            lens[i] = 0;
            continue;
          }
          bool created = false;
          GatewayFlow* f = table_.FindOrCreate(pf, now, &created);
          f->last_seen_ms = now;
          f->packets++;
          f->bytes += lens[i];
          sports[i] = f->source_port;
          cookies[i] = f->cookie;
          if (created) {
            counters_.Add(kFlowsCreated);
            pending.push_back({false, *f});
          }
        }
        counters_.Set(kFlowsActive, table_.size());
      }
      // Headers are written outside the lock: each slot is this thread's own.
      uint64_t queued_bytes = 0;
      for (size_t i = 0; i < n; i++) {
        if (lens[i] == 0) continue;
        uint8_t* slot = &buf[i * slot_size];
        const uint8_t version = slot[kHeadroom] >> 4;
        WriteGeneve(slot + kOuterHeaderLen, version == 4 ? kEtherTypeIPv4 : kEtherTypeIPv6, cfg_.eni,
                    cfg_.attachment, cookies[i]);
        const size_t payload = kGeneveLen + lens[i];
        WriteIPv4UdpHeader(slot, ntohl(cfg_.bind_addr.s_addr), ntohl(cfg_.target_addr.s_addr), sports[i],
                           cfg_.port, payload, ip_id++);
        send.Add(slot, kOuterHeaderLen + payload, to);
        queued_bytes += kOuterHeaderLen + payload;
      }
      if (send.size() > 0) {
        const size_t queued = send.size();
        uint64_t errors = 0;
        const size_t sent = send.Flush(raw_fd_, &errors);
        counters_.Add(kEncapTxPackets, sent);
        // SendBatch does not say which datagram failed; when some did, the
        // byte count is prorated (exact whenever nothing failed).
        counters_.Add(kEncapTxBytes, sent == queued ? queued_bytes : queued_bytes * sent / queued);
        counters_.Add(kTxErrors, errors);
      }

      if (now >= next_expiry) {
        next_expiry = now + expiry_every;
        std::lock_guard<std::mutex> lock(mu_);
        const size_t before = pending.size();
        table_.ExpireIdle(now, &pending);
        counters_.Add(kFlowsExpired, pending.size() - before);
        counters_.Set(kFlowsActive, table_.size());
      }
      if (pending.size() >= kEventBatchMax || (!pending.empty() && now - last_events >= uint64_t(kPollMs))) {
        SendEvents(&pending);
        last_events = now;
      }
    }
    SendEvents(&pending);
  }

  void UdpLoop() {
    UdpBatch batch(kBatch, kMaxPacket);
    auto tracker = std::make_unique<FragmentTracker>();
    bool ok[kBatch];
    ParsedFlow parsed[kBatch];
    GeneveInfo infos[kBatch];
    bool readable = false;
    while (Wait(udp_fd_, &readable)) {
      if (!readable) continue;
      uint32_t overflow = 0;
      const int n = batch.Receive(udp_fd_, &overflow);
      if (overflow) counters_.Set(kRxOverflow, overflow);
      if (n <= 0) continue;
      const uint64_t now = MonotonicMs();
      // Checks that need no flow table first, outside the lock.
      for (int i = 0; i < n; i++) {
        ok[i] = false;
        counters_.Add(kUdpRxPackets);
        counters_.Add(kUdpRxBytes, batch.length(i));
        if (batch.from(i).sin_addr.s_addr != cfg_.target_addr.s_addr) {
          counters_.Add(kDropNotFromTarget);
          continue;
        }
        GeneveInfo& g = infos[i];
        const GeneveReason r = DecodeGeneve(batch.data(i), batch.length(i), &g);
        if (r != GeneveReason::kOk) {
          counters_.Add(kMalformedFirst + size_t(r));
          continue;
        }
        ok[i] = true;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (int i = 0; i < n; i++) {
          if (!ok[i]) continue;
          ok[i] = false;
          const GeneveInfo& g = infos[i];
          GatewayFlow* f = table_.FindByCookie(g.cookie);
          if (!f) {
            counters_.Add(kDropUnknownFlow);
            continue;
          }
          if (g.eni != cfg_.eni || g.attachment != cfg_.attachment) {
            counters_.Add(kDropOptionMismatch);
            continue;
          }
          // Targets mirror the outer ports: the reply comes from the port we
          // sent the flow from (and to our 6081, where it arrived).
          if (ntohs(batch.from(i).sin_port) != f->source_port) {
            counters_.Add(kDropWrongPort);
            continue;
          }
          if (ParseFlowKey(batch.data(i) + g.header_len, batch.length(i) - g.header_len, tracker.get(), now,
                           &parsed[i]) != FlowKeyReason::kOk) {
            counters_.Add(kDropUnparsableInner);
            continue;
          }
          if (parsed[i].key != f->key) {
            counters_.Add(kDropTupleMismatch);
            continue;
          }
          f->last_seen_ms = now;
          ok[i] = true;
        }
      }
      for (int i = 0; i < n; i++) {
        if (!ok[i]) continue;
        const size_t inner = batch.length(i) - infos[i].header_len;
        if (write(tun_fd_, batch.data(i) + infos[i].header_len, inner) == ssize_t(inner)) {
          counters_.Add(kTunTxPackets);
          counters_.Add(kTunTxBytes, inner);
        } else {
          counters_.Add(kTxErrors);
        }
      }
    }
  }

  GatewayConfig cfg_;
  CounterBlock counters_;
  std::mutex mu_;  // guards table_
  GatewayFlowTable table_;
  int tun_fd_ = -1, raw_fd_ = -1, udp_fd_ = -1, stop_fd_ = -1;
  std::atomic<bool> stopped_{false};  // tells the threads to finish
  bool released_ = false;             // Stop() ran (JavaScript thread only)
  Napi::ThreadSafeFunction tsfn_;
  std::thread tun_thread_, udp_thread_;
};

// ---- JavaScript binding: startGateway ----

Napi::Value Property(Napi::Object opts, const char* name) {
  Napi::Value v = opts.Get(name);
  if (v.IsUndefined()) throw Napi::TypeError::New(opts.Env(), std::string("startGateway: missing ") + name);
  return v;
}

std::string StringOpt(Napi::Object opts, const char* name) {
  Napi::Value v = Property(opts, name);
  if (!v.IsString())
    throw Napi::TypeError::New(opts.Env(), std::string("startGateway: ") + name + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

uint32_t UintOpt(Napi::Object opts, const char* name, uint32_t lo, uint32_t hi) {
  Napi::Value v = Property(opts, name);
  if (!v.IsNumber())
    throw Napi::TypeError::New(opts.Env(), std::string("startGateway: ") + name + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || d != double(uint64_t(d)))
    throw Napi::RangeError::New(opts.Env(), std::string("startGateway: ") + name + " out of range");
  return uint32_t(d);
}

uint64_t BigIntOpt(Napi::Object opts, const char* name) {
  Napi::Value v = Property(opts, name);
  if (!v.IsBigInt())
    throw Napi::TypeError::New(opts.Env(), std::string("startGateway: ") + name + " must be a bigint");
  bool lossless = false;
  const uint64_t u = v.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless)
    throw Napi::RangeError::New(opts.Env(), std::string("startGateway: ") + name + " must fit 64 bits");
  return u;
}

in_addr AddressOpt(Napi::Object opts, const char* name) {
  in_addr a{};
  if (!ParseIPv4(StringOpt(opts, name), &a))
    throw Napi::TypeError::New(opts.Env(), std::string("startGateway: ") + name + " must be an IPv4 address");
  return a;
}

// What the thread-safe function keeps alive and settles when it is gone.
struct TsfnFinalizerData {
  std::shared_ptr<Gateway> gateway;
  Napi::Promise::Deferred closed;
};

Napi::Value StartGateway(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject())
    throw Napi::TypeError::New(env, "startGateway: expected options");
  Napi::Object opts = info[0].As<Napi::Object>();
  GatewayConfig cfg;
  cfg.tun_name = StringOpt(opts, "tunName");
  cfg.bind = StringOpt(opts, "bind");
  cfg.bind_addr = AddressOpt(opts, "bind");
  cfg.target_addr = AddressOpt(opts, "target");
  cfg.port = uint16_t(UintOpt(opts, "port", 1, 65535));
  cfg.eni = BigIntOpt(opts, "eni");
  cfg.attachment = BigIntOpt(opts, "attachment");
  cfg.source_port_low = uint16_t(UintOpt(opts, "sourcePortLow", 1, 65535));
  cfg.source_port_high = uint16_t(UintOpt(opts, "sourcePortHigh", cfg.source_port_low, 65535));
  cfg.flow_idle_ms = UintOpt(opts, "flowIdleMs", 1, 0xffffffffu);
  Napi::Value cb = Property(opts, "onFlowEvents");
  if (!cb.IsFunction()) throw Napi::TypeError::New(env, "startGateway: onFlowEvents must be a function");

  auto gateway = std::make_shared<Gateway>(cfg);
  std::string error;
  if (!gateway->Open(&error)) throw Napi::Error::New(env, "gateway: " + error);

  auto* fin = new TsfnFinalizerData{gateway, Napi::Promise::Deferred::New(env)};
  Napi::Promise closed = fin->closed.Promise();
  Napi::ThreadSafeFunction tsfn = Napi::ThreadSafeFunction::New(
      env, cb.As<Napi::Function>(), "gatehouse.gateway.events", 0, 1, fin,
      [](Napi::Env env, TsfnFinalizerData* data, TsfnFinalizerData*) {
        std::unique_ptr<TsfnFinalizerData> owned(data);
        try {
          owned->closed.Resolve(env.Undefined());
        } catch (const Napi::Error&) {
          // The environment is being torn down: nobody awaits `closed` any more.
        }
      },
      fin);
  try {
    gateway->Start(tsfn);
  } catch (const std::exception& e) {  // std::thread could not start
    gateway->Stop();
    throw Napi::Error::New(env, std::string("gateway: starting threads: ") + e.what());
  }

  Napi::Object out = Napi::Object::New(env);
  out.Set("counters", ExportCounters(env, gateway->counters(), gateway));
  std::weak_ptr<Gateway> weak = gateway;
  out.Set("stop", Napi::Function::New(
                      env,
                      [weak](const Napi::CallbackInfo& ci) -> Napi::Value {
                        if (auto g = weak.lock()) g->Stop();
                        return ci.Env().Undefined();
                      },
                      "stop"));
  out.Set("closed", closed);
  return out;
}

}  // namespace

void InitGateway(Napi::Env env, Napi::Object exports) {
  exports.Set("startGateway", Napi::Function::New(env, StartGateway, "startGateway"));
  // The flow key parser has no engine of its own; its test export rides here.
  InitFlowKeyBinding(env, exports);
}

}  // namespace gatehouse
