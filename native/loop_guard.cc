#include "loop_guard.h"

#include <netinet/in.h>
#include <string.h>

#include <algorithm>
#include <utility>

GuardEndpoint DialledEndpoint(const SockAddress& addr) {
  GuardEndpoint out;
  if (addr.family() == AF_INET) {
    auto* v4 = reinterpret_cast<const sockaddr_in*>(&addr.storage);
    uint32_t ip = v4->sin_addr.s_addr == htonl(INADDR_ANY) ? htonl(INADDR_LOOPBACK) : v4->sin_addr.s_addr;
    out.addr[10] = out.addr[11] = 0xff;
    memcpy(&out.addr[12], &ip, 4);
    out.port = ntohs(v4->sin_port);
  } else if (addr.family() == AF_INET6) {
    auto* v6 = reinterpret_cast<const sockaddr_in6*>(&addr.storage);
    memcpy(out.addr.data(), &v6->sin6_addr, 16);
    out.port = ntohs(v6->sin6_port);
    if (IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr)) {
      out.addr[15] = 1;  // ::1
    } else if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr) && !memcmp(&out.addr[12], "\0\0\0\0", 4)) {
      uint32_t loopback = htonl(INADDR_LOOPBACK);  // ::ffff:0.0.0.0 goes to 127.0.0.1
      memcpy(&out.addr[12], &loopback, 4);
    }
  }
  return out;
}

uint16_t BindAnyPort(int fd, int family) {
  SockAddress any;
  any.storage.ss_family = static_cast<sa_family_t>(family);  // the rest zero: wildcard, port 0
  any.len = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  if (bind(fd, any.get(), any.len) != 0) return 0;
  SockAddress bound;
  bound.len = sizeof(bound.storage);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound.storage), &bound.len) != 0) return 0;
  return DialledEndpoint(bound).port;
}

LoopGuard::Entry& LoopGuard::Entry::operator=(Entry&& other) noexcept {
  if (this != &other) {
    Release();
    guard_ = std::exchange(other.guard_, nullptr);
    port_ = other.port_;
    serial_ = other.serial_;
  }
  return *this;
}

void LoopGuard::Entry::Release() {
  if (guard_) std::exchange(guard_, nullptr)->Remove(port_, serial_);
}

LoopGuard::Entry LoopGuard::Add(uint16_t local_port, const SockAddress& target, std::vector<uint32_t> path) {
  Entry entry;
  std::lock_guard<std::mutex> lock(mutex_);
  entry.guard_ = this;
  entry.port_ = local_port;
  entry.serial_ = next_serial_++;
  by_port_[local_port].push_back({entry.serial_, DialledEndpoint(target), std::move(path)});
  count_.fetch_add(1, std::memory_order_relaxed);
  return entry;
}

bool LoopGuard::HasPort(uint16_t peer_port) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return by_port_.count(peer_port) != 0;
}

std::optional<std::vector<uint32_t>> LoopGuard::Find(uint16_t peer_port, const SockAddress& dialled) const {
  GuardEndpoint want = DialledEndpoint(dialled);
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = by_port_.find(peer_port);
  if (it == by_port_.end()) return std::nullopt;
  for (const Item& item : it->second)
    if (item.target == want) return item.path;
  return std::nullopt;
}

void LoopGuard::Remove(uint16_t port, uint64_t serial) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = by_port_.find(port);
  if (it == by_port_.end()) return;
  auto& items = it->second;
  auto gone = std::remove_if(items.begin(), items.end(), [&](const Item& item) { return item.serial == serial; });
  if (gone == items.end()) return;
  items.erase(gone, items.end());
  if (items.empty()) by_port_.erase(it);
  count_.fetch_sub(1, std::memory_order_relaxed);
}
