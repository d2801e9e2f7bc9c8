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
        message(Napi::String::New(env, "message")) {}
  Napi::String type, rule_id, conn_id, client, original_dst, upstream, datapath, reason, bytes_to_upstream,
      bytes_to_client, duration_ms, code, message;
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
  return object;
}

class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Engine",
                       {InstanceMethod<&EngineWrap::AddListener>("addListener"),
                        InstanceMethod<&EngineWrap::UpdateListener>("updateListener"),
                        InstanceMethod<&EngineWrap::RemoveListener>("removeListener"),
                        InstanceMethod<&EngineWrap::Stats>("stats"),
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
