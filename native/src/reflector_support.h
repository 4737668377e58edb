// Small pieces the reflector and the generator share: reading an options
// object handed over from TypeScript, and a stop signal their threads can
// sleep on. (Named after the reflector, which came first.)
//
// src/native/*.ts validates every option with user-facing messages; the
// checks here only keep bad input from turning into undefined behaviour.
#pragma once

#include <errno.h>
#include <napi.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <string>

namespace gatehouse {

// Thrown (as a JavaScript TypeError) when an option is missing or out of range.
struct OptionError {
  std::string message;
};

inline Napi::Value OptionValue(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) throw OptionError{std::string("missing option ") + key};
  return v;
}

inline double OptionNumber(const Napi::Object& o, const char* key, double lo, double hi) {
  Napi::Value v = OptionValue(o, key);
  if (!v.IsNumber()) throw OptionError{std::string("option ") + key + " must be a number"};
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || std::floor(d) != d)
    throw OptionError{std::string("option ") + key + " out of range"};
  return d;
}

inline std::string OptionString(const Napi::Object& o, const char* key) {
  Napi::Value v = OptionValue(o, key);
  if (!v.IsString()) throw OptionError{std::string("option ") + key + " must be a string"};
  return v.As<Napi::String>().Utf8Value();
}

inline bool OptionBool(const Napi::Object& o, const char* key) {
  Napi::Value v = OptionValue(o, key);
  if (!v.IsBoolean()) throw OptionError{std::string("option ") + key + " must be a boolean"};
  return v.As<Napi::Boolean>().Value();
}

inline uint64_t OptionU64(const Napi::Object& o, const char* key) {
  Napi::Value v = OptionValue(o, key);
  if (!v.IsBigInt()) throw OptionError{std::string("option ") + key + " must be a bigint"};
  bool lossless = false;
  uint64_t x = v.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) throw OptionError{std::string("option ") + key + " must fit in 64 unsigned bits"};
  return x;
}

// A stop request the engine threads see both as a flag (checked between
// batches) and as a readable eventfd (so a thread asleep in poll wakes at
// once instead of after a timeout). Nobody reads the eventfd: once written it
// stays readable, which wakes every thread.
class StopSignal {
 public:
  StopSignal() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~StopSignal() {
    if (fd_ >= 0) close(fd_);
  }
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  bool ok() const { return fd_ >= 0; }
  void Raise() {
    stopped_.store(true, std::memory_order_release);
    uint64_t one = 1;
    ssize_t r = write(fd_, &one, sizeof one);
    (void)r;  // only fails if the counter would overflow: already readable
  }
  bool raised() const { return stopped_.load(std::memory_order_acquire); }

  // Waits until `fd` is readable or the stop signal is raised; returns false
  // when stopping. `timeout_ms` bounds the wait (-1 = no bound).
  bool WaitReadable(int fd, int timeout_ms = -1) const {
    pollfd p[2] = {{fd, POLLIN, 0}, {fd_, POLLIN, 0}};
    poll(p, 2, timeout_ms);
    return !raised();
  }

 private:
  int fd_;
  std::atomic<bool> stopped_{false};
};

// Sends msgs[0, n) with sendmmsg (one call when the kernel takes them all).
// A full socket buffer is waited out a bounded number of times, so a slow
// consumer slows the engine instead of losing packets; a datagram the kernel
// refuses for good (EMSGSIZE, EPERM from a firewall rule...) is skipped and
// counted in `*errors`. Adds the bytes accepted to `*bytes`; returns the
// number of datagrams sent. Afterwards msgs[k].msg_len is kNotSent for a
// datagram that was dropped.
constexpr unsigned kNotSent = ~0u;
inline size_t SendAll(int fd, mmsghdr* msgs, size_t n, const StopSignal& stop, uint64_t* bytes,
                      uint64_t* errors) {
  for (size_t k = 0; k < n; k++) msgs[k].msg_len = kNotSent;
  size_t done = 0, sent = 0;
  int waits = 0;
  while (done < n) {
    int r = sendmmsg(fd, msgs + done, unsigned(n - done), 0);
    if (r > 0) {
      for (size_t k = done; k < done + size_t(r); k++) *bytes += msgs[k].msg_len;
      done += size_t(r);
      sent += size_t(r);
      continue;
    }
    const int e = errno;
    if (r < 0 && e == EINTR) continue;
    if (r < 0 && (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) && waits < 64 && !stop.raised()) {
      waits++;
      if (e == ENOBUFS) {
        // No socket event announces free device buffers: nap briefly.
        timespec nap{0, 100 * 1000};
        nanosleep(&nap, nullptr);
      } else {
        pollfd p{fd, POLLOUT, 0};
        poll(&p, 1, 10);
      }
      continue;
    }
    (*errors)++;
    done++;
  }
  return sent;
}

// Receive loops call this after a batch of `got` datagrams (batch size
// `batch`). A full batch means more are waiting: go on at once. Several
// datagrams queued while the last batch was handled means heavy traffic: nap
// briefly, so datagrams gather into fuller batches and whoever sends them
// need not wake this thread for each one (on a VM a wakeup costs about as
// much as moving a packet). Under light traffic (one or two at a time)
// return at once: the loop then sleeps in poll and answers the next datagram
// without delay.
inline void PaceReceive(size_t got, size_t batch) {
  if (got >= batch || got < 4) return;
  timespec nap{0, 30 * 1000};
  nanosleep(&nap, nullptr);
}

// Lets this thread's short naps end close to when they were asked to
// (the default timer slack is 50 us, longer than the naps themselves).
inline void TightenTimerSlack() { prctl(PR_SET_TIMERSLACK, 5000UL, 0, 0, 0); }

inline uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

// Names the calling thread (shown by top -H, perf); at most 15 characters.
inline void NameThread(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace gatehouse
