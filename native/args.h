// Argument checks for binding functions: each throws a TypeError that names the
// argument, so a wrong call from JS fails with one clear line.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

inline void RequireArgs(const Napi::CallbackInfo& info, size_t count, const char* signature) {
  if (info.Length() < count) throw Napi::TypeError::New(info.Env(), std::string("expected ") + signature);
}

inline std::string StringArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsString()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

// Optional string: fallback when the argument is missing or undefined.
inline std::string StringArgOr(const Napi::CallbackInfo& info, size_t i, const char* name,
                               const std::string& fallback) {
  if (i >= info.Length() || info[i].IsUndefined()) return fallback;
  return StringArg(info, i, name);
}

inline uint32_t Uint32Arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (v < 0 || v > UINT32_MAX || v != static_cast<uint32_t>(v))
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be an integer in 0..2^32-1");
  return static_cast<uint32_t>(v);
}

inline int FdArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  uint32_t fd = Uint32Arg(info, i, name);
  if (fd > INT32_MAX) throw Napi::RangeError::New(info.Env(), std::string(name) + " is not a valid fd");
  return static_cast<int>(fd);
}

inline Napi::Buffer<uint8_t> BufferArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsBuffer()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Buffer");
  return info[i].As<Napi::Buffer<uint8_t>>();
}
