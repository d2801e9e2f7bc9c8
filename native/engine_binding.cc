// JS class `Engine` (src/native/raw.ts RawEngine) around the C++ EngineGroup.
// Events reach JS through one thread-safe function; the engine thread only
// pokes it when a new batch is waiting, so a burst becomes one onEvents call.
#include "engine_binding.h"

#include <memory>

#include "engine_group.h"
#include "engine_options.h"
#include "errors.h"

namespace {

// Property names, made once per batch: interning a key string per event and
// property was a visible share of the JS thread's time at 10k+ events/s.
struct EventKeys {
  explicit EventKeys(Napi::Env env)
      : type(Napi::String::New(env, "type")),
        rule_id(Napi::String::New(env, "ruleId")),
        conn_id(Napi::String::New(env, "connId")),
        client(Napi::String::New(env, "client")),
        original_dst(Napi::String::New(env, "originalDst")),
        upstream(Napi::String::New(env, "upstream")),
        datapath(Napi::String::New(env, "datapath")),
        reason(Napi::String::New(env, "reason")),
        bytes_to_upstream(Napi::String::New(env, "bytesToUpstream")),
        bytes_to_client(Napi::String::New(env, "bytesToClient")),
        duration_ms(Napi::String::New(env, "durationMs")),
        code(Napi::String::New(env, "code")),
        message(Napi::String::New(env, "message")),
        closed_first(Napi::String::New(env, "closedFirst")) {}
  Napi::String type, rule_id, conn_id, client, original_dst, upstream, datapath, reason, bytes_to_upstream,
      bytes_to_client, duration_ms, code, message, closed_first;
};

void SetIfNotEmpty(Napi::Object& object, const Napi::String& key, const std::string& value) {
  if (!value.empty()) object.Set(key, value);
}

Napi::Object EventToJs(Napi::Env env, const EventKeys& keys, const EngineEvent& event) {
  Napi::Object object = Napi::Object::New(env);
  object.Set(keys.type, event.type);
  object.Set(keys.rule_id, event.rule_id);
  object.Set(keys.conn_id, static_cast<double>(event.conn_id));
  SetIfNotEmpty(object, keys.client, event.client);
  SetIfNotEmpty(object, keys.original_dst, event.original_dst);
  SetIfNotEmpty(object, keys.upstream, event.upstream);
  if (event.datapath) object.Set(keys.datapath, event.datapath);
  SetIfNotEmpty(object, keys.reason, event.reason);
  if (event.has_bytes) {
    object.Set(keys.bytes_to_upstream, static_cast<double>(event.bytes_to_upstream));
    object.Set(keys.bytes_to_client, static_cast<double>(event.bytes_to_client));
  }
  if (event.duration_ms >= 0) object.Set(keys.duration_ms, event.duration_ms);
  SetIfNotEmpty(object, keys.code, event.code);
  SetIfNotEmpty(object, keys.message, event.message);
  if (event.closed_first) object.Set(keys.closed_first, event.closed_first);
  return object;
}

double Seconds(uint64_t ns) { return static_cast<double>(ns) / 1e9; }

// {le, buckets, count, sum} as Prometheus has it: cumulative counts per upper
// bound (seconds), the +Inf bucket being count. `le` is shared by every rule.
template <size_t N>
Napi::Object HistogramToJs(Napi::Env env, const Napi::Array& le, const HistogramOf<uint64_t, N>& histogram) {
  Napi::Array buckets = Napi::Array::New(env, N);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < N; i++) buckets.Set(i, static_cast<double>(cumulative += histogram.buckets[i]));
  Napi::Object object = Napi::Object::New(env);
  object.Set("le", le);
  object.Set("buckets", buckets);
  object.Set("count", static_cast<double>(cumulative + histogram.buckets[N]));
  object.Set("sum", Seconds(histogram.sum_ns));
  return object;
}

template <size_t N>
Napi::Array BoundsToJs(Napi::Env env, const uint64_t (&bounds_ns)[N]) {
  Napi::Array le = Napi::Array::New(env, N);
  for (size_t i = 0; i < N; i++) le.Set(i, Seconds(bounds_ns[i]));
  return le;
}

// {name: count} for an enum-indexed array.
template <typename Enum, size_t N>
Napi::Object ByNameToJs(Napi::Env env, const uint64_t (&counts)[N]) {
  Napi::Object object = Napi::Object::New(env);
  for (size_t i = 0; i < N; i++) object.Set(NameOf(static_cast<Enum>(i)), static_cast<double>(counts[i]));
  return object;
}

