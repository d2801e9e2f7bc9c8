// A rule's listening socket and the settings its new connections copy.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "connection_limit.h"
#include "sock_address.h"
#include "target_set.h"
#include "unique_fd.h"
#include "upstream_socket.h"

enum class Datapath { kSplice, kUserspace };

struct ListenerConfig {
  uint32_t rule_id = 0;
  SockAddress bind;
  bool dual_stack = false;
  int backlog = 511;
  std::shared_ptr<TargetSet> targets;  // never null
  uint32_t connect_timeout_ms = 5000;
  uint32_t idle_timeout_ms = 0;
  Datapath datapath = Datapath::kSplice;
  uint32_t budget_bytes = 0;
  uint32_t sndbuf_bytes = 0;
  // Splice datapath: relay the first bytes in user space and move the
  // connection into the kernel once it has carried this many (0: at once).
  uint32_t splice_after_bytes = 0;
  // A flow that carries splice_after_bytes within 10 ms stays on the splice(2) relay.
  bool bulk_on_relay = false;
  // The target could reach one of our own listeners: bind and register each
  // upstream socket with the group's LoopGuard (2 syscalls per connection).
  bool loop_guard = false;
  // Connect to the address the client dialled (getsockname of the accepted
  // socket: an intercepted connection's original destination); targets is empty.
  bool original_destination = false;
  // Each connection starts with a PROXY protocol header (v1 or v2) from a
  // trusted load balancer: read it before connecting, and take its client.
  bool accept_proxy = false;
  // IP(V6)_TRANSPARENT on the listening sockets (dual-stack ones: the flag is shared).
  bool transparent = false;
  UpstreamOptions upstream;
  // Shared by the group's engines: never null.
  std::shared_ptr<ConnectionLimit> limit = std::make_shared<ConnectionLimit>();
};

// Opens `count` non-blocking listening sockets for config, on the caller's
// thread so bind errors reach JS synchronously. With count > 1 they form one
// SO_REUSEPORT group (the kernel spreads new connections over them, also
// after sk_lookup chose one). Throws SysError naming the address, also when
// anyone already listens there (a reuseport group must not join a stranger's).
std::vector<UniqueFd> OpenListenerGroup(const ListenerConfig& config, int count);

// SO_SNDBUF for the kernel splice path: a bigger send buffer keeps the psock
// sender clear of the 1-jiffy retry cliff. FORCE, because plain SO_SNDBUF is
// capped at net.core.wmem_max (4 MiB here), which silently turned `sndbuf:
// 16MiB` into 8 MiB; without CAP_NET_ADMIN it stays capped. Set on listeners
// (accepted sockets inherit it) and on upstream sockets before connect, where
// it costs no socket-lock contention with arriving packets. 0: autotune.
void SetSpliceSendBuffer(int fd, uint32_t bytes);

// Port the socket is bound to (the kernel's choice for port 0).
uint16_t BoundPort(int fd);
