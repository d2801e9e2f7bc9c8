#include "bpf_map.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <string>
#include <vector>

#include "args.h"
#include "errors.h"

// The kernel's internal "operation not supported" (no batch ops for this map type).
constexpr int kKernelENOTSUPP = 524;

struct MapShape {
  std::string name;
  uint32_t key_size;
  uint32_t value_size;  // as declared: one CPU's value for per-CPU maps
  bool percpu;
  uint32_t cpus;        // 1 unless percpu
  uint32_t max_entries;

  // Bytes the syscalls read or write as the value: per-CPU maps use one
  // 8-byte-aligned slot per possible CPU.
  size_t value_bytes() const { return percpu ? ((value_size + 7) & ~7u) * size_t{cpus} : value_size; }
};

static bool IsPercpu(uint32_t type) {
  return type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

static MapShape ShapeOf(int fd, const char* syscall) {
  bpf_map_info info{};
  uint32_t length = sizeof info;
  int err = bpf_obj_get_info_by_fd(fd, &info, &length);
  if (err) ThrowSysError(err, syscall, "fd " + std::to_string(fd) + " is not a BPF map");
  MapShape shape{info.name, info.key_size, info.value_size, IsPercpu(info.type), 1, info.max_entries};
  if (shape.percpu) {
    int cpus = libbpf_num_possible_cpus();
    if (cpus < 0) ThrowSysError(cpus, "libbpf_num_possible_cpus", "reading /sys/devices/system/cpu/possible");
    shape.cpus = cpus;
  }
  return shape;
}

static void RequireSize(size_t actual, size_t expected, const char* what, const MapShape& shape,
                        const char* syscall) {
  if (actual == expected) return;
  ThrowSysError(EINVAL, syscall,
                std::string(what) + " is " + std::to_string(actual) + " bytes, map " + shape.name +
                    " expects " + std::to_string(expected));
}

// The (fd, key, ...) arguments of a keyed operation, checked against the map.
struct KeyedCall {
  int fd;
  Napi::Buffer<uint8_t> key;
  MapShape shape;
  const char* syscall;
};

static KeyedCall Keyed(const Napi::CallbackInfo& info, const char* syscall) {
  KeyedCall call{FdArg(info, 0, "fd"), BufferArg(info, 1, "key"), {}, syscall};
  call.shape = ShapeOf(call.fd, syscall);
  RequireSize(call.key.Length(), call.shape.key_size, "key", call.shape, syscall);
  return call;
}

static Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  RequireArgs(info, 3, "mapUpdate(fd, key, value, flags?)");
  KeyedCall call = Keyed(info, "bpf_map_update_elem");
  auto value = BufferArg(info, 2, "value");
  uint32_t flags = info.Length() > 3 && !info[3].IsUndefined() ? Uint32Arg(info, 3, "flags") : uint32_t{BPF_ANY};
  RequireSize(value.Length(), call.shape.value_bytes(), "value", call.shape, call.syscall);
  int err = bpf_map_update_elem(call.fd, call.key.Data(), value.Data(), flags);
  if (err) ThrowSysError(err, call.syscall, "map " + call.shape.name);
  return info.Env().Undefined();
}

static Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "mapDelete(fd, key)");
  KeyedCall call = Keyed(info, "bpf_map_delete_elem");
  int err = bpf_map_delete_elem(call.fd, call.key.Data());
  if (err == -ENOENT) return Napi::Boolean::New(info.Env(), false);
  if (err) ThrowSysError(err, call.syscall, "map " + call.shape.name);
  return Napi::Boolean::New(info.Env(), true);
}

// mapLookup and mapLookupPercpu: null when the key is absent, else one Buffer
// (or one per possible CPU) of valueSize bytes.
static Napi::Value Lookup(const Napi::CallbackInfo& info, bool per_cpu) {
  RequireArgs(info, 3, per_cpu ? "mapLookupPercpu(fd, key, valueSize)" : "mapLookup(fd, key, valueSize)");
  KeyedCall call = Keyed(info, "bpf_map_lookup_elem");
  uint32_t value_size = Uint32Arg(info, 2, "valueSize");
  const MapShape& shape = call.shape;
  if (shape.percpu != per_cpu)
    ThrowSysError(EINVAL, call.syscall,
                  "map " + shape.name + (per_cpu ? " is not per-CPU: use mapLookup" : " is per-CPU: use mapLookupPercpu"));
  RequireSize(value_size, shape.value_size, "valueSize", shape, call.syscall);

  std::vector<uint8_t> value(shape.value_bytes());
  int err = bpf_map_lookup_elem(call.fd, call.key.Data(), value.data());
  if (err == -ENOENT) return info.Env().Null();
  if (err) ThrowSysError(err, call.syscall, "map " + shape.name);
  if (!per_cpu) return Napi::Buffer<uint8_t>::Copy(info.Env(), value.data(), value.size());

  size_t stride = value.size() / shape.cpus;
  Napi::Array result = Napi::Array::New(info.Env(), shape.cpus);
  for (uint32_t cpu = 0; cpu < shape.cpus; cpu++)
    result.Set(cpu, Napi::Buffer<uint8_t>::Copy(info.Env(), value.data() + cpu * stride, value_size));
  return result;
}

