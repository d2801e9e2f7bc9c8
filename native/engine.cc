// Engine thread: epoll loop, commands from JS, listeners, accept, upstream
// connect, timers and event batching. The two data paths live in
// engine_splice.cc and engine_relay.cc.
#include "engine.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "errno_name.h"
#include "errors.h"
#include "monotonic_clock.h"

namespace {

// epoll_event.data.u64 = id << 3 | tag: ids stay valid after a connection is
// gone (a stale event finds nothing), unlike pointers.
enum Tag : uint64_t {
  kTagClient = 0,
  kTagUpstream = 1,
  kTagListener = 2,
  kTagWakeup = 3,
  kTagPauseEvents = 4,
  kTagDenials = 5,
};
constexpr uint64_t kTagBits = 3;
constexpr uint64_t kMs = 1000000;
constexpr int kAcceptBurst = 64;  // per wake-up, so one busy listener cannot starve the rest
constexpr int kMaxEvents = 256;

uint64_t Key(uint64_t id, uint64_t tag) { return id << kTagBits | tag; }

// Where the client connected to: its PROXY header's word, else the accepted socket's own address.
std::string DialledText(const Connection& c) {
  return c.dialled ? FormatSockAddress(*c.dialled) : OriginalDestination(c.fd[kClient].get());
}

// SO_LINGER 0: closing the socket sends a reset, so the peer learns at once.
void ResetOnClose(int fd) {
  linger reset{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
}

void SetNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void AddToEpoll(int epoll_fd, int fd, uint32_t events, uint64_t data) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = data;
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) ThrowSysError(errno, "epoll_ctl", "engine setup");
}

}  // namespace

Engine::Engine(const SpliceMapFds* maps, EngineSlot slot, bool connection_events, std::function<void()> notify)
    : slot_(std::move(slot)), notify_(std::move(notify)), connection_events_(connection_events) {
  next_conn_id_ = slot_.index + 1;  // ids stay unique across the group: index + k * count
  epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) ThrowSysError(errno, "epoll_create1", "engine");
  wakeup_.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wakeup_) ThrowSysError(errno, "eventfd", "engine");
  AddToEpoll(epoll_.get(), wakeup_.get(), EPOLLIN, Key(0, kTagWakeup));
  if (maps) maps_.emplace(*maps);
  if (maps && slot_.index == 0) {
    pause_events_ = std::make_unique<RingReader>(maps->events, "maps.events", [this](const void* data, size_t size) {
      const auto* record = static_cast<const event*>(data);
      if (size < sizeof(event)) return;
      if (record->type == EVENT_PAUSED) OnPauseEvent(record->cookie, true);
      if (record->type == EVENT_RESUMED) OnPauseEvent(record->cookie, false);
    });
    AddToEpoll(epoll_.get(), pause_events_->epoll_fd(), EPOLLIN, Key(0, kTagPauseEvents));
  }
  thread_ = std::thread([this] { Run(); });
}

Engine::~Engine() {
  RequestStop();
  Join();
}

// ---- caller thread -------------------------------------------------------

void Engine::AddListener(uint32_t id, ListenerConfig config, UniqueFd fd) {
  std::unique_ptr<RuleCounters>& counters = rule_counters_[config.rule_id];
  if (!counters) counters = std::make_unique<RuleCounters>();
  RuleCounters* stats = counters.get();
  auto shared_config = std::make_shared<ListenerConfig>(std::move(config));
  auto shared_fd = std::make_shared<UniqueFd>(std::move(fd));
  Post([this, id, stats, shared_fd, shared_config] {
    Listener& listener = listeners_[id];
    listener.config = std::move(*shared_config);
    listener.stats = stats;
    listener.fd = std::move(*shared_fd);
    AddToEpoll(epoll_.get(), listener.fd.get(), EPOLLIN, Key(id, kTagListener));
  });
}

void Engine::WatchDenials(int denials_fd) {
  // Built here, so a wrong fd throws to the caller; read on the engine thread from then on.
  auto reader = std::make_shared<std::unique_ptr<RingReader>>(std::make_unique<RingReader>(
      denials_fd, "denials", [this](const void* data, size_t size) {
        if (size >= sizeof(denial)) OnDenial(*static_cast<const struct denial*>(data));
      }));
  Post([this, reader] {
    if (denials_) return;  // one ring per group
    denials_ = std::move(*reader);
    AddToEpoll(epoll_.get(), denials_->epoll_fd(), EPOLLIN, Key(0, kTagDenials));
  });
}

