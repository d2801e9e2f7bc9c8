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
  int relayed;        // cookie → bytes user space moved to the peer while paused; -1 = absent
};

// SO_COOKIE of a socket; 0 on failure (the kernel never hands out cookie 0).
uint64_t SocketCookie(int fd);

class SpliceMaps {
 public:
  explicit SpliceMaps(const SpliceMapFds& fds) : fds_(fds) {}

  int WriteConn(uint64_t cookie, const conn& entry);
  int ReadConn(uint64_t cookie, conn* entry) const;
  int DeleteConn(uint64_t cookie);
  // Final counters and delete in one bpf() call (teardown).
  int TakeConn(uint64_t cookie, conn* entry);
  // Total bytes of this socket that user space wrote into its peer while the
  // verdict was passing them (paused); the verdict resumes once it equals `passed`.
  int PublishRelayed(uint64_t cookie, uint64_t total);
  int DeleteRelayed(uint64_t cookie) { return DeleteKey(fds_.relayed, cookie); }
  bool has_relayed() const { return fds_.relayed >= 0; }

  int Hold(uint64_t cookie, int socket_fd) { return InsertSocket(fds_.splice_hold, cookie, socket_fd); }
  int Release(uint64_t cookie) { return DeleteKey(fds_.splice_hold, cookie); }
  int Activate(uint64_t cookie, int socket_fd) { return InsertSocket(fds_.splice_active, cookie, socket_fd); }

  int events_fd() const { return fds_.events; }

 private:
  static int InsertSocket(int map_fd, uint64_t cookie, int socket_fd);
  static int DeleteKey(int map_fd, uint64_t cookie);

  SpliceMapFds fds_;
};
