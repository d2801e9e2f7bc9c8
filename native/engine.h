// One forwarding engine: a thread with an epoll loop owns its listening and
// proxied sockets. Other threads talk to it through a command queue (eventfd
// wake-up) and take its events in batches. EngineGroup runs one per CPU.
// Design: docs/ARCHITECTURE.md.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "access_lists.h"
#include "connection.h"
#include "engine_stats.h"
#include "rule_stats.h"
#include "listener.h"
#include "loop_guard.h"
#include "ring_reader.h"
#include "splice_maps.h"
#include "unique_fd.h"

// Mirrors EngineEvent in src/native/raw.ts; empty strings are left out.
struct EngineEvent {
  const char* type = "";
  uint32_t rule_id = 0;
  uint64_t conn_id = 0;
  std::string client;
  std::string original_dst;
  std::string upstream;
  const char* datapath = nullptr;
  std::string reason;
  bool has_bytes = false;
  uint64_t bytes_to_upstream = 0;
  uint64_t bytes_to_client = 0;
  double duration_ms = -1;
  std::string code;
  std::string message;
  const char* closed_first = nullptr;  // closed: "client" or "upstream", whichever sent its EOF first
};

// One open connection, for the admin socket's list.
struct ConnectionInfo {
  uint64_t conn_id = 0;
  uint32_t rule_id = 0;
  std::string client;
  std::string original_dst;  // getsockname() of the accepted socket
  std::string upstream;
  const char* datapath = nullptr;  // NameOf(Path); nullptr while connecting
  // Sockmap path: the verdict's count (a `conns` lookup per side) plus what
  // user space relayed; the rest: what user space wrote.
  uint64_t bytes_to_upstream = 0;
  uint64_t bytes_to_client = 0;
  double age_ms = 0;
};

// Gathers every engine's connections; the last reference to go (when each
// engine has run its command, or dropped it unrun at its end) calls done.
// So a list always completes, even when an engine thread stops first.
class ConnectionList {
 public:
  explicit ConnectionList(std::function<void(std::vector<ConnectionInfo>)> done) : done_(std::move(done)) {}
  ~ConnectionList() { done_(std::move(items_)); }
  void Append(std::vector<ConnectionInfo> items);

 private:
  std::mutex mutex_;
  std::vector<ConnectionInfo> items_;
  std::function<void(std::vector<ConnectionInfo>)> done_;
};

// Where an engine sits among its siblings in an EngineGroup.
struct EngineSlot {
  uint8_t index = 0;  // engine 0 consumes the verdict's pause ring buffer
  uint8_t count = 1;
  // Engine 0's thread calls this for a pause event of another engine's
  // connection; it must only post (EngineGroup -> Engine::PostPauseEvent).
  std::function<void(uint8_t owner, uint64_t cookie, bool paused)> route_pause;
  // The group's registry of guarded upstream sockets (outlives the engines).
  LoopGuard* loop_guard = nullptr;
};

struct ListenerUpdate {
  std::optional<std::shared_ptr<TargetSet>> targets;
  std::optional<uint32_t> connect_timeout_ms;
  std::optional<uint32_t> idle_timeout_ms;
  std::optional<UpstreamOptions> upstream;
  std::optional<uint32_t> max_connections;
};

