// One GWLB endpoint's flow table for the tunnel: symmetric inner flow key ->
// what is needed to send that flow's packets back to GWLB (the GENEVE header
// exactly as received, GWLB's address and UDP source port, and our address
// it sent to).
//
// Shape, and why:
//  - 64 shards, each with its own mutex: UDP threads (inserting, refreshing)
//    and TUN threads (looking up) rarely meet on the same lock.
//  - Each shard is an open-addressed index (linear probing, backward-shift
//    deletion, load <= 3/4) of 8-byte slots {32-bit hash tag, entry id + 1}
//    over entries kept in fixed chunks that never move. Entries are 96
//    bytes with the GENEVE header inline up to 40 bytes (exactly GWLB's
//    three options; a header with more options goes to the heap), so a
//    million flows take about 96 MB of entries plus 11-21 MB of index:
//    growth re-hashes only the index, and a grown index is written slot by
//    slot, so RSS follows what is used.
//  - The engine caps the flows of all its tables together (Upsert's
//    `may_create`): a flood of made-up inner 5-tuples cannot grow memory
//    without bound before -i expires them.
//  - Keys are hashed with SeededFlowHash and a per-table random seed.
//  - Times are 32-bit milliseconds on the engine's clock (wrapping: only
//    differences are compared, and idle times are far below 49 days).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <vector>

#include "flow_key.h"

namespace gatehouse {

// What a TUN thread needs to send one packet of a flow back to GWLB.
struct TunnelFlowReturn {
  uint32_t gwlb_addr;   // host order: outer destination
  uint32_t local_addr;  // host order: outer source (the address GWLB sent to)
  uint16_t gwlb_port;   // outer UDP source port (GWLB's), kept as received
  uint16_t header_len;  // GENEVE header bytes copied in front of the inner packet
};

// The inbound side of a packet: the GENEVE header as received and its outer addressing.
struct TunnelFlowSource {
  const uint8_t* header;
  uint16_t header_len;  // 8..260
  uint32_t gwlb_addr;
  uint32_t local_addr;
  uint16_t gwlb_port;
};

class TunnelFlowTable {
 public:
  static constexpr size_t kShards = 64;
  static constexpr size_t kInlineHeader = 40;
  static constexpr size_t kMaxHeader = 8 + 63 * 4;  // GENEVE Opt Len is 6 bits of words

  TunnelFlowTable() {
    std::random_device rd;
    seed_ = uint64_t(rd()) << 32 | rd();
  }
  TunnelFlowTable(const TunnelFlowTable&) = delete;
  TunnelFlowTable& operator=(const TunnelFlowTable&) = delete;

  enum class Upserted { kRefreshed, kCreated, kRefused };

  // Records the flow of an inbound packet: creates it (when `may_create()`,
  // asked only then; kRefused otherwise), or refreshes its last-seen time and replaces its
  // header and addressing when GWLB changed them (a rebalanced flow arrives
  // from another GWLB node, or with a new cookie).
  template <typename MayCreate>
  Upserted Upsert(const FlowKey& key, const TunnelFlowSource& src, uint32_t now_ms, MayCreate may_create) {
    const uint64_t hash = Hash(key);
    Shard& s = shards_[hash % kShards];
    const uint32_t tag = uint32_t(hash >> 32);
    std::lock_guard<std::mutex> lock(s.mu);
    size_t slot;
    if (Entry* e = s.Find(key, tag, &slot)) {
      e->last_seen_ms = now_ms;
      if (e->gwlb_addr != src.gwlb_addr || e->local_addr != src.local_addr || e->gwlb_port != src.gwlb_port) {
        e->gwlb_addr = src.gwlb_addr;
        e->local_addr = src.local_addr;
        e->gwlb_port = src.gwlb_port;
      }
      if (e->header_len != src.header_len || memcmp(e->Header(), src.header, src.header_len) != 0)
        e->SetHeader(src.header, src.header_len);
      return Upserted::kRefreshed;
    }
    if (!may_create()) return Upserted::kRefused;
    Entry* e = s.Insert(key, tag);
    e->gwlb_addr = src.gwlb_addr;
    e->local_addr = src.local_addr;
    e->gwlb_port = src.gwlb_port;
    e->last_seen_ms = now_ms;
    e->SetHeader(src.header, src.header_len);
    size_.fetch_add(1, std::memory_order_relaxed);
    return Upserted::kCreated;
  }

  // Looks up a flow for a packet going back to GWLB. When found, copies its
  // GENEVE header so that it ends at `header_end` (the inner packet starts
  // there), fills `*out` and refreshes the flow; returns false otherwise.
  bool Lookup(const FlowKey& key, uint8_t* header_end, uint32_t now_ms, TunnelFlowReturn* out) {
    const uint64_t hash = Hash(key);
    Shard& s = shards_[hash % kShards];
    std::lock_guard<std::mutex> lock(s.mu);
    size_t slot;
    Entry* e = s.Find(key, uint32_t(hash >> 32), &slot);
    if (!e) return false;
    if (e->last_seen_ms != now_ms) e->last_seen_ms = now_ms;
    memcpy(header_end - e->header_len, e->Header(), e->header_len);
    *out = {e->gwlb_addr, e->local_addr, e->gwlb_port, e->header_len};
    return true;
  }

