#include "proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <string_view>
#include <vector>

namespace {

constexpr char kSignatureV2[12] = {'\r', '\n', '\r', '\n', '\0', '\r', '\n', 'Q', 'U', 'I', 'T', '\n'};
constexpr std::string_view kSignatureV1 = "PROXY ";
constexpr size_t kMaxHeaderV1 = 107;  // the specification's worst case, CRLF included

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
  std::string out(kSignatureV2, sizeof(kSignatureV2));
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

// A v1 address and port, strictly: the family's textual form, a decimal port below 65536.
bool ParseEndpointV1(int family, const std::string& host, const std::string& port, SockAddress* out) {
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return false;
  if (port.size() > 1 && port[0] == '0') return false;
  unsigned long value = std::stoul(port);
  if (value > 65535) return false;
  if (family == AF_INET && host.find(':') != std::string::npos) return false;
  if (family == AF_INET6 && host.find(':') == std::string::npos) return false;
  return ParseSockAddress(host, static_cast<uint16_t>(value), out);
}

ParsedHeader ParseV1(std::string_view data, ProxyHeaderInfo* out, std::string* why) {
  size_t end = data.find("\r\n");
  if (end == std::string_view::npos) {
    if (data.size() < kMaxHeaderV1) return ParsedHeader::kIncomplete;
    *why = "v1 header without CRLF in its first 107 bytes";
    return ParsedHeader::kInvalid;
  }
  if (end + 2 > kMaxHeaderV1) {
    *why = "v1 header longer than 107 bytes";
    return ParsedHeader::kInvalid;
  }
  out->length = end + 2;
  std::string line(data.substr(kSignatureV1.size(), end - kSignatureV1.size()));
  std::vector<std::string> fields;
  for (size_t start = 0;;) {
    size_t space = line.find(' ', start);
    fields.push_back(line.substr(start, space == std::string::npos ? std::string::npos : space - start));
    if (space == std::string::npos) break;
    start = space + 1;
  }
  if (fields[0] == "UNKNOWN") {  // anything may follow it, and is ignored
    out->local = true;
    return ParsedHeader::kComplete;
  }
  int family = fields[0] == "TCP4" ? AF_INET : fields[0] == "TCP6" ? AF_INET6 : AF_UNSPEC;
  if (family == AF_UNSPEC) {
    *why = "v1 protocol '" + fields[0] + "' is neither TCP4, TCP6 nor UNKNOWN";
    return ParsedHeader::kInvalid;
  }
  if (fields.size() != 5 || !ParseEndpointV1(family, fields[1], fields[3], &out->client) ||
      !ParseEndpointV1(family, fields[2], fields[4], &out->dialled)) {
    *why = "v1 header '" + line + "' is not 'PROXY " + fields[0] + " SRC DST SRCPORT DSTPORT'";
    return ParsedHeader::kInvalid;
  }
  return ParsedHeader::kComplete;
}

// One v2 endpoint: the raw address (4 or 16 bytes) and its big-endian port.
void SetEndpoint(int family, const uint8_t* addr, const uint8_t* port, SockAddress* out) {
  uint16_t net_port = htons(static_cast<uint16_t>(port[0] << 8 | port[1]));
  if (family == AF_INET) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&out->storage);
    v4->sin_family = AF_INET;
    v4->sin_port = net_port;
    memcpy(&v4->sin_addr, addr, 4);
    out->len = sizeof(sockaddr_in);
  } else {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&out->storage);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = net_port;
    memcpy(&v6->sin6_addr, addr, 16);
    out->len = sizeof(sockaddr_in6);
  }
}

ParsedHeader ParseV2(std::string_view data, ProxyHeaderInfo* out, std::string* why) {
  if (data.size() < 16) return ParsedHeader::kIncomplete;
  auto* bytes = reinterpret_cast<const uint8_t*>(data.data());
  uint8_t version = bytes[12] >> 4, command = bytes[12] & 0x0f;
  size_t length = static_cast<size_t>(bytes[14] << 8 | bytes[15]);
  if (version != 2 || command > 1) {
    *why = "v2 header with version " + std::to_string(version) + " and command " + std::to_string(command);
    return ParsedHeader::kInvalid;
  }
  if (data.size() < 16 + length) return ParsedHeader::kIncomplete;
  out->length = 16 + length;
  uint8_t family = bytes[13] >> 4, transport = bytes[13] & 0x0f;
  const uint8_t* addrs = bytes + 16;
  // TCP (STREAM) over IPv4 or IPv6; anything else, and LOCAL, keeps the connection's own addresses.
  if (command == 0 || transport != 1 || (family != 1 && family != 2)) {
    out->local = true;
    return ParsedHeader::kComplete;
  }
  size_t addr_len = family == 1 ? 4 : 16;
  if (length < 2 * addr_len + 4) {
    *why = "v2 header of " + std::to_string(length) + " bytes is too short for its addresses";
    return ParsedHeader::kInvalid;
  }
  int af = family == 1 ? AF_INET : AF_INET6;
  SetEndpoint(af, addrs, addrs + 2 * addr_len, &out->client);
  SetEndpoint(af, addrs + addr_len, addrs + 2 * addr_len + 2, &out->dialled);
  return ParsedHeader::kComplete;
}

}  // namespace

ParsedHeader ParseProxyHeader(const char* data, size_t size, ProxyHeaderInfo* out, std::string* why) {
  std::string_view view(data, size);
  // A prefix of either signature may still become a header.
  auto starts = [&](std::string_view signature) {
    size_t n = std::min(view.size(), signature.size());
    return view.substr(0, n) == signature.substr(0, n);
  };
  bool v1 = starts(kSignatureV1), v2 = starts(std::string_view(kSignatureV2, sizeof(kSignatureV2)));
  if (!v1 && !v2) {
    *why = "the connection does not start with a PROXY protocol header";
    return ParsedHeader::kInvalid;
  }
  if (view.size() < (v1 ? kSignatureV1.size() : sizeof(kSignatureV2))) return ParsedHeader::kIncomplete;
  return v1 ? ParseV1(view, out, why) : ParseV2(view, out, why);
}

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
