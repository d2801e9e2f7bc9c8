#include "ring_reader.h"

#include <bpf/libbpf.h>
#include <errno.h>

#include <string>

#include "errors.h"

RingReader::RingReader(int ringbuf_map_fd, const char* what, OnRecord on_record) : on_record_(std::move(on_record)) {
  ring_ = ring_buffer__new(ringbuf_map_fd, &RingReader::Dispatch, this, nullptr);
  if (!ring_) ThrowSysError(errno, "ring_buffer__new", std::string(what) + " must be the fd of a ring buffer map");
}

RingReader::~RingReader() { ring_buffer__free(ring_); }

int RingReader::epoll_fd() const { return ring_buffer__epoll_fd(ring_); }

void RingReader::Consume() { ring_buffer__consume(ring_); }

int RingReader::Dispatch(void* ctx, void* data, size_t size) {
  static_cast<RingReader*>(ctx)->on_record_(data, size);
  return 0;
}
