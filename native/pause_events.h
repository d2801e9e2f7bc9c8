// The verdict program's EVENT_PAUSED / EVENT_RESUMED notifications (ring
// buffer `events`), consumed on the engine thread when its epoll fd is readable.
#pragma once
#include <cstdint>
#include <functional>

struct ring_buffer;

class PauseEvents {
 public:
  // paused: EVENT_PAUSED (true) or EVENT_RESUMED (false) for the socket with this cookie.
  using OnChange = std::function<void(uint64_t cookie, bool paused)>;

  // Throws SysError if the ring buffer cannot be opened.
  PauseEvents(int ringbuf_map_fd, OnChange on_change);
  ~PauseEvents();
  PauseEvents(const PauseEvents&) = delete;
  PauseEvents& operator=(const PauseEvents&) = delete;

  // Add this fd to the engine's epoll set.
  int epoll_fd() const;
  // Delivers every pending event to on_change.
  void Consume();

 private:
  static int OnRecord(void* ctx, void* data, size_t size);

  ring_buffer* ring_ = nullptr;
  OnChange on_change_;
};