Napi::Array RuleStatsToJs(Napi::Env env, const std::vector<RuleStats>& rules) {
  Napi::Array connect_le = BoundsToJs(env, kConnectBoundsNs);
  Napi::Array duration_le = BoundsToJs(env, kDurationBoundsNs);
  Napi::Array result = Napi::Array::New(env, rules.size());
  for (size_t i = 0; i < rules.size(); i++) {
    const RuleStats& rule = rules[i];
    Napi::Object object = Napi::Object::New(env);
    object.Set("ruleId", rule.rule_id);
#define BPFREDIR_RULE_SET(field, js_name) object.Set(js_name, static_cast<double>(rule.field));
    BPFREDIR_RULE_COUNTERS(BPFREDIR_RULE_SET)
#undef BPFREDIR_RULE_SET
    object.Set("closed", ByNameToJs<CloseReason>(env, rule.closed));
    object.Set("connectFailed", ByNameToJs<ConnectFailure>(env, rule.connect_failed));
    object.Set("active", ByNameToJs<Path>(env, rule.active));
    object.Set("connectSeconds", HistogramToJs(env, connect_le, rule.connect));
    object.Set("durationSeconds", HistogramToJs(env, duration_le, rule.duration));
    result.Set(i, object);
  }
  return result;
}

Napi::Array ConnectionsToJs(Napi::Env env, const std::vector<ConnectionInfo>& items) {
  Napi::Array result = Napi::Array::New(env, items.size());
  for (size_t i = 0; i < items.size(); i++) {
    const ConnectionInfo& item = items[i];
    Napi::Object object = Napi::Object::New(env);
    object.Set("connId", static_cast<double>(item.conn_id));
    object.Set("ruleId", item.rule_id);
    object.Set("client", item.client);
    object.Set("originalDestination", item.original_dst);
    object.Set("upstream", item.upstream);
    if (item.datapath) object.Set("datapath", item.datapath);
    object.Set("bytesToUpstream", static_cast<double>(item.bytes_to_upstream));
    object.Set("bytesToClient", static_cast<double>(item.bytes_to_client));
    object.Set("ageMs", item.age_ms);
    result.Set(i, object);
  }
  return result;
}

