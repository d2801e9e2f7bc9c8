// A rule's upstream targets and how a new connection picks among them:
// failover (in order), round robin, least connections or source hash. A
// target whose connects fail kEjectAfterFailures times in a row is left out
// for kEjectForNs (passive health), and so is one an active health check
// found down; if every target is out, all are tried.
// Shared by the engines of a listener group, so picks and health are the
// group's, not one thread's; replaced whole when a reload changes them.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "sock_address.h"

enum class Balance : uint8_t { kFailover, kRoundRobin, kLeastConnections, kSourceHash };

class TargetSet {
 public:
  static constexpr uint32_t kEjectAfterFailures = 3;
  static constexpr uint64_t kEjectForNs = 10'000'000'000;  // 10 s

  TargetSet(std::vector<SockAddress> addresses, Balance balance);

  const std::vector<SockAddress>& addresses() const { return addresses_; }
  const SockAddress& front() const { return addresses_.front(); }

  // The targets to try for a connection from `client`, first pick first,
  // then the other healthy ones in config order.
  std::vector<uint32_t> Order(const SockAddress& client, uint64_t now_ns);
  void Failed(uint32_t index, uint64_t now_ns);
  void Succeeded(uint32_t index);
  // Active health checks (the control plane's): a down target is left out like an ejected one.
  void SetDown(uint32_t index, bool down) { state_[index].down.store(down, std::memory_order_relaxed); }

  struct Health {
    uint32_t open = 0;
    uint32_t consecutive_failures = 0;
    bool ejected = false;
    bool down = false;
    uint64_t ejections = 0;
  };
  Health HealthOf(uint32_t index, uint64_t now_ns) const;

 private:
  friend class TargetSlot;
  struct State {
    std::atomic<uint32_t> open{0};
    std::atomic<uint32_t> failures{0};
    std::atomic<uint64_t> ejected_until_ns{0};
    std::atomic<uint64_t> ejections{0};
    std::atomic<bool> down{false};
  };

  std::vector<SockAddress> addresses_;
  Balance balance_;
  std::unique_ptr<State[]> state_;
  std::atomic<uint32_t> next_{0};
};

// A connection's place among its target's open connections (least connections).
class TargetSlot {
 public:
  TargetSlot() = default;
  void Take(std::shared_ptr<TargetSet> set, uint32_t index) {
    Release();
    set->state_[index].open.fetch_add(1, std::memory_order_relaxed);
    set_ = std::move(set);
    index_ = index;
  }
  ~TargetSlot() { Release(); }
  TargetSlot(const TargetSlot&) = delete;
  TargetSlot& operator=(const TargetSlot&) = delete;

 private:
  void Release() {
    if (set_) set_->state_[index_].open.fetch_sub(1, std::memory_order_relaxed);
    set_.reset();
  }
  std::shared_ptr<TargetSet> set_;
  uint32_t index_ = 0;
};
