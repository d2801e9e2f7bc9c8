#include "bpf_object.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "errors.h"
#include "libbpf_log.h"

// libbpf has its own error numbers (bad ELF, wrong kernel version, ...) that
// are no errno: report them as EINVAL with libbpf's description.
static SysError LibbpfError(int err, const char* call, const std::string& path, std::string log = "") {
  err = err < 0 ? -err : err;
  if (err < __LIBBPF_ERRNO__START || err >= __LIBBPF_ERRNO__END) return SysError(err, call, path, std::move(log));
  char text[128];
  libbpf_strerror(err, text, sizeof text);
  return SysError(EINVAL, call, path + ": " + text, std::move(log));
}

std::unique_ptr<BpfObject> BpfObject::Load(const std::string& path) {
  LibbpfLogCapture log;
  ObjectPtr object(bpf_object__open_file(path.c_str(), nullptr), bpf_object__close);
  if (!object) throw LibbpfError(errno, "bpf_object__open_file", path);

  // libbpf 1.1 has no "sk_skb/verdict" section: say it here.
  bpf_program* program;
  bpf_object__for_each_program(program, object.get()) {
    if (bpf_program__type(program) == BPF_PROG_TYPE_SK_SKB)
      bpf_program__set_expected_attach_type(program, BPF_SK_SKB_VERDICT);
  }

  int err = bpf_object__load(object.get());
  if (err) throw LibbpfError(err, "bpf_object__load", path, log.text());
  return std::unique_ptr<BpfObject>(new BpfObject(std::move(object)));
}

bpf_object* BpfObject::RequireOpen(const char* use) const {
  if (!object_) ThrowSysError(EBADF, use, "BPF object is closed");
  return object_.get();
}

int BpfObject::MapFd(const std::string& name) const {
  bpf_map* map = bpf_object__find_map_by_name(RequireOpen("mapFd"), name.c_str());
  if (!map) ThrowSysError(ENOENT, "bpf_object__find_map_by_name", "no map named " + name);
  return bpf_map__fd(map);
}

int BpfObject::ProgramFd(const std::string& name) const {
  bpf_program* program = bpf_object__find_program_by_name(RequireOpen("attach"), name.c_str());
  if (!program) ThrowSysError(ENOENT, "bpf_object__find_program_by_name", "no program named " + name);
  return bpf_program__fd(program);
}

int BpfObject::AttachSkLookup(const std::string& program, const std::string& netns_path) {
  int program_fd = ProgramFd(program);
  UniqueFd netns(open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!netns) ThrowSysError(errno, "open", netns_path);
  int link_fd = bpf_link_create(program_fd, netns.get(), BPF_SK_LOOKUP, nullptr);
  if (link_fd < 0) ThrowSysError(link_fd, "bpf_link_create", program + " to " + netns_path);
  int id = next_link_id_++;
  links_.emplace(id, UniqueFd(link_fd));
  return id;
}

// libbpf 1.1's headers predate tcx; the kernel's number (include/uapi/linux/bpf.h).
constexpr int kTcxIngress = 46;

int BpfObject::AttachTcIngress(const std::string& program, int ifindex) {
  int program_fd = ProgramFd(program);
  int link_fd = bpf_link_create(program_fd, ifindex, static_cast<bpf_attach_type>(kTcxIngress), nullptr);
  if (link_fd < 0) ThrowSysError(link_fd, "bpf_link_create", program + " to tcx ingress of ifindex " + std::to_string(ifindex));
  int id = next_link_id_++;
  links_.emplace(id, UniqueFd(link_fd));
  return id;
}

void BpfObject::AttachVerdict(const std::string& program, const std::string& map) {
  int program_fd = ProgramFd(program);
  int map_fd = MapFd(map);
  int err = bpf_prog_attach(program_fd, map_fd, BPF_SK_SKB_VERDICT, 0);
  if (err) ThrowSysError(err, "bpf_prog_attach", program + " as verdict of " + map);
  verdicts_.push_back({program_fd, map_fd});
}

const UniqueFd& BpfObject::Link(int link_id, const char* use) const {
  RequireOpen(use);
  auto it = links_.find(link_id);
  if (it == links_.end()) ThrowSysError(ENOENT, use, "no link with id " + std::to_string(link_id));
  return it->second;
}

void BpfObject::Detach(int link_id) {
  // Detach now, not when the last fd goes: the caller wants steering off at this step.
  int err = bpf_link_detach(Link(link_id, "detach").get());
  links_.erase(link_id);
  if (err) ThrowSysError(err, "bpf_link_detach", "link id " + std::to_string(link_id));
}

void BpfObject::Close() {
  if (!object_) return;
  // Best effort: a link or attachment the kernel already dropped is fine.
  for (auto& [id, link] : links_) bpf_link_detach(link.get());
  links_.clear();
  for (const auto& v : verdicts_) bpf_prog_detach2(v.program_fd, v.map_fd, BPF_SK_SKB_VERDICT);
  verdicts_.clear();
  object_.reset();
}
