#include "system_binding.h"

#include <dirent.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/syscall.h>
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
#include "policy_routing.h"
#include "unique_fd.h"

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

// 4 or 6 from JS, AF_INET or AF_INET6 for the kernel.
static int FamilyArg(const Napi::CallbackInfo& info, size_t i) {
  uint32_t family = Uint32Arg(info, i, "family");
  if (family != 4 && family != 6) ThrowSysError(EAFNOSUPPORT, "family", std::to_string(family) + " (4 or 6)");
  return family == 4 ? AF_INET : AF_INET6;
}

static uint32_t FieldU32(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("policy rule: ") + name + " must be a number");
  return v.As<Napi::Number>().Uint32Value();
}

static PolicyRule RuleArg(const Napi::CallbackInfo& info) {
  if (info.Length() < 2 || !info[1].IsObject()) throw Napi::TypeError::New(info.Env(), "expected (family, {priority, table, mark, mask, protocol})");
  Napi::Object o = info[1].As<Napi::Object>();
  PolicyRule rule;
  rule.family = FamilyArg(info, 0);
  rule.priority = FieldU32(o, "priority");
  rule.table = FieldU32(o, "table");
  rule.mark = FieldU32(o, "mark");
  rule.mask = FieldU32(o, "mask");
  rule.protocol = static_cast<uint8_t>(FieldU32(o, "protocol"));
  return rule;
}

static Napi::Value ListRules(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "listPolicyRules(family)");
  Napi::Array out = Napi::Array::New(info.Env());
  for (const PolicyRule& rule : ListPolicyRules(FamilyArg(info, 0))) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("priority", rule.priority);
    o.Set("table", rule.table);
    o.Set("mark", rule.mark);
    o.Set("mask", rule.mask);
    o.Set("protocol", rule.protocol);
    out.Set(out.Length(), o);
  }
  return out;
}

static Napi::Value AddRule(const Napi::CallbackInfo& info) {
  AddPolicyRule(RuleArg(info));
  return info.Env().Undefined();
}

static Napi::Value DeleteRule(const Napi::CallbackInfo& info) {
  DeletePolicyRule(RuleArg(info));
  return info.Env().Undefined();
}

static Napi::Value ListRoutes(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "listTableRoutes(family, table)");
  Napi::Array out = Napi::Array::New(info.Env());
  for (const TableRoute& route : ListTableRoutes(FamilyArg(info, 0), Uint32Arg(info, 1, "table"))) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("type", route.type);
    o.Set("dstLen", route.dst_len);
    o.Set("protocol", route.protocol);
    out.Set(out.Length(), o);
  }
  return out;
}

static Napi::Value ChangeLocalRoute(const Napi::CallbackInfo& info, bool add) {
  RequireArgs(info, 3, "(family, table, protocol)");
  int family = FamilyArg(info, 0);
  uint32_t table = Uint32Arg(info, 1, "table");
  auto protocol = static_cast<uint8_t>(Uint32Arg(info, 2, "protocol"));
  add ? AddLocalDefaultRoute(family, table, protocol) : DeleteLocalDefaultRoute(family, table, protocol);
  return info.Env().Undefined();
}

static Napi::Value InterfaceIndex(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "interfaceIndex(name)");
  std::string name = StringArg(info, 0, "name");
  unsigned index = if_nametoindex(name.c_str());
  if (!index) ThrowSysError(errno, "if_nametoindex", name);
  return Napi::Number::New(info.Env(), index);
}

// A duplicate of another process's fd (pidfd_open + pidfd_getfd, Linux >= 5.6;
// needs ptrace rights over it: CAP_SYS_PTRACE or the same user). Returns the new fd.
static Napi::Value DuplicateFd(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "pidfdGetfd(pid, fd)");
  uint32_t pid = Uint32Arg(info, 0, "pid");
  uint32_t fd = Uint32Arg(info, 1, "fd");
  std::string what = "pid " + std::to_string(pid) + " fd " + std::to_string(fd);
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) ThrowSysError(errno, "pidfd_open", what);
  int copy = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd.get(), fd, 0));
  if (copy < 0) ThrowSysError(errno, "pidfd_getfd", what);
  return Napi::Number::New(info.Env(), copy);
}

static Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "closeFd(fd)");
  close(FdArg(info, 0, "fd"));
  return info.Env().Undefined();
}

// IP_TRANSPARENT on a listening socket: it may accept connections to
// addresses this machine does not have (IPv4 needs it for the SYN-ACK to
// leave from the original destination). Needs CAP_NET_ADMIN or CAP_NET_RAW.
static Napi::Value SetTransparent(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "setTransparent(fd)");
  int fd = FdArg(info, 0, "fd");
  int on = 1;
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) ThrowSysError(errno, "getsockname", "fd " + std::to_string(fd));
  bool v6 = addr.ss_family == AF_INET6;
  if (setsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_TRANSPARENT : IP_TRANSPARENT, &on, sizeof(on)) != 0)
    ThrowSysError(errno, "setsockopt", v6 ? "IPV6_TRANSPARENT" : "IP_TRANSPARENT");
  return info.Env().Undefined();
}

void InitSystem(Napi::Env env, Napi::Object exports) {
  exports.Set("listPolicyRules", GuardedFunction(env, "listPolicyRules", ListRules));
  exports.Set("addPolicyRule", GuardedFunction(env, "addPolicyRule", AddRule));
  exports.Set("deletePolicyRule", GuardedFunction(env, "deletePolicyRule", DeleteRule));
  exports.Set("listTableRoutes", GuardedFunction(env, "listTableRoutes", ListRoutes));
  exports.Set("addLocalDefaultRoute", GuardedFunction(env, "addLocalDefaultRoute", [](const Napi::CallbackInfo& info) { return ChangeLocalRoute(info, true); }));
  exports.Set("deleteLocalDefaultRoute", GuardedFunction(env, "deleteLocalDefaultRoute", [](const Napi::CallbackInfo& info) { return ChangeLocalRoute(info, false); }));
  exports.Set("interfaceIndex", GuardedFunction(env, "interfaceIndex", InterfaceIndex));
  exports.Set("pidfdGetfd", GuardedFunction(env, "pidfdGetfd", DuplicateFd));
  exports.Set("closeFd", GuardedFunction(env, "closeFd", CloseFd));
  exports.Set("setTransparent", GuardedFunction(env, "setTransparent", SetTransparent));
  exports.Set("tryLock", GuardedFunction(env, "tryLock", TryLock));
  exports.Set("netnsInode", GuardedFunction(env, "netnsInode", NetnsInode));
  exports.Set("openFdCount", GuardedFunction(env, "openFdCount", OpenFdCount));
  exports.Set("sendUnixDatagram", GuardedFunction(env, "sendUnixDatagram", SendUnixDatagram));
}
