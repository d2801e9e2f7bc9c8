// Per-rule settings of the sockets a connection uses besides its bytes: the
// upstream socket's source address and mark, TCP keepalive on both sides,
// and the PROXY protocol header. Applied before connect, so they cost no
// socket-lock contention with arriving packets.
#pragma once
#include <cstdint>

#include "proxy_protocol.h"
#include "sock_address.h"

enum class Transparent : uint8_t { kOff, kAddress, kAddressAndPort };

struct UpstreamOptions {
  SockAddress source;     // len 0: the kernel chooses the source address
  uint32_t mark = 0;      // SO_MARK (0: none); routing and firewall rules can match it
  uint32_t keepalive_s = 0;  // TCP keepalive idle time on both sockets (0: off)
  ProxyProtocol proxy_protocol = ProxyProtocol::kNone;
  // Connect from the client's own address (and port): IP_TRANSPARENT, and
  // `source` is set per connection. Its replies must be routed back to us.
  Transparent transparent = Transparent::kOff;
};

// Probes after idle_s of silence, then every idle_s / 3 (at least 1 s); three
// unanswered probes end the connection. 0: leaves the socket as it is.
void SetKeepalive(int fd, uint32_t idle_s);

// Mark, keepalive and source address on a fresh upstream socket of `family`.
// fix_port: bind a local port now (the loop guard registers it before any SYN
// leaves) and return it in *port; otherwise the port is left to connect
// (IP_BIND_ADDRESS_NO_PORT, so a fixed source address does not cap the
// number of connections at the ephemeral port range of bind). Returns 0 or errno.
int PrepareUpstream(int fd, int family, const UpstreamOptions& options, bool fix_port, uint16_t* port);
