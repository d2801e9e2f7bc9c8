#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

static constexpr int kPipeBytes = 1 << 20;
static constexpr size_t kScratchBytes = 64 * 1024;
// Reads per Run(): one busy stream must not starve the other connections.
static constexpr int kMaxRounds = 8;

static bool Transient(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

int Pump::WriteLeftOver(bool* moved) {
  while (!left_over_.empty()) {
    ssize_t n = send(dst_, left_over_.data(), left_over_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) return Transient(errno) ? 0 : errno;
    left_over_.erase(0, static_cast<size_t>(n));
    bytes_ += static_cast<uint64_t>(n);
    *moved = true;
  }
  return 0;
}

// One recv into the thread's scratch buffer and one send; what dst does not
// take waits in left_over_ (and src is not read again until it is gone).
int Pump::Copy(bool* moved) {
  if (int err = WriteLeftOver(moved)) return err;
  if (!left_over_.empty() || src_eof_) return 0;
  static thread_local char scratch[kScratchBytes];
  ssize_t got = recv(src_, scratch, sizeof(scratch), MSG_DONTWAIT);
  if (got == 0) {
    src_eof_ = true;
    *moved = true;
    return 0;
  }
  src_empty_ = got < 0;
  if (got < 0) return Transient(errno) ? 0 : errno;
  *moved = true;
  ssize_t sent = send(dst_, scratch, static_cast<size_t>(got), MSG_DONTWAIT | MSG_NOSIGNAL);
  if (sent < 0) {
    if (!Transient(errno)) return errno;
    sent = 0;
  }
  bytes_ += static_cast<uint64_t>(sent);
  left_over_.assign(scratch + sent, static_cast<size_t>(got - sent));
  return 0;
}

int Pump::OpenPipe() {
  int ends[2];
  if (pipe2(ends, O_NONBLOCK | O_CLOEXEC) != 0) return errno;
  pipe_read_.reset(ends[0]);
  pipe_write_.reset(ends[1]);
  // A bigger pipe means fewer wake-ups per MB; keep the default if refused.
  fcntl(ends[1], F_SETPIPE_SZ, kPipeBytes);
  int size = fcntl(ends[1], F_GETPIPE_SZ);
  capacity_ = size > 0 ? static_cast<size_t>(size) : 65536;
  return 0;
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
  } else if (!Transient(errno)) {
    return errno;
  }
  return 0;
}

int Pump::EmptyPipe(bool* moved) {
  if (in_pipe_ == 0) return 0;
  ssize_t n = splice(pipe_read_.get(), nullptr, dst_, nullptr, in_pipe_, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
  if (n > 0) {
    in_pipe_ -= static_cast<size_t>(n);
    bytes_ += static_cast<uint64_t>(n);
    *moved = true;
  } else if (n < 0 && !Transient(errno)) {
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
    // Out of pipes (EMFILE, ENFILE): copying is slower but loses no connection.
    if (!pipe_read_ && bytes_ >= copy_limit_ && left_over_.empty() && OpenPipe() != 0) copy_limit_ = kNeverSplice;
    if (!pipe_read_) {
      if (int err = Copy(&moved)) return err;
    } else {
      if (int err = FillPipe(&moved)) return err;
      if (int err = EmptyPipe(&moved)) return err;
    }
    if (!moved) break;
    progressed_ = true;
    if (round == kMaxRounds) {
      more_ = true;
      return 0;
    }
  }
  if (src_eof_ && left_over_.empty() && in_pipe_ == 0) {
    // Half-close: the peer sees our EOF only after every byte before it.
    shutdown(dst_, SHUT_WR);
    dst_shut_ = true;
  }
  return 0;
}
