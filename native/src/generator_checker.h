// The generator's packet logic, kept apart from its sockets and threads:
// templates, the 24-byte stamp and its checksum fix-up, and the checker that
// puts every reply into exactly one counter. Nothing here allocates or locks
// once the generator runs.
#pragma once

#include <netinet/in.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "checksum.h"
#include "geneve.h"

namespace gatehouse {

// Counter order: the contract in src/native/binding.ts (GeneratorOptions).
enum : size_t {
  kGenSent,
  kGenSentBytes,
  kGenSentMalformed,
  kGenSendErrors,
  kGenReceived,
  kGenReceivedBytes,
  kGenValid,
  kGenInvalidNotFromTarget,
  kGenInvalidGeneve,
  kGenInvalidUnknownFlow,
  kGenInvalidHeaderMismatch,
  kGenInvalidInnerMismatch,
  kGenInvalidDuplicate,
  kGenRxOverflow,
  kGenSenderDone,
  kGenSentMalformedFirst,                                                    // + GeneveReason
  kGenReturnedMalformedFirst = kGenSentMalformedFirst + kGeneveReasonCount,  // + GeneveReason
  kGenInvalidGeneveFirst = kGenReturnedMalformedFirst + kGeneveReasonCount,  // + GeneveReason
  kGenCounterCount = kGenInvalidGeneveFirst + kGeneveReasonCount,
};

constexpr size_t kStampLen = 24;       // u64 run tag, u64 sequence, u64 send time (ns), big-endian
constexpr size_t kMaxDatagram = 9216;  // longest template (and reply) the generator handles
constexpr size_t kNoOffset = SIZE_MAX;

inline uint64_t LoadBe64(const uint8_t* p) { return uint64_t(LoadBe32(p)) << 32 | LoadBe32(p + 4); }
inline void StoreBe64(uint8_t* p, uint64_t v) {
  StoreBe32(p, uint32_t(v >> 32));
  StoreBe32(p + 4, uint32_t(v));
}

// One template, as the engine uses it. Offsets are from the start of bytes.
struct PacketTemplate {
  std::vector<uint8_t> bytes;
  int malformed_kind = -1;  // -1 = good; else a GeneveReason index
  size_t socket = 0;        // index of the sending socket
  // Good templates only:
  size_t header_len = 0;  // GENEVE header (8 + options)
  size_t stamp = 0;
  size_t checksum = kNoOffset;  // inner L4 checksum covering the stamp
  size_t ttl = 0;
  size_t ip_checksum = kNoOffset;
  bool udp = false;        // UDP: a computed 0 is sent as 0xffff
  bool stamp_odd = false;  // stamp starts on an odd byte of the checksummed words
  uint32_t stamp_sum = 0;  // one's-complement sum of the template's stamp area, aligned
  // Byte ranges the inner comparison skips (stamp and checksum, checked on
  // their own; TTL and IPv4 header checksum with ignoreTtl), sorted, merged.
  std::vector<std::pair<size_t, size_t>> skips;
};

// One's-complement sum of the 24 stamp bytes as they fall in the checksum's
// 16-bit words: a stamp at an odd offset is byte-swapped (RFC 1071 2(B)).
inline uint32_t StampSum(const uint8_t* stamp, bool odd) {
  uint32_t s = ChecksumPartial(stamp, kStampLen);
  return odd ? ((s & 0xff) << 8) | (s >> 8) : s;
}

// The L4 checksum after the stamp area changed from `old_sum` to `new_sum`
// (RFC 1624 eqn. 3 applied to the whole area at once).
inline uint16_t AdjustForStamp(uint16_t csum, uint32_t old_sum, uint32_t new_sum, bool udp) {
  uint32_t s = uint32_t(uint16_t(~csum)) + uint16_t(~old_sum) + new_sum;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  uint16_t c = uint16_t(~s);
  return (udp && c == 0) ? 0xffff : c;  // RFC 768: 0 would mean "no checksum"
}

// Writes the stamp and fixes the checksum in `p` (a copy of t.bytes).
inline void StampPacket(uint8_t* p, const PacketTemplate& t, uint64_t run_tag, uint64_t seq, uint64_t ns) {
  uint8_t* s = p + t.stamp;
  StoreBe64(s, run_tag);
  StoreBe64(s + 8, seq);
  StoreBe64(s + 16, ns);
  if (t.checksum != kNoOffset)
    StoreBe16(p + t.checksum,
              AdjustForStamp(LoadBe16(p + t.checksum), t.stamp_sum, StampSum(s, t.stamp_odd), t.udp));
}

// Log-linear latency buckets (src/native/latency.ts is the reader): values
// below 16 ns get a bucket each; above, 16 sub-buckets per power of two.
constexpr size_t kLatencyBuckets = 64 * 16;
inline size_t LatencyBucket(uint64_t v) {
  if (v < 16) return size_t(v);
  const int e = 63 - __builtin_clzll(v);
  return size_t(e - 3) * 16 + size_t((v >> (e - 4)) & 15);
}

// Shared with JavaScript as two BigUint64Arrays. Only the receiver thread
// writes, so plain load + store (no read-modify-write) suffices.
struct LatencyHistogram {
  std::unique_ptr<std::atomic<uint64_t>[]> buckets { new std::atomic<uint64_t>[ kLatencyBuckets ] };
  std::unique_ptr<std::atomic<uint64_t>[]> max { new std::atomic<uint64_t>[ 1 ] };
  LatencyHistogram() {
    for (size_t i = 0; i < kLatencyBuckets; i++) buckets[i].store(0, std::memory_order_relaxed);
    max[0].store(0, std::memory_order_relaxed);
  }
  void Record(uint64_t ns) {
    std::atomic<uint64_t>& b = buckets[LatencyBucket(ns)];
    b.store(b.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (ns > max[0].load(std::memory_order_relaxed)) max[0].store(ns, std::memory_order_relaxed);
  }
};

// Which sequence numbers already came back: a ring of bits over the newest
// `bits` numbers seen. Sized from the run's packet count when known, so a
// bounded run detects every duplicate; unbounded runs forget numbers more
// than `bits` behind the newest.
class SeenSet {
 public:
  enum Result { kFirst, kDuplicate, kTooOld };