// One connections() call: its promise, settled on the JS thread by a
// thread-safe function of its own that the last engine to answer calls.
struct Listing {
  explicit Listing(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise::Deferred deferred;
};

void SettleListing(Napi::Env env, Napi::Function, Listing* listing, std::vector<ConnectionInfo>* items) {
  std::unique_ptr<std::vector<ConnectionInfo>> owned(items);
  if (env == nullptr) return;  // torn down
  Napi::HandleScope scope(env);
  listing->deferred.Resolve(ConnectionsToJs(env, *owned));
}

using ListingTsfn = Napi::TypedThreadSafeFunction<Listing, std::vector<ConnectionInfo>, &SettleListing>;

class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Engine",
                       {InstanceMethod<&EngineWrap::AddListener>("addListener"),
                        InstanceMethod<&EngineWrap::UpdateListener>("updateListener"),
                        InstanceMethod<&EngineWrap::RemoveListener>("removeListener"),
                        InstanceMethod<&EngineWrap::WatchDenials>("watchDenials"),
                        InstanceMethod<&EngineWrap::UseAccessLists>("useAccessLists"),
                        InstanceMethod<&EngineWrap::TargetHealth>("targetHealth"),
                        InstanceMethod<&EngineWrap::SetTargetDown>("setTargetDown"),
                        InstanceMethod<&EngineWrap::Stats>("stats"),
                        InstanceMethod<&EngineWrap::RuleStats>("ruleStats"),
                        InstanceMethod<&EngineWrap::Connections>("connections"),
                        InstanceMethod<&EngineWrap::Close>("close")});
  }

  explicit EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) throw Napi::TypeError::New(env, "new Engine(options): options must be an object");
    Napi::Object options = info[0].As<Napi::Object>();
    if (!options.Get("onEvents").IsFunction())
      throw Napi::TypeError::New(env, "options.onEvents must be a function");
    SpliceMapFds fds{};
    bool has_maps = ParseMapFds(options, &fds);
    Napi::Value events = options.Get("connectionEvents");
    if (!events.IsUndefined() && !events.IsBoolean())
      throw Napi::TypeError::New(env, "options.connectionEvents must be a boolean");
    bool connection_events = events.IsUndefined() || events.As<Napi::Boolean>().Value();
    Napi::Value threads_value = options.Get("threads");
    double threads = threads_value.IsUndefined() ? 1 : threads_value.IsNumber() ? threads_value.As<Napi::Number>().DoubleValue() : 0;
    if (threads < 1 || threads > EngineGroup::kMaxThreads || threads != static_cast<int>(threads))
      throw Napi::TypeError::New(env, "options.threads must be an integer in 1.." + std::to_string(EngineGroup::kMaxThreads));
    tsfn_ = Tsfn::New(env, options.Get("onEvents").As<Napi::Function>(), "bpfredir engine events", 0, 1, this);
    try {
      engine_ = std::make_unique<EngineGroup>(has_maps ? &fds : nullptr, static_cast<int>(threads), connection_events,
                                             [this] { tsfn_.NonBlockingCall(); });
    } catch (const SysError& e) {
      tsfn_.Release();
      throw ToJsError(env, e);
    }
    // The engine thread calls back into this object until close() resolves.
    Ref();
  }

 private:
  static void Deliver(Napi::Env env, Napi::Function on_events, EngineWrap* self, void*);
  using Tsfn = Napi::TypedThreadSafeFunction<EngineWrap, void, &EngineWrap::Deliver>;

  Napi::Value AddListener(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireOpen(env);
    ListenerConfig config = ParseListenerOptions(info[0]);
    ListenerHandle handle = WithJsErrors(env, [&] { return engine_->AddListener(std::move(config)); });
    Napi::Object result = Napi::Object::New(env);
    result.Set("id", handle.id);
    result.Set("fd", handle.fd);
    result.Set("port", handle.port);
    return result;
  }

  void UpdateListener(const Napi::CallbackInfo& info) {
    RequireOpen(info.Env());
    uint32_t id = IdArg(info);
    ListenerUpdate update = ParseListenerUpdate(info[1]);
    WithJsErrors(info.Env(), [&] { engine_->UpdateListener(id, std::move(update)); });
  }

  void RemoveListener(const Napi::CallbackInfo& info) {
    RequireOpen(info.Env());
    uint32_t id = IdArg(info);
    WithJsErrors(info.Env(), [&] { engine_->RemoveListener(id); });
  }

  Napi::Value TargetHealth(const Napi::CallbackInfo& info) {
    RequireOpen(info.Env());
    uint32_t id = IdArg(info);
    Napi::Env env = info.Env();
    std::vector<EngineGroup::TargetInfo> targets;
    WithJsErrors(env, [&] { targets = engine_->TargetHealth(id); });
    Napi::Array out = Napi::Array::New(env, targets.size());
    for (size_t i = 0; i < targets.size(); i++) {
      Napi::Object t = Napi::Object::New(env);
      t.Set("address", targets[i].address);
      t.Set("open", targets[i].health.open);
      t.Set("consecutiveFailures", targets[i].health.consecutive_failures);
      t.Set("ejected", targets[i].health.ejected);
      t.Set("down", targets[i].health.down);
      t.Set("ejections", static_cast<double>(targets[i].health.ejections));
      out.Set(static_cast<uint32_t>(i), t);
    }
    return out;
  }

  void SetTargetDown(const Napi::CallbackInfo& info) {
    RequireOpen(info.Env());
    uint32_t id = IdArg(info);
    double index = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : -1;
    if (index < 0 || index != static_cast<uint32_t>(index) || !info[2].IsBoolean())
      throw Napi::TypeError::New(info.Env(), "setTargetDown(listenerId, index, down)");
    bool down = info[2].As<Napi::Boolean>().Value();
    WithJsErrors(info.Env(), [&] { engine_->SetTargetDown(id, static_cast<uint32_t>(index), down); });
  }

  void WatchDenials(const Napi::CallbackInfo& info) {
    RequireOpen(info.Env());
    double fd = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
    if (fd < 0 || fd > INT32_MAX || fd != static_cast<int>(fd))
      throw Napi::TypeError::New(info.Env(), "watchDenials(fd): the fd of the `denials` ring buffer");
    WithJsErrors(info.Env(), [&] { engine_->WatchDenials(static_cast<int>(fd)); });
  }

  void UseAccessLists(const Napi::CallbackInfo& info) {
    RequireOpen(info.Env());
    auto fd_at = [&](size_t i) {
      double fd = info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : -1;
      if (fd < 0 || fd > INT32_MAX || fd != static_cast<int>(fd))
        throw Napi::TypeError::New(info.Env(), "useAccessLists(aclFd, policyFd): the fds of the `acl` and `rule_policy` maps");
      return static_cast<int>(fd);
    };
    int acl = fd_at(0), policy = fd_at(1);
    WithJsErrors(info.Env(), [&] { engine_->UseAccessLists(acl, policy); });
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    EngineStats stats = engine_ ? engine_->Stats() : final_stats_;
    std::vector<uint64_t> by_thread = engine_ ? engine_->AcceptedByThread() : final_accepted_by_thread_;
    Napi::Env env = info.Env();
    Napi::Object result = Napi::Object::New(env);
    result.Set("listeners", static_cast<double>(stats.listeners));
#define BPFREDIR_STATS_SET(field, js_name) result.Set(js_name, static_cast<double>(stats.field));
    BPFREDIR_ENGINE_STATS(BPFREDIR_STATS_SET)
#undef BPFREDIR_STATS_SET
    Napi::Array accepted = Napi::Array::New(env, by_thread.size());
    for (size_t i = 0; i < by_thread.size(); i++) accepted.Set(i, static_cast<double>(by_thread[i]));
    result.Set("acceptedByThread", accepted);
    return result;
  }

  Napi::Value RuleStats(const Napi::CallbackInfo& info) {
    return RuleStatsToJs(info.Env(), engine_ ? engine_->RuleStatsByRule() : final_rule_stats_);
  }

  Napi::Value Connections(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto* listing = new Listing(env);
    Napi::Promise promise = listing->deferred.Promise();
    if (!engine_ || close_deferred_) {
      listing->deferred.Resolve(Napi::Array::New(env));
      delete listing;
      return promise;
    }
    ListingTsfn tsfn = ListingTsfn::New(env, "bpfredir connections", 0, 1, listing,
                                        [](Napi::Env, void*, Listing* done) { delete done; });
    engine_->ListConnections([tsfn](std::vector<ConnectionInfo> items) mutable {
      auto* data = new std::vector<ConnectionInfo>(std::move(items));
      if (tsfn.NonBlockingCall(data) != napi_ok) delete data;
      tsfn.Release();
    });
    return promise;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (closed_) {
      auto done = Napi::Promise::Deferred::New(env);
      done.Resolve(env.Undefined());
      return done.Promise();
    }
    if (!close_deferred_) {
      close_deferred_ = std::make_unique<Napi::Promise::Deferred>(env);
      engine_->RequestStop();
    }
    return close_deferred_->Promise();
  }

  void RequireOpen(Napi::Env env) const {
    if (closed_ || close_deferred_) throw Napi::Error::New(env, "the engine is closed; create a new Engine");
  }

  static uint32_t IdArg(const Napi::CallbackInfo& info) {
    double id = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
    if (id < 0 || id > UINT32_MAX || id != static_cast<uint32_t>(id))
      throw Napi::TypeError::New(info.Env(), "listener id must be the id returned by addListener");
    return static_cast<uint32_t>(id);
  }

  Tsfn tsfn_;
  std::unique_ptr<EngineGroup> engine_;
  std::unique_ptr<Napi::Promise::Deferred> close_deferred_;
  EngineStats final_stats_{};
  std::vector<uint64_t> final_accepted_by_thread_;
  std::vector<::RuleStats> final_rule_stats_;
  bool closed_ = false;
};

