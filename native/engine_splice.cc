// The kernel splice path of the engine: map set-up, EOF drain, relaying the
// bytes the verdict passes while a direction is over its in-flight budget,
// idle check and teardown. The design is in docs/ARCHITECTURE.md ("Data
// path"); the kernel behaviour each step relies on, in docs/KERNEL-FACTS.md.
#include <errno.h>

#include <algorithm>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "engine.h"
#include "errno_name.h"
#include "errors.h"
#include "tcp_progress.h"

namespace {

constexpr uint32_t kSplicedEvents = EPOLLRDHUP | EPOLLET;  // never EPOLLIN: nobody reads spliced sockets
constexpr Side kSides[] = {kClient, kUpstream};
// Receive window of a paused socket: small, so the passed bytes (which only
// this engine relays) arrive at about the pace it relays them. Not smaller:
// below a few MSS (64 KiB on loopback) the window rounds down to zero and, as
// measured, reopens only at the sender's zero-window probe (200 ms and more):
// the kernel's minimum clamp gave 0.03 Gbit/s on loopback.
constexpr int kPausedWindowClamp = 256 * 1024;
constexpr size_t kRelayChunk = 2 * kPausedWindowClamp;
constexpr size_t kMaxRelayBatch = 64 << 20;  // bytes of one paused direction held in user space
// Longest a paused direction waits for its sender to stop before relaying anyway
// (a sender that trickles never fills the clamped window).
constexpr uint32_t kMaxRelayWaitTicks = 10;

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

// From kConnecting (nothing written yet) or kRelayed (MoveIntoKernel: both
// pumps drained, the sockets still in epoll).
bool Engine::StartSplice(Connection& c, std::string* why_not) {
  SpliceMaps& maps = *maps_;
  const bool from_relay = c.state == ConnState::kRelayed;
  for (Side side : kSides) {
    c.cookie[side] = SocketCookie(c.fd[side].get());
    if (c.cookie[side] == 0) {
      *why_not = "SO_COOKIE failed: " + ErrnoName(errno);
      return false;
    }
  }
  // Fresh sockets: nothing written yet, the send queues are empty (one read) — unless a PROXY
  // header went to the upstream, which may still be unacknowledged: count the queue then too.
  for (Side side : kSides) {
    bool written = from_relay || (side == kUpstream && c.proxy_protocol != ProxyProtocol::kNone);
    c.written_base[side] = written ? TcpBytesWritten(c.fd[side].get()) : TcpBytesAcked(c.fd[side].get());
  }

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
    entry.engine = slot_.index;
    if (int err = maps.WriteConn(c.cookie[side], entry)) return fail("conns update", err);
  }
  // Both sockets are redirect targets before either one's verdict runs.
  for (Side side : kSides)
    if (int err = maps.Hold(c.cookie[side], c.fd[side].get())) return fail("splice_hold insert", err);
  if (int err = maps.Activate(c.cookie[kUpstream], c.fd[kUpstream].get())) return fail("splice_active insert", err);

  c.state = ConnState::kSpliced;
  SetPath(c, Path::kSockmap);
  for (Side side : kSides) conn_by_cookie_[c.cookie[side]] = c.id;
  if (maps.Activate(c.cookie[kClient], c.fd[kClient].get()) != 0) {
    // The upstream's bytes may already be on their way to the client, so the
    // maps cannot be undone any more; the client's bytes are relayed here.
    c.dir[kClient].outside_kernel = true;
    MarkPaused(c, kClient);
  }
  for (Side side : kSides) NudgeQueuedBytes(c.fd[side].get());
  Watch(from_relay ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c, kClient, kSplicedEvents);
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
    if (int err = SocketError(c.fd[side].get())) return CloseSpliced(c, CloseReason::kReset, true, err);
  }
  if ((events & (EPOLLRDHUP | EPOLLHUP)) && !c.dir[side].eof) {
    c.dir[side].eof = true;
    if (c.closed_first < 0) c.closed_first = side;
    TickSpliced(c);
  }
}

void Engine::OnPauseEvent(uint64_t cookie, bool paused) {
  auto it = conn_by_cookie_.find(cookie);
  if (it == conn_by_cookie_.end()) {
    // Engine 0 reads the one ring buffer for the whole group: hand the event
    // to the engine that owns the connection (gone already: nothing to do).
    conn entry{};
    if (slot_.route_pause && maps_->ReadConn(cookie, &entry) == 0 && entry.engine != slot_.index)
      slot_.route_pause(entry.engine, cookie, paused);
    return;
  }
  Connection& c = *conns_.at(it->second);
  Side side = cookie == c.cookie[kClient] ? kClient : kUpstream;
  if (paused)
    MarkPaused(c, side);
  else
    MarkResumed(c, side);
}

