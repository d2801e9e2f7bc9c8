#include "upstream_socket.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>

#include "loop_guard.h"

void SetKeepalive(int fd, uint32_t idle_s) {
  if (!idle_s) return;
  int on = 1;
  int idle = static_cast<int>(std::min<uint32_t>(idle_s, 32767));  // the kernel's MAX_TCP_KEEPIDLE
  int interval = std::max(1, idle / 3);
  int count = 3;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
}

int PrepareUpstream(int fd, int family, const UpstreamOptions& options, bool fix_port, uint16_t* port) {
  if (options.mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &options.mark, sizeof(options.mark)) != 0) return errno;
  SetKeepalive(fd, options.keepalive_s);
  if (options.source.len == 0) {
    if (!fix_port) return 0;
    *port = BindAnyPort(fd, family);
    return *port ? 0 : errno;
  }
  int on = 1;
  if (options.transparent != Transparent::kOff) {
    bool v6 = family == AF_INET6;
    if (setsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_TRANSPARENT : IP_TRANSPARENT, &on, sizeof(on)) != 0) return errno;
  }
  if (!fix_port) setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof(on));
  if (bind(fd, options.source.get(), options.source.len) != 0) return errno;
  if (!fix_port) return 0;
  SockAddress bound;
  bound.len = sizeof(bound.storage);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound.storage), &bound.len) != 0) return errno;
  *port = DialledEndpoint(bound).port;
  return 0;
}
