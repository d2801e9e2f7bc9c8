// Captures libbpf's messages (including the verifier log it prints when a
// program is refused) on the current thread, so a failed load can return them
// in its error instead of writing to the daemon's stderr.
#pragma once
#include <string>

class LibbpfLogCapture {
 public:
  LibbpfLogCapture();
  ~LibbpfLogCapture();
  LibbpfLogCapture(const LibbpfLogCapture&) = delete;
  LibbpfLogCapture& operator=(const LibbpfLogCapture&) = delete;

  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::string* previous_;
};
