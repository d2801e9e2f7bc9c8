// Socket addresses as the engine uses them: parsed from the literal host/port
// that JS passes, and formatted as "1.2.3.4:80" / "[::1]:80" for events.
#pragma once
#include <sys/socket.h>

#include <cstdint>
#include <string>

struct SockAddress {
  sockaddr_storage storage{};
  socklen_t len = 0;

  int family() const { return storage.ss_family; }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

// Parses a literal IPv4/IPv6 address (no names). Returns false if host is not one.
bool ParseSockAddress(const std::string& host, uint16_t port, SockAddress* out);

// "1.2.3.4:80", "[::1]:80"; an IPv4-mapped IPv6 address is shown as IPv4.
std::string FormatSockAddress(const sockaddr* addr);

inline std::string FormatSockAddress(const SockAddress& addr) { return FormatSockAddress(addr.get()); }

// An address in the maps' form (16 bytes, IPv4 IPv4-mapped) and a host-order port, formatted the same way.
std::string FormatMappedAddress(const uint8_t (&addr)[16], uint16_t port);

// The address in the maps' form: 16 bytes, IPv4 as IPv4-mapped IPv6.
void MappedBytes(const SockAddress& addr, uint8_t (&out)[16]);

// An IPv4-mapped IPv6 address as plain IPv4 (port kept); others unchanged.
// What a dual-stack listener reports becomes something an IPv4 socket can use.
SockAddress Unmapped(const SockAddress& addr);

// Sets the port of an IPv4 or IPv6 address (host order).
void SetPort(SockAddress* addr, uint16_t port);

// The socket's own address, formatted; "" if getsockname fails. For an
// accepted socket (no NAT) it is the destination the client dialled.
std::string OriginalDestination(int accepted_fd);
