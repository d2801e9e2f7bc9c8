// A rule's listening socket and the settings its new connections copy.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "sock_address.h"
#include "unique_fd.h"

enum class Datapath { kSplice, kUserspace };

struct ListenerConfig {
  uint32_t rule_id = 0;
  SockAddress bind;
  bool dual_stack = false;
  int backlog = 511;
  std::vector<SockAddress> targets;
  uint32_t connect_timeout_ms = 5000;
  uint32_t idle_timeout_ms = 0;
  Datapath datapath = Datapath::kSplice;
  uint32_t budget_bytes = 0;
  uint32_t sndbuf_bytes = 0;
};

// Opens a non-blocking, listening socket for config (on the caller's thread,
// so bind errors reach JS synchronously). Throws SysError naming the address.
UniqueFd OpenListenerSocket(const ListenerConfig& config);

// Port the socket is bound to (the kernel's choice for port 0).
uint16_t BoundPort(int fd);
