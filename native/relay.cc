#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errors.h"

static constexpr int kPipeBytes = 1 << 20;
// Pipe fills per Run(): one busy stream must not starve the other connections.
static constexpr int kMaxRounds = 8;

Pump::Pump(int src, int dst) : src_(src), dst_(dst) {
  int ends[2];
  if (pipe2(ends, O_NONBLOCK | O_CLOEXEC) != 0) ThrowSysError(errno, "pipe2", "relay pipe");
  pipe_read_.reset(ends[0]);
  pipe_write_.reset(ends[1]);
  // A bigger pipe means fewer wake-ups per MB; keep the default if refused.
  fcntl(ends[1], F_SETPIPE_SZ, kPipeBytes);
  int size = fcntl(ends[1], F_GETPIPE_SZ);
  capacity_ = size > 0 ? static_cast<size_t>(size) : 65536;
}

int Pump::FillPipe(bool* moved) {
  if (src_eof_ || in_pipe_ >= capacity_) return 0;
  ssize_t n = splice(src_, nullptr, pipe_write_.get(), nullptr, capacity_ - in_pipe_,
                     SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
  if (n > 0) {
    in_pipe_ += static_cast<size_t>(n);
    *moved = true;
  } else if (n == 0) {
    src_eof_ = true;
    *moved = true;
  } else if (errno != EAGAIN && errno != EINTR) {
    return errno;
  }
  return 0;
}

int Pump::EmptyPipe(bool* moved) {
  if (in_pipe_ == 0) return 0;
  ssize_t n = splice(pipe_read_.get(), nullptr, dst_, nullptr, in_pipe_,
                     SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
  if (n > 0) {
    in_pipe_ -= static_cast<size_t>(n);
    bytes_ += static_cast<uint64_t>(n);
    *moved = true;
  } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
    return errno;
  }
  return 0;
}

int Pump::Run() {
  progressed_ = false;
  more_ = false;
  if (dst_shut_) return 0;
  for (int round = 0;; round++) {
    bool moved = false;
    if (int err = FillPipe(&moved)) return err;
    if (int err = EmptyPipe(&moved)) return err;
    if (!moved) break;
    progressed_ = true;
    if (round == kMaxRounds) {
      more_ = true;
      return 0;
    }
  }
  if (src_eof_ && in_pipe_ == 0) {
    // Half-close: the peer sees our EOF only after every byte before it.
    shutdown(dst_, SHUT_WR);
    dst_shut_ = true;
  }
  return 0;
}
