// The emulator's load generator and checker: one sender thread that stamps
// and paces template packets out of one UDP socket per flow, one receiver
// thread that checks every reply (generator_checker.h). TypeScript builds the
// templates, validates the options and reads the counters and the latency
// histogram; nothing here calls JavaScript once running.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "addon.h"
#include "counters.h"
#include "generator_checker.h"
#include "reflector_support.h"
#include "udp_socket.h"

namespace gatehouse {

namespace {

std::vector<std::string> GeneratorCounterNames() {
  std::vector<std::string> n = {"sent",
                                "sent_bytes",
                                "sent_malformed",
                                "send_errors",
                                "received",
                                "received_bytes",
                                "valid",
                                "invalid_not_from_target",
                                "invalid_geneve",
                                "invalid_unknown_flow",
                                "invalid_header_mismatch",
                                "invalid_inner_mismatch",
                                "invalid_duplicate",
                                "rx_overflow",
                                "sender_done"};
  for (const char* r : kGeneveReasonNames) n.push_back(std::string("sent_malformed_") + r);
  for (const char* r : kGeneveReasonNames) n.push_back(std::string("returned_malformed_") + r);
  for (const char* r : kGeneveReasonNames) n.push_back(std::string("invalid_geneve_") + r);
  return n;
}

struct GeneratorOptions {
  std::string target, bind;
  uint16_t target_port, reply_port;
  std::vector<uint16_t> source_ports;
  std::vector<PacketTemplate> good, malformed;
  uint32_t malformed_per_million;
  uint64_t rate, count, duration_ms;
  size_t batch;
  bool ignore_ttl;
  int rcvbuf, sndbuf;
  uint64_t run_tag;
};

// Reads and checks one template; throws OptionError naming it.
PacketTemplate ReadTemplate(const Napi::Object& js, size_t index, size_t sockets, bool ignore_ttl) {
  const std::string name = "templates[" + std::to_string(index) + "]";
  PacketTemplate t;
  Napi::Value bytes = OptionValue(js, "bytes");
  if (!bytes.IsTypedArray() || bytes.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw OptionError{name + ".bytes must be a Uint8Array"};
  Napi::Uint8Array a = bytes.As<Napi::Uint8Array>();
  if (a.ElementLength() > kMaxDatagram) throw OptionError{name + ".bytes is longer than 9216 bytes"};
  t.bytes.assign(a.Data(), a.Data() + a.ElementLength());
  t.malformed_kind = int(OptionNumber(js, "malformedKind", -1, kGeneveReasonCount - 1));
  t.socket = size_t(OptionNumber(js, "socket", 0, double(sockets) - 1));
  if (t.malformed_kind >= 0) return t;

  GeneveInfo g;
  if (DecodeGeneve(t.bytes.data(), t.bytes.size(), &g) != GeneveReason::kOk)
    throw OptionError{name + " is a good template but not valid GWLB GENEVE"};
  t.header_len = g.header_len;
  const size_t len = t.bytes.size();
  auto offset = [&](const char* key, size_t width, bool optional) -> size_t {
    double d = OptionNumber(js, key, -1, double(len));
    if (d < 0) {
      if (optional) return kNoOffset;
      throw OptionError{name + "." + key + " is required for a good template"};
    }
    if (size_t(d) < t.header_len || size_t(d) + width > len)
      throw OptionError{name + "." + key + " is outside the inner packet"};
    return size_t(d);
  };
  t.stamp = offset("stampOffset", kStampLen, false);
  t.checksum = offset("checksumOffset", 2, true);
  t.ttl = offset("ttlOffset", 1, false);
  t.ip_checksum = offset("ipChecksumOffset", 2, true);

  const uint8_t* inner = t.bytes.data() + t.header_len;
  const uint8_t l4 = g.protocol == kEtherTypeIPv4 ? inner[9] : (len - t.header_len >= 40 ? inner[6] : 0);
  t.udp = l4 == IPPROTO_UDP;
  // An IPv4 UDP checksum of 0 means "none": it stays 0 when stamped.
  if (t.checksum != kNoOffset && t.udp && LoadBe16(t.bytes.data() + t.checksum) == 0) t.checksum = kNoOffset;
  // L4 checksum fields sit at even offsets of their header, so the stamp's
  // word alignment is the parity of its distance from the checksum.
  t.stamp_odd = t.checksum != kNoOffset && ((t.stamp - t.checksum) & 1);
  t.stamp_sum = StampSum(t.bytes.data() + t.stamp, t.stamp_odd);

  t.skips.push_back({t.stamp, t.stamp + kStampLen});
  if (t.checksum != kNoOffset) t.skips.push_back({t.checksum, t.checksum + 2});
  if (ignore_ttl) {
    t.skips.push_back({t.ttl, t.ttl + 1});
    if (t.ip_checksum != kNoOffset) t.skips.push_back({t.ip_checksum, t.ip_checksum + 2});
  }
  std::sort(t.skips.begin(), t.skips.end());
  std::vector<std::pair<size_t, size_t>> merged;
  for (const auto& s : t.skips) {
    if (!merged.empty() && s.first <= merged.back().second)
      merged.back().second = std::max(merged.back().second, s.second);
    else
      merged.push_back(s);
  }
  t.skips = std::move(merged);
  return t;
}

GeneratorOptions ReadOptions(const Napi::Object& js) {
  GeneratorOptions o;
  o.target = OptionString(js, "target");
  o.target_port = uint16_t(OptionNumber(js, "targetPort", 1, 65535));
  o.bind = OptionString(js, "bind");
  o.reply_port = uint16_t(OptionNumber(js, "replyPort", 0, 65535));
  Napi::Value ports = OptionValue(js, "sourcePorts");
  if (!ports.IsArray()) throw OptionError{"option sourcePorts must be an array"};
  Napi::Array pa = ports.As<Napi::Array>();
  if (pa.Length() < 1 || pa.Length() > 4096) throw OptionError{"option sourcePorts needs 1..4096 entries"};
  for (uint32_t i = 0; i < pa.Length(); i++) {
    Napi::Value v = pa.Get(i);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= 65535) || d != double(int(d)))
      throw OptionError{"option sourcePorts has a bad port"};
    o.source_ports.push_back(uint16_t(d));
  }
  o.ignore_ttl = OptionBool(js, "ignoreTtl");
  Napi::Value templates = OptionValue(js, "templates");
  if (!templates.IsArray()) throw OptionError{"option templates must be an array"};
  Napi::Array ta = templates.As<Napi::Array>();
  for (uint32_t i = 0; i < ta.Length(); i++) {
    Napi::Value v = ta.Get(i);
    if (!v.IsObject()) throw OptionError{"templates[" + std::to_string(i) + "] must be an object"};
    PacketTemplate t = ReadTemplate(v.As<Napi::Object>(), i, o.source_ports.size(), o.ignore_ttl);
    (t.malformed_kind < 0 ? o.good : o.malformed).push_back(std::move(t));
  }
  if (o.good.empty()) throw OptionError{"option templates needs at least one good template"};
  o.malformed_per_million = uint32_t(OptionNumber(js, "malformedPerMillion", 0, 1000000));
  if (o.malformed_per_million && o.malformed.empty())
    throw OptionError{"option malformedPerMillion needs at least one malformed template"};
  o.rate = uint64_t(OptionNumber(js, "rate", 0, 1e9));
  o.count = uint64_t(OptionNumber(js, "count", 0, 9007199254740991.0));
  o.duration_ms = uint64_t(OptionNumber(js, "durationMs", 0, 9007199254740991.0));
  o.batch = size_t(OptionNumber(js, "batch", 1, 1024));
  o.rcvbuf = int(OptionNumber(js, "rcvbuf", 0, INT32_MAX));
  o.sndbuf = int(OptionNumber(js, "sndbuf", 0, INT32_MAX));
  o.run_tag = OptionU64(js, "runTag");
  return o;
}

class Generator {
 public:
  static std::shared_ptr<Generator> Start(GeneratorOptions o, std::string* error);
  ~Generator() { Stop(); }