void EngineWrap::Deliver(Napi::Env env, Napi::Function on_events, EngineWrap* self, void*) {
  // No env: the function is being torn down. No engine: a call queued before
  // the final one, which already took every event.
  if (env == nullptr || !self->engine_) return;
  bool finished = false;
  std::vector<EngineEvent> events = self->engine_->TakeEvents(&finished);
  // Calls queued before the last one also see `finished`: settle only once.
  bool just_finished = finished && !self->closed_;
  if (just_finished) {
    self->closed_ = true;
    self->engine_->Join();
    self->final_stats_ = self->engine_->Stats();
    self->final_accepted_by_thread_ = self->engine_->AcceptedByThread();
    self->final_rule_stats_ = self->engine_->RuleStatsByRule();
    self->engine_.reset();  // its epoll and eventfd go now, not at garbage collection
    self->tsfn_.Release();
  }
  std::unique_ptr<Napi::Error> thrown;
  if (!events.empty()) {
    Napi::HandleScope scope(env);
    EventKeys keys(env);
    Napi::Array batch = Napi::Array::New(env, events.size());
    for (size_t i = 0; i < events.size(); i++) batch.Set(i, EventToJs(env, keys, events[i]));
    try {
      on_events.Call({batch});
    } catch (const Napi::Error& e) {
      thrown = std::make_unique<Napi::Error>(e);
    }
  }
  if (just_finished) {
    if (self->close_deferred_) self->close_deferred_->Resolve(env.Undefined());
    self->Unref();
  }
  // A throwing onEvents is reported as uncaught, after the close is settled.
  if (thrown) thrown->ThrowAsJavaScriptException();
}

}  // namespace

void InitEngine(Napi::Env env, Napi::Object exports) { exports.Set("Engine", EngineWrap::Define(env)); }
