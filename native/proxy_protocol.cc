#include "proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace {

// One endpoint as the header carries it: a family and the raw address.
struct Endpoint {
  int family = AF_UNSPEC;
  uint8_t addr[16]{};
  uint16_t port = 0;  // host order
};

Endpoint EndpointOf(const SockAddress& a) {
  Endpoint e;
  if (a.family() == AF_INET) {
    auto* v4 = reinterpret_cast<const sockaddr_in*>(&a.storage);
    e.family = AF_INET;
    memcpy(e.addr, &v4->sin_addr, 4);
    e.port = ntohs(v4->sin_port);
  } else if (a.family() == AF_INET6) {
    auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a.storage);
    e.port = ntohs(v6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
      e.family = AF_INET;
      memcpy(e.addr, &v6->sin6_addr.s6_addr[12], 4);
    } else {
      e.family = AF_INET6;
      memcpy(e.addr, &v6->sin6_addr, 16);
    }
  }
  return e;
}

std::string Text(const Endpoint& e) {
  char buf[INET6_ADDRSTRLEN] = "";
  inet_ntop(e.family, e.addr, buf, sizeof(buf));
  return buf;
}

std::string V1(const Endpoint& src, const Endpoint& dst) {
  if (src.family != dst.family || src.family == AF_UNSPEC) return "PROXY UNKNOWN\r\n";
  return std::string("PROXY ") + (src.family == AF_INET ? "TCP4 " : "TCP6 ") + Text(src) + " " + Text(dst) + " " +
         std::to_string(src.port) + " " + std::to_string(dst.port) + "\r\n";
}

std::string V2(const Endpoint& src, const Endpoint& dst) {
  static const char kSignature[12] = {'\r', '\n', '\r', '\n', '\0', '\r', '\n', 'Q', 'U', 'I', 'T', '\n'};
  std::string out(kSignature, sizeof(kSignature));
  bool known = src.family == dst.family && src.family != AF_UNSPEC;
  out += static_cast<char>(known ? 0x21 : 0x20);  // version 2; PROXY, or LOCAL
  size_t addr_len = !known ? 0 : src.family == AF_INET ? 4 : 16;
  out += static_cast<char>(!known ? 0x00 : src.family == AF_INET ? 0x11 : 0x21);  // TCP over IPv4 / IPv6
  uint16_t length = static_cast<uint16_t>(known ? 2 * addr_len + 4 : 0);
  out += static_cast<char>(length >> 8);
  out += static_cast<char>(length & 0xff);
  if (!known) return out;
  out.append(reinterpret_cast<const char*>(src.addr), addr_len);
  out.append(reinterpret_cast<const char*>(dst.addr), addr_len);
  for (uint16_t port : {src.port, dst.port}) {
    out += static_cast<char>(port >> 8);
    out += static_cast<char>(port & 0xff);
  }
  return out;
}

}  // namespace

std::string ProxyHeader(ProxyProtocol version, const SockAddress& client, const SockAddress& dialled) {
  Endpoint src = EndpointOf(client);
  Endpoint dst = EndpointOf(dialled);
  switch (version) {
    case ProxyProtocol::kV1:
      return V1(src, dst);
    case ProxyProtocol::kV2:
      return V2(src, dst);
    case ProxyProtocol::kNone:
      break;
  }
  return "";
}