  void Stop();
  const std::shared_ptr<CounterBlock>& counters() const { return counters_; }
  const std::shared_ptr<LatencyHistogram>& latency() const { return latency_; }

 private:
  explicit Generator(GeneratorOptions o)
      : o_(std::move(o)),
        counters_(std::make_shared<CounterBlock>(GeneratorCounterNames())),
        latency_(std::make_shared<LatencyHistogram>()) {}
  void SendLoop();
  void ReceiveLoop();
  void CloseAll();
  uint64_t ExpectedPackets() const;

  const GeneratorOptions o_;
  std::shared_ptr<CounterBlock> counters_;
  std::shared_ptr<LatencyHistogram> latency_;
  std::vector<int> send_fds_;
  std::vector<uint16_t> send_ports_;  // what each sending socket is bound to
  int recv_fd_ = -1;
  sockaddr_in target_{};
  uint64_t start_ns_ = 0;
  // Good sequence numbers handed out so far, published before they are
  // sent (on loopback a reply can beat sendmmsg's return).
  std::atomic<uint64_t> next_seq_{0};
  std::unique_ptr<ReplyChecker> checker_;
  StopSignal stop_;
  std::thread sender_, receiver_;
  std::mutex stop_mutex_;
  bool stopped_ = false;
};

uint64_t Generator::ExpectedPackets() const {
  if (o_.count) return o_.count;
  if (o_.rate && o_.duration_ms)
    return uint64_t(std::min(double(o_.rate) * (double(o_.duration_ms) / 1000 + 1), 1e12));
  return 0;
}

std::shared_ptr<Generator> Generator::Start(GeneratorOptions o, std::string* error) {
  std::shared_ptr<Generator> g(new Generator(std::move(o)));
  const GeneratorOptions& opts = g->o_;
  if (!g->stop_.ok()) {
    *error = std::string("eventfd: ") + strerror(errno);
    return nullptr;
  }
  g->target_.sin_family = AF_INET;
  g->target_.sin_port = htons(opts.target_port);
  if (!ParseIPv4(opts.target, &g->target_.sin_addr)) {
    *error = "not an IPv4 address: " + opts.target;
    return nullptr;
  }
  UdpSocketOptions so;
  so.bind_address = opts.bind;
  so.port = opts.reply_port;
  so.rcvbuf = opts.rcvbuf;
  g->recv_fd_ = OpenUdpSocket(so, error);
  if (g->recv_fd_ < 0) return nullptr;
  for (uint16_t port : opts.source_ports) {
    so.port = port;
    so.rcvbuf = 0;
    so.sndbuf = opts.sndbuf;
    int fd = OpenUdpSocket(so, error);
    if (fd < 0) {
      g->CloseAll();
      return nullptr;
    }
    g->send_fds_.push_back(fd);
    // Connected: the kernel keeps the route instead of looking it up per
    // datagram. DF set, as GWLB sends. (A connected socket also hears ICMP
    // errors: a target that is not listening shows up as send_errors.)
    int pmtu = IP_PMTUDISC_DO;
    if (setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu) < 0 ||
        connect(fd, reinterpret_cast<const sockaddr*>(&g->target_), sizeof g->target_) < 0) {
      *error = std::string("connecting a generator socket to ") + opts.target + ": " + strerror(errno);
      g->CloseAll();
      return nullptr;
    }
    g->send_ports_.push_back(LocalPort(fd));
  }
  g->checker_ = std::make_unique<ReplyChecker>(&opts.good, &opts.malformed, &g->send_ports_,
                                               ntohl(g->target_.sin_addr.s_addr), opts.run_tag,
                                               g->ExpectedPackets(), g->latency_);
  g->start_ns_ = MonotonicNs();
  Generator* self = g.get();  // threads never own the engine: ~Generator joins them
  try {
    g->receiver_ = std::thread([self] { self->ReceiveLoop(); });
    g->sender_ = std::thread([self] { self->SendLoop(); });
  } catch (const std::system_error& e) {
    *error = std::string("starting a generator thread: ") + e.what();
    g->Stop();
    return nullptr;
  }
  return g;
}

