// One direction of the user-space relay: src socket → pipe → dst socket with
// splice(2), so payload never enters user memory. Non-blocking; Run() is
// called whenever either socket may have become ready (edge-triggered epoll)
// or on a timer tick.
#pragma once
#include <cstddef>
#include <cstdint>

#include "unique_fd.h"

class Pump {
 public:
  // Creates the pipe (1 MiB). Throws SysError when pipes run out.
  Pump(int src, int dst);

  // Moves everything it can without blocking; after src's EOF and an empty
  // pipe, shuts down dst's write side. Returns 0 or the errno that broke the
  // stream (ECONNRESET, EPIPE, ...). Sets progressed() if any byte moved and
  // more() if it stopped for fairness before either socket would block: the
  // caller must run it again (no new epoll edge will come).
  int Run();

  bool finished() const { return dst_shut_; }
  bool progressed() const { return progressed_; }
  bool more() const { return more_; }
  uint64_t bytes() const { return bytes_; }

 private:
  int FillPipe(bool* moved);
  int EmptyPipe(bool* moved);

  int src_;
  int dst_;
  UniqueFd pipe_read_;
  UniqueFd pipe_write_;
  size_t capacity_ = 0;
  size_t in_pipe_ = 0;
  uint64_t bytes_ = 0;
  bool src_eof_ = false;
  bool dst_shut_ = false;
  bool progressed_ = false;
  bool more_ = false;
};
