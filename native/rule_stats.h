// Per-rule statistics of the engine, defined once: the lists below generate
// the enums and their names, the live counters (RuleCounters: one block per
// engine thread and rule, written by that thread only), the summed values
// (RuleStats) and the JS objects (engine_binding.cc). A new counter is one
// line in BPFREDIR_RULE_COUNTERS and its field in EngineRuleStats of
// src/native/raw.ts.
//
// Bytes the kernel's verdict sees are counted by BPF in rule_stats
// (bpf/bpfredir.h); these count only what the verdict does not see, so the
// two add up to every byte forwarded, each once.
#pragma once
#include <cstddef>
#include <cstdint>
#include <iterator>

#include "owned_counter.h"

// X(field, "jsName"): gauges say "now", the rest count since the engine started.
#define BPFREDIR_RULE_COUNTERS(X)                                                                  \
  X(accepted, "accepted")                                                                          \
  X(connecting, "connecting")     /* open now, upstream connect in progress */                     \
  X(loops_refused, "loopsRefused") /* our own upstream connections back on their path, reset */    \
  X(limit_refused, "limitRefused") /* reset at accept: the rule had max_connections open */        \
  X(proxy_header_failed, "proxyHeaderFailed") /* accept_proxy: no valid header in time, reset */  \
  X(proxy_denied, "proxyDenied")  /* accept_proxy: the header's client refused by a list, reset */ \
  X(bulk_flows, "bulkFlows")      /* kept on the splice(2) relay as bulk flows */                  \
  /* Written to the peer by user space (recv/send copy, splice(2), a direction left outside the \
     kernel path): bytes the verdict never saw. */                                                 \
  X(bytes_to_upstream, "bytesToUpstream")                                                          \
  X(bytes_to_client, "bytesToClient")                                                              \
  X(pauses, "pauses")             /* a direction paused by the in-flight budget */                 \
  X(paused, "paused")             /* directions paused now */                                      \
  /* Written to the peer by user space while the direction was paused (the verdict counted them \
     in rule_stats already). */                                                                    \
  X(paused_bytes_to_upstream, "pausedBytesToUpstream")                                             \
  X(paused_bytes_to_client, "pausedBytesToClient")

// How a connection ended (also the 'closed' event's reason).
#define BPFREDIR_CLOSE_REASONS(X) \
  X(kEof, "eof")                  \
  X(kReset, "reset")              \
  X(kIdleTimeout, "idle_timeout") \
  X(kShutdown, "shutdown")

// Why an upstream connect failed, by errno (ConnectFailureOf).
#define BPFREDIR_CONNECT_FAILURES(X)                                                  \
  X(kRefused, "refused")           /* ECONNREFUSED: nothing listens */                \
  X(kTimeout, "timeout")           /* connect_timeout, or the kernel's SYN retries */ \
  X(kUnreachable, "unreachable")   /* no route, host or network unreachable */        \
  X(kNoResources, "no_resources")  /* out of fds, ports or memory here */             \
  X(kOther, "other")

// The three ways the engine moves bytes, as metrics and the admin socket name them.
#define BPFREDIR_PATHS(X)                                              \
  X(kSockmap, "sockmap") /* in the kernel: the sockmap verdict */      \
  X(kSplice, "splice")   /* splice(2) through a pipe per direction */  \
  X(kCopy, "copy")       /* recv/send through a per-thread buffer */

#define BPFREDIR_ENUM_VALUE(value, name) value,
enum class CloseReason : uint8_t { BPFREDIR_CLOSE_REASONS(BPFREDIR_ENUM_VALUE) kCount };
enum class ConnectFailure : uint8_t { BPFREDIR_CONNECT_FAILURES(BPFREDIR_ENUM_VALUE) kCount };
enum class Path : uint8_t { BPFREDIR_PATHS(BPFREDIR_ENUM_VALUE) kCount };
#undef BPFREDIR_ENUM_VALUE

constexpr size_t kCloseReasons = static_cast<size_t>(CloseReason::kCount);
constexpr size_t kConnectFailures = static_cast<size_t>(ConnectFailure::kCount);
constexpr size_t kPaths = static_cast<size_t>(Path::kCount);

const char* NameOf(CloseReason reason);
const char* NameOf(ConnectFailure failure);
const char* NameOf(Path path);
ConnectFailure ConnectFailureOf(int err);

// Bucket upper bounds (inclusive, ns), chosen for a proxy: a local or LAN
// connect takes 100 µs-10 ms, a congested or distant one up to a timeout;
// connections last from a request (ms) to a session (an hour).
inline constexpr uint64_t kConnectBoundsNs[] = {
    100'000,     250'000,     500'000,       1'000'000,     2'500'000,     5'000'000,
    10'000'000,  25'000'000,  50'000'000,    100'000'000,   250'000'000,   500'000'000,
    1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};
inline constexpr uint64_t kDurationBoundsNs[] = {
    1'000'000,       10'000'000,      100'000'000,      1'000'000'000,    10'000'000'000,
    60'000'000'000,  300'000'000'000, 1'800'000'000'000, 3'600'000'000'000};

// Counts per bucket (not cumulative; the last one is +Inf) and the sum.
template <typename Cell, size_t N>
struct HistogramOf {
  static constexpr size_t kBuckets = N + 1;
  Cell buckets[kBuckets]{};
  Cell sum_ns{};
};

// Cell = OwnedCounter: one engine's live block; Cell = uint64_t: values.
template <typename Cell>
struct RuleStatsOf {
#define BPFREDIR_RULE_FIELD(field, js_name) Cell field{};
  BPFREDIR_RULE_COUNTERS(BPFREDIR_RULE_FIELD)
#undef BPFREDIR_RULE_FIELD
  Cell closed[kCloseReasons]{};
  Cell connect_failed[kConnectFailures]{};
  Cell active[kPaths]{};  // open now, by the path their bytes take
  HistogramOf<Cell, std::size(kConnectBoundsNs)> connect;    // accept to upstream connected
  HistogramOf<Cell, std::size(kDurationBoundsNs)> duration;  // accept to close
};

struct RuleStats : RuleStatsOf<uint64_t> {
  uint32_t rule_id = 0;
};

// Its own cache lines: no two engine threads ever write the same one.
struct alignas(64) RuleCounters : RuleStatsOf<OwnedCounter> {
  void ObserveConnect(uint64_t ns) { Observe(connect, kConnectBoundsNs, ns); }
  void ObserveDuration(uint64_t ns) { Observe(duration, kDurationBoundsNs, ns); }
  // Adds this block's current values to *total (any thread).
  void AddTo(RuleStats* total) const;

 private:
  template <size_t N>
  static void Observe(HistogramOf<OwnedCounter, N>& histogram, const uint64_t (&bounds)[N], uint64_t ns) {
    size_t i = 0;
    while (i < N && ns > bounds[i]) i++;
    histogram.buckets[i].Add();
    histogram.sum_ns.Add(ns);
  }
};