void Engine::UseAccessLists(int acl_fd, int policy_fd) {
  auto lists = std::make_shared<std::unique_ptr<AccessLists>>(std::make_unique<AccessLists>(acl_fd, policy_fd));
  Post([this, lists] { access_lists_ = std::move(*lists); });
}

static const char* DenialReasonName(uint32_t reason) {
  switch (reason) {
    case DENIAL_NOT_ALLOWED:
      return "not_allowed";
    case DENIAL_NOT_TRUSTED:
      return "not_trusted";
    default:
      return "denied";
  }
}

void Engine::OnDenial(const struct denial& record) {
  if (!connection_events_) return;
  // A flood of refused SYNs must not become a flood of events: at most kMaxDenialEventsPerSecond
  // lines, then one line saying how many went unlogged (the kernel counted every refusal).
  uint64_t now = MonotonicNs();
  if (now - denial_window_ns_ >= 1000 * kMs) {
    if (denials_unlogged_) {
      EngineEvent summary;
      summary.type = "denials_unlogged";
      summary.message = std::to_string(denials_unlogged_) + " refused connections in the last second were not logged (more than " +
                        std::to_string(kMaxDenialEventsPerSecond) + " a second); bpfredir_sk_lookup_dropped_total counts them all";
      Emit(std::move(summary));
    }
    denial_window_ns_ = now;
    denials_in_window_ = 0;
    denials_unlogged_ = 0;
  }
  if (++denials_in_window_ > kMaxDenialEventsPerSecond) {
    denials_unlogged_++;
    return;
  }
  EngineEvent event;
  event.type = "denied";
  event.rule_id = record.rule_id;
  event.client = FormatMappedAddress(record.client, record.client_port);
  event.original_dst = FormatMappedAddress(record.dest, record.dest_port);
  event.reason = DenialReasonName(record.reason);
  Emit(std::move(event));
}

void Engine::UpdateListener(uint32_t id, ListenerUpdate update) {
  auto shared_update = std::make_shared<ListenerUpdate>(std::move(update));
  Post([this, id, shared_update] {
    auto it = listeners_.find(id);
    if (it == listeners_.end()) return;
    ListenerConfig& config = it->second.config;
    if (shared_update->targets) config.targets = *shared_update->targets;  // open connections keep their set
    if (shared_update->connect_timeout_ms) config.connect_timeout_ms = *shared_update->connect_timeout_ms;
    if (shared_update->idle_timeout_ms) config.idle_timeout_ms = *shared_update->idle_timeout_ms;
    if (shared_update->upstream) config.upstream = *shared_update->upstream;
    if (shared_update->max_connections) config.limit->max.store(*shared_update->max_connections, std::memory_order_relaxed);
  });
}

void Engine::RemoveListener(uint32_t id) {
  // Closing the fd takes it out of epoll; accepted connections are untouched.
  Post([this, id] { listeners_.erase(id); });
}

void Engine::PostPauseEvent(uint64_t cookie, bool paused) {
  Post([this, cookie, paused] { OnPauseEvent(cookie, paused); });
}

EngineStats Engine::Stats() const {
  RuleStats all;
  for (const auto& entry : rule_counters_) entry.second->AddTo(&all);
  return TotalOf(all);
}

void Engine::AddRuleStats(std::unordered_map<uint32_t, RuleStats>* by_rule) const {
  for (const auto& [rule_id, counters] : rule_counters_) {
    RuleStats& stats = (*by_rule)[rule_id];
    stats.rule_id = rule_id;
    counters->AddTo(&stats);
  }
}

void ConnectionList::Append(std::vector<ConnectionInfo> items) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& item : items) items_.push_back(std::move(item));
}

void Engine::ListConnections(std::shared_ptr<ConnectionList> list) {
  Post([this, list] {
    uint64_t now = MonotonicNs();
    std::vector<ConnectionInfo> items;
    items.reserve(conns_.size());
    for (const auto& entry : conns_) items.push_back(Describe(*entry.second, now));
    list->Append(std::move(items));
  });
}

void Engine::RequestStop() {
  if (stop_requested_) return;
  stop_requested_ = true;
  Post([this] { stopping_ = true; });
}

