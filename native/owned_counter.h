// A counter that one thread (its engine's) writes and any thread reads: a
// relaxed load and store, never a locked read-modify-write on the hot path.
#pragma once
#include <atomic>
#include <cstdint>

class OwnedCounter {
 public:
  void Add(uint64_t n = 1) { value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void Sub(uint64_t n = 1) { value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
  uint64_t Get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};