  // Removes the flows of shard `shard` idle for longer than `idle_ms`
  // (< 2^31); returns how many.
  size_t ExpireShard(size_t shard, uint32_t now_ms, uint32_t idle_ms) {
    Shard& s = shards_[shard % kShards];
    std::lock_guard<std::mutex> lock(s.mu);
    size_t removed = 0;
    // Walk the index; a backward shift may move a later slot into the one
    // just emptied, so stay on it until it holds a live flow or nothing.
    for (size_t i = 0; i < s.index.size();) {
      const uint64_t v = s.index[i];
      if (v == 0) {
        i++;
        continue;
      }
      Entry* e = s.At(uint32_t(v) - 1);
      // Signed: another thread may have stamped the flow after `now_ms` was read.
      if (int32_t(now_ms - e->last_seen_ms) > int32_t(idle_ms)) {
        s.EraseSlot(i);
        removed++;
        // A slot shifted back across the end of the table wraps to the
        // front, already visited: at worst it is checked again next sweep.
        continue;
      }
      i++;
    }
    size_.fetch_sub(removed, std::memory_order_relaxed);
    return removed;
  }

  size_t size() const { return size_.load(std::memory_order_relaxed); }

 private:
  uint64_t Hash(const FlowKey& key) const { return SeededFlowHash(key, seed_); }

  struct Entry {
    FlowKey key;          // 38 bytes
    uint16_t header_len;  // 0 while the entry is free
    uint16_t gwlb_port;
    uint16_t reserved;
    uint32_t gwlb_addr;
    uint32_t local_addr;
    uint32_t last_seen_ms;
    union {
      uint8_t inline_header[kInlineHeader];
      uint8_t* heap_header;
    };

    const uint8_t* Header() const { return header_len > kInlineHeader ? heap_header : inline_header; }
    void SetHeader(const uint8_t* h, uint16_t len) {
      FreeHeader();
      if (len > kInlineHeader) {
        heap_header = new uint8_t[len];
        memcpy(heap_header, h, len);
      } else {
        memcpy(inline_header, h, len);
      }
      header_len = len;
    }
    void FreeHeader() {
      if (header_len > kInlineHeader) delete[] heap_header;
      header_len = 0;
    }
  };
  static_assert(sizeof(Entry) == 96, "keep flow entries compact: a million of them must fit in ~96 MB");

  static constexpr size_t kChunk = 256;  // entries per chunk (24 KB)

  struct alignas(64) Shard {
    std::mutex mu;
    std::vector<uint64_t> index;  // {tag << 32 | (id + 1)}, 0 = empty; size a power of two
    std::vector<std::unique_ptr<Entry[]>> chunks;
    std::vector<uint32_t> free_ids;
    size_t used = 0;  // live entries
    size_t next_id = 0;

    ~Shard() {
      for (uint64_t v : index)
        if (v) At(uint32_t(v) - 1)->FreeHeader();
    }

    Entry* At(uint32_t id) { return &chunks[id / kChunk][id % kChunk]; }

    Entry* Find(const FlowKey& key, uint32_t tag, size_t* slot) {
      if (index.empty()) return nullptr;
      const size_t mask = index.size() - 1;
      for (size_t i = tag & mask;; i = (i + 1) & mask) {
        const uint64_t v = index[i];
        if (v == 0) return nullptr;
        if (uint32_t(v >> 32) == tag) {
          Entry* e = At(uint32_t(v) - 1);
          if (e->key == key) {
            *slot = i;
            return e;
          }
        }
      }
    }

    Entry* Insert(const FlowKey& key, uint32_t tag) {
      if ((used + 1) * 4 > index.size() * 3) Grow();
      uint32_t id;
      if (!free_ids.empty()) {
        id = free_ids.back();
        free_ids.pop_back();
      } else {
        if (next_id % kChunk == 0) chunks.emplace_back(new Entry[kChunk]);
        id = uint32_t(next_id++);
      }
      Entry* e = At(id);
      e->key = key;
      e->header_len = 0;
      Place(uint64_t(tag) << 32 | (uint64_t(id) + 1));
      used++;
      return e;
    }

    void Place(uint64_t v) {
      const size_t mask = index.size() - 1;
      size_t i = uint32_t(v >> 32) & mask;
      while (index[i] != 0) i = (i + 1) & mask;
      index[i] = v;
    }

    void Grow() {
      std::vector<uint64_t> old;
      old.swap(index);
      index.assign(old.empty() ? 16 : old.size() * 2, 0);
      for (uint64_t v : old)
        if (v) Place(v);
    }

    // Frees slot i's entry and closes the gap (backward shift): every later
    // slot of the probe run that may move to i does, so lookups never need
    // tombstones.
    void EraseSlot(size_t i) {
      const uint32_t id = uint32_t(index[i]) - 1;
      At(id)->FreeHeader();
      free_ids.push_back(id);
      used--;
      const size_t mask = index.size() - 1;
      size_t j = i;
      for (;;) {
        index[i] = 0;
        for (;;) {
          j = (j + 1) & mask;
          if (index[j] == 0) return;
          const size_t home = uint32_t(index[j] >> 32) & mask;
          // index[j] may fill the hole at i unless its home lies in (i, j] (cyclically).
          const bool home_between = i <= j ? (i < home && home <= j) : (i < home || home <= j);
          if (!home_between) break;
        }
        index[i] = index[j];
        i = j;
      }
    }
  };

  uint64_t seed_;
  Shard shards_[kShards];
  std::atomic<size_t> size_{0};
};

}  // namespace gatehouse
