// The kernel splice maps as the engine uses them (bpf/bpfredir.h): per-socket
// conns entries and the two SOCKHASHes. Calls return 0 or a positive errno;
// the engine decides per call whether a failure means fallback, reset or nothing.
#pragma once
#include <cstdint>

#include "bpfredir.h"

struct SpliceMapFds {
  int conns;
  int splice_hold;    // redirect targets, no programs
  int splice_active;  // carries the verdict program
  int events;         // ring buffer of struct event
};

// SO_COOKIE of a socket; 0 on failure (the kernel never hands out cookie 0).
uint64_t SocketCookie(int fd);

class SpliceMaps {
 public:
  explicit SpliceMaps(const SpliceMapFds& fds) : fds_(fds) {}

  int WriteConn(uint64_t cookie, const conn& entry);
  int ReadConn(uint64_t cookie, conn* entry) const;
  int DeleteConn(uint64_t cookie);
  // Read-modify-write of the flags: only safe while the socket is out of
  // splice_active (the verdict is the only other writer of its entry).
  int ClearPaused(uint64_t cookie);

  int Hold(uint64_t cookie, int socket_fd) { return InsertSocket(fds_.splice_hold, cookie, socket_fd); }
  int Release(uint64_t cookie) { return DeleteKey(fds_.splice_hold, cookie); }
  int Activate(uint64_t cookie, int socket_fd) { return InsertSocket(fds_.splice_active, cookie, socket_fd); }
  int Deactivate(uint64_t cookie) { return DeleteKey(fds_.splice_active, cookie); }

  int events_fd() const { return fds_.events; }

 private:
  static int InsertSocket(int map_fd, uint64_t cookie, int socket_fd);
  static int DeleteKey(int map_fd, uint64_t cookie);

  SpliceMapFds fds_;
};
