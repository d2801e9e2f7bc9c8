#include "libbpf_log.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <mutex>

// libbpf's print hook is process-wide; loads may run on several worker threads,
// so each thread appends to its own capture. Messages outside a capture are
// dropped: every failure reaches JS as an error instead.
static thread_local std::string* current_capture = nullptr;

static int AppendToCapture(enum libbpf_print_level level, const char* format, va_list args) {
  if (!current_capture || level == LIBBPF_DEBUG) return 0;
  char line[1024];
  va_list copy;
  va_copy(copy, args);
  int needed = vsnprintf(line, sizeof line, format, copy);
  va_end(copy);
  if (needed < 0) return 0;
  if (static_cast<size_t>(needed) < sizeof line) {
    current_capture->append(line, needed);
  } else {
    // The verifier log arrives as one long message.
    std::string big(needed + 1, '\0');
    vsnprintf(big.data(), big.size(), format, args);
    current_capture->append(big.data(), needed);
  }
  return needed;
}

LibbpfLogCapture::LibbpfLogCapture() : previous_(current_capture) {
  static std::once_flag installed;
  std::call_once(installed, [] { libbpf_set_print(AppendToCapture); });
  current_capture = &text_;
}

LibbpfLogCapture::~LibbpfLogCapture() { current_capture = previous_; }
