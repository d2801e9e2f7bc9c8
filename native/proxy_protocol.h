// The PROXY protocol header (versions 1 and 2, as HAProxy specifies them)
// that tells an upstream who the client is and what it dialled. Written to the
// upstream socket once it is connected, before any byte of the client's, so
// no datapath and no byte counter ever sees it.
#pragma once
#include <cstdint>
#include <string>

#include "sock_address.h"

enum class ProxyProtocol : uint8_t { kNone = 0, kV1 = 1, kV2 = 2 };

// The header for a TCP connection from `client` to `dialled` (the accepted
// socket's own address). IPv4-mapped IPv6 addresses are sent as IPv4; if the
// two families still differ, v1 says UNKNOWN and v2 LOCAL (the upstream then
// uses the connection's own addresses), as the specification allows.
std::string ProxyHeader(ProxyProtocol version, const SockAddress& client, const SockAddress& dialled);
