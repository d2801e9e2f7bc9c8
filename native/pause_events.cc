#include "pause_events.h"

#include <bpf/libbpf.h>
#include <errno.h>

#include "bpfredir.h"
#include "errors.h"

PauseEvents::PauseEvents(int ringbuf_map_fd, OnChange on_change) : on_change_(std::move(on_change)) {
  ring_ = ring_buffer__new(ringbuf_map_fd, &PauseEvents::OnRecord, this, nullptr);
  if (!ring_) ThrowSysError(errno, "ring_buffer__new", "maps.events must be the fd of the `events` ring buffer");
}

PauseEvents::~PauseEvents() { ring_buffer__free(ring_); }

int PauseEvents::epoll_fd() const { return ring_buffer__epoll_fd(ring_); }

void PauseEvents::Consume() { ring_buffer__consume(ring_); }

int PauseEvents::OnRecord(void* ctx, void* data, size_t size) {
  auto* self = static_cast<PauseEvents*>(ctx);
  const auto* record = static_cast<const event*>(data);
  if (size < sizeof(event)) return 0;
  if (record->type == EVENT_PAUSED) self->on_change_(record->cookie, true);
  if (record->type == EVENT_RESUMED) self->on_change_(record->cookie, false);
  return 0;
}
