// The engine's totals, defined once: BPFREDIR_ENGINE_STATS generates the
// struct, the sum over threads and the JS object (engine_binding.cc). They are
// not counted separately: TotalOf derives each from the per-rule counters
// (rule_stats.h), so they always agree with those. A new total is one line
// here, its formula in TotalOf and its field in EngineStats of src/native/raw.ts.
#pragma once
#include <cstdint>

#include "rule_stats.h"

// X(field, "jsName"): gauges say "now", the rest count since the engine started.
#define BPFREDIR_ENGINE_STATS(X)                                                               \
  X(connections, "connections")     /* open now */                                             \
  X(spliced, "spliced")             /* open now on the kernel path */                          \
  X(relayed, "relayed")             /* open now on the user-space relay */                     \
  X(paused, "paused")               /* directions paused by the in-flight budget now */        \
  X(pauses, "pauses")               /* times a direction was paused */                         \
  X(accepted, "accepted")                                                                      \
  X(connect_failed, "connectFailed")                                                           \
  X(closed, "closed")                                                                          \
  X(bulk_relayed, "bulkRelayed")    /* connections kept on the splice(2) relay as bulk flows */ \
  X(loops_refused, "loopsRefused")  /* our own upstream connections reset by the loop guard */

struct EngineStats {
  uint64_t listeners = 0;  // the group's, not an engine's
#define BPFREDIR_STATS_VALUE(field, js_name) uint64_t field = 0;
  BPFREDIR_ENGINE_STATS(BPFREDIR_STATS_VALUE)
#undef BPFREDIR_STATS_VALUE

  void Add(const EngineStats& other) {
#define BPFREDIR_STATS_ADD(field, js_name) field += other.field;
    BPFREDIR_ENGINE_STATS(BPFREDIR_STATS_ADD)
#undef BPFREDIR_STATS_ADD
  }
};

// The totals of the rules summed in `rules` (listeners left 0).
EngineStats TotalOf(const RuleStats& rules);
