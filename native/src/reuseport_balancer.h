// Load-adaptive spreading of GENEVE over an engine's UDP threads (tunnel.cc,
// inspect.cc). Each thread that receives pays its own wakeup per burst, so
// at moderate rates several threads cost more CPU than one doing all the
// work; under load one thread is not enough. So while the UDP threads are
// lightly loaded a reuseport program steers every datagram to the first
// socket, and when that thread is busy more than kSpreadAbove of a core
// (measured on its CPU clock every kBalanceMs) the kernel spreads datagrams
// over all sockets again, until all UDP threads together use less than
// kConsolidateBelow. A flow moves between threads only at these switches (a
// few packets may be reordered then).
#pragma once

#include <pthread.h>
#include <time.h>

#include <cstdint>
#include <vector>

#include "tunnel_support.h"

namespace gatehouse {

class ReuseportBalancer {
 public:
  static constexpr uint64_t kBalanceMs = 100;
  static constexpr double kSpreadAbove = 0.5;
  static constexpr double kConsolidateBelow = 0.25;

  // `first_fd`: the group's first socket. Starts consolidated when there
  // are several sockets and the kernel lets the program go again too.
  void Open(int first_fd, size_t sockets) {
    fd_ = first_fd;
    if (sockets < 2) return;
    enabled_ = SteerReuseportToFirst(fd_) && SpreadReuseport(fd_) && SteerReuseportToFirst(fd_);
    consolidated_ = enabled_;
    if (!enabled_) SpreadReuseport(fd_);
  }

  // Each UDP thread, in socket order, once started.
  void AddThread(pthread_t t) {
    clockid_t clock;
    if (pthread_getcpuclockid(t, &clock) != 0) enabled_ = false;
    clocks_.push_back(clock);
    cpu_ns_.push_back(0);
  }

  // Called by one thread (the housekeeper) every tick.
  void Tick(uint64_t now_ms) {
    if (!enabled_ || now_ms - last_ms_ < kBalanceMs) return;
    const uint64_t elapsed_ms = now_ms - last_ms_;
    last_ms_ = now_ms;
    double total = 0, first = 0;
    bool sampled = true;
    for (size_t i = 0; i < clocks_.size(); i++) {
      timespec ts;
      if (clock_gettime(clocks_[i], &ts) != 0) return;  // the thread is ending
      const uint64_t ns = uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
      const double busy = double(ns - cpu_ns_[i]) / (double(elapsed_ms) * 1e6);
      sampled = sampled && cpu_ns_[i] != 0;
      cpu_ns_[i] = ns;
      total += busy;
      if (i == 0) first = busy;
    }
    if (!sampled) return;  // the first sample only sets the baseline
    if (consolidated_ && first > kSpreadAbove) {
      if (SpreadReuseport(fd_)) consolidated_ = false;
    } else if (!consolidated_ && total < kConsolidateBelow) {
      if (SteerReuseportToFirst(fd_)) consolidated_ = true;
    }
  }

 private:
  int fd_ = -1;
  bool enabled_ = false;
  bool consolidated_ = false;  // every datagram goes to the first socket
  uint64_t last_ms_ = 0;
  std::vector<clockid_t> clocks_;
  std::vector<uint64_t> cpu_ns_;
};

}  // namespace gatehouse
