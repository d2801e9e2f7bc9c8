#include "system_binding.h"

#include <dirent.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>

#include "args.h"
#include "errors.h"

// flock(LOCK_EX | LOCK_NB) on an fd the caller opened: false when another
// open file description holds it. The kernel drops the lock when the holder
// dies, so a killed bpfredir never blocks the next start.
static Napi::Value TryLock(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "tryLock(fd)");
  int fd = FdArg(info, 0, "fd");
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) return Napi::Boolean::New(info.Env(), true);
  if (errno == EWOULDBLOCK) return Napi::Boolean::New(info.Env(), false);
  ThrowSysError(errno, "flock", "fd " + std::to_string(fd));
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

// One datagram to a unix socket (syslog's /dev/log), on a socket opened at
// the first send and kept. No daemon listening is not an error worth a log
// line of its own: the caller counts nothing and goes on, as syslog(3) does.
static Napi::Value SendUnixDatagram(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "sendUnixDatagram(path, data)");
  std::string path = StringArgOr(info, 0, "path", "/dev/log");
  auto data = BufferArg(info, 1, "data");
  static int fd = -1;
  if (fd < 0) fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowSysError(errno, "socket", "AF_UNIX datagram");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) ThrowSysError(ENAMETOOLONG, "sendto", path);
  path.copy(addr.sun_path, path.size());
  ssize_t sent = sendto(fd, data.Data(), data.Length(), MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  return Napi::Boolean::New(info.Env(), sent == static_cast<ssize_t>(data.Length()));
}

void InitSystem(Napi::Env env, Napi::Object exports) {
  exports.Set("tryLock", GuardedFunction(env, "tryLock", TryLock));
  exports.Set("netnsInode", GuardedFunction(env, "netnsInode", NetnsInode));
  exports.Set("openFdCount", GuardedFunction(env, "openFdCount", OpenFdCount));
  exports.Set("sendUnixDatagram", GuardedFunction(env, "sendUnixDatagram", SendUnixDatagram));
}
