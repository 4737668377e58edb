// The byte mover of `gatehouse proxy` (the contract: NativeHttpRelay in
// src/native/binding.ts, wrapped by src/native/http-relay.ts).
//
//   client ──accept──> [PROXY header] -> request head ──event──> TypeScript
//   TypeScript decides per request (policy, SSRF check, the head to send)
//   and answers with one command: respond (its own reply), forward (to a
//   checked address, a pooled keep-alive connection when one is idle) or
//   tunnel (CONNECT). The upstream's response head goes up as an event too,
//   and TypeScript answers with the head for the client and the body's
//   framing. Bodies, tunnels and the fronting hold are moved here.
//
// Everything runs on the JavaScript thread: one epoll set of our own is
// watched by libuv as a single fd, so a wake-up drains every ready socket
// with no thread hop, and the events of one wake-up reach JavaScript in one
// call. Sockets are edge-triggered and registered once (no epoll_ctl per
// state change): `rd_ready` / `wr_blocked` remember what epoll last said.
// Nothing here knows a rule: only where heads and bodies end (http_scan.h)
// and, for a kept route, how to repeat the head rewrite TypeScript did for
// the connection's previous request (http_route.h): a plain GET or HEAD
// that repeats the last decided method and target prefix goes upstream
// without a round trip to TypeScript, which hears of it afterwards (the
// ROUTED and ANSWERED events) to log it. The ingress's kept routes do the
// same for its requests (target rewrite and SigV4 signature included).
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <napi.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "addon.h"
#include "http_route.h"
#include "http_scan.h"

namespace gatehouse {

namespace {

constexpr size_t kReadChunk = 64 * 1024;
// A side stops reading once this much waits for the other side: the
// back-pressure bound per direction of each connection.
constexpr size_t kHighWater = 256 * 1024;
// The ClientHello held for the fronting check can be at most this large.
constexpr size_t kFrontingMax = 64 * 1024;
constexpr int kEpollBatch = 256;
// Rounds of read-advance-write per connection per turn of the loop.
constexpr int kStepRounds = 64;

double RealtimeMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) * 1000 + static_cast<double>(ts.tv_nsec / 1000000);
}

// Milliseconds with a fraction, for durations logged to 0.1 ms.
double MonotonicMsFine() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1000 + static_cast<double>(ts.tv_nsec) / 1e6;
}

int64_t MonotonicMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Bytes waiting to be parsed or written: appended at the back, consumed at
// the front, compacted only when the consumed part dominates.
class ByteQueue {
 public:
  size_t size() const { return buf_.size() - off_; }
  bool empty() const { return size() == 0; }
  const char* data() const { return buf_.data() + off_; }
  void Append(const char* p, size_t n) {
    if (off_ > 0 && off_ == buf_.size()) Clear();
    buf_.append(p, n);
  }
  void Consume(size_t n) {
    off_ += n;
    if (off_ >= buf_.size()) {
      Clear();
    } else if (off_ > 64 * 1024 && off_ * 2 > buf_.size()) {
      buf_.erase(0, off_);
      off_ = 0;
    }
  }
  void Clear() {
    buf_.clear();
    off_ = 0;
  }

 private:
  std::string buf_;
  size_t off_ = 0;
};

// Same values as RELAY_EVENT in src/native/http-relay.ts.
enum EventKind : int {
  kEvOpen = 0,         // id, peer address, peer port, PROXY header bytes or null
  kEvRequest = 1,      // id, request head bytes
  kEvResponse = 2,     // id, upstream response head bytes, connect ms
  kEvConnected = 3,    // id, connect ms (a tunnel's upstream is connected; 200 sent)
  kEvFronting = 4,     // id, the client's first tunnel bytes, timed out?
  kEvDone = 5,         // id, outcome, errno, bytes from client, bytes to client
  kEvClientError = 6,  // id, kind, peer address, peer port
  kEvClosed = 7,       // id, bytes from client, bytes to client
  // A kept route's exchange is reported once it ends, in one event
  // (ROUTED_DONE), so a repeated request costs no call into JavaScript when
  // it arrives. Should it need TypeScript first (a 1xx or an answer not
  // plain, a failure, an abort), ROUTED and, when its head went out,
  // ANSWERED come first, then the usual RESPONSE or DONE.
  kEvRouted = 8,         // id, client keep-alive?, started (epoch ms), origin-form path
  kEvAnswered = 9,       // id, status, connect ms, Content-Type or none
  kEvRoutedDone = 10,    // id, status, connect ms, bytes in/out, started, took ms, head ms; [path, type]
  kEvAnsweredDone = 11,  // id, status, connect ms, bytes in/out, took ms, head ms (since forward); type
};

// Same values as RELAY_OUTCOME in src/native/http-relay.ts.
enum Outcome : int {
  kComplete = 0,
  kUpstreamFailed = 1,   // before an answer: TypeScript answers (502)
  kUpstreamTimeout = 2,  // before an answer: TypeScript answers (504)
  kAborted = 3,          // after the answer's head: the client connection is closed
  kClientGone = 4,
  kBadUpstreamHead = 5,  // head too large: TypeScript answers (502)
  kBadRequestBody = 6,   // malformed chunked upload: both closed
  kBadUpstreamBody = 7,  // malformed chunked answer after its head: the client connection is closed
};

// Same values as RELAY_CLIENT_ERROR in src/native/http-relay.ts.
enum ClientErrorKind : int {
  kHeadTooLarge = 0,
  kHeadTimeout = 1,
  kBadProxyHeader = 2,
  kProxyHeaderTimeout = 3
};

// Same values as RELAY_BODY in src/native/http-relay.ts.
enum BodyKind : int {
  kBodyNone = 0,
  kBodyLength = 1,
  kBodyChunked = 2,         // passed through as it is
  kBodyClose = 3,           // until the upstream closes; so is the client after it
  kBodyCloseToChunked = 4,  // until the upstream closes, chunked for a keep-alive client
  kBodyDechunk = 5,         // chunked upstream, chunk data only (HTTP/1.0 client; closed after)
  kBodyInformational = 6,   // a 1xx head: the final one follows
};

// Numbers go up in a Float64Array shared with TypeScript (kSlotsPerEvent
// per event), bytes in one array of payloads per batch: no JavaScript
// object per event beyond its payload.
enum Payload : uint8_t { kNoPayload, kLatin1, kBytes, kPeerAndBytes, kPeerOnly, kPathAndType };
struct Event {
  int kind;
  uint32_t id;
  double n[7];
  Payload payload;
  std::string bytes;
  std::string text;
  bool payload_flag = false;  // kPathAndType: `text` holds a Content-Type
};
constexpr size_t kSlotsPerEvent = 9;

// forward()'s flags.
constexpr int kAnswerHere = 1;       // rewrite a plain answer here (RewriteRoutedResponse, no Via)
constexpr int kClientKeepAlive = 2;  // the client asked to keep the connection (HTTP/1.1)
constexpr int kHeadRequest = 4;      // the request is a HEAD: its answer has no body
constexpr size_t kMaxBatch = 1024;

struct Client;

struct Sock {
  enum Kind : uint8_t { kListener, kClient, kUpstream };
  explicit Sock(Kind k) : kind(k) {}
  Kind kind;
  int fd = -1;
  bool rd_ready = false;    // epoll said readable; no EAGAIN seen since
  bool rd_hangup = false;   // the peer's FIN is queued: read until 0
  bool wr_blocked = false;  // a write fell short; wait for EPOLLOUT
  bool eof = false;
  bool failed = false;
  bool shut_wr = false;
  bool dead = false;
  int error = 0;
  uint64_t bytes_read = 0;
  ByteQueue in, out;
};

struct Upstream : Sock {
  Upstream() : Sock(kUpstream) {}
  std::string key;
  Client* client = nullptr;  // null while idle in the pool
  bool connecting = false;
  bool reused = false;
  bool got_bytes = false;
  // Failed at the relay's connect deadline (ETIMEDOUT); a kernel ETIMEDOUT
  // on a connected socket (retransmissions given up) is an upstream failure.
  bool connect_timed_out = false;
  int64_t connect_started = 0;
  int64_t connect_ms = 0;
  int64_t idle_deadline = 0;
};

enum class State : uint8_t { kPrologue, kHead, kDecide, kExchange, kTunnel, kClosing };
enum class Phase : uint8_t { kAwaitHead, kAwaitAnswer, kBody };

struct Client : Sock {
  Client() : Sock(kClient) {}
  uint32_t id = 0;
  std::string peer;
  int peer_port = 0;
  State state = State::kHead;
  int64_t deadline = 0;
  bool head_started = false;
  size_t scan_from = 0;
  uint64_t queued_out = 0;  // bytes handed to `out` (what a log counts as sent)
  uint64_t mark_in = 0, mark_out = 0;
  Upstream* up = nullptr;
  // The exchange in progress (state kExchange).
  std::string target_ip;
  int target_port = 0;
  std::string req_head;  // kept for the one retry on a stale pooled connection
  bool retryable = false, retried = false;
  bool req_done = true, req_chunked = false;
  uint64_t req_left = 0;
  ChunkScanner req_chunks;
  Phase phase = Phase::kAwaitHead;
  int64_t exchange_idle_ms = 0;  // no byte either way for this long ends the exchange
  int body = kBodyNone;
  uint64_t resp_left = 0;
  ChunkScanner resp_chunks;
  bool keep_alive = false, reusable = false;
  // The kept route, and whether the exchange in progress went on it (then
  // a plain answer is rewritten here too).
  KeptRoute route;
  bool routed = false, client_keep_alive = false;
  // A decided exchange whose plain answer is rewritten here too (forward's
  // kAnswerHere): TypeScript hears one ANSWERED_DONE at its end (ANSWERED
  // then DONE or CLOSED if it ends otherwise), no RESPONSE.
  bool answer_here = false, head_request = false;
  bool answer_reported = false;              // ANSWERED went up (the exchange did not end plainly)
  double forwarded_at = 0, answered_at = 0;  // MonotonicMsFine: forward(), the answer's head
  bool routed_reported = false;              // TypeScript has heard of it (ROUTED): it has the exchange
  bool routed_answered = false;              // its answer's head went out (rewritten here)
  double routed_at = 0;                      // when its head arrived (epoch ms, for the log)
  int64_t routed_mono = 0;                   // the same moment on the monotonic clock (for its duration)
  std::string routed_path, routed_type;
  bool routed_has_type = false;
  int routed_status = 0;
  double routed_connect_ms = 0;
  // The tunnel (state kTunnel).
  std::string established;
  bool tunnel_open = false, fronting = false;
  size_t fronting_reported = 0;
};

