// JS binding of the forwarding engine class (see src/native/raw.ts RawEngine).
#pragma once
#include <napi.h>

void InitEngine(Napi::Env env, Napi::Object exports);
