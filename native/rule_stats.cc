#include "rule_stats.h"

#include <numeric>

#include "engine_stats.h"

#include <errno.h>

namespace {

#define BPFREDIR_NAME(value, name) name,
const char* const kCloseReasonNames[] = {BPFREDIR_CLOSE_REASONS(BPFREDIR_NAME)};
const char* const kConnectFailureNames[] = {BPFREDIR_CONNECT_FAILURES(BPFREDIR_NAME)};
const char* const kPathNames[] = {BPFREDIR_PATHS(BPFREDIR_NAME)};
#undef BPFREDIR_NAME

template <typename Cell, size_t N>
void AddHistogram(HistogramOf<uint64_t, N>* total, const HistogramOf<Cell, N>& live) {
  for (size_t i = 0; i < HistogramOf<Cell, N>::kBuckets; i++) total->buckets[i] += live.buckets[i].Get();
  total->sum_ns += live.sum_ns.Get();
}

template <size_t N>
void AddArray(uint64_t (&total)[N], const OwnedCounter (&live)[N]) {
  for (size_t i = 0; i < N; i++) total[i] += live[i].Get();
}

}  // namespace

const char* NameOf(CloseReason reason) { return kCloseReasonNames[static_cast<size_t>(reason)]; }
const char* NameOf(ConnectFailure failure) { return kConnectFailureNames[static_cast<size_t>(failure)]; }
const char* NameOf(Path path) { return kPathNames[static_cast<size_t>(path)]; }

ConnectFailure ConnectFailureOf(int err) {
  switch (err) {
    case ECONNREFUSED:
      return ConnectFailure::kRefused;
    case ETIMEDOUT:
      return ConnectFailure::kTimeout;
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ENETDOWN:
    case EHOSTDOWN:
      return ConnectFailure::kUnreachable;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
    case EADDRNOTAVAIL:  // out of local ports
    case EADDRINUSE:
      return ConnectFailure::kNoResources;
    default:
      return ConnectFailure::kOther;
  }
}

void RuleCounters::AddTo(RuleStats* total) const {
#define BPFREDIR_RULE_ADD(field, js_name) total->field += field.Get();
  BPFREDIR_RULE_COUNTERS(BPFREDIR_RULE_ADD)
#undef BPFREDIR_RULE_ADD
  AddArray(total->closed, closed);
  AddArray(total->connect_failed, connect_failed);
  AddArray(total->active, active);
  AddHistogram(&total->connect, connect);
  AddHistogram(&total->duration, duration);
}

EngineStats TotalOf(const RuleStats& rules) {
  auto sum = [](const auto& cells) { return std::accumulate(std::begin(cells), std::end(cells), uint64_t{0}); };
  auto active = [&](Path path) { return rules.active[static_cast<size_t>(path)]; };
  EngineStats total;
  total.connections = rules.connecting + sum(rules.active);
  total.spliced = active(Path::kSockmap);
  total.relayed = active(Path::kSplice) + active(Path::kCopy);
  total.paused = rules.paused;
  total.pauses = rules.pauses;
  total.accepted = rules.accepted;
  total.connect_failed = sum(rules.connect_failed);
  total.closed = sum(rules.closed);
  total.bulk_relayed = rules.bulk_flows;
  total.loops_refused = rules.loops_refused;
  return total;
}
