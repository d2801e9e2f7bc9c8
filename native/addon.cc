// Registers the addon's parts; each lives in its own file.
#include <napi.h>

#include "bpf_binding.h"
#include "engine_binding.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitBpf(env, exports);
  InitEngine(env, exports);
  return exports;
}

NODE_API_MODULE(bpfredir, Init)
