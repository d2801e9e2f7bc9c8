// The user-space relay path of the engine: used with datapath 'userspace',
// without maps, and for connections the kernel refused to splice.
#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "engine.h"
#include "errors.h"
#include "monotonic_clock.h"

// Edge-triggered: Pump::Run() always goes until a socket would block (or asks
// to be re-run), so no epoll_ctl is needed as the streams progress.
static constexpr uint32_t kRelayEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

void Engine::StartRelay(Connection& c) {
  c.state = ConnState::kRelayed;
  c.last_activity_ns = MonotonicNs();
  relayed_++;
  try {
    c.pump[kClient] = std::make_unique<Pump>(c.fd[kClient].get(), c.fd[kUpstream].get());
    c.pump[kUpstream] = std::make_unique<Pump>(c.fd[kUpstream].get(), c.fd[kClient].get());
  } catch (const SysError& e) {
    return CloseRelayed(c, "error", true, e.err);
  }
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
      if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err) return CloseRelayed(c, "reset", true, err);
    }
  }
  RunRelay(c);
}

void Engine::RunRelay(Connection& c) {
  bool progressed = false;
  bool more = false;
  for (auto& pump : c.pump) {
    if (int err = pump->Run()) return CloseRelayed(c, "reset", true, err);
    progressed |= pump->progressed();
    more |= pump->more();
  }
  if (c.pump[kClient]->finished() && c.pump[kUpstream]->finished()) return CloseRelayed(c, "eof", false, 0);
  if (progressed) c.last_activity_ns = MonotonicNs();
  if (more) rerun_.push_back(c.id);
}

void Engine::CloseRelayed(Connection& c, const char* reason, bool reset, int err) {
  relayed_--;
  uint64_t to_upstream = c.pump[kClient] ? c.pump[kClient]->bytes() : 0;
  uint64_t to_client = c.pump[kUpstream] ? c.pump[kUpstream]->bytes() : 0;
  Finish(c, reason, reset, to_upstream, to_client, err);
}
