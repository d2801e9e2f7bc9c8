// loadObject(path) → Promise<RawBpfObject> (see src/native/raw.ts).
#pragma once
#include <napi.h>

void InitBpfObject(Napi::Env env, Napi::Object exports);
