// Counters shared between native threads and TypeScript without copying.
//
// A CounterBlock owns an array of 64-bit atomics. TypeScript sees it as a
// BigUint64Array over an external ArrayBuffer (ExportCounters), so a health
// probe or metrics scrape reads live values with no call into C++. Threads
// update with relaxed atomics: each value is exact, a snapshot of several is
// not (good enough for monitoring, and the engines' own final totals are read
// after their threads stopped).
#pragma once

#include <napi.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gatehouse {

class CounterBlock {
 public:
  explicit CounterBlock(std::vector<std::string> names)
      : names_(std::move(names)), values_(new std::atomic<uint64_t>[names_.size()]) {
    static_assert(sizeof(std::atomic<uint64_t>) == 8, "atomic<uint64_t> must be 8 bytes");
    for (size_t i = 0; i < names_.size(); i++) values_[i].store(0, std::memory_order_relaxed);
  }
  void Add(size_t i, uint64_t n = 1) { values_[i].fetch_add(n, std::memory_order_relaxed); }
  void Set(size_t i, uint64_t v) { values_[i].store(v, std::memory_order_relaxed); }
  uint64_t Get(size_t i) const { return values_[i].load(std::memory_order_relaxed); }
  size_t size() const { return names_.size(); }
  const std::vector<std::string>& names() const { return names_; }
  void* data() { return values_.get(); }

 private:
  std::vector<std::string> names_;
  std::unique_ptr<std::atomic<uint64_t>[]> values_;
};

// Exposes `block` to JavaScript as { names: string[], values: BigUint64Array }.
// `owner` (a shared_ptr to whatever holds the block) is kept alive by the
// ArrayBuffer's finalizer, so JS may keep reading after the engine stopped.
template <typename Owner>
Napi::Object ExportCounters(Napi::Env env, CounterBlock* block, std::shared_ptr<Owner> owner) {
  auto* keep = new std::shared_ptr<Owner>(std::move(owner));
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
      env, block->data(), block->size() * 8, [](Napi::Env, void*, std::shared_ptr<Owner>* k) { delete k; },
      keep);
  Napi::Array names = Napi::Array::New(env, block->size());
  for (size_t i = 0; i < block->size(); i++) names.Set(uint32_t(i), block->names()[i]);
  Napi::Object out = Napi::Object::New(env);
  out.Set("names", names);
  out.Set("values", Napi::BigUint64Array::New(env, block->size(), ab, 0));
  return out;
}

}  // namespace gatehouse
