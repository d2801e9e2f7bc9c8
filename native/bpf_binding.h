// JS bindings for libbpf objects, maps and sockmap inserts (see src/native/raw.ts).
#pragma once
#include <napi.h>

void InitBpf(Napi::Env env, Napi::Object exports);
