// Map operations on Buffers: mapUpdate, mapDelete, mapLookup, mapLookupPercpu,
// mapKeys, mapUpdateMany, sockmapUpdate, mapInfo (see src/native/raw.ts). Synchronous:
// each is one or two syscalls of a few microseconds. Every call checks the
// Buffer sizes against the map's own key/value size first, so a wrong layout
// fails with EINVAL instead of the kernel reading or writing past a Buffer.
#pragma once
#include <napi.h>

void InitBpfMap(Napi::Env env, Napi::Object exports);
