#include "probe.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "unique_fd.h"

static const char kNoPrivilege[] = "no CAP_BPF/CAP_NET_ADMIN: run as root or grant capabilities";

// "return 1" (SK_PASS): the smallest program every type accepts.
static UniqueFd LoadReturnOne(bpf_prog_type type, bpf_attach_type attach, int* err) {
  const bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = attach);
  int fd = bpf_prog_load(type, "bpfredir_probe", "GPL", insns, 2, &opts);
  *err = fd < 0 ? -fd : 0;
  return UniqueFd(fd < 0 ? -1 : fd);
}

// Empty string when supported, else one line saying what is missing.
static std::string ProbeSkLookup() {
  int err;
  UniqueFd program = LoadReturnOne(BPF_PROG_TYPE_SK_LOOKUP, BPF_SK_LOOKUP, &err);
  if (program) return "";
  if (err == EPERM || err == EACCES) return kNoPrivilege;
  if (err == EINVAL) return "sk_lookup needs Linux >= 5.9: BPF steering is unavailable";
  return std::string("sk_lookup probe failed: bpf_prog_load: ") + strerror(err);
}

static std::string ProbeSockmapVerdict() {
  int err;
  UniqueFd program = LoadReturnOne(BPF_PROG_TYPE_SK_SKB, BPF_SK_SKB_VERDICT, &err);
  if (!program) {
    if (err == EPERM || err == EACCES) return kNoPrivilege;
    return std::string("sockmap probe failed: bpf_prog_load: ") + strerror(err);
  }
  int map_fd = bpf_map_create(BPF_MAP_TYPE_SOCKHASH, "bpfredir_probe", 8, 8, 1, nullptr);
  if (map_fd < 0) {
    if (-map_fd == EPERM) return kNoPrivilege;
    return std::string("sockhash probe failed: bpf_map_create: ") + strerror(-map_fd);
  }
  UniqueFd map(map_fd);
  // Closing the map afterwards releases the attachment.
  err = -bpf_prog_attach(program.get(), map.get(), BPF_SK_SKB_VERDICT, 0);
  if (err == 0) return "";
  if (err == EINVAL) return "sockmap verdict (BPF_SK_SKB_VERDICT) needs Linux >= 5.13: splice is unavailable";
  if (err == EPERM) return kNoPrivilege;
  return std::string("sockmap verdict probe failed: bpf_prog_attach: ") + strerror(err);
}

static Napi::Value ProbeFeatures(const Napi::CallbackInfo& info) {
  std::string sk_lookup = ProbeSkLookup();
  std::string verdict = ProbeSockmapVerdict();
  std::vector<std::string> problems;
  for (const std::string& p : {sk_lookup, verdict}) {
    if (!p.empty() && std::find(problems.begin(), problems.end(), p) == problems.end()) problems.push_back(p);
  }

  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("skLookup", sk_lookup.empty());
  result.Set("sockmapVerdict", verdict.empty());
  Napi::Array list = Napi::Array::New(env, problems.size());
  for (size_t i = 0; i < problems.size(); i++) list.Set(i, problems[i]);
  result.Set("problems", list);
  return result;
}

void InitProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("probeFeatures", Napi::Function::New(env, ProbeFeatures, "probeFeatures"));
}
