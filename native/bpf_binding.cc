// InitBpf: everything of src/native/raw.ts RawBinding except the Engine.
#include "bpf_binding.h"

#include "bpf_map.h"
#include "bpf_object_binding.h"
#include "probe.h"
#include "system_binding.h"

void InitBpf(Napi::Env env, Napi::Object exports) {
  InitBpfObject(env, exports);
  InitBpfMap(env, exports);
  InitProbe(env, exports);
  InitSystem(env, exports);
}