// Parses an IP literal and port into a sockaddr; false when it is not one.
bool ToSockaddr(const std::string& ip, int port, sockaddr_storage* ss, socklen_t* len) {
  memset(ss, 0, sizeof(*ss));
  auto* v4 = reinterpret_cast<sockaddr_in*>(ss);
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

std::string PeerText(const sockaddr_storage& ss, int* port) {
  char text[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) {
    auto* v4 = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
    *port = ntohs(v4->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* v6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
    *port = ntohs(v6->sin6_port);
  }
  return text;
}

class HttpRelay : public Napi::ObjectWrap<HttpRelay> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit HttpRelay(const Napi::CallbackInfo& info);
  ~HttpRelay() override { Shutdown(); }

 private:
  // Commands from TypeScript.
  Napi::Value Listen(const Napi::CallbackInfo& info);
  void StopListening(const Napi::CallbackInfo& info);
  Napi::Value Respond(const Napi::CallbackInfo& info);
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value Answer(const Napi::CallbackInfo& info);
  Napi::Value Tunnel(const Napi::CallbackInfo& info);
  Napi::Value AllowTunnel(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Detach(const Napi::CallbackInfo& info);
  Napi::Value KeepRoute(const Napi::CallbackInfo& info);
  Napi::Value KeepExact(const Napi::CallbackInfo& info);
  Napi::Value KeepIngress(const Napi::CallbackInfo& info);
  void ForgetRoutes(const Napi::CallbackInfo& info);
  void CloseIdle(const Napi::CallbackInfo& info);
  void Destroy(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);

  // The loop.
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnTimer(uv_timer_t* handle);
  static void OnIdle(uv_idle_t* handle);
  static void OnReportTimer(uv_timer_t* handle);
  void DrainEpoll();
  void Sweep();
  void Accept(Sock* listener);
  void OnSocketEvent(Sock* s, uint32_t events);
  void Step(Client* c);
  bool Advance(Client* c);
  bool AdvanceHead(Client* c);
  bool AdvanceExchange(Client* c);
  bool RelayResponseBody(Client* c);
  bool AdvanceTunnel(Client* c);
  bool ReadSome(Sock* s, size_t limit);
  bool Flush(Sock* s);
  bool WantsRead(const Client* c) const;
  bool UpstreamWantsRead(const Client* c) const;

  // Transitions.
  void EnterHead(Client* c);
  void EnterClosing(Client* c);
  void BeginExchange(Client* c, std::string* head, double body, bool retryable, int64_t idle_ms);
  void ApplyAnswer(Client* c, const std::string& head, int body, uint64_t length, bool keep_alive,
                   bool reusable);
  bool RouteRequest(Client* c, size_t end);
  void ReportRouted(Client* c);
  void EmitAnswered(Client* c);
  void ReportAnswer(Client* c);
  bool AnswerRouted(Client* c, size_t end);
  void StartUpstream(Client* c, bool allow_pooled);
  void FailBeforeAnswer(Client* c, int outcome, int err);
  void AbortAfterAnswer(Client* c, int outcome, int err);
  void FinishExchange(Client* c);
  void EndTunnel(Client* c);
  void CloseClient(Client* c);
  void CloseUpstream(Upstream* u);
  void ReleaseUpstream(Client* c, bool to_pool);
  void ClosePool();

  // The live connection info[0] names (null when gone); Find also wants it in state a or b.
  Client* Live(const Napi::CallbackInfo& info);
  Client* Find(const Napi::CallbackInfo& info, State a, State b);
  void Keep(Client* c, KeptRoute r, int64_t lifetime_ms);
  void Emit(int kind, uint32_t id, double a = 0, double b = 0, double c = 0, double d = 0);
  void EmitBytes(int kind, uint32_t id, const char* p, size_t n, double a = 0, double b = 0);
  void ClientError(Client* c, int kind);
  void Deliver();
  void DeliverOrDefer();
  bool OnlyReportsPending();
  void FreeGraveyard();
  Napi::Value PayloadValue(Napi::Env env, const Event& e);
  Napi::Value EventSlots(const Napi::CallbackInfo& info);
  void ScheduleDelivery();
  void ScheduleLeftovers();
  void Shutdown();
  void Register(Sock* s, uint32_t events);
  std::pair<double, double> TakeBytes(Client* c);

  // Options (checked in TypeScript).
  size_t max_head_ = 16 * 1024;
  size_t max_response_head_ = 16 * 1024;
  bool proxy_protocol_ = false;
  int64_t header_timeout_ms_ = 30000, idle_timeout_ms_ = 60000, connect_timeout_ms_ = 10000;
  int64_t pool_idle_ms_ = 50000, fronting_timeout_ms_ = 10000;
  int tick_ms_ = 250;
  int report_delay_ms_ = 0;

  Napi::FunctionReference on_events_;
  Napi::Reference<Napi::Float64Array> slots_ref_;
  double* slots_ = nullptr;
  std::unique_ptr<Napi::AsyncContext> async_;
  napi_env env_ = nullptr;
  int epfd_ = -1;
  uv_poll_t* poll_ = nullptr;
  uv_timer_t* timer_ = nullptr;
  uv_idle_t* idle_ = nullptr;
  uv_timer_t* report_timer_ = nullptr;  // delivers reports that waited (DeliverOrDefer)
  bool idle_active_ = false;
  bool delivering_ = false;
  bool in_callback_ = false;  // inside OnPoll/OnTimer: Deliver runs at their end anyway
  bool closing_ = false;
  bool shut_down_ = false;
  uint32_t route_generation_ = 1;  // bumped by forgetRoutes(): every kept route is stale
  bool resting_ = false;           // the listeners wait for the next sweep (out of descriptors)
  int64_t now_ = 0;
  uint32_t next_id_ = 1;
  std::vector<Sock*> listeners_;
  std::unordered_map<uint32_t, Client*> clients_;
  std::unordered_map<std::string, std::vector<Upstream*>> pool_;
  size_t pooled_ = 0;
  std::vector<Sock*> graveyard_;  // freed after the current wake-up: epoll may still name them
  std::vector<uint32_t> again_;   // connections whose Step ran out of rounds: run again next turn
  std::vector<Event> events_;
  size_t scanned_reports_ = 0;  // events_[0, this) are all ROUTED_DONE (OnlyReportsPending)
  double closed_in_ = 0, closed_out_ = 0;
  char scratch_[kReadChunk];
};

Napi::Function HttpRelay::Define(Napi::Env env) {
  return DefineClass(env, "HttpRelay",
                     {
                         InstanceMethod("listen", &HttpRelay::Listen),
                         InstanceMethod("stopListening", &HttpRelay::StopListening),
                         InstanceMethod("respond", &HttpRelay::Respond),
                         InstanceMethod("forward", &HttpRelay::Forward),
                         InstanceMethod("answer", &HttpRelay::Answer),
                         InstanceMethod("tunnel", &HttpRelay::Tunnel),
                         InstanceMethod("allowTunnel", &HttpRelay::AllowTunnel),
                         InstanceMethod("close", &HttpRelay::Close),
                         InstanceMethod("detach", &HttpRelay::Detach),
                         InstanceMethod("keepRoute", &HttpRelay::KeepRoute),
                         InstanceMethod("keepExact", &HttpRelay::KeepExact),
                         InstanceMethod("keepIngress", &HttpRelay::KeepIngress),
                         InstanceMethod("forgetRoutes", &HttpRelay::ForgetRoutes),
                         InstanceMethod("closeIdle", &HttpRelay::CloseIdle),
                         InstanceMethod("destroy", &HttpRelay::Destroy),
                         InstanceMethod("stats", &HttpRelay::Stats),
                         InstanceMethod("eventSlots", &HttpRelay::EventSlots),
                     });
}

// A head or reply from TypeScript: a one-byte string (its char codes are
// the bytes), copied out without a Buffer in between.
std::string Latin1(const Napi::Value& v) {
  size_t len = 0;
  napi_get_value_string_latin1(v.Env(), v, nullptr, 0, &len);
  std::string out(len + 1, '\0');
  napi_get_value_string_latin1(v.Env(), v, &out[0], len + 1, &len);
  out.resize(len);
  return out;
}

int64_t OptionMs(const Napi::Object& o, const char* name) {
  return o.Get(name).As<Napi::Number>().Int64Value();
}

HttpRelay::HttpRelay(const Napi::CallbackInfo& info) : Napi::ObjectWrap<HttpRelay>(info) {
  Napi::Env env = info.Env();
  Napi::Object o = info[0].As<Napi::Object>();
  max_head_ = static_cast<size_t>(OptionMs(o, "maxHeadBytes"));
  max_response_head_ = static_cast<size_t>(OptionMs(o, "maxResponseHeadBytes"));
  proxy_protocol_ = o.Get("proxyProtocol").As<Napi::Boolean>().Value();
  header_timeout_ms_ = OptionMs(o, "headerTimeoutMs");
  idle_timeout_ms_ = OptionMs(o, "idleTimeoutMs");
  connect_timeout_ms_ = OptionMs(o, "connectTimeoutMs");
  pool_idle_ms_ = OptionMs(o, "poolIdleMs");
  fronting_timeout_ms_ = OptionMs(o, "frontingTimeoutMs");
  tick_ms_ = static_cast<int>(OptionMs(o, "tickMs"));
  report_delay_ms_ = static_cast<int>(OptionMs(o, "reportDelayMs"));
  on_events_ = Napi::Persistent(info[1].As<Napi::Function>());
  Napi::Float64Array slots = Napi::Float64Array::New(env, kMaxBatch * kSlotsPerEvent);
  slots_ = slots.Data();
  slots_ref_ = Napi::Persistent(slots);
  async_ = std::make_unique<Napi::AsyncContext>(env, "gatehouse:http-relay");
  env_ = env;

  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw Napi::Error::New(env, std::string("epoll_create1: ") + strerror(errno));
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  // The handles outlive this object until libuv's close callbacks run.
  poll_ = new uv_poll_t;
  poll_->data = this;
  uv_poll_init(loop, poll_, epfd_);
  uv_poll_start(poll_, UV_READABLE, OnPoll);
  timer_ = new uv_timer_t;
  timer_->data = this;
  uv_timer_init(loop, timer_);
  uv_timer_start(timer_, OnTimer, tick_ms_, tick_ms_);
  uv_unref(reinterpret_cast<uv_handle_t*>(timer_));
  idle_ = new uv_idle_t;
  idle_->data = this;
  uv_idle_init(loop, idle_);
  report_timer_ = new uv_timer_t;
  report_timer_->data = this;
  uv_timer_init(loop, report_timer_);
  uv_unref(reinterpret_cast<uv_handle_t*>(report_timer_));
  now_ = MonotonicMs();
}

void HttpRelay::Register(Sock* s, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = s;
  epoll_ctl(epfd_, EPOLL_CTL_ADD, s->fd, &ev);
}

// listen(ip, port) -> the bound port. IPv6 sockets are IPv6-only so that
// [::] and 0.0.0.0 can both be asked for on one port.
Napi::Value HttpRelay::Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ip = info[0].As<Napi::String>().Utf8Value();
  int port = info[1].As<Napi::Number>().Int32Value();
  sockaddr_storage ss;
  socklen_t len;
  if (!ToSockaddr(ip, port, &ss, &len)) throw Napi::Error::New(env, "EINVAL");
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Napi::Error::New(env, std::to_string(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) < 0 || listen(fd, 511) < 0) {
    int err = errno;
    close(fd);
    Napi::Error e = Napi::Error::New(env, strerror(err));
    e.Set("errno", Napi::Number::New(env, err));
    throw e;
  }
  sockaddr_storage bound;
  socklen_t blen = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  int bound_port = 0;
  PeerText(bound, &bound_port);
  auto* s = new Sock(Sock::kListener);
  s->fd = fd;
  listeners_.push_back(s);
  Register(s, EPOLLIN);
  return Napi::Number::New(env, bound_port);
}

void HttpRelay::StopListening(const Napi::CallbackInfo&) {
  for (Sock* s : listeners_) {
    close(s->fd);
    s->dead = true;
    graveyard_.push_back(s);
  }
  listeners_.clear();
  ScheduleDelivery();  // frees the graveyard on the next turn
}

void HttpRelay::OnPoll(uv_poll_t* handle, int status, int) {
  auto* self = static_cast<HttpRelay*>(handle->data);
  if (self == nullptr) return;
  self->now_ = MonotonicMs();
  self->in_callback_ = true;
  self->DrainEpoll();
  self->in_callback_ = false;
  self->DeliverOrDefer();
  self->ScheduleLeftovers();
}

void HttpRelay::OnTimer(uv_timer_t* handle) {
  auto* self = static_cast<HttpRelay*>(handle->data);
  if (self == nullptr) return;
  self->now_ = MonotonicMs();
  self->in_callback_ = true;
  self->Sweep();
  self->in_callback_ = false;
  self->Deliver();
  self->ScheduleLeftovers();
}

void HttpRelay::OnReportTimer(uv_timer_t* handle) {
  auto* self = static_cast<HttpRelay*>(handle->data);
  if (self == nullptr) return;
  self->Deliver();
  self->ScheduleLeftovers();
}

void HttpRelay::OnIdle(uv_idle_t* handle) {
  auto* self = static_cast<HttpRelay*>(handle->data);
  if (self == nullptr) return;
  uv_idle_stop(handle);
  self->idle_active_ = false;
  if (!self->again_.empty()) {
    self->now_ = MonotonicMs();
    self->in_callback_ = true;
    std::vector<uint32_t> again;
    again.swap(self->again_);
    for (uint32_t id : again) {
      auto it = self->clients_.find(id);
      if (it != self->clients_.end() && !it->second->dead) self->Step(it->second);
    }
    self->in_callback_ = false;
    // More left over: another turn (ScheduleDelivery was skipped in the callback).
    if (!self->again_.empty()) {
      self->idle_active_ = true;
      uv_idle_start(handle, OnIdle);
    }
  }
  // Reports alone may wait to go up with others, as after an epoll turn.
  self->DeliverOrDefer();
}

void HttpRelay::DrainEpoll() {
  epoll_event evs[kEpollBatch];
  for (int round = 0; round < 8; round++) {
    int n = epoll_wait(epfd_, evs, kEpollBatch, 0);
    if (n <= 0) break;
    for (int i = 0; i < n; i++) {
      auto* s = static_cast<Sock*>(evs[i].data.ptr);
      if (s->dead) continue;
      if (s->kind == Sock::kListener) {
        Accept(s);
      } else {
        OnSocketEvent(s, evs[i].events);
      }
    }
    if (n < kEpollBatch) break;
  }
}

void HttpRelay::Accept(Sock* listener) {
  for (int i = 0; i < 64; i++) {
    sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = accept4(listener->fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: the pending connection stays in the backlog
        // and the (level-triggered) listener would wake us at once, again
        // and again. It rests until the next sweep instead.
        epoll_event ev{};
        ev.data.ptr = listener;
        epoll_ctl(epfd_, EPOLL_CTL_MOD, listener->fd, &ev);
        listener->rd_ready = false;
        resting_ = true;
      }
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto* c = new Client();
    c->fd = fd;
    c->id = next_id_++;
    if (next_id_ == 0) next_id_ = 1;
    clients_[c->id] = c;
    Register(c, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
    c->deadline = now_ + header_timeout_ms_;
    c->peer = PeerText(ss, &c->peer_port);
    if (proxy_protocol_) {
      c->state = State::kPrologue;  // OPEN goes up with the PROXY header's bytes
    } else {
      c->state = State::kHead;
      events_.push_back(
          Event{kEvOpen, c->id, {static_cast<double>(c->peer_port), 0, 0, 0}, kPeerAndBytes, {}, c->peer});
    }
  }
}

void HttpRelay::OnSocketEvent(Sock* s, uint32_t ev) {
  if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s->rd_ready = true;
  if (ev & (EPOLLRDHUP | EPOLLHUP)) s->rd_hangup = true;
  if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) s->wr_blocked = false;
  if (s->kind == Sock::kUpstream) {
    auto* u = static_cast<Upstream*>(s);
    if (u->connecting && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      u->connecting = false;
      u->connect_ms = now_ - u->connect_started;
      if (err != 0) {
        u->failed = true;
        u->error = err;
      }
    }
    if (u->client == nullptr) {
      // A pooled connection must stay silent: bytes or a close end it. The
      // event may be an old one (from the answer just read, in the same
      // wake-up): a peek tells.
      if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        char probe;
        ssize_t n = recv(u->fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
        if (!(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) CloseUpstream(u);
      }
      return;
    }
    Step(u->client);
    return;
  }
  auto* c = static_cast<Client*>(s);
  if ((ev & EPOLLERR) && !c->failed) {
    // A reset client: noticed now, even in states that do not read (a
    // request waiting for its answer ends at once, not at a timeout).
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    c->failed = true;
    c->error = err != 0 ? err : ECONNRESET;
  }
  Step(c);
}

bool HttpRelay::ReadSome(Sock* s, size_t limit) {
  bool progress = false;
  while (s->rd_ready && !s->eof && !s->failed && s->in.size() < limit) {
    ssize_t n = read(s->fd, scratch_, kReadChunk);
    if (n > 0) {
      s->in.Append(scratch_, static_cast<size_t>(n));
      s->bytes_read += static_cast<uint64_t>(n);
      progress = true;
      // A short read drained the socket; edge-triggered epoll reports new
      // bytes with a new event, so no read is spent to see EAGAIN. Not so
      // for a FIN already queued: that is read to its 0.
      if (static_cast<size_t>(n) < kReadChunk && !s->rd_hangup) s->rd_ready = false;
    } else if (n == 0) {
      s->eof = true;
      progress = true;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      s->rd_ready = false;
    } else if (errno != EINTR) {
      s->failed = true;
      s->error = errno;
      progress = true;
    }
  }
  return progress;
}

bool HttpRelay::Flush(Sock* s) {
  bool progress = false;
  while (!s->out.empty() && !s->wr_blocked && !s->failed) {
    ssize_t n = send(s->fd, s->out.data(), s->out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bool all = static_cast<size_t>(n) == s->out.size();
      s->out.Consume(static_cast<size_t>(n));
      progress = true;
      if (!all) s->wr_blocked = true;  // the socket buffer is full: EPOLLOUT says when it is not
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      s->wr_blocked = true;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      s->failed = true;
      s->error = n < 0 ? errno : EPIPE;
      progress = true;
    }
  }
  return progress;
}

bool HttpRelay::WantsRead(const Client* c) const {
  switch (c->state) {
    case State::kPrologue:
    case State::kHead:
      // A client that sends requests but does not read the answers is not
      // read further: its answers would pile up without bound.
      return c->in.size() <= max_head_ && c->out.size() < kHighWater;
    case State::kDecide:
      return false;
    case State::kExchange:
      return !c->req_done && c->in.size() < kHighWater;
    case State::kTunnel:
      return c->tunnel_open && c->in.size() < (c->fronting ? kFrontingMax : kHighWater);
    case State::kClosing:
      return true;
  }
  return false;
}

bool HttpRelay::UpstreamWantsRead(const Client* c) const {
  const Upstream* u = c->up;
  if (u == nullptr || u->connecting) return false;
  if (c->state == State::kTunnel) return c->tunnel_open && u->in.size() < kHighWater;
  if (c->state != State::kExchange) return false;
  switch (c->phase) {
    case Phase::kAwaitHead:
      return u->in.size() <= max_response_head_;
    case Phase::kAwaitAnswer:
      return false;
    case Phase::kBody:
      return u->in.size() < kHighWater;
  }
  return false;
}

// Moves a connection as far as it can go: reads, parses, moves, writes,
// until nothing changes (bounded, so one connection cannot hog the loop).
void HttpRelay::Step(Client* c) {
  for (int round = 0; round < kStepRounds && !c->dead; round++) {
    bool progress = false;
    if (WantsRead(c)) progress |= ReadSome(c, c->state == State::kClosing ? SIZE_MAX : kHighWater);
    if (c->state == State::kClosing) c->in.Clear();  // a closing connection's bytes are dropped
    if (UpstreamWantsRead(c)) progress |= ReadSome(c->up, kHighWater);
    progress |= Advance(c);
    if (c->dead) return;
    if (Flush(c)) {
      progress = true;
      // An answer still going out to a slow reader keeps the connection:
      // its idle (or linger) deadline counts from the last write.
      if (c->state == State::kClosing) {
        c->deadline = now_ + header_timeout_ms_;
      } else if (c->state == State::kHead && !c->head_started) {
        c->deadline = now_ + idle_timeout_ms_;
      }
    }
    if (c->up != nullptr) progress |= Flush(c->up);
    if (!progress) return;
  }
  // Still moving after its share of the turn: edge-triggered epoll will not
  // report bytes it already reported, so the rest is moved on the next turn.
  if (!c->dead) {
    again_.push_back(c->id);
    ScheduleDelivery();
  }
}

bool HttpRelay::Advance(Client* c) {
  switch (c->state) {
    case State::kPrologue:
    case State::kHead:
      return AdvanceHead(c);
    case State::kDecide:
      if (c->failed) {
        CloseClient(c);
        return true;
      }
      return false;
    case State::kExchange:
      return AdvanceExchange(c);
    case State::kTunnel:
      return AdvanceTunnel(c);
    case State::kClosing:
      if (c->failed || (c->eof && c->out.empty())) {
        CloseClient(c);
        return true;
      }
      if (c->out.empty() && !c->shut_wr) {
        // The reply is out: FIN, then read (and drop) until the client's
        // FIN, so unread request bytes do not turn the close into a reset
        // that could discard the reply at the client.
        shutdown(c->fd, SHUT_WR);
        c->shut_wr = true;
        return true;
      }
      return false;
  }
  return false;
}

bool HttpRelay::AdvanceHead(Client* c) {
  if (c->state == State::kPrologue) {
    if (c->in.empty()) {
      if (c->eof || c->failed) CloseClient(c);
      return c->dead;
    }
    long len = ProxyHeaderLength(reinterpret_cast<const unsigned char*>(c->in.data()), c->in.size());
    if (len < 0) {
      ClientError(c, kBadProxyHeader);
      return true;
    }
    if (len == 0 || c->in.size() < static_cast<size_t>(len)) {
      if (c->eof || c->failed) CloseClient(c);
      return c->dead;
    }
    events_.push_back(Event{kEvOpen, /* with the PROXY header's bytes */
                            c->id,
                            {static_cast<double>(c->peer_port), 0, 0, 0},
                            kPeerAndBytes,
                            std::string(c->in.data(), len),
                            c->peer});
    ScheduleDelivery();
    c->in.Consume(static_cast<size_t>(len));
    c->state = State::kHead;
    c->head_started = !c->in.empty();
    return true;
  }
  if (c->in.empty()) {
    if (c->failed || (c->eof && c->out.empty())) {
      CloseClient(c);
      return true;
    }
    if (c->eof) {
      EnterClosing(c);  // the client is done asking; the last answer still goes out
      return true;
    }
    return false;
  }
  if (!c->head_started) {
    // Empty lines before a request line are ignored (RFC 9112 section 2.2).
    while (c->in.size() >= 2 && c->in.data()[0] == '\r' && c->in.data()[1] == '\n') c->in.Consume(2);
    if (c->in.empty()) return true;
    c->head_started = true;
    c->deadline = now_ + header_timeout_ms_;
  }
  if (c->out.size() >= kHighWater) return false;  // the next request waits for the answers to drain
  size_t end = FindHeadEnd(c->in.data(), c->in.size(), c->scan_from);
  if (end == 0) {
    c->scan_from = c->in.size();
    if (c->in.size() > max_head_) {
      ClientError(c, kHeadTooLarge);
      return true;
    }
    if (c->eof || c->failed) {
      CloseClient(c);
      return true;
    }
    return false;
  }
  if (end > max_head_) {
    ClientError(c, kHeadTooLarge);
    return true;
  }
  c->scan_from = 0;
  if (RouteRequest(c, end)) return true;
  EmitBytes(kEvRequest, c->id, c->in.data(), end);
  c->in.Consume(end);
  c->state = State::kDecide;
  c->deadline = 0;
  return true;
}

// Sends the head [0, end) of c->in upstream on the connection's kept route,
// when there is a fresh one and the head is its plain repeat.
bool HttpRelay::RouteRequest(Client* c, size_t end) {
  KeptRoute& r = c->route;
  if (!r.set || r.generation != route_generation_ || now_ >= r.expires || closing_) return false;
  std::string head, path;
  bool keep_alive = false;
  double realtime = RealtimeMs();
  bool repeated = r.ingress
                      ? RepeatIngressRequest(c->in.data(), end, r, static_cast<int64_t>(realtime / 1000),
                                             &head, &path, &keep_alive)
                  : r.exact ? RepeatExactRequest(c->in.data(), end, r, &head, &path, &keep_alive)
                            : RewriteRoutedRequest(c->in.data(), end, r, &head, &path, &keep_alive);
  if (!repeated) return false;
  c->in.Consume(end);
  c->target_ip = r.ip;
  c->target_port = r.port;
  BeginExchange(c, &head, 0, true, r.idle_ms);
  c->routed = true;
  c->routed_reported = false;
  c->routed_answered = false;
  c->routed_at = realtime;
  c->routed_mono = MonotonicMs();
  c->forwarded_at = MonotonicMsFine();
  c->routed_path.swap(path);
  c->client_keep_alive = keep_alive;
  return true;
}

// Tells TypeScript of the kept route's exchange in progress (once), before
// an event it must handle with the exchange in hand.
void HttpRelay::ReportRouted(Client* c) {
  if (!c->routed || c->routed_reported) return;
  c->routed_reported = true;
  events_.push_back(Event{kEvRouted,
                          c->id,
                          {c->client_keep_alive ? 1.0 : 0.0, c->routed_at, 0, 0, 0},
                          kLatin1,
                          c->routed_path,
                          {}});
  if (c->routed_answered) EmitAnswered(c);
  ScheduleDelivery();
}

// A decided exchange answered here that ends otherwise than plainly (cut
// short, the client gone): TypeScript hears of its answer before that end.
void HttpRelay::ReportAnswer(Client* c) {
  if (!c->answer_here || !c->routed_answered || c->answer_reported) return;
  c->answer_reported = true;
  EmitAnswered(c);
}

void HttpRelay::EmitAnswered(Client* c) {
  events_.push_back(Event{kEvAnswered,
                          c->id,
                          {static_cast<double>(c->routed_status), c->routed_connect_ms, 0, 0, 0},
                          c->routed_has_type ? kLatin1 : kNoPayload,
                          c->routed_type,
                          {}});
  ScheduleDelivery();
}

// Answers a kept route's exchange with the upstream head [0, end) of
// c->up->in, when it is plain enough to be rewritten here.
bool HttpRelay::AnswerRouted(Client* c, size_t end) {
  Upstream* u = c->up;
  bool keep_alive = c->client_keep_alive && !closing_;
  RoutedAnswer a;
  static const std::string kNoVia;
  if (c->answer_here || c->routed) c->answered_at = MonotonicMsFine();
  bool head_request = c->routed ? c->route.method == "HEAD" : c->head_request;
  if (!RewriteRoutedResponse(u->in.data(), end, head_request, c->routed ? c->route.via : kNoVia, keep_alive,
                             &a))
    return false;
  u->in.Consume(end);
  c->routed_answered = true;
  c->routed_status = a.status;
  c->routed_connect_ms = static_cast<double>(u->reused ? 0 : u->connect_ms);
  c->routed_has_type = a.has_content_type;
  c->routed_type.swap(a.content_type);
  // A kept route's TypeScript record hears of it now if it exists (after a
  // 1xx TypeScript relayed); a decided exchange's at its end, in one report
  // with its DONE (FinishExchange), unless it ends otherwise (ReportAnswer).
  if (c->routed && c->routed_reported) EmitAnswered(c);
  int body = a.body == RoutedAnswer::kNone     ? kBodyNone
             : a.body == RoutedAnswer::kLength ? kBodyLength
                                               : kBodyChunked;
  ApplyAnswer(c, a.head, body, a.length, keep_alive, a.reusable);
  // The body read with the head goes out with it: one write, not two.
  if (!c->dead && c->state == State::kExchange && c->phase == Phase::kBody) RelayResponseBody(c);
  return true;
}

void HttpRelay::ClientError(Client* c, int kind) {
  events_.push_back(Event{kEvClientError,
                          c->id,
                          {static_cast<double>(kind), static_cast<double>(c->peer_port), 0, 0},
                          kPeerOnly,
                          {},
                          c->peer});
  ScheduleDelivery();
  if (kind == kBadProxyHeader || kind == kProxyHeaderTimeout) {
    CloseClient(c);
    return;
  }
  // TypeScript answers (431, 408) with respond().
  c->state = State::kDecide;
  c->deadline = 0;
}

bool HttpRelay::AdvanceExchange(Client* c) {
  Upstream* u = c->up;
  if (u->connecting) return false;
  bool progress = false;
  if (!c->req_done) {
    while (!c->in.empty() && u->out.size() < kHighWater && !c->req_done) {
      size_t take;
      if (c->req_chunked) {
        // Chunked again as it goes, data only: chunk extensions and the
        // trailer section stay here (a trailer is a header a client could
        // use to slip past what the head's rewrite removed), as node:http
        // drops them.
        const char* base = c->in.data();
        take = c->req_chunks.Scan(base, c->in.size(), [&](size_t offset, size_t length) {
          if (length == 0) return;
          char size_line[24];
          int n = snprintf(size_line, sizeof(size_line), "%zx\r\n", length);
          u->out.Append(size_line, static_cast<size_t>(n));
          u->out.Append(base + offset, length);
          u->out.Append("\r\n", 2);
        });
        if (c->req_chunks.status() == ChunkScanner::kBad) {
          AbortAfterAnswer(c, kBadRequestBody, 0);
          return true;
        }
        c->req_done = c->req_chunks.status() == ChunkScanner::kDone;
        if (c->req_done) u->out.Append("0\r\n\r\n", 5);
      } else {
        take = c->in.size() < c->req_left ? c->in.size() : static_cast<size_t>(c->req_left);
        c->req_left -= take;
        c->req_done = c->req_left == 0;
        u->out.Append(c->in.data(), take);
      }
      c->in.Consume(take);
      c->deadline = now_ + c->exchange_idle_ms;
      progress = true;
    }
    if (!c->req_done && c->in.empty() && (c->eof || c->failed)) {
      // A half-sent body cannot be finished by anyone.
      AbortAfterAnswer(c, kClientGone, c->error);
      return true;
    }
  }
  if (c->failed) {
    AbortAfterAnswer(c, kClientGone, c->error);
    return true;
  }
  switch (c->phase) {
    case Phase::kAwaitHead: {
      if (u->in.empty()) {
        if (u->eof || u->failed) {
          if (u->reused && c->retryable && !c->retried && !u->got_bytes && u->error != ETIMEDOUT) {
            // A kept-alive connection the upstream closed meanwhile: the
            // request never reached anyone, and it is bodiless and
            // idempotent: sent once more, on a new connection.
            c->retried = true;
            ReleaseUpstream(c, false);
            StartUpstream(c, false);
            c->up->out.Append(c->req_head.data(), c->req_head.size());
            return true;
          }
          if (u->failed && u->connect_timed_out) {
            FailBeforeAnswer(c, kUpstreamTimeout, ETIMEDOUT);
          } else {
            FailBeforeAnswer(c, kUpstreamFailed, u->failed ? u->error : ECONNRESET);
          }
          return true;
        }
        return progress;
      }
      u->got_bytes = true;
      c->deadline = now_ + c->exchange_idle_ms;
      size_t end = FindHeadEnd(u->in.data(), u->in.size(), 0);
      if (end == 0 || end > max_response_head_) {
        if (u->in.size() > max_response_head_ || end > max_response_head_) {
          FailBeforeAnswer(c, kBadUpstreamHead, 0);
          return true;
        }
        if (u->eof || u->failed) {
          FailBeforeAnswer(c, kUpstreamFailed, u->failed ? u->error : ECONNRESET);
          return true;
        }
        return progress;
      }
      if ((c->routed || c->answer_here) && AnswerRouted(c, end)) return true;
      ReportRouted(c);
      EmitBytes(kEvResponse, c->id, u->in.data(), end, static_cast<double>(u->reused ? 0 : u->connect_ms));
      u->in.Consume(end);
      c->phase = Phase::kAwaitAnswer;
      return true;
    }
    case Phase::kAwaitAnswer:
      return progress;
    case Phase::kBody:
      return RelayResponseBody(c) || progress;
  }
  return progress;
}

bool HttpRelay::RelayResponseBody(Client* c) {
  Upstream* u = c->up;
  bool progress = false;
  bool done = false;
  while (!u->in.empty() && c->out.size() < kHighWater && !done) {
    const char* p = u->in.data();
    size_t n = u->in.size();
    size_t take = n;
    switch (c->body) {
      case kBodyLength:
        if (take > c->resp_left) take = static_cast<size_t>(c->resp_left);
        c->out.Append(p, take);
        c->queued_out += take;
        c->resp_left -= take;
        done = c->resp_left == 0;
        break;
      case kBodyChunked:
        take = c->resp_chunks.Scan(p, n, [](size_t, size_t) {});
        c->out.Append(p, take);
        c->queued_out += take;
        break;
      case kBodyDechunk:
        take = c->resp_chunks.Scan(p, n, [&](size_t off, size_t len) {
          c->out.Append(p + off, len);
          c->queued_out += len;
        });
        break;
      case kBodyCloseToChunked: {
        char size_line[24];
        int len = snprintf(size_line, sizeof(size_line), "%zx\r\n", n);
        c->out.Append(size_line, static_cast<size_t>(len));
        c->out.Append(p, n);
        c->out.Append("\r\n", 2);
        c->queued_out += static_cast<uint64_t>(len) + n + 2;
        break;
      }
      default:  // kBodyClose
        c->out.Append(p, n);
        c->queued_out += n;
        break;
    }
    if (c->body == kBodyChunked || c->body == kBodyDechunk) {
      if (c->resp_chunks.status() == ChunkScanner::kBad) {
        AbortAfterAnswer(c, kBadUpstreamBody, 0);
        return true;
      }
      done = c->resp_chunks.status() == ChunkScanner::kDone;
    }
    u->in.Consume(take);
    c->deadline = now_ + c->exchange_idle_ms;
    progress = true;
  }
  if (!done && u->in.empty() && (u->eof || u->failed)) {
    if (u->eof && !u->failed && (c->body == kBodyClose || c->body == kBodyCloseToChunked)) {
      if (c->body == kBodyCloseToChunked) {
        c->out.Append("0\r\n\r\n", 5);
        c->queued_out += 5;
      }
      c->reusable = false;
      done = true;
    } else {
      // The answer is cut short: so is the client's copy of it.
      AbortAfterAnswer(c, kAborted, u->failed ? u->error : ECONNRESET);
      return true;
    }
  }
  if (done) {
    FinishExchange(c);
    return true;
  }
  return progress;
}

bool HttpRelay::AdvanceTunnel(Client* c) {
  Upstream* u = c->up;
  if (u->connecting) return false;
  bool progress = false;
  if (!c->tunnel_open) {
    if (u->failed) {
      FailBeforeAnswer(c, u->connect_timed_out ? kUpstreamTimeout : kUpstreamFailed, u->error);
      return true;
    }
    c->tunnel_open = true;
    c->fronting = true;
    c->fronting_reported = 0;
    c->out.Append(c->established.data(), c->established.size());
    c->queued_out += c->established.size();
    c->deadline = now_ + fronting_timeout_ms_;
    Emit(kEvConnected, c->id, static_cast<double>(u->connect_ms));
    // What the client sent along with its CONNECT head is held too.
    c->rd_ready = true;
    progress = true;
  }
  // Upstream bytes flow from the start: server-first protocols need them,
  // and they cannot change where the tunnel goes.
  if (!u->in.empty() && c->out.size() < kHighWater) {
    size_t n = u->in.size();
    c->out.Append(u->in.data(), n);
    c->queued_out += n;
    u->in.Consume(n);
    if (!c->fronting) c->deadline = now_ + idle_timeout_ms_;
    progress = true;
  }
  if (c->fronting) {
    if (c->in.size() > c->fronting_reported) {
      EmitBytes(kEvFronting, c->id, c->in.data(), c->in.size(), 0);
      c->fronting_reported = c->in.size();
      progress = true;
    }
    if (c->eof || c->failed || u->failed) {
      EndTunnel(c);
      return true;
    }
    return progress;
  }
  if (!c->in.empty() && u->out.size() < kHighWater) {
    size_t n = c->in.size();
    u->out.Append(c->in.data(), n);
    c->in.Consume(n);
    c->deadline = now_ + idle_timeout_ms_;
    progress = true;
  }
  if (c->failed || u->failed) {
    EndTunnel(c);
    return true;
  }
  // Half-closes pass through: a FIN goes on once what came before it did.
  if (u->eof && u->in.empty() && c->out.empty() && !c->shut_wr) {
    shutdown(c->fd, SHUT_WR);
    c->shut_wr = true;
    progress = true;
  }
  if (c->eof && c->in.empty() && u->out.empty() && !u->shut_wr) {
    shutdown(u->fd, SHUT_WR);
    u->shut_wr = true;
    progress = true;
  }
  if (c->shut_wr && u->shut_wr) {
    EndTunnel(c);
    return true;
  }
  return progress;
}

void HttpRelay::EnterHead(Client* c) {
  c->state = State::kHead;
  c->head_started = false;
  c->scan_from = 0;
  c->deadline = now_ + idle_timeout_ms_;
}

void HttpRelay::EnterClosing(Client* c) {
  c->state = State::kClosing;
  c->deadline = now_ + header_timeout_ms_;
  c->rd_ready = true;
}

// Gives the client's exchange an upstream connection: an idle pooled one
// for the same checked address when there is one, else a new one.
void HttpRelay::StartUpstream(Client* c, bool allow_pooled) {
  std::string key = c->target_ip + "|" + std::to_string(c->target_port);
  if (allow_pooled) {
    auto it = pool_.find(key);
    while (it != pool_.end() && !it->second.empty()) {
      Upstream* u = it->second.back();
      it->second.pop_back();
      pooled_--;
      // Bytes or a FIN that arrived since the pool took it (not yet seen
      // by epoll in this wake-up) would be read as this client's answer:
      // only a silent connection is reused.
      char probe;
      ssize_t n = recv(u->fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
      if (!(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) {
        CloseUpstream(u);
        continue;
      }
      u->client = c;
      u->reused = true;
      u->got_bytes = false;
      c->up = u;
      return;
    }
  }
  sockaddr_storage ss;
  socklen_t len;
  auto* u = new Upstream();
  u->key = key;
  u->client = c;
  c->up = u;
  u->connect_started = now_;
  if (!ToSockaddr(c->target_ip, c->target_port, &ss, &len)) {
    u->failed = true;
    u->error = EINVAL;
    return;
  }
  u->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (u->fd < 0) {
    u->failed = true;
    u->error = errno;
    return;
  }
  int one = 1;
  setsockopt(u->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  // Registered after connect(): a socket not yet connecting would report
  // a hang-up of its own.
  if (connect(u->fd, reinterpret_cast<sockaddr*>(&ss), len) == 0) {
    u->connect_ms = 0;
  } else if (errno == EINPROGRESS) {
    u->connecting = true;
    u->wr_blocked = true;
  } else {
    u->failed = true;
    u->error = errno;
  }
  Register(u, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
  return;
}

void HttpRelay::ReleaseUpstream(Client* c, bool to_pool) {
  Upstream* u = c->up;
  if (u == nullptr) return;
  c->up = nullptr;
  if (!to_pool || closing_) {
    CloseUpstream(u);
    return;
  }
  u->client = nullptr;
  u->idle_deadline = now_ + pool_idle_ms_;
  pool_[u->key].push_back(u);
  pooled_++;
}

void HttpRelay::CloseUpstream(Upstream* u) {
  if (u->dead) return;
  u->dead = true;
  if (u->client == nullptr) {
    // Idle in the pool: out of it before it is freed.
    auto it = pool_.find(u->key);
    if (it != pool_.end()) {
      auto& idle = it->second;
      for (size_t i = 0; i < idle.size(); i++) {
        if (idle[i] == u) {
          idle[i] = idle.back();
          idle.pop_back();
          pooled_--;
          break;
        }
      }
    }
  }
  if (u->fd >= 0) close(u->fd);
  graveyard_.push_back(u);
  ScheduleDelivery();
}

// The bytes since the last mark: read and consumed from the client (not
// what was read ahead of the next pipelined request), queued to it.
std::pair<double, double> HttpRelay::TakeBytes(Client* c) {
  uint64_t consumed = c->bytes_read - c->in.size();
  double in = static_cast<double>(consumed - c->mark_in);
  double out = static_cast<double>(c->queued_out - c->mark_out);
  c->mark_in = consumed;
  c->mark_out = c->queued_out;
  return {in, out};
}

void HttpRelay::FailBeforeAnswer(Client* c, int outcome, int err) {
  ReportRouted(c);
  c->routed = false;
  ReleaseUpstream(c, false);
  auto bytes = TakeBytes(c);
  Emit(kEvDone, c->id, outcome, err, bytes.first, bytes.second);
  // TypeScript answers with respond(); the request may be half read, so
  // that answer closes the connection.
  c->state = State::kDecide;
  c->deadline = 0;
}

void HttpRelay::AbortAfterAnswer(Client* c, int outcome, int err) {
  ReportRouted(c);
  ReportAnswer(c);
  c->routed = false;
  auto bytes = TakeBytes(c);
  Emit(kEvDone, c->id, outcome, err, bytes.first, bytes.second);
  if (c->failed || c->out.empty() || outcome == kClientGone) {
    CloseClient(c);
    return;
  }
  // What was relayed so far still goes out, then the close: the client
  // sees its answer cut short (a length not reached, no last chunk), not
  // a connection that ended with nothing.
  ReleaseUpstream(c, false);
  EnterClosing(c);
}

void HttpRelay::FinishExchange(Client* c) {
  Upstream* u = c->up;
  // Pooled only when nothing of this exchange is left on it either way.
  bool reuse_upstream =
      c->reusable && c->req_done && u->in.empty() && u->out.empty() && !u->eof && !u->rd_hangup && !u->failed;
  ReleaseUpstream(c, reuse_upstream);
  auto bytes = TakeBytes(c);
  if (c->routed && !c->routed_reported) {
    // Its duration goes with it: the report may go up later (DeliverOrDefer).
    // Measured on the monotonic clock: a wall-clock step must not bend it.
    double took = static_cast<double>(MonotonicMs() - c->routed_mono);
    events_.push_back(Event{kEvRoutedDone,
                            c->id,
                            {static_cast<double>(c->routed_status), c->routed_connect_ms, bytes.first,
                             bytes.second, c->routed_at, took, c->answered_at - c->forwarded_at},
                            kPathAndType,
                            std::move(c->routed_path),
                            c->routed_has_type ? std::move(c->routed_type) : std::string()});
    events_.back().payload_flag = c->routed_has_type;
    ScheduleDelivery();
  } else if (c->answer_here && c->routed_answered && !c->answer_reported) {
    // ANSWERED and DONE in one report that may wait (DeliverOrDefer), with
    // the times TypeScript would have measured had it heard at once.
    events_.push_back(
        Event{kEvAnsweredDone,
              c->id,
              {static_cast<double>(c->routed_status), c->routed_connect_ms, bytes.first, bytes.second,
               MonotonicMsFine() - c->forwarded_at, c->answered_at - c->forwarded_at},
              c->routed_has_type ? kLatin1 : kNoPayload,
              c->routed_type,
              {}});
    ScheduleDelivery();
  } else {
    Emit(kEvDone, c->id, kComplete, 0, bytes.first, bytes.second);
  }
  c->routed = false;
  // An upload the upstream answered early leaves body bytes that would
  // read as a request: that connection ends with this answer.
  if (c->keep_alive && c->req_done && !closing_) {
    EnterHead(c);
  } else {
    EnterClosing(c);
  }
}

void HttpRelay::EndTunnel(Client* c) {
  auto bytes = TakeBytes(c);
  Emit(kEvDone, c->id, kComplete, 0, bytes.first, bytes.second);
  CloseClient(c);
}

void HttpRelay::CloseClient(Client* c) {
  if (c->dead) return;
  if (c->state == State::kExchange) {  // its record ends with CLOSED
    ReportRouted(c);
    ReportAnswer(c);
  }
  c->dead = true;
  ReleaseUpstream(c, false);
  if (c->fd >= 0) close(c->fd);
  clients_.erase(c->id);
  c->in.Clear();  // what it sent and nobody reads counts as received
  auto bytes = TakeBytes(c);
  closed_in_ += static_cast<double>(c->bytes_read);
  closed_out_ += static_cast<double>(c->queued_out);
  Emit(kEvClosed, c->id, bytes.first, bytes.second);
  graveyard_.push_back(c);
}

void HttpRelay::Sweep() {
  if (resting_) {
    resting_ = false;
    for (Sock* l : listeners_) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.ptr = l;
      epoll_ctl(epfd_, EPOLL_CTL_MOD, l->fd, &ev);
    }
  }
  std::vector<Client*> due;
  for (auto& entry : clients_) {
    Client* c = entry.second;
    if (c->deadline != 0 && now_ >= c->deadline) due.push_back(c);
  }
  for (Client* c : due) {
    if (c->dead) continue;
    c->deadline = 0;
    switch (c->state) {
      case State::kPrologue:
        ClientError(c, kProxyHeaderTimeout);
        break;
      case State::kHead:
        if (c->in.empty() && !c->head_started && !c->out.empty()) {
          EnterClosing(c);  // no reading for the idle time, an answer still unread: a last linger
        } else if (c->in.empty() && !c->head_started) {
          CloseClient(c);  // an idle keep-alive connection, or one that never spoke
        } else {
          ClientError(c, kHeadTimeout);
        }
        break;
      case State::kDecide:
        break;
      case State::kExchange:
        if (c->phase == Phase::kBody || c->phase == Phase::kAwaitAnswer) {
          AbortAfterAnswer(c, kAborted, ETIMEDOUT);
        } else {
          // No errno: the exchange's inactivity limit, told apart from a
          // connect timeout (ETIMEDOUT) in the same outcome.
          FailBeforeAnswer(c, kUpstreamTimeout, 0);
        }
        break;
      case State::kTunnel:
        if (!c->tunnel_open) {
          FailBeforeAnswer(c, kUpstreamTimeout, ETIMEDOUT);
        } else if (c->fronting) {
          EmitBytes(kEvFronting, c->id, c->in.data(), c->in.size(), 1);
        } else {
          EndTunnel(c);  // idle past the limit
        }
        break;
      case State::kClosing:
        CloseClient(c);
        break;
    }
    if (!c->dead) Step(c);
  }
  // Connections still connecting have their own deadline.
  std::vector<Client*> connecting;
  for (auto& entry : clients_) {
    Client* c = entry.second;
    if (c->up != nullptr && c->up->connecting && now_ - c->up->connect_started >= connect_timeout_ms_) {
      c->up->connecting = false;
      c->up->failed = true;
      c->up->error = ETIMEDOUT;
      c->up->connect_timed_out = true;
      connecting.push_back(c);
    }
  }
  for (Client* c : connecting) {
    if (!c->dead) Step(c);
  }
  std::vector<Upstream*> expired;
  for (auto& entry : pool_) {
    for (Upstream* u : entry.second) {
      if (now_ >= u->idle_deadline) expired.push_back(u);
    }
  }
  for (Upstream* u : expired) CloseUpstream(u);
}

void HttpRelay::Emit(int kind, uint32_t id, double a, double b, double c, double d) {
  events_.push_back(Event{kind, id, {a, b, c, d}, kNoPayload, {}, {}});
  ScheduleDelivery();
}

void HttpRelay::EmitBytes(int kind, uint32_t id, const char* p, size_t n, double a, double b) {
  // Heads go up as one-byte strings (what the TypeScript parsers read);
  // tunnel bytes as a Buffer (the TLS parser reads bytes).
  events_.push_back(
      Event{kind, id, {a, b, 0, 0}, kind == kEvFronting ? kBytes : kLatin1, std::string(p, n), {}});
  ScheduleDelivery();
}

// Events raised outside a libuv callback of ours (by a command called from
// JavaScript) are delivered on the next turn of the loop, never re-entrantly.
void HttpRelay::ScheduleDelivery() {
  if (delivering_ || in_callback_ || idle_active_ || idle_ == nullptr) return;
  idle_active_ = true;
  uv_idle_start(idle_, OnIdle);
}

// A connection whose Step ran out of rounds inside one of our callbacks
// (where ScheduleDelivery is skipped) or while JavaScript handled a batch
// must still get its next turn: edge-triggered epoll will not wake it.
void HttpRelay::ScheduleLeftovers() {
  if (!again_.empty()) ScheduleDelivery();
}

// A turn that raised only ROUTED_DONE reports (kept routes' finished
// exchanges: records for the logs, nothing TypeScript must act on) leaves
// them for up to reportDelayMs, so a stream of repeated requests costs one
// call into JavaScript per batch instead of one per request. Any other
// event takes the whole queue up in order; so does closeIdle (draining).
void HttpRelay::DeliverOrDefer() {
  if (report_delay_ms_ > 0 && !closing_ && events_.size() < kMaxBatch / 4 && OnlyReportsPending()) {
    FreeGraveyard();
    if (!events_.empty() && !uv_is_active(reinterpret_cast<uv_handle_t*>(report_timer_))) {
      uv_timer_start(report_timer_, OnReportTimer, static_cast<uint64_t>(report_delay_ms_), 0);
    }
    return;
  }
  Deliver();
}

bool HttpRelay::OnlyReportsPending() {
  for (; scanned_reports_ < events_.size(); scanned_reports_++) {
    int kind = events_[scanned_reports_].kind;
    if (kind != kEvRoutedDone && kind != kEvAnsweredDone) return false;
  }
  return true;
}

void HttpRelay::Deliver() {
  FreeGraveyard();
  if (events_.empty() || delivering_ || shut_down_) return;
  scanned_reports_ = 0;
  if (report_timer_ != nullptr) uv_timer_stop(report_timer_);
  Napi::Env env(env_);
  // Commands JavaScript calls while it handles a batch raise events of
  // their own (an answer that completes an exchange raises DONE): they go
  // up in the next round of this same call, not on a later loop turn.
  for (int round = 0; round < 8 && !events_.empty() && !shut_down_; round++) {
    Napi::HandleScope scope(env);
    delivering_ = true;
    std::vector<Event> batch;
    if (events_.size() <= kMaxBatch) {
      batch.swap(events_);
    } else {
      batch.assign(std::make_move_iterator(events_.begin()),
                   std::make_move_iterator(events_.begin() + kMaxBatch));
      events_.erase(events_.begin(), events_.begin() + kMaxBatch);
    }
    Napi::Array payloads = Napi::Array::New(env, batch.size());
    for (size_t i = 0; i < batch.size(); i++) {
      const Event& e = batch[i];
      double* slot = slots_ + i * kSlotsPerEvent;
      slot[0] = e.kind;
      slot[1] = e.id;
      for (size_t k = 0; k < 7; k++) slot[2 + k] = e.n[k];
      if (e.payload != kNoPayload) payloads.Set(static_cast<uint32_t>(i), PayloadValue(env, e));
    }
    try {
      on_events_.MakeCallback(Value(), {Napi::Number::New(env, static_cast<double>(batch.size())), payloads},
                              *async_);
    } catch (const Napi::Error& err) {
      // The TypeScript side catches its own failures; anything left is a bug
      // that must surface as an uncaught exception, not vanish here.
      delivering_ = false;
      napi_fatal_exception(env_, err.Value());
      return;
    }
    delivering_ = false;
  }
  if (!events_.empty()) ScheduleDelivery();
  ScheduleLeftovers();
}

void HttpRelay::FreeGraveyard() {
  for (Sock* s : graveyard_) {
    if (s->kind == Sock::kUpstream) {
      delete static_cast<Upstream*>(s);
    } else if (s->kind == Sock::kClient) {
      delete static_cast<Client*>(s);
    } else {
      delete s;
    }
  }
  graveyard_.clear();
}

Napi::Value HttpRelay::PayloadValue(Napi::Env env, const Event& e) {
  switch (e.payload) {
    case kLatin1: {
      napi_value text;
      napi_create_string_latin1(env, e.bytes.data(), e.bytes.size(), &text);
      return Napi::Value(env, text);
    }
    case kBytes:
      return Napi::Buffer<char>::Copy(env, e.bytes.data(), e.bytes.size());
    case kPeerOnly:
      return Napi::String::New(env, e.text);
    case kPathAndType: {  // [path, Content-Type or null], both one-byte strings
      Napi::Array pair = Napi::Array::New(env, 2);
      napi_value path, type;
      napi_create_string_latin1(env, e.bytes.data(), e.bytes.size(), &path);
      pair.Set(0u, Napi::Value(env, path));
      if (e.payload_flag) {
        napi_create_string_latin1(env, e.text.data(), e.text.size(), &type);
        pair.Set(1u, Napi::Value(env, type));
      } else {
        pair.Set(1u, env.Null());
      }
      return pair;
    }
    default: {  // kPeerAndBytes: [peer address, PROXY header bytes or null]
      Napi::Array pair = Napi::Array::New(env, 2);
      pair.Set(0u, Napi::String::New(env, e.text));
      pair.Set(1u, e.bytes.empty()
                       ? env.Null()
                       : Napi::Buffer<char>::Copy(env, e.bytes.data(), e.bytes.size()).As<Napi::Value>());
      return pair;
    }
  }
}

// eventSlots(): the Float64Array the numbers of each batch are written to.
Napi::Value HttpRelay::EventSlots(const Napi::CallbackInfo&) { return slots_ref_.Value(); }

Client* HttpRelay::Live(const Napi::CallbackInfo& info) {
  auto it = clients_.find(info[0].As<Napi::Number>().Uint32Value());
  return it == clients_.end() || it->second->dead ? nullptr : it->second;
}

Client* HttpRelay::Find(const Napi::CallbackInfo& info, State a, State b) {
  Client* c = Live(info);
  if (c == nullptr || (c->state != a && c->state != b)) return nullptr;
  now_ = MonotonicMs();
  return c;
}

// respond(id, bytes, keepAlive) -> bytes read from the client since the last
// mark (or -1 when the connection is gone). The proxy's own answer: any
// upstream connection of the exchange is closed first.
Napi::Value HttpRelay::Respond(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Client* c = Live(info);
  if (c == nullptr) return Napi::Number::New(env, -1);
  // Only before anything of an answer went out: not into a body being
  // relayed, not into an open tunnel, not after the connection's last reply.
  bool answering = (c->state == State::kExchange && c->phase == Phase::kBody) ||
                   (c->state == State::kTunnel && c->tunnel_open);
  if (c->state == State::kClosing || answering) return Napi::Number::New(env, -1);
  now_ = MonotonicMs();
  std::string bytes = Latin1(info[1]);
  bool keep_alive = info[2].As<Napi::Boolean>().Value();
  bool goes_on = keep_alive && !closing_ && c->state == State::kDecide;
  ReleaseUpstream(c, false);
  // Ending: whatever the client sent so far belongs to this exchange.
  if (!goes_on) c->in.Clear();
  c->out.Append(bytes.data(), bytes.size());
  c->queued_out += bytes.size();
  double in = TakeBytes(c).first;
  if (goes_on) {
    EnterHead(c);
  } else {
    EnterClosing(c);
  }
  Step(c);
  return Napi::Number::New(env, in);
}

// forward(id, ip, port, head, bodyLength, retryable, idleMs, flags):
// bodyLength is -1 for chunked, else the Content-Length (0: no body);
// idleMs is this exchange's inactivity limit (0: the relay's
// idleTimeoutMs); flags (kAnswerHere...) let a plain answer to an HTTP/1.1
// client be rewritten here, as on a kept route, without a RESPONSE event.
Napi::Value HttpRelay::Forward(const Napi::CallbackInfo& info) {
  Client* c = Find(info, State::kDecide, State::kDecide);
  if (c == nullptr) return Napi::Boolean::New(info.Env(), false);
  c->target_ip = info[1].As<Napi::String>().Utf8Value();
  c->target_port = info[2].As<Napi::Number>().Int32Value();
  std::string head = Latin1(info[3]);
  BeginExchange(c, &head, info[4].As<Napi::Number>().DoubleValue(), info[5].As<Napi::Boolean>().Value(),
                info[6].As<Napi::Number>().Int64Value());
  int flags = info[7].As<Napi::Number>().Int32Value();
  c->answer_here = (flags & kAnswerHere) != 0;
  c->client_keep_alive = (flags & kClientKeepAlive) != 0;
  c->head_request = (flags & kHeadRequest) != 0;
  c->forwarded_at = MonotonicMsFine();
  Step(c);
  return Napi::Boolean::New(info.Env(), true);
}

// Starts the exchange of a decided request: an upstream connection for
// c->target_ip/port (a pooled one when idle), `head` written to it.
// `body` is -1 for chunked, else the Content-Length (0: none).
void HttpRelay::BeginExchange(Client* c, std::string* head, double body, bool retryable, int64_t idle_ms) {
  c->routed = false;
  c->routed_reported = false;
  c->routed_answered = false;
  c->answer_here = false;
  c->answer_reported = false;
  c->retryable = retryable && body == 0;
  c->retried = false;
  c->req_chunked = body < 0;
  c->req_left = body > 0 ? static_cast<uint64_t>(body) : 0;
  c->req_done = body == 0;
  c->req_chunks = ChunkScanner();
  c->resp_chunks = ChunkScanner();
  c->phase = Phase::kAwaitHead;
  c->state = State::kExchange;
  c->exchange_idle_ms = idle_ms > 0 ? idle_ms : idle_timeout_ms_;
  c->deadline = now_ + c->exchange_idle_ms;
  StartUpstream(c, true);
  c->up->out.Append(head->data(), head->size());
  if (c->retryable) {
    c->req_head.swap(*head);
  } else {
    c->req_head.clear();
  }
}

// answer(id, head, bodyKind, length, keepAlive, reusable): the client's
// copy of the upstream's head, and how the body that follows is framed.
Napi::Value HttpRelay::Answer(const Napi::CallbackInfo& info) {
  Client* c = Find(info, State::kExchange, State::kExchange);
  if (c == nullptr || c->phase != Phase::kAwaitAnswer) return Napi::Boolean::New(info.Env(), false);
  ApplyAnswer(c, Latin1(info[1]), info[2].As<Napi::Number>().Int32Value(),
              static_cast<uint64_t>(info[3].As<Napi::Number>().DoubleValue()),
              info[4].As<Napi::Boolean>().Value(), info[5].As<Napi::Boolean>().Value());
  if (!c->dead) Step(c);
  return Napi::Boolean::New(info.Env(), true);
}

// The client's copy of the upstream's head goes out; the body that follows
// is framed as `body` says.
void HttpRelay::ApplyAnswer(Client* c, const std::string& head, int body, uint64_t length, bool keep_alive,
                            bool reusable) {
  c->body = body;
  c->resp_left = length;
  c->keep_alive = keep_alive;
  c->reusable = reusable;
  c->out.Append(head.data(), head.size());
  c->queued_out += head.size();
  if (c->body == kBodyInformational) {
    c->phase = Phase::kAwaitHead;
  } else if (c->body == kBodyNone || (c->body == kBodyLength && c->resp_left == 0)) {
    FinishExchange(c);
  } else {
    c->phase = Phase::kBody;
  }
}

// tunnel(id, ip, port, established): connects; once connected, writes
// `established` (the 200) and holds the client's bytes for the fronting check.
Napi::Value HttpRelay::Tunnel(const Napi::CallbackInfo& info) {
  Client* c = Find(info, State::kDecide, State::kDecide);
  if (c == nullptr) return Napi::Boolean::New(info.Env(), false);
  c->target_ip = info[1].As<Napi::String>().Utf8Value();
  c->target_port = info[2].As<Napi::Number>().Int32Value();
  c->established = Latin1(info[3]);
  c->state = State::kTunnel;
  c->tunnel_open = false;
  c->fronting = false;
  c->deadline = 0;  // the connect deadline is the upstream's
  StartUpstream(c, false);
  Step(c);
  return Napi::Boolean::New(info.Env(), true);
}

// allowTunnel(id): the fronting check passed; the held bytes go first.
Napi::Value HttpRelay::AllowTunnel(const Napi::CallbackInfo& info) {
  Client* c = Find(info, State::kTunnel, State::kTunnel);
  if (c == nullptr || !c->fronting) return Napi::Boolean::New(info.Env(), false);
  c->fronting = false;
  c->deadline = now_ + idle_timeout_ms_;
  c->rd_ready = true;
  Step(c);
  return Napi::Boolean::New(info.Env(), true);
}

// detach(id) -> { fd, input, output } or null: hands a connection waiting
// for its request's decision to another server (one that speaks what the
// relay does not: TLS upstreams, upgrades). The socket leaves epoll open;
// `input` is what the client sent after the head, `output` what the relay
// had not written yet (the previous answer's tail), in that order of use.
Napi::Value HttpRelay::Detach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Client* c = Find(info, State::kDecide, State::kDecide);
  if (c == nullptr || c->fd < 0) return env.Null();
  epoll_ctl(epfd_, EPOLL_CTL_DEL, c->fd, nullptr);
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, c->fd));
  out.Set("input", Napi::Buffer<char>::Copy(env, c->in.data(), c->in.size()));
  out.Set("output", Napi::Buffer<char>::Copy(env, c->out.data(), c->out.size()));
  c->fd = -1;  // CloseClient must not close it: it is the other server's now
  c->out.Clear();
  CloseClient(c);
  return out;
}

Napi::Value HttpRelay::Close(const Napi::CallbackInfo& info) {
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  auto it = clients_.find(id);
  if (it == clients_.end()) return Napi::Boolean::New(info.Env(), false);
  CloseClient(it->second);
  return Napi::Boolean::New(info.Env(), true);
}

// keepRoute(id, method, prefix, host, ip, port, via, forwarded, lifetimeMs):
// the connection's next requests that repeat `method prefix/...` plainly go
// to ip:port with this head rewrite, for lifetimeMs or until forgetRoutes().
// Empty via / forwarded: that field is left as the client sent it.
Napi::Value HttpRelay::KeepRoute(const Napi::CallbackInfo& info) {
  Client* c = Live(info);
  if (c == nullptr) return Napi::Boolean::New(info.Env(), false);
  KeptRoute r;
  r.method = Latin1(info[1]);
  r.prefix = Latin1(info[2]);
  r.host = Latin1(info[3]);
  r.ip = info[4].As<Napi::String>().Utf8Value();
  r.port = info[5].As<Napi::Number>().Int32Value();
  r.via = Latin1(info[6]);
  r.forwarded = Latin1(info[7]);
  Keep(c, std::move(r), info[8].As<Napi::Number>().Int64Value());
  return Napi::Boolean::New(info.Env(), true);
}

// keepExact(id, method, request, upstreamHead, ip, port, path, lifetimeMs,
// idleMs): the connection's next requests whose head is `request` (one that
// lets the connection go on) byte for byte go to ip:port as `upstreamHead`,
// for lifetimeMs or until forgetRoutes(), each exchange with forward()'s
// idleMs. `method` is the request's (GET or HEAD), `path` its target.
Napi::Value HttpRelay::KeepExact(const Napi::CallbackInfo& info) {
  Client* c = Live(info);
  if (c == nullptr) return Napi::Boolean::New(info.Env(), false);
  KeptRoute r;
  r.exact = true;
  r.method = Latin1(info[1]);
  r.request = Latin1(info[2]);
  r.upstream_head = Latin1(info[3]);
  r.ip = info[4].As<Napi::String>().Utf8Value();
  r.port = info[5].As<Napi::Number>().Int32Value();
  r.path = Latin1(info[6]);
  r.idle_ms = info[8].As<Napi::Number>().Int64Value();
  Keep(c, std::move(r), info[7].As<Napi::Number>().Int64Value());
  return Napi::Boolean::New(info.Env(), true);
}

// keepIngress(id, route): the ingress's kept route (KeptRoute::ingress), an
// object with keepExact's fields (method, request, upstreamHead, ip, port,
// path, lifetimeMs, idleMs) and host, userAgent, referer, matchPrefix,
// upstreamPrefix, authority, client, proto, stripAuthorization and
// signing: null, or for a signed route an object with second, amzFields,
// key (a Buffer), stringToSignPrefix, canonicalRest and
// authorizationPrefix (IngressRoute in src/native/binding.ts; http-relay.ts
// checks them). False when the connection is gone or upstreamPrefix is not
// a plain path.
Napi::Value HttpRelay::KeepIngress(const Napi::CallbackInfo& info) {
  Client* c = Live(info);
  if (c == nullptr) return Napi::Boolean::New(info.Env(), false);
  Napi::Object o = info[1].As<Napi::Object>();
  KeptRoute r;
  r.ingress = true;
  r.method = Latin1(o.Get("method"));
  r.client_host = Latin1(o.Get("host"));
  r.user_agent = Latin1(o.Get("userAgent"));
  r.referer = Latin1(o.Get("referer"));
  r.match_prefix = Latin1(o.Get("matchPrefix"));
  r.upstream_prefix = Latin1(o.Get("upstreamPrefix"));
  r.host = Latin1(o.Get("authority"));
  r.client = Latin1(o.Get("client"));
  r.proto = Latin1(o.Get("proto"));
  r.strip_authorization = o.Get("stripAuthorization").As<Napi::Boolean>().Value();
  r.ip = o.Get("ip").As<Napi::String>().Utf8Value();
  r.port = o.Get("port").As<Napi::Number>().Int32Value();
  r.idle_ms = o.Get("idleMs").As<Napi::Number>().Int64Value();
  r.request = Latin1(o.Get("request"));
  r.upstream_head = Latin1(o.Get("upstreamHead"));
  r.path = Latin1(o.Get("path"));
  Napi::Value signing = o.Get("signing");
  r.sign = signing.IsObject();
  if (r.sign) {
    Napi::Object s = signing.As<Napi::Object>();
    Napi::Buffer<char> key = s.Get("key").As<Napi::Buffer<char>>();
    r.key.assign(key.Data(), key.Length());
    r.second = s.Get("second").As<Napi::Number>().Int64Value();
    r.amz_fields = Latin1(s.Get("amzFields"));
    r.string_to_sign_prefix = Latin1(s.Get("stringToSignPrefix"));
    r.canonical_rest = Latin1(s.Get("canonicalRest"));
    r.authorization_prefix = Latin1(s.Get("authorizationPrefix"));
  }
  std::string scratch;
  if (!r.upstream_prefix.empty() &&
      !CanonicalTarget(r.upstream_prefix.data(), r.upstream_prefix.size(), nullptr, 0, &scratch))
    return Napi::Boolean::New(info.Env(), false);
  Keep(c, std::move(r), o.Get("lifetimeMs").As<Napi::Number>().Int64Value());
  return Napi::Boolean::New(info.Env(), true);
}

// Makes `r` the connection's kept route for lifetime_ms (or until forgetRoutes()).
void HttpRelay::Keep(Client* c, KeptRoute r, int64_t lifetime_ms) {
  r.expires = MonotonicMs() + lifetime_ms;
  r.generation = route_generation_;
  r.set = true;
  c->route = std::move(r);
}

// forgetRoutes(): the policy changed; every request is decided again.
void HttpRelay::ForgetRoutes(const Napi::CallbackInfo&) { route_generation_++; }

// closeIdle(): from now on every connection ends after its exchange; those
// between exchanges end now.
void HttpRelay::CloseIdle(const Napi::CallbackInfo&) {
  closing_ = true;
  ScheduleDelivery();  // reports waiting in DeliverOrDefer go up now
  std::vector<Client*> idle;
  for (auto& entry : clients_) {
    Client* c = entry.second;
    // A head already arriving is a request in flight: it is read to its end
    // (the header timeout still bounds it) and answered with
    // Connection: close, as TypeScript answers everything while draining.
    if (c->state == State::kPrologue || (c->state == State::kHead && !c->head_started)) idle.push_back(c);
  }
  for (Client* c : idle) {
    if (c->out.empty()) {
      CloseClient(c);
    } else {
      EnterClosing(c);  // the last answer is still going out: it ends after it
      Step(c);
    }
  }
  ClosePool();
}

void HttpRelay::ClosePool() {
  std::vector<Upstream*> all;
  for (auto& entry : pool_) all.insert(all.end(), entry.second.begin(), entry.second.end());
  for (Upstream* u : all) CloseUpstream(u);
}

void HttpRelay::Destroy(const Napi::CallbackInfo&) {
  std::vector<Client*> all;
  for (auto& entry : clients_) all.push_back(entry.second);
  for (Client* c : all) CloseClient(c);
  ClosePool();
  Deliver();
  Shutdown();
}

Napi::Value HttpRelay::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double in = closed_in_, out = closed_out_;
  for (auto& entry : clients_) {
    in += static_cast<double>(entry.second->bytes_read);
    out += static_cast<double>(entry.second->queued_out);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("active", Napi::Number::New(env, static_cast<double>(clients_.size())));
  o.Set("pooled", Napi::Number::New(env, static_cast<double>(pooled_)));
  o.Set("bytesIn", Napi::Number::New(env, in));
  o.Set("bytesOut", Napi::Number::New(env, out));
  return o;
}

template <typename Handle>
void CloseHandle(Handle* h) {
  h->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(h),
           [](uv_handle_t* closed) { delete reinterpret_cast<Handle*>(closed); });
}

void HttpRelay::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  for (Sock* s : listeners_) {
    close(s->fd);
    delete s;
  }
  listeners_.clear();
  for (auto& entry : clients_) {
    Client* c = entry.second;
    if (c->up != nullptr) {
      if (c->up->fd >= 0) close(c->up->fd);
      delete c->up;
    }
    if (c->fd >= 0) close(c->fd);
    delete c;
  }
  clients_.clear();
  for (auto& entry : pool_) {
    for (Upstream* u : entry.second) {
      if (u->fd >= 0) close(u->fd);
      delete u;
    }
  }
  pool_.clear();
  FreeGraveyard();
  if (poll_ != nullptr) {
    uv_poll_stop(poll_);
    CloseHandle(poll_);
    poll_ = nullptr;
  }
  if (timer_ != nullptr) {
    uv_timer_stop(timer_);
    CloseHandle(timer_);
    timer_ = nullptr;
  }
  if (idle_ != nullptr) {
    uv_idle_stop(idle_);
    CloseHandle(idle_);
    idle_ = nullptr;
  }
  if (report_timer_ != nullptr) {
    uv_timer_stop(report_timer_);
    CloseHandle(report_timer_);
    report_timer_ = nullptr;
  }
  if (epfd_ >= 0) close(epfd_);
  epfd_ = -1;
}

}  // namespace

void InitHttpRelay(Napi::Env env, Napi::Object exports) { exports.Set("HttpRelay", HttpRelay::Define(env)); }

}  // namespace gatehouse
