// Byte counters of a TCP socket that tell how far a spliced stream has got,
// without reading the socket (docs/KERNEL-FACTS.md §15).
#pragma once
#include <cstdint>

// Bytes the socket has received in order (tcpi_bytes_received; counts a FIN as 1).
uint64_t TcpBytesReceived(int fd);

// Bytes written into the socket so far: tcpi_bytes_acked + SIOCOUTQ. The
// absolute value includes handshake artefacts (a SYN counts in bytes_acked), so
// callers compare against a base taken before the first splice.
uint64_t TcpBytesWritten(int fd);

// tcpi_bytes_acked alone: equal to TcpBytesWritten while nothing has been
// written (empty send queue), with one system call instead of two.
uint64_t TcpBytesAcked(int fd);
