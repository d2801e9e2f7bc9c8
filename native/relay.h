// One direction of the user-space relay, src socket → dst socket. The first
// bytes are copied with recv/send through a per-thread scratch buffer: a short
// connection then costs no pipe. Past copy_limit bytes it switches to splice(2)
// through a pipe, so bulk payload never enters user memory. Non-blocking; Run()
// is called whenever either socket may have become ready (edge-triggered
// epoll) or on a timer tick.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "unique_fd.h"

class Pump {
 public:
  static constexpr uint64_t kNeverSplice = UINT64_MAX;

  Pump(int src, int dst, uint64_t copy_limit) : src_(src), dst_(dst), copy_limit_(copy_limit) {}

  // Moves everything it can without blocking; after src's EOF and nothing left
  // over, shuts down dst's write side. Returns 0 or the errno that broke the
  // stream (ECONNRESET, EPIPE, ...); without a pipe to be had it keeps copying.
  // Sets progressed() if any byte moved and more() if it stopped for fairness
  // before either socket would block: the caller must run it again (no new
  // epoll edge will come).
  int Run();

  void set_copy_limit(uint64_t bytes) { copy_limit_ = bytes; }
  bool finished() const { return dst_shut_; }
  // The source has sent its EOF (its bytes may still be on the way).
  bool src_eof() const { return src_eof_; }
  bool progressed() const { return progressed_; }
  bool more() const { return more_; }
  uint64_t bytes() const { return bytes_; }
  // Moving bytes with splice(2) through its pipe (past copy_limit).
  bool piped() const { return static_cast<bool>(pipe_read_); }
  // src is open and was read until it would block, and every byte read has
  // been written to dst: the sockets can be handed to the kernel path. Reading
  // until EAGAIN matters: an skb recv() took only part of stays queued, and the
  // verdict would see (and count) all of it.
  bool drained() const { return !src_eof_ && src_empty_ && left_over_.empty() && in_pipe_ == 0; }

 private:
  int Copy(bool* moved);
  int WriteLeftOver(bool* moved);
  int OpenPipe();
  int FillPipe(bool* moved);
  int EmptyPipe(bool* moved);

  int src_;
  int dst_;
  uint64_t copy_limit_;
  std::string left_over_;  // copied bytes dst has not taken yet
  UniqueFd pipe_read_;
  UniqueFd pipe_write_;
  size_t capacity_ = 0;
  size_t in_pipe_ = 0;
  uint64_t bytes_ = 0;  // written to dst
  bool src_eof_ = false;
  bool src_empty_ = false;  // the last recv() found nothing
  bool dst_shut_ = false;
  bool progressed_ = false;
  bool more_ = false;
};
