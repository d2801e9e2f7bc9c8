// The user-space relay path of the engine: used with datapath 'userspace',
// without maps, for connections the kernel refused to splice, and for the
// first splice_after_bytes of a spliced one (all of a bulk flow, which stays).
#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "engine.h"
#include "errors.h"
#include "monotonic_clock.h"

// Edge-triggered: Pump::Run() always goes until a socket would block (or asks
// to be re-run), so no epoll_ctl is needed as the streams progress.
static constexpr uint32_t kRelayEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
// Bytes a relayed direction copies before it switches to splice(2) through a
// pipe: short connections never pay for two pipes (four fds, eight calls).
static constexpr uint64_t kCopyBytes = 64 * 1024;
// A flow that carries splice_after bytes this soon after its first byte is bulk:
// a ping-pong of small messages needs hundreds of round trips for 64 KiB.
static constexpr uint64_t kBulkWindowNs = 10 * 1000 * 1000;
static constexpr Side kSides[] = {kClient, kUpstream};

void Engine::StartRelay(Connection& c) {
  c.state = ConnState::kRelayed;
  c.last_activity_ns = MonotonicNs();
  SetPath(c, Path::kCopy);
  // Headed for the kernel: copy until then, never set up pipes.
  uint64_t copy_limit = c.want_splice ? Pump::kNeverSplice : kCopyBytes;
  for (Side side : kSides)
    c.pump[side] = std::make_unique<Pump>(c.fd[side].get(), c.fd[Other(side)].get(), copy_limit);
  Watch(EPOLL_CTL_ADD, c, kClient, kRelayEvents);
  Watch(EPOLL_CTL_MOD, c, kUpstream, kRelayEvents);
  RunRelay(c);
}

void Engine::OnRelayEvent(Connection& c, uint32_t events) {
  if (events & EPOLLERR) {
    // A reset is seen here even when neither direction has bytes to move.
    for (UniqueFd& fd : c.fd) {
      int err = 0;
      socklen_t len = sizeof(err);
      if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err)
        return CloseRelayed(c, CloseReason::kReset, true, err);
    }
  }
  RunRelay(c);
}

void Engine::RunRelay(Connection& c) {
  bool progressed = false;
  bool more = false;
  bool piped = false;
  for (Side side : kSides) {
    Pump& pump = *c.pump[side];
    uint64_t before = pump.bytes();
    int err = pump.Run();
    // Per run, not per byte; CloseRelayed needs nothing more.
    BytesTo(*c.stats, Other(side)).Add(pump.bytes() - before);
    if (err) return CloseRelayed(c, CloseReason::kReset, true, err);
    if (c.closed_first < 0 && pump.src_eof()) c.closed_first = side;
    progressed |= pump.progressed();
    more |= pump.more();
    piped |= pump.piped();
  }
  if (c.pump[kClient]->finished() && c.pump[kUpstream]->finished()) return CloseRelayed(c, CloseReason::kEof, false, 0);
  if (piped) SetPath(c, Path::kSplice);
  if (progressed) {
    c.last_activity_ns = MonotonicNs();
    if (!c.first_byte_ns) c.first_byte_ns = c.last_activity_ns;
  }
  if (c.want_splice && c.pump[kClient]->bytes() + c.pump[kUpstream]->bytes() >= c.splice_after_bytes) {
    if (IsBulk(c)) {
      KeepOnRelay(c);
    } else if (c.pump[kClient]->drained() && c.pump[kUpstream]->drained()) {
      // Bytes still waiting in a receive queue are fine: the verdict takes them in order.
      MoveIntoKernel(c);
      if (c.state == ConnState::kSpliced) return;
    }
  }
  if (more) rerun_.push_back(c.id);
}

// A flow that carried splice_after bytes within kBulkWindowNs of its first byte
// is a bulk transfer; with bulk_on_relay it stays here on splice(2), which
// outruns the sockmap path on the kernels measured (docs/PERFORMANCE.md). The
// rest go into the kernel, where a message costs no wake-up of this process.
// The first check past the threshold decides: the elapsed time only grows.
bool Engine::IsBulk(const Connection& c) const {
  return c.bulk_on_relay && MonotonicNs() - c.first_byte_ns < kBulkWindowNs;
}

void Engine::KeepOnRelay(Connection& c) {
  c.want_splice = false;
  c.stats->bulk_flows.Add();
  for (auto& pump : c.pump) pump->set_copy_limit(kCopyBytes);
}

void Engine::MoveIntoKernel(Connection& c) {
  for (Side side : kSides) c.relayed_before[side] = c.pump[side]->bytes();
  std::string why_not;
  if (StartSplice(c, &why_not)) {
    for (auto& pump : c.pump) pump.reset();
    return;
  }
  for (Side side : kSides) c.relayed_before[side] = 0;
  ReportFallback(c, why_not);
  for (auto& pump : c.pump) pump->set_copy_limit(kCopyBytes);
}

void Engine::CloseRelayed(Connection& c, CloseReason reason, bool reset, int err) {
  uint64_t to_upstream = c.pump[kClient] ? c.pump[kClient]->bytes() : 0;
  uint64_t to_client = c.pump[kUpstream] ? c.pump[kUpstream]->bytes() : 0;
  Finish(c, reason, reset, to_upstream, to_client, err);
}
