#include "engine_options.h"

#include <string>

static Napi::Object ObjectField(const Napi::Value& value, const std::string& name) {
  if (!value.IsObject()) throw Napi::TypeError::New(value.Env(), name + " must be an object");
  return value.As<Napi::Object>();
}

static uint32_t Uint32Field(const Napi::Object& object, const char* key, const std::string& owner) {
  Napi::Value value = object.Get(key);
  double number = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : -1;
  if (number < 0 || number > UINT32_MAX || number != static_cast<uint32_t>(number))
    throw Napi::TypeError::New(object.Env(), owner + "." + key + " must be an integer in 0..2^32-1");
  return static_cast<uint32_t>(number);
}

static bool BoolField(const Napi::Object& object, const char* key, const std::string& owner) {
  Napi::Value value = object.Get(key);
  if (!value.IsBoolean()) throw Napi::TypeError::New(object.Env(), owner + "." + key + " must be a boolean");
  return value.As<Napi::Boolean>().Value();
}

static SockAddress AddressField(const Napi::Value& value, const std::string& name) {
  Napi::Object object = ObjectField(value, name);
  Napi::Value host = object.Get("host");
  uint32_t port = Uint32Field(object, "port", name);
  SockAddress address;
  if (port > 65535) throw Napi::TypeError::New(value.Env(), name + ".port must be in 0..65535");
  if (!host.IsString() || !ParseSockAddress(host.As<Napi::String>().Utf8Value(), static_cast<uint16_t>(port), &address))
    throw Napi::TypeError::New(value.Env(), name + ".host must be a literal IPv4 or IPv6 address (names are resolved by the control plane)");
  return address;
}

// targets: [{host, port}, ...]; balance: 'failover' (default) | 'round_robin' | 'least_connections' | 'source_hash'.
// Empty only with allow_empty (a rule that connects to each connection's original destination).
static std::shared_ptr<TargetSet> TargetsField(const Napi::Object& object, const std::string& owner, bool allow_empty = false) {
  Napi::Value value = object.Get("targets");
  if (!value.IsArray() || (value.As<Napi::Array>().Length() == 0 && !allow_empty))
    throw Napi::TypeError::New(object.Env(), owner + ".targets must be a non-empty array of {host, port}");
  Napi::Array array = value.As<Napi::Array>();
  std::vector<SockAddress> targets;
  for (uint32_t i = 0; i < array.Length(); i++)
    targets.push_back(AddressField(array.Get(i), owner + ".targets[" + std::to_string(i) + "]"));
  Napi::Value balance = object.Get("balance");
  std::string name = balance.IsUndefined() ? "failover" : balance.IsString() ? balance.As<Napi::String>().Utf8Value() : "";
  Balance policy;
  if (name == "failover") policy = Balance::kFailover;
  else if (name == "round_robin") policy = Balance::kRoundRobin;
  else if (name == "least_connections") policy = Balance::kLeastConnections;
  else if (name == "source_hash") policy = Balance::kSourceHash;
  else throw Napi::TypeError::New(object.Env(), owner + ".balance must be failover, round_robin, least_connections or source_hash");
  return std::make_shared<TargetSet>(std::move(targets), policy);
}

static uint32_t OptionalUint32(const Napi::Object& object, const char* key, const std::string& owner) {
  return object.Get(key).IsUndefined() ? 0 : Uint32Field(object, key, owner);
}

// proxyProtocol (0, 1, 2), sourceAddress ({host, port: 0}), mark, keepaliveS: all optional.
static UpstreamOptions UpstreamFields(const Napi::Object& o, const std::string& owner) {
  UpstreamOptions upstream;
  uint32_t version = OptionalUint32(o, "proxyProtocol", owner);
  if (version > 2) throw Napi::TypeError::New(o.Env(), owner + ".proxyProtocol must be 0 (none), 1 or 2");
  upstream.proxy_protocol = static_cast<ProxyProtocol>(version);
  Napi::Value source = o.Get("sourceAddress");
  if (!source.IsUndefined()) upstream.source = AddressField(source, owner + ".sourceAddress");
  upstream.mark = OptionalUint32(o, "mark", owner);
  upstream.keepalive_s = OptionalUint32(o, "keepaliveS", owner);
  uint32_t transparent = OptionalUint32(o, "transparentSource", owner);
  if (transparent > 2) throw Napi::TypeError::New(o.Env(), owner + ".transparentSource must be 0 (off), 1 (address) or 2 (address and port)");
  upstream.transparent = static_cast<Transparent>(transparent);
  if (transparent && upstream.source.len) throw Napi::TypeError::New(o.Env(), owner + ": sourceAddress and transparentSource exclude each other");
  return upstream;
}

