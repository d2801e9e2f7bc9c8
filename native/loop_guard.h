// The runtime last defence against forwarding loops (config validation,
// src/rules/loops.ts, is the first): the upstream sockets of guarded
// listeners, shared by every engine of a group, so that an engine can tell
// when a connection it accepts is one of our own upstream connects.
//
// Key: (local port, dialled address). A guarded upstream socket is bound to
// port 0 of the wildcard address before connect, which fixes its port (and
// keeps it exclusive on this host) before any SYN leaves; its local address
// is only chosen by connect, so the other half of the key is where it goes.
// An accepted socket matches when its peer port and its own local address
// (what the peer dialled) equal a registered pair.
//
// Each entry carries the rules its connection already passed through, so a
// chain of listeners that ends at a real service (a → b → server, which the
// config allows) works, and only a return to a rule on the path is a loop.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "sock_address.h"

// An address in one form for both families (IPv4 as IPv4-mapped IPv6: a
// dual-stack listener sees IPv4 peers that way) plus the port.
struct GuardEndpoint {
  std::array<uint8_t, 16> addr{};
  uint16_t port = 0;
  bool operator==(const GuardEndpoint& other) const { return addr == other.addr && port == other.port; }
};

// Where connect() to `addr` really goes: 0.0.0.0 and :: mean loopback.
GuardEndpoint DialledEndpoint(const SockAddress& addr);

// Binds fd (a fresh socket of `family`) to port 0 of the family's wildcard
// address and returns the port the kernel chose; 0 with errno on failure.
uint16_t BindAnyPort(int fd, int family);

class LoopGuard {
 public:
  // One registered upstream socket; unregisters when destroyed.
  class Entry {
   public:
    Entry() = default;
    Entry(Entry&& other) noexcept { *this = std::move(other); }
    Entry& operator=(Entry&& other) noexcept;
    ~Entry() { Release(); }

   private:
    friend class LoopGuard;
    void Release();
    LoopGuard* guard_ = nullptr;
    uint16_t port_ = 0;
    uint64_t serial_ = 0;
  };

  // An upstream socket bound to local_port, connecting to `target`, for a
  // connection that has passed through the rules of `path` (the last one is
  // the rule whose listener accepted it).
  Entry Add(uint16_t local_port, const SockAddress& target, std::vector<uint32_t> path);

  // The accept path's only cost while nothing is registered. Relaxed is
  // enough: registration happens before connect(), and the connection can
  // only reach accept() through the kernel's own locking after that.
  bool Active() const { return count_.load(std::memory_order_relaxed) != 0; }
  // First, cheap step on accept: could a peer with this port be ours?
  bool HasPort(uint16_t peer_port) const;
  // Second step: the path of our upstream socket with this port that
  // dialled `dialled` (the accepted socket's local address), if any.
  std::optional<std::vector<uint32_t>> Find(uint16_t peer_port, const SockAddress& dialled) const;

 private:
  struct Item {
    uint64_t serial;
    GuardEndpoint target;
    std::vector<uint32_t> path;
  };
  void Remove(uint16_t port, uint64_t serial);

  mutable std::mutex mutex_;
  std::unordered_map<uint16_t, std::vector<Item>> by_port_;
  uint64_t next_serial_ = 1;
  std::atomic<size_t> count_{0};
};
