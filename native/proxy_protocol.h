// The PROXY protocol header (versions 1 and 2, as HAProxy specifies them)
// that tells an upstream who the client is and what it dialled. Written to the
// upstream socket once it is connected, before any byte of the client's, so
// no datapath and no byte counter ever sees it; read from a trusted load
// balancer's connection (accept_proxy) before anything is connected.
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

// The longest header: v2's 16 fixed bytes plus a 16-bit length of addresses and TLVs.
constexpr size_t kMaxProxyHeader = 16 + 65535;

enum class ParsedHeader { kIncomplete, kInvalid, kComplete };

struct ProxyHeaderInfo {
  size_t length = 0;  // bytes of the header, to consume; the client's own bytes follow
  // v2 LOCAL, v1 UNKNOWN, or a family other than TCP over IPv4/IPv6 (a load
  // balancer's own health check): the connection's own addresses stand.
  bool local = false;
  SockAddress client;   // source of the proxied connection
  SockAddress dialled;  // its destination
};

// Parses the start of a connection's bytes as a v1 or v2 header (the
// signature tells which). kIncomplete: a valid prefix, more bytes needed;
// kInvalid: not a header, or a malformed one (*why says what).
ParsedHeader ParseProxyHeader(const char* data, size_t size, ProxyHeaderInfo* out, std::string* why);
