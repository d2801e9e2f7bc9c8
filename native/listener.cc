#include "listener.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "errors.h"

static void SetIntOption(int fd, int level, int name, int value, const char* what) {
  if (setsockopt(fd, level, name, &value, sizeof(value)) != 0) ThrowSysError(errno, "setsockopt", what);
}

static UniqueFd BoundSocket(const ListenerConfig& config, const SockAddress& addr, bool reuseport) {
  const std::string where = "listener " + FormatSockAddress(addr);
  UniqueFd fd(socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) ThrowSysError(errno, "socket", where);
  SetIntOption(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
  if (reuseport) SetIntOption(fd.get(), SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT");
  // Intercepted connections are to addresses we do not have: the SYN-ACK leaves from one.
  if (config.transparent && addr.family() == AF_INET6) SetIntOption(fd.get(), IPPROTO_IPV6, IPV6_TRANSPARENT, 1, "IPV6_TRANSPARENT");
  if (config.transparent && addr.family() == AF_INET) SetIntOption(fd.get(), IPPROTO_IP, IP_TRANSPARENT, 1, "IP_TRANSPARENT");
  if (addr.family() == AF_INET6)
    SetIntOption(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, config.dual_stack ? 0 : 1, "IPV6_V6ONLY");
  if (bind(fd.get(), addr.get(), addr.len) != 0)
    ThrowSysError(errno, "bind", where + ": choose a free address/port or stop what is bound there");
  return fd;
}

std::vector<UniqueFd> OpenListenerGroup(const ListenerConfig& config, int count) {
  std::vector<UniqueFd> fds;
  SockAddress addr = config.bind;
  if (count <= 1) {
    fds.push_back(BoundSocket(config, addr, false));
  } else {
    // A plain bind first: it fails if anyone listens there, where a reuseport
    // bind would silently share the port with another process of this user.
    // It also picks the port for a bind to port 0.
    SetPort(&addr, BoundPort(BoundSocket(config, addr, false).get()));
    for (int i = 0; i < count; i++) fds.push_back(BoundSocket(config, addr, true));
  }
  for (UniqueFd& fd : fds) {
    if (config.datapath == Datapath::kSplice) SetSpliceSendBuffer(fd.get(), config.sndbuf_bytes);
    if (listen(fd.get(), config.backlog) != 0) ThrowSysError(errno, "listen", "listener " + FormatSockAddress(addr));
  }
  return fds;
}

void SetSpliceSendBuffer(int fd, uint32_t bytes) {
  if (bytes == 0) return;
  int size = static_cast<int>(bytes);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) != 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

uint16_t BoundPort(int fd) {
  SockAddress addr;
  addr.len = sizeof(addr.storage);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr.storage), &addr.len) != 0) return 0;
  if (addr.family() == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr.storage)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&addr.storage)->sin6_port);
}