void Engine::MarkPaused(Connection& c, Side src) {
  SplicedDirection& dir = c.dir[src];
  if (dir.paused || dir.shut) return;
  dir.paused = true;
  c.stats->paused.Add();
  c.stats->pauses.Add();
  StartTicking(c);
  int fd = c.fd[src].get();
  socklen_t len = sizeof(dir.window_clamp);
  if (!dir.outside_kernel && getsockopt(fd, IPPROTO_TCP, TCP_WINDOW_CLAMP, &dir.window_clamp, &len) == 0)
    setsockopt(fd, IPPROTO_TCP, TCP_WINDOW_CLAMP, &kPausedWindowClamp, sizeof(kPausedWindowClamp));
}

void Engine::StartTicking(Connection& c) {
  if (c.ticking) return;
  c.ticking = true;
  ticking_.insert(c.id);
}

void Engine::MarkResumed(Connection& c, Side src) {
  SplicedDirection& dir = c.dir[src];
  if (!dir.paused || dir.outside_kernel) return;
  dir.paused = false;
  c.stats->paused.Sub();
  if (dir.window_clamp > 0)
    setsockopt(c.fd[src].get(), IPPROTO_TCP, TCP_WINDOW_CLAMP, &dir.window_clamp, sizeof(dir.window_clamp));
}

void Engine::TickSpliced(Connection& c) {
  bool waiting = false;
  for (Side side : kSides) {
    int err = 0;
    Progress progress = TickDirection(c, side, &err);
    if (progress == Progress::kBroken) return CloseSpliced(c, CloseReason::kReset, true, err);
    waiting |= progress == Progress::kWaiting;
  }
  if (c.dir[kClient].shut && c.dir[kUpstream].shut) return CloseSpliced(c, CloseReason::kEof, false, 0);
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
  if (dir.paused) {
    if ((*err = RelayPassedBytes(c, src))) return Progress::kBroken;
    // Normally EVENT_RESUMED says so; the flag also covers a full ring buffer.
    conn entry{};
    if (!dir.outside_kernel && maps_->ReadConn(c.cookie[src], &entry) == 0 && !(entry.flags & CONN_F_PAUSED))
      MarkResumed(c, src);
  }
  if (!dir.eof) return dir.paused ? Progress::kWaiting : Progress::kDone;
  // bytes_received counts the FIN as one byte, and the bytes the relay moved before the splice.
  if (TcpBytesReceived(c.fd[src].get()) > c.relayed_before[src] + WrittenSinceSetup(c, dst) + 1)
    return Progress::kWaiting;
  // Only now: an early SHUT_WR would make the psock sender drop what is left (EPIPE).
  shutdown(c.fd[dst].get(), SHUT_WR);
  if (dir.paused) c.stats->paused.Sub();
  dir.paused = false;
  dir.shut = true;
  return Progress::kDone;
}

// Paused: the verdict leaves src's bytes in src's ingress queue, where they
// keep src's window closed. Once the kernel has written everything it
// redirected (order) and the sender has stopped, peek the whole queue, write it
// to dst (over as many ticks as dst needs), publish the total, and only then
// consume it. Consuming is what reopens the window, so the sender's next skb
// finds relayed == passed and the verdict resumes the kernel path; a partial
// consume would let the sender in first and keep the direction in user space.
// recv, not splice(2): passed bytes sit where only the socket's recvmsg sees them.
int Engine::RelayPassedBytes(Connection& c, Side src) {
  SplicedDirection& dir = c.dir[src];
  int src_fd = c.fd[src].get();
  int dst_fd = c.fd[Other(src)].get();
  if (dir.batch.empty()) {
    if (InFlight(c, src) > 0 || !SenderStopped(c, src)) return 0;
    // Capped: passed bytes stuck behind a stalled backlog are charged all at
    // once (docs/ARCHITECTURE.md, "Pause only while nothing flows in"), far
    // more than user space should hold.
    size_t want = std::min(PassedNotRelayed(c, src), kMaxRelayBatch);
    if (want == 0) return 0;
    dir.batch.resize(want);
    ssize_t peeked = recv(src_fd, dir.batch.data(), want, MSG_DONTWAIT | MSG_PEEK);
    if (peeked <= 0) {
      dir.batch.clear();
      return peeked < 0 && errno != EAGAIN && errno != EINTR ? errno : 0;
    }
    dir.batch.resize(static_cast<size_t>(peeked));
    dir.batch_sent = 0;
  }
  while (dir.batch_sent < dir.batch.size()) {
    ssize_t sent = send(dst_fd, dir.batch.data() + dir.batch_sent, dir.batch.size() - dir.batch_sent,
                        MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent < 0) return errno == EAGAIN || errno == EINTR ? 0 : errno;  // dst full: next tick
    dir.batch_sent += static_cast<size_t>(sent);
  }
  dir.user_relayed += dir.batch.size();
  PausedBytesTo(*c.stats, Other(src)).Add(dir.batch.size());
  // The verdict never saw the bytes of a direction outside the kernel path.
  if (dir.outside_kernel) BytesTo(*c.stats, Other(src)).Add(dir.batch.size());
  if (!dir.outside_kernel) {
    maps_->PublishRelayed(c.cookie[src], dir.user_relayed);
    dir.published = true;
  }
  ssize_t consumed = recv(src_fd, dir.batch.data(), dir.batch.size(), MSG_DONTWAIT);
  bool whole = consumed == static_cast<ssize_t>(dir.batch.size());
  dir.batch.clear();
  return whole ? 0 : EIO;
}

