#include "listener.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "errors.h"

static void SetIntOption(int fd, int level, int name, int value, const char* what) {
  if (setsockopt(fd, level, name, &value, sizeof(value)) != 0) ThrowSysError(errno, "setsockopt", what);
}

UniqueFd OpenListenerSocket(const ListenerConfig& config) {
  const std::string where = "listener " + FormatSockAddress(config.bind);
  UniqueFd fd(socket(config.bind.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) ThrowSysError(errno, "socket", where);
  SetIntOption(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
  if (config.bind.family() == AF_INET6)
    SetIntOption(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, config.dual_stack ? 0 : 1, "IPV6_V6ONLY");
  if (bind(fd.get(), config.bind.get(), config.bind.len) != 0)
    ThrowSysError(errno, "bind", where + ": choose a free address/port or stop what is bound there");
  if (listen(fd.get(), config.backlog) != 0) ThrowSysError(errno, "listen", where);
  return fd;
}

uint16_t BoundPort(int fd) {
  SockAddress addr;
  addr.len = sizeof(addr.storage);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr.storage), &addr.len) != 0) return 0;
  if (addr.family() == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr.storage)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&addr.storage)->sin6_port);
}