std::vector<EngineEvent> Engine::TakeEvents(bool* finished) {
  std::lock_guard<std::mutex> lock(outbox_mutex_);
  std::vector<EngineEvent> events;
  events.swap(outbox_);
  notify_scheduled_ = false;
  *finished = finished_;
  return events;
}

void Engine::Join() {
  if (thread_.joinable()) thread_.join();
}

void Engine::Post(std::function<void()> command) {
  {
    std::lock_guard<std::mutex> lock(commands_mutex_);
    commands_.push_back(std::move(command));
  }
  uint64_t one = 1;
  (void)!write(wakeup_.get(), &one, sizeof(one));
}

// ---- engine thread: loop -------------------------------------------------

void Engine::Run() {
  try {
    Loop();
  } catch (const std::exception& e) {
    // A bug, not a network condition: say so, then still close everything.
    EngineEvent event;
    event.type = "error";
    event.code = "EENGINE";
    event.message = std::string("engine thread failed, closing all connections: ") + e.what();
    Emit(std::move(event));
  }
  CloseAll();
  FlushEvents();
  {
    std::lock_guard<std::mutex> lock(outbox_mutex_);
    finished_ = true;
    notify_scheduled_ = true;
  }
  notify_();
}

void Engine::Loop() {
  epoll_event events[kMaxEvents];
  next_sweep_ns_ = MonotonicNs() + 1000 * kMs;
  while (!stopping_) {
    int timeout = rerun_.empty() ? NextTimeoutMs(MonotonicNs()) : 0;
    int n = epoll_wait(epoll_.get(), events, kMaxEvents, timeout);
    for (int i = 0; i < n; i++) Dispatch(events[i].data.u64, events[i].events);
    std::vector<uint64_t> rerun;
    rerun.swap(rerun_);
    for (uint64_t id : rerun) {
      auto it = conns_.find(id);
      if (it != conns_.end() && it->second->state == ConnState::kRelayed) RunRelay(*it->second);
    }
    RunTimers(MonotonicNs());
    FlushEvents();
  }
}

void Engine::RunCommands() {
  std::vector<std::function<void()>> commands;
  {
    std::lock_guard<std::mutex> lock(commands_mutex_);
    commands.swap(commands_);
  }
  for (auto& command : commands) {
    try {
      command();
    } catch (const SysError& e) {
      EngineEvent event;
      event.type = "error";
      event.code = ErrnoName(e.err);
      event.message = e.what();
      Emit(std::move(event));
    }
  }
}

void Engine::Dispatch(uint64_t data, uint32_t events) {
  uint64_t tag = data & ((1u << kTagBits) - 1);
  uint64_t id = data >> kTagBits;
  if (tag == kTagWakeup) {
    uint64_t count;
    (void)!read(wakeup_.get(), &count, sizeof(count));
    RunCommands();
    return;
  }
  if (tag == kTagPauseEvents) {
    pause_events_->Consume();
    return;
  }
  if (tag == kTagDenials) {
    denials_->Consume();
    return;
  }
  if (tag == kTagListener) {
    auto it = listeners_.find(static_cast<uint32_t>(id));
    if (it != listeners_.end()) AcceptAll(it->second);
    return;
  }
  auto it = conns_.find(id);
  if (it == conns_.end()) return;  // closed earlier in this batch
  Connection& c = *it->second;
  Side side = tag == kTagClient ? kClient : kUpstream;
  switch (c.state) {
    case ConnState::kAwaitingHeader:
      OnProxyHeader(c, events);
      break;
    case ConnState::kConnecting:
      if (side == kUpstream) OnConnectDone(c);
      break;
    case ConnState::kSpliced:
      OnSplicedEvent(c, side, events);
      break;
    case ConnState::kRelayed:
      OnRelayEvent(c, events);
      break;
  }
}

int Engine::NextTimeoutMs(uint64_t now) const {
  uint64_t next = next_sweep_ns_;
  if (!ticking_.empty()) next = std::min(next, next_tick_ns_);
  if (!connect_deadlines_.empty()) next = std::min(next, connect_deadlines_.top().first);
  if (next <= now) return 0;
  return static_cast<int>((next - now + kMs - 1) / kMs);
}

