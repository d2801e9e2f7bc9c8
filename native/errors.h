// Errors of the addon. C++ code throws SysError (no JS involved, so it is safe
// on worker threads); binding code turns it into a JS Error shaped like Node's
// system errors: message "<syscall> failed: <strerror> (<what>)", plus
// err.code ('ENOENT'), err.errno (positive), err.syscall, and err.verifierLog
// for BPF load failures.
#pragma once
#include <napi.h>

#include <stdexcept>
#include <string>

struct SysError : std::runtime_error {
  SysError(int err, std::string syscall, std::string detail, std::string verifier_log = "");

  int err;  // positive errno
  std::string syscall;
  std::string detail;  // what the call was acting on
  std::string verifier_log;  // full libbpf/verifier log; empty when not a load
};

// Throws SysError for err (a positive errno; negative values are flipped,
// as libbpf returns -errno).
[[noreturn]] void ThrowSysError(int err, const std::string& syscall, const std::string& detail);

Napi::Error ToJsError(Napi::Env env, const SysError& e);

// Runs body and rethrows a SysError as a JS exception.
template <typename Body>
auto WithJsErrors(Napi::Env env, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const SysError& e) {
    throw ToJsError(env, e);
  }
}

// A JS function running body(info) with WithJsErrors: the usual way to export
// a binding function.
template <typename Body>
Napi::Function GuardedFunction(Napi::Env env, const char* name, Body body) {
  return Napi::Function::New(
      env,
      [body](const Napi::CallbackInfo& info) -> Napi::Value {
        return WithJsErrors(info.Env(), [&] { return body(info); });
      },
      name);
}
