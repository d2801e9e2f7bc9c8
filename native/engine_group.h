// The engines of one Engine binding: one per thread, each with its own member
// of every listener's SO_REUSEPORT group, so accept, connect, map inserts and
// teardown run on every CPU instead of one. Same caller API as one engine.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_set>
#include <vector>

#include "engine.h"

struct ListenerHandle {
  uint32_t id;
  int fd;  // the first member of the group: what steer_sockets holds
  uint16_t port;
};

class EngineGroup {
 public:
  static constexpr int kMaxThreads = 64;

  // threads in 1..kMaxThreads. Throws SysError.
  EngineGroup(const SpliceMapFds* maps, int threads, bool connection_events, std::function<void()> notify);
  ~EngineGroup();
  EngineGroup(const EngineGroup&) = delete;
  EngineGroup& operator=(const EngineGroup&) = delete;

  // Caller-thread API (one thread: the JS thread).
  ListenerHandle AddListener(ListenerConfig config);
  void UpdateListener(uint32_t id, ListenerUpdate update);
  void RemoveListener(uint32_t id);
  // Read the steering program's `denials` ring (engine 0): a 'denied' event per refused connection.
  void WatchDenials(int denials_fd);
  void UseAccessLists(int acl_fd, int policy_fd);
  // The listener's targets as new connections see them: address and health.
  struct TargetInfo {
    std::string address;
    TargetSet::Health health;
  };
  std::vector<TargetInfo> TargetHealth(uint32_t listener_id) const;
  // An active health check's verdict on the listener's target `index`.
  void SetTargetDown(uint32_t listener_id, uint32_t index, bool down);
  EngineStats Stats() const;
  std::vector<uint64_t> AcceptedByThread() const;
  // Each rule's counters summed over the engines, in rule id order.
  std::vector<RuleStats> RuleStatsByRule() const;
  // Calls done, on an engine thread (or this one if the engines are gone
  // first), with the open connections of every engine (ConnectionList).
  void ListConnections(std::function<void(std::vector<ConnectionInfo>)> done);
  void RequestStop();
  // Events of every engine since the last call; *finished once all have closed everything.
  std::vector<EngineEvent> TakeEvents(bool* finished);
  void Join();

 private:
  bool has_maps_;
  bool has_relayed_map_;
  // Before engines_: every engine uses it until it is destroyed.
  LoopGuard loop_guard_;
  std::vector<std::unique_ptr<Engine>> engines_;
  std::unordered_set<uint32_t> listener_ids_;
  std::unordered_map<uint32_t, std::shared_ptr<TargetSet>> targets_;  // by listener id, for TargetHealth
  uint32_t next_listener_id_ = 1;
  bool stop_requested_ = false;
};
