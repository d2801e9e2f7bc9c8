// The engine's statistics, defined once: the struct, the per-thread counters,
// the sum over threads and the JS object (engine_binding.cc) are all generated
// from BPFREDIR_ENGINE_STATS. A new counter is one line here and its field in
// EngineStats of src/native/raw.ts.
#pragma once
#include <atomic>
#include <cstdint>

// A counter that one thread (its engine's) writes and any thread reads: a
// relaxed load and store, never a locked read-modify-write on the hot path.
class OwnedCounter {
 public:
  void Add(uint64_t n = 1) { value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void Sub(uint64_t n = 1) { value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
  uint64_t Get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

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

#define BPFREDIR_STATS_VALUE(field, js_name) uint64_t field = 0;
#define BPFREDIR_STATS_COUNTER(field, js_name) OwnedCounter field;

struct EngineStats {
  uint64_t listeners = 0;  // the group's, not an engine's
  BPFREDIR_ENGINE_STATS(BPFREDIR_STATS_VALUE)

  void Add(const EngineStats& other) {
#define BPFREDIR_STATS_ADD(field, js_name) field += other.field;
    BPFREDIR_ENGINE_STATS(BPFREDIR_STATS_ADD)
#undef BPFREDIR_STATS_ADD
  }
};

// One engine's live counters, written by its thread only.
struct EngineCounters {
  BPFREDIR_ENGINE_STATS(BPFREDIR_STATS_COUNTER)

  EngineStats Read() const {
    EngineStats stats;
#define BPFREDIR_STATS_READ(field, js_name) stats.field = field.Get();
    BPFREDIR_ENGINE_STATS(BPFREDIR_STATS_READ)
#undef BPFREDIR_STATS_READ
    return stats;
  }
};
