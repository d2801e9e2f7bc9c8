// A loaded BPF object file and everything attached from it (no JS here).
//
// Lifetime: the object owns its programs and maps (through libbpf), every
// sk_lookup link fd and every verdict attachment it made. Close() — also run by
// the destructor — detaches all of them and closes every fd. Nothing is
// pinned: if the process dies, the kernel drops the links and maps with its
// fds, so a crash never leaves steering behind. Map fds handed out by MapFd()
// are invalid after Close(): stop users (the engine) first.
#pragma once
#include <bpf/libbpf.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "unique_fd.h"

class BpfObject {
 public:
  // Opens and loads the file; every SK_SKB program becomes BPF_SK_SKB_VERDICT.
  // Throws SysError (with the libbpf/verifier log on a load failure).
  static std::unique_ptr<BpfObject> Load(const std::string& path);
  ~BpfObject() { Close(); }

  int MapFd(const std::string& name) const;
  // Links an sk_lookup program to the netns at netns_path; returns a link id.
  int AttachSkLookup(const std::string& program, const std::string& netns_path);
  void AttachVerdict(const std::string& program, const std::string& map);
  // Links a TC program to the ingress of interface ifindex (tcx, Linux >= 6.6);
  // returns a link id. Like every link it goes when the process does.
  int AttachTcIngress(const std::string& program, int ifindex);
  void Detach(int link_id);
  void Close();

 private:
  struct VerdictAttachment {
    int program_fd;
    int map_fd;
  };
  using ObjectPtr = std::unique_ptr<bpf_object, decltype(&bpf_object__close)>;

  explicit BpfObject(ObjectPtr object) : object_(std::move(object)) {}
  bpf_object* RequireOpen(const char* use) const;
  int ProgramFd(const std::string& name) const;
  const UniqueFd& Link(int link_id, const char* use) const;

  ObjectPtr object_;
  std::map<int, UniqueFd> links_;
  int next_link_id_ = 1;
  std::vector<VerdictAttachment> verdicts_;
};