  explicit SeenSet(uint64_t expected) {
    uint64_t bits = 1ull << 16;
    const uint64_t want = expected ? expected : (1ull << 24);
    while (bits < want && bits < (1ull << 28)) bits <<= 1;
    bits_ = limit_ = bits;
    words_.assign(bits / 64, 0);
  }

  Result Mark(uint64_t seq) {
    if (seq >= limit_) {
      Advance(seq);
    } else if (limit_ - seq > bits_) {
      return kTooOld;
    }
    uint64_t& w = words_[(seq & (bits_ - 1)) >> 6];
    const uint64_t bit = 1ull << (seq & 63);
    if (w & bit) return kDuplicate;
    w |= bit;
    return kFirst;
  }

 private:
  // Slides the window [limit_ - bits_, limit_) forward to cover `seq`,
  // clearing the words that now stand for newer numbers.
  void Advance(uint64_t seq) {
    const uint64_t next = (seq | 63) + 1;
    if (next - limit_ >= bits_) {
      std::fill(words_.begin(), words_.end(), 0);
    } else {
      for (uint64_t s = limit_; s < next; s += 64) words_[(s & (bits_ - 1)) >> 6] = 0;
    }
    limit_ = next;
  }

  uint64_t bits_, limit_;
  std::vector<uint64_t> words_;
};

// Classifies one reply. Counters are returned as indices (the caller adds
// them up per batch); `extra` is the per-reason sub-counter of invalid_geneve.
class ReplyChecker {
 public:
  struct Verdict {
    size_t counter;
    size_t extra = kNoOffset;
  };

  ReplyChecker(const std::vector<PacketTemplate>* good, const std::vector<PacketTemplate>* malformed,
               const std::vector<uint16_t>* socket_ports, uint32_t target, uint64_t run_tag,
               uint64_t expected, std::shared_ptr<LatencyHistogram> latency)
      : good_(*good),
        malformed_(*malformed),
        socket_ports_(*socket_ports),
        target_(target),
        run_tag_(run_tag),
        seen_(expected),
        latency_(std::move(latency)),
        our_ports_(65536 / 64, 0) {
    for (uint16_t p : socket_ports_) our_ports_[p >> 6] |= 1ull << (p & 63);
    for (const PacketTemplate& t : good_)
      if (std::find(stamp_offsets_.begin(), stamp_offsets_.end(), t.stamp) == stamp_offsets_.end())
        stamp_offsets_.push_back(t.stamp);
  }