void Engine::RunTimers(uint64_t now) {
  while (!connect_deadlines_.empty() && connect_deadlines_.top().first <= now) {
    auto [deadline, id] = connect_deadlines_.top();
    connect_deadlines_.pop();
    auto it = conns_.find(id);
    // Only the current attempt's deadline: an earlier attempt's is stale.
    if (it == conns_.end() || it->second->plan.deadline_ns != deadline) continue;
    Connection& c = *it->second;
    if (c.state == ConnState::kConnecting) FailConnect(c, ETIMEDOUT, "connect_timeout");
    if (c.state == ConnState::kAwaitingHeader)
      Refuse(c, c.stats->proxy_header_failed, ProxyHeaderFailed(c, "timeout", "no whole PROXY header within connect_timeout"));
  }
  if (!ticking_.empty() && now >= next_tick_ns_) {
    next_tick_ns_ = now + kMs;
    std::vector<uint64_t> ids(ticking_.begin(), ticking_.end());
    for (uint64_t id : ids) {
      auto it = conns_.find(id);
      if (it != conns_.end()) TickSpliced(*it->second);
    }
  }
  if (now >= next_sweep_ns_) {
    next_sweep_ns_ = now + 1000 * kMs;
    SweepIdle(now);
  }
}

void Engine::SweepIdle(uint64_t now) {
  for (auto& [id, listener] : listeners_) {
    if (!listener.backing_off) continue;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = Key(id, kTagListener);
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, listener.fd.get(), &ev) == 0) listener.backing_off = false;
  }
  std::vector<uint64_t> idle;
  for (auto& [id, c] : conns_) {
    bool is_idle = false;
    if (c->state == ConnState::kSpliced)
      is_idle = SweepSpliced(*c, now);
    else if (c->state == ConnState::kRelayed)
      is_idle = c->idle_timeout_ms && now - c->last_activity_ns > c->idle_timeout_ms * kMs;
    if (is_idle) idle.push_back(id);
  }
  for (uint64_t id : idle) Close(*conns_.at(id), CloseReason::kIdleTimeout, false);
}

// ---- engine thread: connections -----------------------------------------

void Engine::AcceptAll(Listener& listener) {
  for (int i = 0; i < kAcceptBurst; i++) {
    SockAddress peer;
    peer.len = sizeof(peer.storage);
    int fd = accept4(listener.fd.get(), reinterpret_cast<sockaddr*>(&peer.storage), &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      StartConnection(listener, UniqueFd(fd), peer);
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    if (errno == EINTR || errno == ECONNABORTED) continue;
    int err = errno;
    EngineEvent event;
    event.type = "error";
    event.rule_id = listener.config.rule_id;
    event.code = ErrnoName(err);
    event.message = "accept on " + FormatSockAddress(listener.config.bind) + " failed: " + strerror(err) +
                    (err == EMFILE || err == ENFILE ? "; raise the fd limit (ulimit -n)" : "");
    Emit(std::move(event));
    // Out of fds: stop polling the listener (it would spin) until the next sweep.
    epoll_event ev{};
    epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, listener.fd.get(), &ev);
    listener.backing_off = true;
    return;
  }
}

void Engine::StartConnection(const Listener& listener, UniqueFd client, const SockAddress& peer) {
  const ListenerConfig& config = listener.config;
  // Rules this connection has passed through already: empty unless it is one
  // of our own guarded upstream connects (one relaxed load when there are none).
  std::vector<uint32_t> path;
  if (slot_.loop_guard && slot_.loop_guard->Active()) {
    SockAddress dialled;
    if (auto from_us = OwnUpstreamPath(client.get(), peer, &dialled)) {
      if (std::find(from_us->begin(), from_us->end(), config.rule_id) != from_us->end())
        return RefuseLoop(listener, std::move(client), peer, dialled, *from_us);
      path = std::move(*from_us);  // a chain of our listeners, which may still end at a real service
    }
  }
  auto owned = std::make_unique<Connection>();
  if (!owned->limit_slot.Acquire(config.limit)) return RefuseOverLimit(listener, std::move(client));
  Connection& c = *owned;
  c.id = next_conn_id_;
  next_conn_id_ += slot_.count;
  c.rule_id = config.rule_id;
  c.idle_timeout_ms = config.idle_timeout_ms;
  c.budget_bytes = config.budget_bytes;
  c.want_splice = maps_ && config.datapath == Datapath::kSplice;
  c.splice_after_bytes = config.splice_after_bytes;
  c.bulk_on_relay = config.bulk_on_relay;
  c.proxy_protocol = config.upstream.proxy_protocol;
  c.accepted_ns = MonotonicNs();
  c.stats = listener.stats;
  c.client = peer;
  SetNoDelay(client.get());
  SetKeepalive(client.get(), config.upstream.keepalive_s);
  c.fd[kClient] = std::move(client);
  // What every connect attempt needs, fixed now: a reload may change the listener meanwhile.
  c.plan.upstream = config.upstream;
  if (config.original_destination) {
    SockAddress dialled;
    dialled.len = sizeof(dialled.storage);
    getsockname(c.fd[kClient].get(), reinterpret_cast<sockaddr*>(&dialled.storage), &dialled.len);
    c.plan.targets = std::make_shared<TargetSet>(std::vector<SockAddress>{Unmapped(dialled)}, Balance::kFailover);
    c.plan.order = {0};
  } else {
    c.plan.targets = config.targets;
  }
  c.plan.connect_timeout_ms = config.connect_timeout_ms;
  c.plan.sndbuf_bytes = config.sndbuf_bytes;
  c.plan.guarded = config.loop_guard && slot_.loop_guard;
  if (c.plan.guarded) {
    path.push_back(config.rule_id);
    c.plan.loop_path = std::move(path);
  }
  conns_.emplace(c.id, std::move(owned));
  c.stats->accepted.Add();
  c.stats->connecting.Add();
  if (config.accept_proxy) return AwaitProxyHeader(c);
  PlanForClient(c);
  ConnectUpstream(c);
}

