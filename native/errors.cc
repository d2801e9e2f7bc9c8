#include "errors.h"

#include <string.h>

#include "errno_name.h"

static std::string Message(int err, const std::string& syscall, const std::string& detail) {
  std::string msg = syscall + " failed: " + strerror(err);
  if (!detail.empty()) msg += " (" + detail + ")";
  return msg;
}

SysError::SysError(int err, std::string syscall, std::string detail, std::string verifier_log)
    : std::runtime_error(Message(err, syscall, detail)),
      err(err),
      syscall(std::move(syscall)),
      detail(std::move(detail)),
      verifier_log(std::move(verifier_log)) {}

void ThrowSysError(int err, const std::string& syscall, const std::string& detail) {
  throw SysError(err < 0 ? -err : err, syscall, detail);
}

// The last lines of a log: enough to see why the verifier refused a program.
static std::string LastLines(const std::string& log, int count) {
  size_t pos = log.size();
  while (pos > 0 && log[pos - 1] == '\n') pos--;
  size_t end = pos;
  for (int seen = 0; pos > 0; pos--) {
    if (log[pos - 1] == '\n' && ++seen == count) break;
  }
  return log.substr(pos, end - pos);
}

Napi::Error ToJsError(Napi::Env env, const SysError& e) {
  std::string message = e.what();
  if (!e.verifier_log.empty()) message += "\n" + LastLines(e.verifier_log, 20);
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", ErrnoName(e.err));
  error.Set("errno", Napi::Number::New(env, e.err));
  error.Set("syscall", e.syscall);
  if (!e.verifier_log.empty()) error.Set("verifierLog", e.verifier_log);
  return error;
}
