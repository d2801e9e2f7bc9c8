#include "system_binding.h"

#include <dirent.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <cerrno>
#include <memory>
#include <string>

#include "args.h"
#include "errors.h"

static void MakeDirectory(const std::string& path) {
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) ThrowSysError(errno, "mkdir", path);
}

// mkdir -p below an existing root.
static void MakeDirectories(const std::string& root, const std::string& relative) {
  std::string path = root;
  size_t start = 0;
  while (start < relative.size()) {
    size_t end = relative.find('/', start);
    if (end == std::string::npos) end = relative.size();
    if (end > start) MakeDirectory(path += "/" + relative.substr(start, end - start));
    start = end + 1;
  }
}

static Napi::Value EnsureBpffs(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "ensureBpffs(mountPoint, subdir)");
  std::string mount_point = StringArg(info, 0, "mountPoint");
  std::string subdir = StringArg(info, 1, "subdir");

  struct statfs fs {};
  if (statfs(mount_point.c_str(), &fs) != 0) {
    if (errno != ENOENT) ThrowSysError(errno, "statfs", mount_point);
    MakeDirectory(mount_point);
    fs.f_type = 0;
  }
  if (fs.f_type != BPF_FS_MAGIC && mount("bpf", mount_point.c_str(), "bpf", 0, "mode=0700") != 0)
    ThrowSysError(errno, "mount", "bpffs at " + mount_point + ": run as root or mount it yourself");
  MakeDirectories(mount_point, subdir);
  return info.Env().Undefined();
}

static Napi::Value NetnsInode(const Napi::CallbackInfo& info) {
  std::string path = StringArgOr(info, 0, "path", "/proc/self/ns/net");
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) ThrowSysError(errno, "stat", path);
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(st.st_ino));
}

struct CloseDir {
  void operator()(DIR* dir) const { closedir(dir); }
};

static Napi::Value OpenFdCount(const Napi::CallbackInfo& info) {
  std::unique_ptr<DIR, CloseDir> dir(opendir("/proc/self/fd"));
  if (!dir) ThrowSysError(errno, "opendir", "/proc/self/fd");
  int count = 0;
  while (dirent* entry = readdir(dir.get())) {
    if (entry->d_name[0] != '.') count++;
  }
  // Not counting the fd of the directory being read.
  return Napi::Number::New(info.Env(), count - 1);
}

void InitSystem(Napi::Env env, Napi::Object exports) {
  exports.Set("ensureBpffs", GuardedFunction(env, "ensureBpffs", EnsureBpffs));
  exports.Set("netnsInode", GuardedFunction(env, "netnsInode", NetnsInode));
  exports.Set("openFdCount", GuardedFunction(env, "openFdCount", OpenFdCount));
}