void Engine::PlanForClient(Connection& c) {
  if (c.plan.order.empty()) c.plan.order = c.plan.targets->Order(c.client, c.accepted_ns);
  if (c.plan.upstream.transparent != Transparent::kOff) {
    c.plan.upstream.source = Unmapped(c.client);
    if (c.plan.upstream.transparent == Transparent::kAddress) SetPort(&c.plan.upstream.source, 0);
  }
}

void Engine::AwaitProxyHeader(Connection& c) {
  if (!access_lists_ || !access_lists_->Trusted(c.rule_id, c.client)) {
    EngineEvent event = NewEvent("denied", c);
    event.reason = DenialReasonName(DENIAL_NOT_TRUSTED);
    return Refuse(c, c.stats->proxy_denied, std::move(event));
  }
  c.state = ConnState::kAwaitingHeader;
  // Edge-triggered: a partial header is peeked, not read, and must not wake us again until more comes.
  Watch(EPOLL_CTL_ADD, c, kClient, EPOLLIN | EPOLLRDHUP | EPOLLET);
  c.plan.deadline_ns = MonotonicNs() + c.plan.connect_timeout_ms * kMs;
  connect_deadlines_.emplace(c.plan.deadline_ns, c.id);
}

void Engine::OnProxyHeader(Connection& c, uint32_t events) {
  int fd = c.fd[kClient].get();
  if (header_buffer_.empty()) header_buffer_.resize(kMaxProxyHeader);
  // Peeked: only the header is taken off the socket, the client's first bytes stay for the datapath.
  ssize_t n = recv(fd, header_buffer_.data(), header_buffer_.size(), MSG_PEEK);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0)
    return Refuse(c, c.stats->proxy_header_failed,
                  ProxyHeaderFailed(c, "closed", n == 0 ? "closed before sending a PROXY header" : strerror(errno)));
  ProxyHeaderInfo info;
  std::string why;
  switch (ParseProxyHeader(header_buffer_.data(), static_cast<size_t>(n), &info, &why)) {
    case ParsedHeader::kIncomplete:
      if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        Refuse(c, c.stats->proxy_header_failed, ProxyHeaderFailed(c, "closed", "closed in the middle of its PROXY header"));
      return;
    case ParsedHeader::kInvalid:
      return Refuse(c, c.stats->proxy_header_failed, ProxyHeaderFailed(c, "invalid", why));
    case ParsedHeader::kComplete:
      break;
  }
  // The header's bytes are queued already: this takes exactly them.
  if (recv(fd, header_buffer_.data(), info.length, 0) != static_cast<ssize_t>(info.length))
    return Refuse(c, c.stats->proxy_header_failed, ProxyHeaderFailed(c, "closed", strerror(errno)));
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  if (!info.local) {
    c.client = info.client;
    c.dialled = info.dialled;
  }
  if (int reason = access_lists_->Refusal(c.rule_id, c.client)) {
    EngineEvent event = NewEvent("denied", c);
    event.reason = DenialReasonName(reason);
    return Refuse(c, c.stats->proxy_denied, std::move(event));
  }
  c.state = ConnState::kConnecting;
  PlanForClient(c);
  ConnectUpstream(c);
}

