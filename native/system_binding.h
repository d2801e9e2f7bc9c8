// Process and filesystem facts the control plane needs: ensureBpffs,
// netnsInode, openFdCount (see src/native/raw.ts).
#pragma once
#include <napi.h>

void InitSystem(Napi::Env env, Napi::Object exports);
