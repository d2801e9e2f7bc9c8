// "ECONNREFUSED" for ECONNREFUSED: the code string JS sees in events.
#pragma once
#include <string.h>

#include <string>

inline std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name ? name : "E" + std::to_string(err);
}