void Generator::CloseAll() {
  for (int fd : send_fds_) close(fd);
  send_fds_.clear();
  if (recv_fd_ >= 0) close(recv_fd_);
  recv_fd_ = -1;
}

void Generator::Stop() {
  std::lock_guard<std::mutex> lock(stop_mutex_);
  if (stopped_) return;
  stopped_ = true;
  stop_.Raise();
  if (sender_.joinable()) sender_.join();
  if (receiver_.joinable()) receiver_.join();
  CloseAll();
}

void Generator::SendLoop() {
  NameThread("gh-gen-send");
  const size_t batch = o_.batch;
  size_t slot_len = 0;
  for (const PacketTemplate& t : o_.good) slot_len = std::max(slot_len, t.bytes.size());
  slot_len = (slot_len + 7) & ~size_t(7);
  std::vector<uint8_t> slots(batch * slot_len);
  // A batch is built in sequence order, then sent grouped by socket (one
  // sendmmsg per socket): per socket a linked list through `next`.
  std::vector<iovec> iov(batch);
  std::vector<size_t> next(batch), head(send_fds_.size(), kNoOffset), tail(send_fds_.size());
  std::vector<size_t> touched;
  touched.reserve(send_fds_.size());
  std::vector<mmsghdr> msgs(batch);
  std::vector<int> kind(batch);  // malformed kind per queued packet, -1 = good

  CounterBlock& c = *counters_;
  // Durations beyond a century are as good as none (and would overflow).
  const uint64_t end_ns = o_.duration_ms && o_.duration_ms < 3200000000000ull
                              ? start_ns_ + o_.duration_ms * 1000000ull
                              : UINT64_MAX;
  uint64_t issued = 0, seq = 0;
  uint32_t acc = 0;
  size_t malformed_next = 0;
  uint64_t sent_malformed[kGeneveReasonCount];

  while (!stop_.raised()) {
    uint64_t now = MonotonicNs();
    if (now >= end_ns || (o_.count && issued >= o_.count)) break;
    uint64_t n = batch;
    if (o_.count) n = std::min<uint64_t>(n, o_.count - issued);
    if (o_.rate) {
      // Token bucket without a bucket: packet k is due at start + k / rate.
      const uint64_t due = uint64_t((unsigned __int128)(now - start_ns_) * o_.rate / 1000000000u) + 1;
      if (due <= issued) {
        uint64_t at = start_ns_ + uint64_t((unsigned __int128)issued * 1000000000u / o_.rate);
        at = std::min<uint64_t>({at, now + 10000000ull, end_ns});  // stay responsive to stop()
        timespec ts{time_t(at / 1000000000u), long(at % 1000000000u)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
        continue;
      }
      n = std::min(n, due - issued);
    }

    for (size_t i = 0; i < n; i++) {
      acc += o_.malformed_per_million;
      size_t s;
      if (acc >= 1000000) {  // spreads malformed packets evenly, deterministically
        acc -= 1000000;
        const PacketTemplate& m = o_.malformed[malformed_next++ % o_.malformed.size()];
        iov[i] = {const_cast<uint8_t*>(m.bytes.data()), m.bytes.size()};
        kind[i] = m.malformed_kind;
        s = m.socket;
      } else {
        const PacketTemplate& t = o_.good[seq % o_.good.size()];
        uint8_t* p = &slots[i * slot_len];
        memcpy(p, t.bytes.data(), t.bytes.size());
        StampPacket(p, t, o_.run_tag, seq, now);
        seq++;
        iov[i] = {p, t.bytes.size()};
        kind[i] = -1;
        s = t.socket;
      }
      next[i] = kNoOffset;
      if (head[s] == kNoOffset) {
        head[s] = i;
        touched.push_back(s);
      } else {
        next[tail[s]] = i;
      }
      tail[s] = i;
    }
    next_seq_.store(seq, std::memory_order_release);

    uint64_t bytes = 0, errors = 0, sent = 0, malformed = 0;
    std::fill(std::begin(sent_malformed), std::end(sent_malformed), 0);
    for (size_t s : touched) {
      size_t m = 0, first = 0;
      for (size_t i = head[s]; i != kNoOffset; i = next[i], m++) {
        msghdr& h = msgs[m].msg_hdr;
        h = {};
        h.msg_iov = &iov[i];
        h.msg_iovlen = 1;
      }
      sent += SendAll(send_fds_[s], msgs.data(), m, stop_, &bytes, &errors);
      for (size_t i = head[s]; i != kNoOffset; i = next[i], first++) {
        if (kind[i] >= 0 && msgs[first].msg_len != kNotSent) {
          sent_malformed[kind[i]]++;
          malformed++;
        }
      }
      head[s] = kNoOffset;
    }
    touched.clear();
    issued += n;

    c.Add(kGenSent, sent);
    c.Add(kGenSentBytes, bytes);
    if (errors) c.Add(kGenSendErrors, errors);
    if (malformed) {
      c.Add(kGenSentMalformed, malformed);
      for (int k = 0; k < kGeneveReasonCount; k++)
        if (sent_malformed[k]) c.Add(kGenSentMalformedFirst + size_t(k), sent_malformed[k]);
    }
  }
  c.Set(kGenSenderDone, 1);
}

void Generator::ReceiveLoop() {
  NameThread("gh-gen-recv");
  TightenTimerSlack();
  // One byte more than the longest template: a longer reply shows as longer.
  UdpBatch rx(o_.batch, kMaxDatagram + 1);
  CounterBlock& c = *counters_;
  uint64_t delta[kGenCounterCount] = {};
  uint32_t drops_seen = 0;
  while (!stop_.raised()) {
    uint32_t drops = drops_seen;
    const int n = rx.Receive(recv_fd_, &drops);
    if (n == 0) {
      stop_.WaitReadable(recv_fd_);
      continue;
    }
    if (drops != drops_seen) {
      c.Add(kGenRxOverflow, uint32_t(drops - drops_seen));
      drops_seen = drops;
    }
    const uint64_t now = MonotonicNs();
    const uint64_t sent_seqs = next_seq_.load(std::memory_order_acquire);
    uint64_t bytes = 0;
    for (int i = 0; i < n; i++) {
      bytes += rx.length(i);
      ReplyChecker::Verdict v =
          checker_->Check(rx.data(i), rx.length(i), rx.from(i), now, sent_seqs, start_ns_);
      delta[v.counter]++;
      if (v.extra != kNoOffset) delta[v.extra]++;
    }
    c.Add(kGenReceived, uint64_t(n));
    c.Add(kGenReceivedBytes, bytes);
    for (size_t k = 0; k < kGenCounterCount; k++) {
      if (delta[k]) {
        c.Add(k, delta[k]);
        delta[k] = 0;
      }
    }
    PaceReceive(size_t(n), o_.batch);
  }
}

// A BigUint64Array over native memory that `owner` keeps alive.
template <typename Owner>
Napi::BigUint64Array ExportU64(Napi::Env env, std::atomic<uint64_t>* data, size_t n,
                               std::shared_ptr<Owner> owner) {
  auto* keep = new std::shared_ptr<Owner>(std::move(owner));
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
      env, data, n * 8, [](Napi::Env, void*, std::shared_ptr<Owner>* k) { delete k; }, keep);
  return Napi::BigUint64Array::New(env, n, ab, 0);
}