EngineEvent Engine::ProxyHeaderFailed(const Connection& c, const char* reason, std::string message) const {
  EngineEvent event = NewEvent("proxy_header_failed", c);
  event.reason = reason;
  event.message = std::move(message);
  return event;
}

void Engine::Refuse(Connection& c, OwnedCounter& counter, EngineEvent event) {
  counter.Add();
  c.stats->connecting.Sub();
  Emit(std::move(event));
  ResetOnClose(c.fd[kClient].get());
  conns_.erase(c.id);
}

void Engine::ConnectUpstream(Connection& c) {
  const SockAddress& target = c.plan.targets->addresses()[c.plan.order[c.plan.attempt]];
  c.upstream = target;
  c.fd[kUpstream].reset(socket(target.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!c.fd[kUpstream]) return FailConnect(c, errno, nullptr);
  // With the loop guard, fix the local port before any SYN leaves, so that the
  // engine accepting this connection (if it comes back to us) finds it registered.
  uint16_t port = 0;
  if (int err = PrepareUpstream(c.fd[kUpstream].get(), target.family(), c.plan.upstream, c.plan.guarded, &port))
    return FailConnect(c, err, nullptr);
  if (c.plan.guarded) c.loop_guard = slot_.loop_guard->Add(port, target, c.plan.loop_path);
  SetNoDelay(c.fd[kUpstream].get());
  if (c.want_splice) SetSpliceSendBuffer(c.fd[kUpstream].get(), c.plan.sndbuf_bytes);
  if (connect(c.fd[kUpstream].get(), target.get(), target.len) == 0) return OnConnectDone(c);
  if (errno != EINPROGRESS) return FailConnect(c, errno, nullptr);
  Watch(EPOLL_CTL_ADD, c, kUpstream, EPOLLOUT | EPOLLET);
  // Per attempt: a target that never answers must not use up the next one's time.
  c.plan.deadline_ns = MonotonicNs() + c.plan.connect_timeout_ms * kMs;
  connect_deadlines_.emplace(c.plan.deadline_ns, c.id);
}

std::optional<std::vector<uint32_t>> Engine::OwnUpstreamPath(int client, const SockAddress& peer,
                                                             SockAddress* dialled) {
  uint16_t port = DialledEndpoint(peer).port;
  if (!slot_.loop_guard->HasPort(port)) return std::nullopt;
  // Only on a port match: a syscall for the accepted socket's own address,
  // which is where the peer connected to (also after sk_lookup steering).
  dialled->len = sizeof(dialled->storage);
  if (getsockname(client, reinterpret_cast<sockaddr*>(&dialled->storage), &dialled->len) != 0) return std::nullopt;
  return slot_.loop_guard->Find(port, *dialled);
}

void Engine::RefuseLoop(const Listener& listener, UniqueFd client, const SockAddress& peer,
                        const SockAddress& dialled, const std::vector<uint32_t>& path) {
  const ListenerConfig& config = listener.config;
  listener.stats->loops_refused.Add();
  std::string round;
  for (uint32_t rule : path) round += "rule " + std::to_string(rule) + " → ";
  EngineEvent event;
  event.type = "error";
  event.rule_id = config.rule_id;
  event.client = FormatSockAddress(peer);
  event.original_dst = FormatSockAddress(dialled);
  event.code = "ELOOP";
  event.message = "connection from our own upstream socket " + event.client + " to " + event.original_dst + " (" +
                  round + "rule " + std::to_string(config.rule_id) +
                  "): forwarding loop refused; point the target at the real service";
  Emit(std::move(event));
  // Reset: our upstream side sees it at once and fails its own connection.
  ResetOnClose(client.get());
}

void Engine::OnConnectDone(Connection& c) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(c.fd[kUpstream].get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err) return FailConnect(c, err, nullptr);
  if (c.proxy_protocol != ProxyProtocol::kNone && !SendProxyHeader(c)) return FailConnect(c, errno ? errno : EIO, "proxy_header");
  uint32_t target = c.plan.order[c.plan.attempt];
  c.plan.targets->Succeeded(target);
  c.target_slot.Take(c.plan.targets, target);
  c.connected_ns = MonotonicNs();
  c.stats->ObserveConnect(c.connected_ns - c.accepted_ns);
  bool splice_now = c.want_splice && c.splice_after_bytes == 0;
  std::string why_not;
  bool spliced = splice_now && StartSplice(c, &why_not);
  if (connection_events_) {
    // Where its bytes move first: the sockmap, or the copy (which may hand them on later).
    EngineEvent event = NewEvent("connected", c);
    event.datapath = NameOf(spliced ? Path::kSockmap : Path::kCopy);
    Emit(std::move(event));
  }
  if (spliced) return;
  if (splice_now) ReportFallback(c, why_not);
  StartRelay(c);
}

