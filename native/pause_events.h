// The verdict program's EVENT_PAUSE notifications (ring buffer `events`),
// consumed on the engine thread whenever its epoll fd is readable.
#pragma once
#include <cstdint>
#include <functional>

struct ring_buffer;

class PauseEvents {
 public:
  using OnPause = std::function<void(uint64_t cookie)>;

  // Throws SysError if the ring buffer cannot be opened.
  PauseEvents(int ringbuf_map_fd, OnPause on_pause);
  ~PauseEvents();
  PauseEvents(const PauseEvents&) = delete;
  PauseEvents& operator=(const PauseEvents&) = delete;

  // Add this fd to the engine's epoll set.
  int epoll_fd() const;
  // Delivers every pending event to on_pause.
  void Consume();

 private:
  static int OnRecord(void* ctx, void* data, size_t size);

  ring_buffer* ring_ = nullptr;
  OnPause on_pause_;
};
