// The kernel splice path of the engine: map set-up, EOF drain, pause/resume by
// the in-flight budget, idle check and teardown. The kernel facts behind each
// step are in docs/ARCHITECTURE.md ("Data path") and KERNEL-NOTES.
#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "engine.h"
#include "errno_name.h"
#include "errors.h"
#include "tcp_progress.h"

namespace {

constexpr uint32_t kSplicedEvents = EPOLLRDHUP | EPOLLET;  // never EPOLLIN: nobody reads spliced sockets
constexpr Side kSides[] = {kClient, kUpstream};

// Re-runs the socket's data-ready callback (now the verdict) over bytes that
// were queued before it entered splice_active.
void NudgeQueuedBytes(int fd) {
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
}

int SocketError(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

}  // namespace

bool Engine::StartSplice(Connection& c, std::string* why_not) {
  SpliceMaps& maps = *maps_;
  for (Side side : kSides) {
    c.cookie[side] = SocketCookie(c.fd[side].get());
    if (c.cookie[side] == 0) {
      *why_not = "SO_COOKIE failed: " + ErrnoName(errno);
      return false;
    }
  }
  if (c.sndbuf_bytes) {
    // A bigger send buffer keeps the psock sender clear of the 1-jiffy retry cliff.
    int size = static_cast<int>(c.sndbuf_bytes);
    for (Side side : kSides) setsockopt(c.fd[side].get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  }
  for (Side side : kSides) c.written_base[side] = TcpBytesWritten(c.fd[side].get());

  auto fail = [&](const char* step, int err) {
    UndoSplice(c);
    *why_not = std::string(step) + ": " + ErrnoName(err);
    if (err == EOPNOTSUPP) *why_not += " (the client had already closed its side)";
    return false;
  };
  for (Side side : kSides) {
    conn entry{};
    entry.peer_cookie = c.cookie[Other(side)];
    entry.rule_id = c.rule_id;
    entry.budget = c.budget_bytes;
    entry.side = static_cast<uint8_t>(side);
    if (int err = maps.WriteConn(c.cookie[side], entry)) return fail("conns update", err);
  }
  // Both sockets are redirect targets before either one's verdict runs.
  for (Side side : kSides)
    if (int err = maps.Hold(c.cookie[side], c.fd[side].get())) return fail("splice_hold insert", err);
  if (int err = maps.Activate(c.cookie[kUpstream], c.fd[kUpstream].get())) return fail("splice_active insert", err);

  c.state = ConnState::kSpliced;
  spliced_++;
  for (Side side : kSides) conn_by_cookie_[c.cookie[side]] = c.id;
  if (maps.Activate(c.cookie[kClient], c.fd[kClient].get()) != 0) {
    // The upstream's bytes may already be on their way to the client, so the
    // maps cannot be undone any more; the client's own bytes take the paused
    // path instead (retried, or copied in user space after its FIN).
    c.dir[kClient].paused = true;
    paused_++;
    c.ticking = true;
    ticking_.insert(c.id);
  }
  for (Side side : kSides) NudgeQueuedBytes(c.fd[side].get());
  Watch(EPOLL_CTL_ADD, c, kClient, kSplicedEvents);
  Watch(EPOLL_CTL_MOD, c, kUpstream, kSplicedEvents);
  return true;
}

// Nothing is in splice_active yet, so no byte has been redirected: removing
// the entries loses nothing.
void Engine::UndoSplice(Connection& c) {
  for (Side side : kSides) {
    maps_->Release(c.cookie[side]);
    maps_->DeleteConn(c.cookie[side]);
  }
}

void Engine::OnSplicedEvent(Connection& c, Side side, uint32_t events) {
  if (events & EPOLLERR) {
    if (int err = SocketError(c.fd[side].get())) return CloseSpliced(c, "reset", true, err);
  }
  if ((events & (EPOLLRDHUP | EPOLLHUP)) && !c.dir[side].eof) {
    c.dir[side].eof = true;
    TickSpliced(c);
  }
}

void Engine::OnPause(uint64_t cookie) {
  auto it = conn_by_cookie_.find(cookie);
  if (it == conn_by_cookie_.end()) return;
  Connection& c = *conns_.at(it->second);
  Side side = cookie == c.cookie[kClient] ? kClient : kUpstream;
  SplicedDirection& dir = c.dir[side];
  if (dir.paused || dir.tail || dir.shut) return;
  // Out of splice_active only: its bytes now wait in its own receive queue
  // (window closes), while splice_hold keeps its psock sending what was queued.
  maps_->Deactivate(cookie);
  dir.paused = true;
  paused_++;
  if (!c.ticking) {
    c.ticking = true;
    ticking_.insert(c.id);
  }
}

void Engine::TickSpliced(Connection& c) {
  bool waiting = false;
  for (Side side : kSides) {
    int err = 0;
    Progress progress = TickDirection(c, side, &err);
    if (progress == Progress::kBroken) return CloseSpliced(c, "reset", true, err);
    waiting |= progress == Progress::kWaiting;
  }
  if (c.dir[kClient].shut && c.dir[kUpstream].shut) return CloseSpliced(c, "eof", false, 0);
  c.ticking = waiting;
  if (waiting)
    ticking_.insert(c.id);
  else
    ticking_.erase(c.id);
}

Engine::Progress Engine::TickDirection(Connection& c, Side src, int* err) {
  SplicedDirection& dir = c.dir[src];
  Side dst = Other(src);
  if (dir.shut) return Progress::kDone;
  if (dir.tail) {
    if ((*err = dir.tail->Run())) return Progress::kBroken;
    if (!dir.tail->finished()) return Progress::kWaiting;
    dir.shut = true;
    return Progress::kDone;
  }
  if (dir.paused) {
    uint64_t in_flight = InFlight(c, src);
    if (dir.eof) {
      // FIN in: src can never rejoin splice_active. Once the kernel has
      // written everything it took, copy the rest in user space, in order.
      if (in_flight > 0) return Progress::kWaiting;
      try {
        dir.tail = std::make_unique<Pump>(c.fd[src].get(), c.fd[dst].get());
      } catch (const SysError& e) {
        *err = e.err;
        return Progress::kBroken;
      }
      paused_--;
      dir.paused = false;
      return TickDirection(c, src, err);
    }
    if (in_flight > c.budget_bytes / 2 || !Resume(c, src)) return Progress::kWaiting;
  }
  if (!dir.eof) return Progress::kDone;
  // bytes_received counts the FIN as one byte.
  if (TcpBytesReceived(c.fd[src].get()) > WrittenSinceSetup(c, dst) + 1) return Progress::kWaiting;
  // Only now: an early SHUT_WR would make the psock sender drop what is left (EPIPE).
  shutdown(c.fd[dst].get(), SHUT_WR);
  dir.shut = true;
  return Progress::kDone;
}

bool Engine::Resume(Connection& c, Side src) {
  SplicedDirection& dir = c.dir[src];
  maps_->ClearPaused(c.cookie[src]);
  int err = maps_->Activate(c.cookie[src], c.fd[src].get());
  if (err == EOPNOTSUPP) dir.eof = true;  // FIN arrived before its RDHUP event: take the tail path
  if (err) return false;
  dir.paused = false;
  paused_--;
  NudgeQueuedBytes(c.fd[src].get());
  return true;
}

uint64_t Engine::WrittenSinceSetup(const Connection& c, Side side) const {
  uint64_t written = TcpBytesWritten(c.fd[side].get());
  return written > c.written_base[side] ? written - c.written_base[side] : 0;
}

// Bytes the verdict took from src that dst has not yet been written: what sits
// in dst's psock queue, which the kernel does not limit.
uint64_t Engine::InFlight(const Connection& c, Side src) const {
  conn entry{};
  if (maps_->ReadConn(c.cookie[src], &entry) != 0) return 0;
  uint64_t written = WrittenSinceSetup(c, Other(src));
  return entry.redirected > written ? entry.redirected - written : 0;
}

bool Engine::SplicedIdle(const Connection& c, uint64_t now) const {
  uint64_t last = c.connected_ns;
  for (Side side : kSides) {
    conn entry{};
    if (maps_->ReadConn(c.cookie[side], &entry) == 0) last = std::max<uint64_t>(last, entry.last_active_ns);
  }
  return now > last && now - last > c.idle_timeout_ms * 1000000ull;
}

void Engine::CloseSpliced(Connection& c, const char* reason, bool reset, int err) {
  uint64_t redirected[2] = {0, 0};
  for (Side side : kSides) {
    conn entry{};
    if (maps_->ReadConn(c.cookie[side], &entry) == 0) redirected[side] = entry.redirected;
    if (c.dir[side].tail) redirected[side] += c.dir[side].tail->bytes();
    if (c.dir[side].paused) paused_--;
  }
  // Verdict off first, then the redirect targets, then the entries it reads.
  for (Side side : kSides) maps_->Deactivate(c.cookie[side]);
  for (Side side : kSides) maps_->Release(c.cookie[side]);
  for (Side side : kSides) {
    maps_->DeleteConn(c.cookie[side]);
    conn_by_cookie_.erase(c.cookie[side]);
  }
  spliced_--;
  Finish(c, reason, reset, redirected[kClient], redirected[kUpstream], err);
}
