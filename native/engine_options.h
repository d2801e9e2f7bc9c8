// Reads the engine's JS option objects (src/native/raw.ts) into C++ structs.
// Each bad field throws a TypeError naming the field and what it must be.
#pragma once
#include <napi.h>

#include "engine.h"

ListenerConfig ParseListenerOptions(const Napi::Value& value);
ListenerUpdate ParseListenerUpdate(const Napi::Value& value);
// EngineOptions.maps; false when absent (user-space relay only).
bool ParseMapFds(const Napi::Object& options, SpliceMapFds* fds);