// How much to peek: what the verdict passed and we have not relayed yet; a
// direction outside the kernel path has no count, so a chunk at a time.
size_t Engine::PassedNotRelayed(const Connection& c, Side src) const {
  const SplicedDirection& dir = c.dir[src];
  conn entry{};
  if (dir.outside_kernel || maps_->ReadConn(c.cookie[src], &entry) != 0) return kRelayChunk;
  return entry.passed > dir.user_relayed ? static_cast<size_t>(entry.passed - dir.user_relayed) : 0;
}

// Relay only once the sender has stopped: `passed` unchanged for a tick means
// its window is full (or it paused on its own). Relaying while the sender still
// streams just keeps pace with it and leaves the direction in user space for
// good (measured: 43-92 % of a 2 GiB loopback transfer). EOF and a trickling
// sender do not wait longer than kMaxRelayWaitTicks.
bool Engine::SenderStopped(Connection& c, Side src) {
  SplicedDirection& dir = c.dir[src];
  conn entry{};
  if (dir.outside_kernel || dir.eof || maps_->ReadConn(c.cookie[src], &entry) != 0) return true;
  bool stopped = entry.passed == dir.passed_seen || ++dir.ticks_waited >= kMaxRelayWaitTicks;
  dir.passed_seen = entry.passed;
  if (stopped) dir.ticks_waited = 0;
  return stopped;
}

uint64_t Engine::WrittenSinceSetup(const Connection& c, Side side) const {
  uint64_t written = TcpBytesWritten(c.fd[side].get());
  return written > c.written_base[side] ? written - c.written_base[side] : 0;
}

// Bytes the verdict redirected from src that dst has not yet been written:
// what sits in dst's psock queue, which the kernel does not limit. Bytes this
// engine wrote into dst itself are not part of it.
uint64_t Engine::InFlight(const Connection& c, Side src) const {
  conn entry{};
  if (maps_->ReadConn(c.cookie[src], &entry) != 0) return 0;
  uint64_t written = WrittenSinceSetup(c, Other(src));
  uint64_t by_kernel = written > c.dir[src].user_relayed ? written - c.dir[src].user_relayed : 0;
  return entry.redirected > by_kernel ? entry.redirected - by_kernel : 0;
}

// Once a second: idle timeout, and paused directions whose event the full
// ring buffer could not carry. Returns true if the connection is idle.
bool Engine::SweepSpliced(Connection& c, uint64_t now) {
  if (c.idle_timeout_ms == 0 && c.budget_bytes == 0) return false;
  uint64_t last = std::max(c.connected_ns, c.last_activity_ns);  // the latter: relayed before
  for (Side side : kSides) {
    conn entry{};
    if (maps_->ReadConn(c.cookie[side], &entry) != 0) continue;
    last = std::max<uint64_t>(last, entry.last_active_ns);
    // A paused direction whose sender is held back still moves bytes out of
    // this side: that is activity, not idleness.
    if (c.idle_timeout_ms && c.dir[Other(side)].paused) {
      uint64_t written = WrittenSinceSetup(c, side);
      if (written != c.written_seen[side]) last = now;
      c.written_seen[side] = written;
    }
    if (entry.flags & CONN_F_PAUSED) MarkPaused(c, side);
  }
  return c.idle_timeout_ms && now > last && now - last > c.idle_timeout_ms * 1000000ull;
}

uint64_t Engine::UserSpaceBytes(const Connection& c, Side src) {
  return c.dir[src].user_relayed + c.relayed_before[src];
}

void Engine::CloseSpliced(Connection& c, CloseReason reason, bool reset, int err) {
  uint64_t bytes[2] = {0, 0};
  // No sockhash deletes: closing a socket unlinks it from every sockmap
  // (sock_map_close), which saves four bpf() calls per connection.
  for (Side side : kSides) {
    conn entry{};
    if (maps_->TakeConn(c.cookie[side], &entry) == 0) bytes[side] = entry.redirected;
    bytes[side] += UserSpaceBytes(c, side);
    if (c.dir[side].paused) c.stats->paused.Sub();
    if (c.dir[side].published) maps_->DeleteRelayed(c.cookie[side]);
    conn_by_cookie_.erase(c.cookie[side]);
  }
  Finish(c, reason, reset, bytes[kClient], bytes[kUpstream], err);
}