class Engine {
 public:
  // maps == nullptr: user-space relay only. connection_events == false: no
  // 'connected'/'closed' events (they exist to be logged; at 10k conn/s their
  // delivery to JS cost ~20 % of the process CPU). notify is called on the engine
  // thread when TakeEvents() has something new; it must not block. Throws SysError.
  Engine(const SpliceMapFds* maps, EngineSlot slot, bool connection_events, std::function<void()> notify);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Caller-thread API (EngineGroup, on the JS thread). Ids and checks are the group's.
  void AddListener(uint32_t id, ListenerConfig config, UniqueFd fd);
  void UpdateListener(uint32_t id, ListenerUpdate update);
  void RemoveListener(uint32_t id);
  // Engine 0: read the steering program's `denials` ring and emit a 'denied'
  // event per refused connection (with connection events on). Idempotent.
  void WatchDenials(int denials_fd);
  // The kernel's allow and deny lists, for accept_proxy rules: their clients
  // are judged once the PROXY header names them. Throws SysError.
  void UseAccessLists(int acl_fd, int policy_fd);
  // Any thread: a pause event for one of this engine's connections.
  void PostPauseEvent(uint64_t cookie, bool paused);
  // Derived from the rule counters; `listeners` is left 0: the group counts them.
  EngineStats Stats() const;
  // Adds this engine's counters of each rule to by_rule[rule id].
  void AddRuleStats(std::unordered_map<uint32_t, RuleStats>* by_rule) const;
  // Any thread: appends this engine's open connections to *list on its thread.
  void ListConnections(std::shared_ptr<ConnectionList> list);
  void RequestStop();
  // Events since the last call; *finished once the thread has closed everything.
  std::vector<EngineEvent> TakeEvents(bool* finished);
  void Join();

 private:
  struct Listener {
    ListenerConfig config;
    RuleCounters* stats = nullptr;  // the rule's, in rule_counters_
    UniqueFd fd;
    bool backing_off = false;  // out of epoll after EMFILE; re-armed by the sweep
  };
  using Deadline = std::pair<uint64_t, uint64_t>;  // (CLOCK_MONOTONIC ns, conn id)

  // engine.cc: loop, commands, listeners, accept, connect, timers, events.
  void Run();
  void Loop();
  void Post(std::function<void()> command);
  void RunCommands();
  void Dispatch(uint64_t data, uint32_t events);
  int NextTimeoutMs(uint64_t now) const;
  void RunTimers(uint64_t now);
  void SweepIdle(uint64_t now);
  void AcceptAll(Listener& listener);
  void StartConnection(const Listener& listener, UniqueFd client, const SockAddress& peer);
  // Once the client is known: the target order and a transparent source address.
  void PlanForClient(Connection& c);
  // accept_proxy: wait (until connect_timeout) for the PROXY header, then connect.
  void AwaitProxyHeader(Connection& c);
  void OnProxyHeader(Connection& c, uint32_t events);
  // Ends a connection before any upstream: `counter` counts it, `event` says why, the client is reset.
  void Refuse(Connection& c, OwnedCounter& counter, EngineEvent event);
  EngineEvent ProxyHeaderFailed(const Connection& c, const char* reason, std::string message) const;
  // The rules our own upstream connection from `peer` passed through, when
  // `client` is one (*dialled: where it connected to); nullopt otherwise.
  std::optional<std::vector<uint32_t>> OwnUpstreamPath(int client, const SockAddress& peer, SockAddress* dialled);
  // Resets a connection that came back to a rule on its path; one 'error' event.
  void OnDenial(const struct denial& record);
  // Connects to the plan's current target; on failure FailConnect tries the next.
  void ConnectUpstream(Connection& c);
  // The rule is at its max_connections: reset the client, count it.
  void RefuseOverLimit(const Listener& listener, UniqueFd client);
  // Writes the PROXY protocol header to the freshly connected upstream; false (errno set) if it could not.
  bool SendProxyHeader(Connection& c);
  void RefuseLoop(const Listener& listener, UniqueFd client, const SockAddress& peer, const SockAddress& dialled,
                  const std::vector<uint32_t>& path);
  void OnConnectDone(Connection& c);
  // The kernel refused to splice: the relay keeps the connection for good.
  void ReportFallback(Connection& c, const std::string& why_not);
  void FailConnect(Connection& c, int err, const char* reason);
  // Moves the connection to the gauge of `path` (from connecting or another path).
  void SetPath(Connection& c, Path path);
  void Close(Connection& c, CloseReason reason, bool reset);
  void CloseAll();
  void Watch(int op, const Connection& c, Side side, uint32_t events);
  void Emit(EngineEvent event);
  EngineEvent NewEvent(const char* type, const Connection& c) const;
  ConnectionInfo Describe(const Connection& c, uint64_t now) const;
  // Emits 'closed', drops the connection and closes its sockets (RST if reset).
  void Finish(Connection& c, CloseReason reason, bool reset, uint64_t to_upstream, uint64_t to_client, int err);
  void FlushEvents();

