// CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns(), so engine times and
// the verdict's last_active_ns compare directly.
#pragma once
#include <time.h>

#include <cstdint>

inline uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}
