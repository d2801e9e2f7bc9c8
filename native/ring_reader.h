// A BPF ring buffer read on an engine thread: its epoll fd joins the
// engine's epoll set, and Consume() hands every pending record to on_record.
// The verdict's pause events (`events`) and the steering program's refusals
// (`denials`) are both read this way, by engine 0.
#pragma once
#include <cstddef>
#include <functional>

struct ring_buffer;

class RingReader {
 public:
  using OnRecord = std::function<void(const void* data, size_t size)>;

  // Throws SysError naming `what` if the map is not a ring buffer.
  RingReader(int ringbuf_map_fd, const char* what, OnRecord on_record);
  ~RingReader();
  RingReader(const RingReader&) = delete;
  RingReader& operator=(const RingReader&) = delete;

  int epoll_fd() const;
  void Consume();

 private:
  static int Dispatch(void* ctx, void* data, size_t size);

  ring_buffer* ring_ = nullptr;
  OnRecord on_record_;
};