  // engine_splice.cc: the kernel splice path.
  enum class Progress { kDone, kWaiting, kBroken };
  bool StartSplice(Connection& c, std::string* why_not);
  void UndoSplice(Connection& c);
  void OnSplicedEvent(Connection& c, Side side, uint32_t events);
  void OnPauseEvent(uint64_t cookie, bool paused);
  void MarkPaused(Connection& c, Side src);
  void MarkResumed(Connection& c, Side src);
  void TickSpliced(Connection& c);
  Progress TickDirection(Connection& c, Side src, int* err);
  int RelayPassedBytes(Connection& c, Side src);
  bool SenderStopped(Connection& c, Side src);
  size_t PassedNotRelayed(const Connection& c, Side src) const;
  void StartTicking(Connection& c);
  uint64_t WrittenSinceSetup(const Connection& c, Side side) const;
  uint64_t InFlight(const Connection& c, Side src) const;
  // Bytes of src that user space wrote into the peer on this connection:
  // before the splice, and while paused or outside the kernel path.
  static uint64_t UserSpaceBytes(const Connection& c, Side src);
  bool SweepSpliced(Connection& c, uint64_t now);
  void CloseSpliced(Connection& c, CloseReason reason, bool reset, int err);

  // engine_relay.cc: the user-space relay.
  void StartRelay(Connection& c);
  void OnRelayEvent(Connection& c, uint32_t events);
  void RunRelay(Connection& c);
  // Past splice_after_bytes: a bulk flow stays on the relay (bulk_on_relay).
  bool IsBulk(const Connection& c) const;
  void KeepOnRelay(Connection& c);
  // Past splice_after_bytes with nothing left in user space: into the kernel.
  void MoveIntoKernel(Connection& c);
  void CloseRelayed(Connection& c, CloseReason reason, bool reset, int err);

  const EngineSlot slot_;
  std::function<void()> notify_;
  UniqueFd epoll_;
  UniqueFd wakeup_;
  std::optional<SpliceMaps> maps_;
  std::unique_ptr<RingReader> pause_events_;
  std::unique_ptr<RingReader> denials_;  // engine 0, once steering is set up
  std::unique_ptr<AccessLists> access_lists_;  // once steering is set up
  std::string header_buffer_;  // a PROXY header's bytes, peeked
  static constexpr uint32_t kMaxDenialEventsPerSecond = 1000;
  uint64_t denial_window_ns_ = 0;  // start of the current second of denial events
  uint32_t denials_in_window_ = 0;
  uint64_t denials_unlogged_ = 0;

  // Engine thread only.
  std::unordered_map<uint32_t, Listener> listeners_;
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> conns_;
  std::unordered_map<uint64_t, uint64_t> conn_by_cookie_;
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<Deadline>> connect_deadlines_;
  std::unordered_set<uint64_t> ticking_;
  std::vector<uint64_t> rerun_;  // relays that stopped for fairness
  std::vector<EngineEvent> pending_;
  uint64_t next_conn_id_ = 1;
  uint64_t next_sweep_ns_ = 0;
  uint64_t next_tick_ns_ = 0;
  bool stopping_ = false;

  // Shared with the caller thread.
  std::mutex commands_mutex_;
  std::vector<std::function<void()>> commands_;
  std::mutex outbox_mutex_;
  std::vector<EngineEvent> outbox_;
  bool notify_scheduled_ = false;
  const bool connection_events_;
  bool finished_ = false;

  // Caller thread only. A rule's counters in this engine live as long as the
  // engine, whatever happens to its listeners: totals never go back.
  std::unordered_map<uint32_t, std::unique_ptr<RuleCounters>> rule_counters_;
  bool stop_requested_ = false;

  std::thread thread_;
};
