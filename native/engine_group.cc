#include "engine_group.h"

#include "monotonic_clock.h"

#include <errno.h>

#include <algorithm>

#include "errors.h"

EngineGroup::EngineGroup(const SpliceMapFds* maps, int threads, bool connection_events,
                         std::function<void()> notify)
    : has_maps_(maps != nullptr), has_relayed_map_(maps && maps->relayed >= 0) {
  if (threads < 1 || threads > kMaxThreads)
    ThrowSysError(EINVAL, "Engine", "threads must be 1.." + std::to_string(kMaxThreads));
  // Pause events are routed only once connections exist, i.e. after every
  // engine below has been built.
  std::function<void(uint8_t, uint64_t, bool)> route = [this](uint8_t owner, uint64_t cookie, bool paused) {
    if (owner < engines_.size()) engines_[owner]->PostPauseEvent(cookie, paused);
  };
  for (int i = 0; i < threads; i++) {
    EngineSlot slot{static_cast<uint8_t>(i), static_cast<uint8_t>(threads), threads > 1 ? route : nullptr, &loop_guard_};
    engines_.push_back(std::make_unique<Engine>(maps, std::move(slot), connection_events, notify));
  }
}

EngineGroup::~EngineGroup() {
  RequestStop();
  Join();
}

ListenerHandle EngineGroup::AddListener(ListenerConfig config) {
  if (stop_requested_) ThrowSysError(EBADF, "addListener", "the engine is closed; create a new Engine");
  if (has_maps_ && !has_relayed_map_ && config.datapath == Datapath::kSplice && config.budget_bytes)
    ThrowSysError(EINVAL, "addListener", "budgetBytes needs options.maps.relayed, the fd of the `relayed` map");
  std::vector<UniqueFd> fds = OpenListenerGroup(config, static_cast<int>(engines_.size()));
  ListenerHandle handle{next_listener_id_++, fds[0].get(), BoundPort(fds[0].get())};
  listener_ids_.insert(handle.id);
  targets_[handle.id] = config.targets;
  for (size_t i = 0; i < engines_.size(); i++) engines_[i]->AddListener(handle.id, config, std::move(fds[i]));
  return handle;
}

void EngineGroup::UpdateListener(uint32_t id, ListenerUpdate update) {
  if (!listener_ids_.count(id)) ThrowSysError(ENOENT, "updateListener", "no listener with id " + std::to_string(id));
  if (update.targets) targets_[id] = *update.targets;
  for (auto& engine : engines_) engine->UpdateListener(id, update);
}

void EngineGroup::RemoveListener(uint32_t id) {
  if (!listener_ids_.erase(id)) ThrowSysError(ENOENT, "removeListener", "no listener with id " + std::to_string(id));
  targets_.erase(id);
  for (auto& engine : engines_) engine->RemoveListener(id);
}

void EngineGroup::WatchDenials(int denials_fd) {
  if (stop_requested_) ThrowSysError(EBADF, "watchDenials", "the engine is closed; create a new Engine");
  engines_[0]->WatchDenials(denials_fd);
}

void EngineGroup::UseAccessLists(int acl_fd, int policy_fd) {
  if (stop_requested_) ThrowSysError(EBADF, "useAccessLists", "the engine is closed; create a new Engine");
  for (auto& engine : engines_) engine->UseAccessLists(acl_fd, policy_fd);
}

std::vector<EngineGroup::TargetInfo> EngineGroup::TargetHealth(uint32_t listener_id) const {
  auto it = targets_.find(listener_id);
  if (it == targets_.end()) ThrowSysError(ENOENT, "targetHealth", "no listener with id " + std::to_string(listener_id));
  std::vector<TargetInfo> out;
  uint64_t now = MonotonicNs();
  for (uint32_t i = 0; i < it->second->addresses().size(); i++)
    out.push_back({FormatSockAddress(it->second->addresses()[i]), it->second->HealthOf(i, now)});
  return out;
}

void EngineGroup::SetTargetDown(uint32_t listener_id, uint32_t index, bool down) {
  auto it = targets_.find(listener_id);
  if (it == targets_.end()) ThrowSysError(ENOENT, "setTargetDown", "no listener with id " + std::to_string(listener_id));
  if (index >= it->second->addresses().size()) ThrowSysError(EINVAL, "setTargetDown", "no target " + std::to_string(index));
  it->second->SetDown(index, down);
}

EngineStats EngineGroup::Stats() const {
  EngineStats total{};
  total.listeners = listener_ids_.size();
  for (const auto& engine : engines_) total.Add(engine->Stats());
  return total;
}

std::vector<uint64_t> EngineGroup::AcceptedByThread() const {
  std::vector<uint64_t> accepted;
  for (const auto& engine : engines_) accepted.push_back(engine->Stats().accepted);
  return accepted;
}

std::vector<RuleStats> EngineGroup::RuleStatsByRule() const {
  std::unordered_map<uint32_t, RuleStats> by_rule;
  for (const auto& engine : engines_) engine->AddRuleStats(&by_rule);
  std::vector<RuleStats> rules;
  for (auto& entry : by_rule) rules.push_back(entry.second);
  std::sort(rules.begin(), rules.end(), [](const RuleStats& a, const RuleStats& b) { return a.rule_id < b.rule_id; });
  return rules;
}

void EngineGroup::ListConnections(std::function<void(std::vector<ConnectionInfo>)> done) {
  auto list = std::make_shared<ConnectionList>(std::move(done));
  for (auto& engine : engines_) engine->ListConnections(list);
}

void EngineGroup::RequestStop() {
  if (stop_requested_) return;
  stop_requested_ = true;
  for (auto& engine : engines_) engine->RequestStop();
}

std::vector<EngineEvent> EngineGroup::TakeEvents(bool* finished) {
  std::vector<EngineEvent> events;
  *finished = true;
  for (auto& engine : engines_) {
    bool done = false;
    std::vector<EngineEvent> more = engine->TakeEvents(&done);
    *finished &= done;
    if (events.empty())
      events.swap(more);
    else
      for (auto& event : more) events.push_back(std::move(event));
  }
  return events;
}

void EngineGroup::Join() {
  for (auto& engine : engines_) engine->Join();
}