  // `from` in network order as received; `sent_seqs` = how many good
  // sequence numbers the sender has handed out; `start_ns` = sender start.
  Verdict Check(const uint8_t* p, size_t len, const sockaddr_in& from, uint64_t now_ns, uint64_t sent_seqs,
                uint64_t start_ns) {
    // From the target, and to one of our flows' ports (targets reply from
    // the port GWLB sent from).
    const uint16_t sport = ntohs(from.sin_port);
    if (ntohl(from.sin_addr.s_addr) != target_ || !(our_ports_[sport >> 6] >> (sport & 63) & 1))
      return {kGenInvalidNotFromTarget};

    GeneveInfo g;
    GeneveReason reason = DecodeGeneve(p, len, &g);
    if (reason != GeneveReason::kOk) {
      for (const PacketTemplate& m : malformed_)
        if (m.bytes.size() == len && memcmp(m.bytes.data(), p, len) == 0)
          return {kGenReturnedMalformedFirst + size_t(m.malformed_kind)};
      return {kGenInvalidGeneve, kGenInvalidGeneveFirst + size_t(reason)};
    }

    // Find our stamp: the run tag at one of the templates' stamp offsets.
    const PacketTemplate* t = nullptr;
    uint64_t seq = 0;
    for (size_t off : stamp_offsets_) {
      if (len < off + kStampLen || LoadBe64(p + off) != run_tag_) continue;
      seq = LoadBe64(p + off + 8);
      const PacketTemplate& c = good_[seq % good_.size()];
      if (c.stamp == off) {
        t = &c;
        break;
      }
    }
    if (!t || seq >= sent_seqs) return {kGenInvalidUnknownFlow};

    if (g.header_len != t->header_len || memcmp(p, t->bytes.data(), t->header_len) != 0 ||
        sport != socket_ports_[t->socket])
      return {kGenInvalidHeaderMismatch};

    if (len != t->bytes.size() || !InnerMatches(p, *t)) return {kGenInvalidInnerMismatch};
    // The time is not compared with anything the sender kept, but the L4
    // checksum covers it (checked in InnerMatches) and it must be plausible.
    const uint64_t sent_ns = LoadBe64(p + t->stamp + 16);
    if (sent_ns < start_ns || sent_ns > now_ns) return {kGenInvalidInnerMismatch};

    switch (seen_.Mark(seq)) {
      case SeenSet::kDuplicate:
        return {kGenInvalidDuplicate};
      case SeenSet::kTooOld:
        return {kGenInvalidUnknownFlow};
      case SeenSet::kFirst:
        break;
    }
    latency_->Record(now_ns - sent_ns);
    return {kGenValid};
  }

 private:
  // Inner packet equal to the template outside the skipped ranges, and the
  // L4 checksum equal to the template's adjusted for the stamp received.
  bool InnerMatches(const uint8_t* p, const PacketTemplate& t) const {
    const uint8_t* q = t.bytes.data();
    size_t at = t.header_len;
    for (const auto& s : t.skips) {
      if (memcmp(p + at, q + at, s.first - at) != 0) return false;
      at = s.second;
    }
    if (memcmp(p + at, q + at, t.bytes.size() - at) != 0) return false;
    if (t.checksum == kNoOffset) return true;
    const uint16_t want =
        AdjustForStamp(LoadBe16(q + t.checksum), t.stamp_sum, StampSum(p + t.stamp, t.stamp_odd), t.udp);
    return LoadBe16(p + t.checksum) == want;
  }

  const std::vector<PacketTemplate>& good_;
  const std::vector<PacketTemplate>& malformed_;
  const std::vector<uint16_t>& socket_ports_;
  const uint32_t target_;  // host order
  const uint64_t run_tag_;
  std::vector<size_t> stamp_offsets_;
  SeenSet seen_;
  std::shared_ptr<LatencyHistogram> latency_;
  std::vector<uint64_t> our_ports_;  // bitmap of the sending sockets' ports
};

}  // namespace gatehouse
