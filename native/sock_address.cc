#include "sock_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

bool ParseSockAddress(const std::string& host, uint16_t port, SockAddress* out) {
  *out = SockAddress{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out->storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    out->len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out->storage);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    out->len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

std::string FormatSockAddress(const sockaddr* addr) {
  char text[INET6_ADDRSTRLEN];
  if (addr->sa_family == AF_INET) {
    auto* v4 = reinterpret_cast<const sockaddr_in*>(addr);
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
    return std::string(text) + ":" + std::to_string(ntohs(v4->sin_port));
  }
  if (addr->sa_family == AF_INET6) {
    auto* v6 = reinterpret_cast<const sockaddr_in6*>(addr);
    if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
      inet_ntop(AF_INET, &v6->sin6_addr.s6_addr[12], text, sizeof(text));
      return std::string(text) + ":" + std::to_string(ntohs(v6->sin6_port));
    }
    inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
    return "[" + std::string(text) + "]:" + std::to_string(ntohs(v6->sin6_port));
  }
  return "?";
}

void SetPort(SockAddress* addr, uint16_t port) {
  if (addr->family() == AF_INET) reinterpret_cast<sockaddr_in*>(&addr->storage)->sin_port = htons(port);
  if (addr->family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&addr->storage)->sin6_port = htons(port);
}

void MappedBytes(const SockAddress& addr, uint8_t (&out)[16]) {
  memset(out, 0, sizeof(out));
  if (addr.family() == AF_INET) {
    out[10] = out[11] = 0xff;
    memcpy(&out[12], &reinterpret_cast<const sockaddr_in*>(&addr.storage)->sin_addr, 4);
  } else if (addr.family() == AF_INET6) {
    memcpy(out, &reinterpret_cast<const sockaddr_in6*>(&addr.storage)->sin6_addr, 16);
  }
}

SockAddress Unmapped(const SockAddress& addr) {
  if (addr.family() != AF_INET6) return addr;
  auto* v6 = reinterpret_cast<const sockaddr_in6*>(&addr.storage);
  if (!IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) return addr;
  SockAddress out;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  v4->sin_family = AF_INET;
  v4->sin_port = v6->sin6_port;
  memcpy(&v4->sin_addr, &v6->sin6_addr.s6_addr[12], 4);
  out.len = sizeof(sockaddr_in);
  return out;
}

std::string OriginalDestination(int accepted_fd) {
  SockAddress local;
  local.len = sizeof(local.storage);
  if (getsockname(accepted_fd, reinterpret_cast<sockaddr*>(&local.storage), &local.len) != 0) return "";
  return FormatSockAddress(local);
}

std::string FormatMappedAddress(const uint8_t (&addr)[16], uint16_t port) {
  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  memcpy(&v6.sin6_addr, addr, sizeof(addr));
  v6.sin6_port = htons(port);
  return FormatSockAddress(reinterpret_cast<const sockaddr*>(&v6));  // shows IPv4-mapped as IPv4
}
