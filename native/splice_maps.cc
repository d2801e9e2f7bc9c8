#include "splice_maps.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <sys/socket.h>

// libbpf >= 1.0 returns -errno from the low-level bpf_map_* calls.
static int Errno(int ret) { return ret < 0 ? -ret : 0; }

uint64_t SocketCookie(int fd) {
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0) return 0;
  return cookie;
}

int SpliceMaps::WriteConn(uint64_t cookie, const conn& entry) {
  return Errno(bpf_map_update_elem(fds_.conns, &cookie, &entry, BPF_ANY));
}

int SpliceMaps::ReadConn(uint64_t cookie, conn* entry) const {
  return Errno(bpf_map_lookup_elem(fds_.conns, &cookie, entry));
}

int SpliceMaps::DeleteConn(uint64_t cookie) { return DeleteKey(fds_.conns, cookie); }

int SpliceMaps::TakeConn(uint64_t cookie, conn* entry) {
  return Errno(bpf_map_lookup_and_delete_elem(fds_.conns, &cookie, entry));
}

int SpliceMaps::PublishRelayed(uint64_t cookie, uint64_t total) {
  return Errno(bpf_map_update_elem(fds_.relayed, &cookie, &total, BPF_ANY));
}

int SpliceMaps::InsertSocket(int map_fd, uint64_t cookie, int socket_fd) {
  // From user space a SOCKHASH value is the socket's fd (the maps declare __u32).
  uint32_t value = static_cast<uint32_t>(socket_fd);
  return Errno(bpf_map_update_elem(map_fd, &cookie, &value, BPF_ANY));
}

int SpliceMaps::DeleteKey(int map_fd, uint64_t cookie) {
  return Errno(bpf_map_delete_elem(map_fd, &cookie));
}