bool Engine::SendProxyHeader(Connection& c) {
  SockAddress dialled;
  if (c.dialled) {
    dialled = *c.dialled;  // what our own PROXY header said
  } else {
    dialled.len = sizeof(dialled.storage);
    if (getsockname(c.fd[kClient].get(), reinterpret_cast<sockaddr*>(&dialled.storage), &dialled.len) != 0) return false;
  }
  std::string header = ProxyHeader(c.proxy_protocol, c.client, dialled);
  // A freshly connected socket's send buffer is empty: a short write cannot happen.
  errno = 0;
  return send(c.fd[kUpstream].get(), header.data(), header.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(header.size());
}

void Engine::RefuseOverLimit(const Listener& listener, UniqueFd client) {
  listener.stats->limit_refused.Add();
  // Reset: the client learns at once; nothing was connected upstream.
  ResetOnClose(client.get());
}

void Engine::ReportFallback(Connection& c, const std::string& why_not) {
  c.want_splice = false;
  EngineEvent fallback = NewEvent("fallback", c);
  fallback.datapath = NameOf(Path::kCopy);
  fallback.reason = why_not;
  Emit(std::move(fallback));
}

// Worth another target: the target refused, timed out or cannot be reached
// (not our own shortage of descriptors or ports, which the next would share).
static bool TargetFault(int err) {
  ConnectFailure kind = ConnectFailureOf(err);
  return kind == ConnectFailure::kRefused || kind == ConnectFailure::kTimeout || kind == ConnectFailure::kUnreachable;
}

void Engine::FailConnect(Connection& c, int err, const char* reason) {
  c.stats->connect_failed[static_cast<size_t>(ConnectFailureOf(err))].Add();
  if (c.plan.targets && TargetFault(err)) c.plan.targets->Failed(c.plan.order[c.plan.attempt], MonotonicNs());
  if (c.plan.targets && TargetFault(err) && c.plan.attempt + 1 < c.plan.order.size()) {
    EngineEvent event = NewEvent("target_failed", c);
    event.code = ErrnoName(err);
    event.reason = reason ? reason : event.code;
    event.message = "connect to " + FormatSockAddress(c.upstream) + " failed: " + strerror(err) + "; trying the next target";
    Emit(std::move(event));
    c.fd[kUpstream].reset();  // leaves epoll with it; registered until it is gone
    c.loop_guard = LoopGuard::Entry();
    c.plan.attempt++;
    return ConnectUpstream(c);
  }
  c.stats->connecting.Sub();
  EngineEvent event = NewEvent("connect_failed", c);
  event.code = ErrnoName(err);
  event.reason = reason ? reason : event.code;
  event.message = "connect to " + FormatSockAddress(c.upstream) + " failed: " + strerror(err);
  event.duration_ms = static_cast<double>(MonotonicNs() - c.accepted_ns) / kMs;
  Emit(std::move(event));
  // Reset, not FIN: the client must learn at once that nothing answers.
  ResetOnClose(c.fd[kClient].get());
  conns_.erase(c.id);
}

void Engine::SetPath(Connection& c, Path path) {
  if (c.path == path) return;
  if (c.path == kNoPath)
    c.stats->connecting.Sub();
  else
    c.stats->active[static_cast<size_t>(c.path)].Sub();
  c.path = path;
  c.stats->active[static_cast<size_t>(path)].Add();
}

void Engine::Close(Connection& c, CloseReason reason, bool reset) {
  switch (c.state) {
    case ConnState::kAwaitingHeader:
    case ConnState::kConnecting:
      return Finish(c, reason, reset, 0, 0, 0);
    case ConnState::kSpliced:
      return CloseSpliced(c, reason, reset, 0);
    case ConnState::kRelayed:
      return CloseRelayed(c, reason, reset, 0);
  }
}

void Engine::CloseAll() {
  listeners_.clear();
  std::vector<uint64_t> ids;
  for (auto& entry : conns_) ids.push_back(entry.first);
  // Reset, never FIN: a peer must not take a cut transfer for a complete one.
  // The control plane drains first (--drain); what is left here was cut.
  for (uint64_t id : ids) Close(*conns_.at(id), CloseReason::kShutdown, true);
}

void Engine::Watch(int op, const Connection& c, Side side, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = Key(c.id, side == kClient ? kTagClient : kTagUpstream);
  // Only fails for a bad fd or ENOMEM; the connection would then hang until
  // its idle timeout, so say so.
  if (epoll_ctl(epoll_.get(), op, c.fd[side].get(), &ev) != 0) {
    EngineEvent event = NewEvent("error", c);
    event.code = ErrnoName(errno);
    event.message = std::string("epoll_ctl failed: ") + strerror(errno);
    Emit(std::move(event));
  }
}

// ---- engine thread: events -----------------------------------------------

// Addresses are formatted here, not per accepted connection: with
// connection events off, most connections never produce an event.
EngineEvent Engine::NewEvent(const char* type, const Connection& c) const {
  EngineEvent event;
  event.type = type;
  event.rule_id = c.rule_id;
  event.conn_id = c.id;
  event.client = FormatSockAddress(c.client);
  event.original_dst = DialledText(c);
  if (c.upstream.len) event.upstream = FormatSockAddress(c.upstream);  // none before the header is read
  return event;
}

ConnectionInfo Engine::Describe(const Connection& c, uint64_t now) const {
  ConnectionInfo info;
  info.conn_id = c.id;
  info.rule_id = c.rule_id;
  info.client = FormatSockAddress(c.client);
  info.original_dst = DialledText(c);
  info.upstream = FormatSockAddress(c.upstream);
  if (c.path != kNoPath) info.datapath = NameOf(c.path);
  uint64_t bytes[2] = {0, 0};
  for (Side side : {kClient, kUpstream}) {
    if (c.state == ConnState::kRelayed) {
      bytes[side] = c.pump[side]->bytes();
    } else if (c.state == ConnState::kSpliced) {
      conn entry{};
      bytes[side] = UserSpaceBytes(c, side) + (maps_->ReadConn(c.cookie[side], &entry) == 0 ? entry.redirected : 0);
    }
  }
  info.bytes_to_upstream = bytes[kClient];
  info.bytes_to_client = bytes[kUpstream];
  info.age_ms = static_cast<double>(now - c.accepted_ns) / kMs;
  return info;
}

void Engine::Emit(EngineEvent event) { pending_.push_back(std::move(event)); }

void Engine::Finish(Connection& c, CloseReason reason, bool reset, uint64_t to_upstream, uint64_t to_client,
                    int err) {
  uint64_t now = MonotonicNs();
  if (connection_events_) {
    EngineEvent event = NewEvent("closed", c);
    if (c.path != kNoPath) event.datapath = NameOf(c.path);  // the way its bytes moved last
    event.reason = NameOf(reason);
    event.has_bytes = true;
    event.bytes_to_upstream = to_upstream;
    event.bytes_to_client = to_client;
    event.duration_ms = static_cast<double>(now - c.accepted_ns) / kMs;
    if (err) event.code = ErrnoName(err);
    if (c.closed_first >= 0) event.closed_first = c.closed_first == kClient ? "client" : "upstream";
    Emit(std::move(event));
  }
  if (reset) {
    for (UniqueFd& fd : c.fd) ResetOnClose(fd.get());
  }
  RuleCounters& stats = *c.stats;
  if (c.path == kNoPath)
    stats.connecting.Sub();
  else
    stats.active[static_cast<size_t>(c.path)].Sub();
  stats.closed[static_cast<size_t>(reason)].Add();
  stats.ObserveDuration(now - c.accepted_ns);
  ticking_.erase(c.id);
  conns_.erase(c.id);  // closes both sockets, which also leaves epoll
}

void Engine::FlushEvents() {
  if (pending_.empty()) return;
  bool call;
  {
    std::lock_guard<std::mutex> lock(outbox_mutex_);
    if (outbox_.empty()) {
      outbox_.swap(pending_);
    } else {
      for (auto& event : pending_) outbox_.push_back(std::move(event));
      pending_.clear();
    }
    call = !notify_scheduled_;
    notify_scheduled_ = true;
  }
  if (call) notify_();
}
