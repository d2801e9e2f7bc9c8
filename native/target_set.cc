#include "target_set.h"

#include <netinet/in.h>

#include <cstring>

namespace {

// FNV-1a over the client's address (not its port: one client, one target).
uint32_t AddressHash(const SockAddress& client) {
  const uint8_t* bytes = nullptr;
  size_t len = 0;
  if (client.family() == AF_INET) {
    bytes = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in*>(&client.storage)->sin_addr);
    len = 4;
  } else if (client.family() == AF_INET6) {
    auto* v6 = &reinterpret_cast<const sockaddr_in6*>(&client.storage)->sin6_addr;
    bool mapped = IN6_IS_ADDR_V4MAPPED(v6);
    bytes = v6->s6_addr + (mapped ? 12 : 0);  // an IPv4 client hashes the same on either listener
    len = mapped ? 4 : 16;
  }
  uint32_t hash = 2166136261u;
  for (size_t i = 0; i < len; i++) hash = (hash ^ bytes[i]) * 16777619u;
  return hash;
}

}  // namespace

TargetSet::TargetSet(std::vector<SockAddress> addresses, Balance balance)
    : addresses_(std::move(addresses)), balance_(balance), state_(new State[addresses_.size()]) {}

std::vector<uint32_t> TargetSet::Order(const SockAddress& client, uint64_t now_ns) {
  const uint32_t n = static_cast<uint32_t>(addresses_.size());
  if (n == 1) return {0};  // the common rule: nothing to choose, health or not
  std::vector<uint32_t> healthy;
  for (uint32_t i = 0; i < n; i++)
    if (state_[i].ejected_until_ns.load(std::memory_order_relaxed) <= now_ns && !state_[i].down.load(std::memory_order_relaxed))
      healthy.push_back(i);
  if (healthy.empty())
    for (uint32_t i = 0; i < n; i++) healthy.push_back(i);  // all out: better a try than a refusal

  size_t first = 0;
  switch (balance_) {
    case Balance::kFailover:
      break;
    case Balance::kRoundRobin:
      first = next_.fetch_add(1, std::memory_order_relaxed) % healthy.size();
      break;
    case Balance::kLeastConnections:
      for (size_t i = 1; i < healthy.size(); i++)
        if (state_[healthy[i]].open.load(std::memory_order_relaxed) < state_[healthy[first]].open.load(std::memory_order_relaxed))
          first = i;
      break;
    case Balance::kSourceHash:
      first = AddressHash(client) % healthy.size();
      break;
  }
  std::vector<uint32_t> order{healthy[first]};
  for (size_t i = 0; i < healthy.size(); i++)
    if (i != first) order.push_back(healthy[i]);
  return order;
}

void TargetSet::Failed(uint32_t index, uint64_t now_ns) {
  State& s = state_[index];
  if (s.failures.fetch_add(1, std::memory_order_relaxed) + 1 < kEjectAfterFailures) return;
  s.failures.store(0, std::memory_order_relaxed);
  s.ejected_until_ns.store(now_ns + kEjectForNs, std::memory_order_relaxed);
  s.ejections.fetch_add(1, std::memory_order_relaxed);
}

void TargetSet::Succeeded(uint32_t index) { state_[index].failures.store(0, std::memory_order_relaxed); }

TargetSet::Health TargetSet::HealthOf(uint32_t index, uint64_t now_ns) const {
  const State& s = state_[index];
  return {s.open.load(std::memory_order_relaxed), s.failures.load(std::memory_order_relaxed),
          s.ejected_until_ns.load(std::memory_order_relaxed) > now_ns, s.down.load(std::memory_order_relaxed),
          s.ejections.load(std::memory_order_relaxed)};
}
