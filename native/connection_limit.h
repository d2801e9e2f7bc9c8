// A rule's cap on open connections, shared by the engines of its listener
// group (each holds a copy of the listener's config, and so of this pointer).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>

struct ConnectionLimit {
  std::atomic<uint32_t> max{0};  // 0: no limit; changed live by a reload
  std::atomic<uint32_t> open{0};
};

// One open connection's place under the limit, given back when it is destroyed.
class LimitSlot {
 public:
  LimitSlot() = default;
  // Takes a place, or leaves *this empty (false) when the rule is full.
  bool Acquire(std::shared_ptr<ConnectionLimit> limit) {
    uint32_t max = limit->max.load(std::memory_order_relaxed);
    uint32_t was = limit->open.fetch_add(1, std::memory_order_relaxed);
    if (max && was >= max) {
      limit->open.fetch_sub(1, std::memory_order_relaxed);
      return false;
    }
    limit_ = std::move(limit);
    return true;
  }
  ~LimitSlot() {
    if (limit_) limit_->open.fetch_sub(1, std::memory_order_relaxed);
  }
  LimitSlot(const LimitSlot&) = delete;
  LimitSlot& operator=(const LimitSlot&) = delete;

 private:
  std::shared_ptr<ConnectionLimit> limit_;
};