Napi::Value StartGeneratorJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  GeneratorOptions o;
  try {
    if (!info[0].IsObject()) throw OptionError{"startGenerator expects an options object"};
    o = ReadOptions(info[0].As<Napi::Object>());
  } catch (const OptionError& e) {
    Napi::TypeError::New(env, e.message).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string error;
  std::shared_ptr<Generator> g;
  try {
    g = Generator::Start(std::move(o), &error);
  } catch (const std::bad_alloc&) {
    error = "out of memory for generator buffers";
  }
  if (!g) {
    Napi::Error::New(env, "generator: " + error).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  // Counters and histogram outlive the engine (JS reads totals after stop);
  // the engine lives as long as its stop function, and stops when collected.
  out.Set("counters", ExportCounters(env, g->counters().get(), g->counters()));
  out.Set("latency", ExportU64(env, g->latency()->buckets.get(), kLatencyBuckets, g->latency()));
  out.Set("latencyMax", ExportU64(env, g->latency()->max.get(), 1, g->latency()));
  out.Set("stop", Napi::Function::New(
                      env,
                      [g](const Napi::CallbackInfo& ci) -> Napi::Value {
                        g->Stop();
                        return ci.Env().Undefined();
                      },
                      "stop"));
  return out;
}

}  // namespace

void InitGenerator(Napi::Env env, Napi::Object exports) {
  exports.Set("startGenerator", Napi::Function::New(env, StartGeneratorJs, "startGenerator"));
}

}  // namespace gatehouse
