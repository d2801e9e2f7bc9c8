// probeFeatures(): can this process use BPF steering and the sockmap splice?
// Loads tiny programs and attaches one, as the real path would.
#pragma once
#include <napi.h>

void InitProbe(Napi::Env env, Napi::Object exports);