static Napi::Value MapKeys(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "mapKeys(fd, keySize)");
  int fd = FdArg(info, 0, "fd");
  uint32_t key_size = Uint32Arg(info, 1, "keySize");
  const char* call = "bpf_map_get_next_key";
  MapShape shape = ShapeOf(fd, call);
  RequireSize(key_size, shape.key_size, "keySize", shape, call);
  std::vector<uint8_t> keys;  // back to back
  std::vector<uint8_t> next(key_size);
  for (const void* previous = nullptr;; previous = keys.data() + keys.size() - key_size) {
    int err = bpf_map_get_next_key(fd, previous, next.data());
    if (err == -ENOENT) break;
    if (err) ThrowSysError(err, call, "map " + shape.name);
    keys.insert(keys.end(), next.begin(), next.end());
  }
  size_t count = keys.size() / key_size;
  Napi::Array result = Napi::Array::New(info.Env(), count);
  for (size_t i = 0; i < count; i++)
    result.Set(i, Napi::Buffer<uint8_t>::Copy(info.Env(), keys.data() + i * key_size, key_size));
  return result;
}

static Napi::Value MapUpdateMany(const Napi::CallbackInfo& info) {
  RequireArgs(info, 5, "mapUpdateMany(fd, keys, values, keySize, valueSize)");
  int fd = FdArg(info, 0, "fd");
  auto keys = BufferArg(info, 1, "keys");
  auto values = BufferArg(info, 2, "values");
  uint32_t key_size = Uint32Arg(info, 3, "keySize");
  uint32_t value_size = Uint32Arg(info, 4, "valueSize");
  const char* call = "bpf_map_update_batch";
  MapShape shape = ShapeOf(fd, call);
  RequireSize(key_size, shape.key_size, "keySize", shape, call);
  RequireSize(value_size, shape.value_bytes(), "valueSize", shape, call);
  size_t count = keys.Length() / key_size;
  if (keys.Length() % key_size != 0 || values.Length() != count * value_size)
    ThrowSysError(EINVAL, call,
                  "keys and values must hold the same number of entries of keySize and valueSize bytes");
  if (count == 0) return info.Env().Undefined();

  auto done = static_cast<uint32_t>(count);
  int err = bpf_map_update_batch(fd, keys.Data(), values.Data(), &done, nullptr);
  if (!err) return info.Env().Undefined();
  bool unsupported = err == -kKernelENOTSUPP || err == -EOPNOTSUPP;
  if (!unsupported || done != 0) ThrowSysError(err, call, "map " + shape.name + " after " + std::to_string(done) + " entries");

  // No batch ops for this map type (LPM trie): one syscall per entry.
  for (size_t i = 0; i < count; i++) {
    err = bpf_map_update_elem(fd, keys.Data() + i * key_size, values.Data() + i * value_size, BPF_ANY);
    if (err)
      ThrowSysError(err, "bpf_map_update_elem",
                    "map " + shape.name + ", entry " + std::to_string(i) + " of " + std::to_string(count));
  }
  return info.Env().Undefined();
}

static Napi::Value SockmapUpdate(const Napi::CallbackInfo& info) {
  RequireArgs(info, 3, "sockmapUpdate(fd, key, socketFd)");
  KeyedCall call = Keyed(info, "bpf_map_update_elem");
  int socket_fd = FdArg(info, 2, "socketFd");
  // The kernel reads a u32 fd, or a u64 when the map's value is 8 bytes: a
  // zero-extended u64 serves both.
  uint64_t value = static_cast<uint32_t>(socket_fd);
  int err = bpf_map_update_elem(call.fd, call.key.Data(), &value, BPF_ANY);
  if (err) ThrowSysError(err, call.syscall, "socket fd " + std::to_string(socket_fd) + " into map " + call.shape.name);
  return info.Env().Undefined();
}

// {name, keySize, valueSize, maxEntries}: what the kernel says of the map (capacity for metrics).
static Napi::Value MapInfo(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "mapInfo(fd)");
  MapShape shape = ShapeOf(FdArg(info, 0, "fd"), "bpf_obj_get_info_by_fd");
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("name", shape.name);
  result.Set("keySize", shape.key_size);
  result.Set("valueSize", shape.value_size);
  result.Set("maxEntries", shape.max_entries);
  return result;
}

void InitBpfMap(Napi::Env env, Napi::Object exports) {
  exports.Set("mapInfo", GuardedFunction(env, "mapInfo", MapInfo));
  exports.Set("mapUpdate", GuardedFunction(env, "mapUpdate", MapUpdate));
  exports.Set("mapDelete", GuardedFunction(env, "mapDelete", MapDelete));
  exports.Set("mapLookup", GuardedFunction(env, "mapLookup", [](const Napi::CallbackInfo& info) {
                 return Lookup(info, false);
               }));
  exports.Set("mapLookupPercpu", GuardedFunction(env, "mapLookupPercpu", [](const Napi::CallbackInfo& info) {
                 return Lookup(info, true);
               }));
  exports.Set("mapKeys", GuardedFunction(env, "mapKeys", MapKeys));
  exports.Set("mapUpdateMany", GuardedFunction(env, "mapUpdateMany", MapUpdateMany));
  exports.Set("sockmapUpdate", GuardedFunction(env, "sockmapUpdate", SockmapUpdate));
}