ListenerConfig ParseListenerOptions(const Napi::Value& value) {
  const std::string owner = "listener";
  Napi::Object o = ObjectField(value, owner);
  ListenerConfig config;
  config.rule_id = Uint32Field(o, "ruleId", owner);
  config.bind = AddressField(o.Get("bind"), owner + ".bind");
  config.dual_stack = BoolField(o, "dualStack", owner);
  config.backlog = static_cast<int>(std::min<uint32_t>(Uint32Field(o, "backlog", owner), 65535));
  config.transparent = !o.Get("transparent").IsUndefined() && BoolField(o, "transparent", owner);
  config.original_destination = !o.Get("originalDestination").IsUndefined() && BoolField(o, "originalDestination", owner);
  config.accept_proxy = !o.Get("acceptProxy").IsUndefined() && BoolField(o, "acceptProxy", owner);
  config.targets = TargetsField(o, owner, config.original_destination);
  if (config.original_destination && !config.targets->addresses().empty())
    throw Napi::TypeError::New(o.Env(), "listener: originalDestination takes no targets");
  config.connect_timeout_ms = Uint32Field(o, "connectTimeoutMs", owner);
  config.idle_timeout_ms = Uint32Field(o, "idleTimeoutMs", owner);
  Napi::Value datapath = o.Get("datapath");
  std::string name = datapath.IsString() ? datapath.As<Napi::String>().Utf8Value() : "";
  if (name != "splice" && name != "userspace")
    throw Napi::TypeError::New(o.Env(), "listener.datapath must be 'splice' or 'userspace'");
  config.datapath = name == "splice" ? Datapath::kSplice : Datapath::kUserspace;
  config.budget_bytes = Uint32Field(o, "budgetBytes", owner);
  config.sndbuf_bytes = Uint32Field(o, "sndbufBytes", owner);
  config.splice_after_bytes = o.Get("spliceAfterBytes").IsUndefined() ? 0 : Uint32Field(o, "spliceAfterBytes", owner);
  config.bulk_on_relay = !o.Get("bulkOnRelay").IsUndefined() && BoolField(o, "bulkOnRelay", owner);
  config.loop_guard = !o.Get("loopGuard").IsUndefined() && BoolField(o, "loopGuard", owner);
  config.upstream = UpstreamFields(o, owner);
  config.limit->max = OptionalUint32(o, "maxConnections", owner);
  if (config.upstream.source.len && !config.original_destination && config.upstream.source.family() != config.targets->front().family())
    throw Napi::TypeError::New(o.Env(), "listener.sourceAddress must be of the targets' address family");
  if (config.sndbuf_bytes > INT32_MAX / 2)
    throw Napi::TypeError::New(o.Env(), "listener.sndbufBytes must be below 1 GiB");
  return config;
}

ListenerUpdate ParseListenerUpdate(const Napi::Value& value) {
  const std::string owner = "update";
  Napi::Object o = ObjectField(value, owner);
  ListenerUpdate update;
  if (!o.Get("targets").IsUndefined()) update.targets = TargetsField(o, owner);
  if (!o.Get("connectTimeoutMs").IsUndefined()) update.connect_timeout_ms = Uint32Field(o, "connectTimeoutMs", owner);
  if (!o.Get("idleTimeoutMs").IsUndefined()) update.idle_timeout_ms = Uint32Field(o, "idleTimeoutMs", owner);
  // The upstream settings go together: any one given replaces all of them.
  for (const char* key : {"proxyProtocol", "sourceAddress", "mark", "keepaliveS", "transparentSource"}) {
    if (o.Get(key).IsUndefined()) continue;
    update.upstream = UpstreamFields(o, owner);
    break;
  }
  if (!o.Get("maxConnections").IsUndefined()) update.max_connections = Uint32Field(o, "maxConnections", owner);
  return update;
}

bool ParseMapFds(const Napi::Object& options, SpliceMapFds* fds) {
  Napi::Value value = options.Get("maps");
  if (value.IsUndefined() || value.IsNull()) return false;
  Napi::Object maps = ObjectField(value, "options.maps");
  const std::string owner = "options.maps";
  fds->conns = static_cast<int>(Uint32Field(maps, "conns", owner));
  fds->splice_hold = static_cast<int>(Uint32Field(maps, "spliceHold", owner));
  fds->splice_active = static_cast<int>(Uint32Field(maps, "spliceActive", owner));
  fds->events = static_cast<int>(Uint32Field(maps, "events", owner));
  fds->relayed = maps.Get("relayed").IsUndefined() ? -1 : static_cast<int>(Uint32Field(maps, "relayed", owner));
  return true;
}
