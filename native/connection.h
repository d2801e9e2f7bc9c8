// State of one proxied connection, owned by the engine thread.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bpfredir.h"
#include "connection_limit.h"
#include "loop_guard.h"
#include "proxy_protocol.h"
#include "target_set.h"
#include "upstream_socket.h"
#include "relay.h"
#include "rule_stats.h"
#include "sock_address.h"
#include "unique_fd.h"

// Indexes into Connection::fd; equal to enum conn_side in bpfredir.h.
enum Side { kClient = 0, kUpstream = 1 };
static_assert(static_cast<int>(kClient) == CONN_SIDE_CLIENT && static_cast<int>(kUpstream) == CONN_SIDE_UPSTREAM,
              "Side mirrors enum conn_side: the engine writes it into struct conn for the verdict");

inline Side Other(Side side) { return side == kClient ? kUpstream : kClient; }

// kAwaitingHeader: an accept_proxy rule's connection, until its PROXY header is read.
enum class ConnState { kAwaitingHeader, kConnecting, kSpliced, kRelayed };

// Connection::path before the upstream connect completes.
constexpr Path kNoPath = Path::kCount;

inline OwnedCounter& BytesTo(RuleCounters& stats, Side dst) {
  return dst == kUpstream ? stats.bytes_to_upstream : stats.bytes_to_client;
}

inline OwnedCounter& PausedBytesTo(RuleCounters& stats, Side dst) {
  return dst == kUpstream ? stats.paused_bytes_to_upstream : stats.paused_bytes_to_client;
}

// One direction of a spliced connection: the bytes of fd[src] go to fd[Other(src)].
struct SplicedDirection {
  bool eof = false;     // src sent FIN (EPOLLRDHUP)
  bool paused = false;  // the verdict passes src's bytes to user space (budget hit)
  // src never made it into splice_active (set-up race): user space relays all of it.
  bool outside_kernel = false;
  bool published = false;     // an entry in the `relayed` map exists
  bool shut = false;          // dst's write side shut: this direction is finished
  int window_clamp = 0;       // src's TCP_WINDOW_CLAMP before the pause clamped it
  uint64_t user_relayed = 0;  // bytes of src this engine wrote into dst
  std::string batch;          // passed bytes peeked from src, being written to dst
  size_t batch_sent = 0;      // of batch, bytes dst has taken
  uint64_t passed_seen = 0;   // conn.passed at the previous tick
  uint32_t ticks_waited = 0;  // ticks passed bytes have waited for the sender to stop
};

struct Connection {
  uint64_t id = 0;
  uint32_t rule_id = 0;
  uint32_t idle_timeout_ms = 0;
  uint32_t budget_bytes = 0;
  bool want_splice = false;
  uint32_t splice_after_bytes = 0;  // want_splice: relay this many bytes first
  bool bulk_on_relay = false;       // a bulk flow stays on the splice(2) relay
  ProxyProtocol proxy_protocol = ProxyProtocol::kNone;  // header sent upstream once connected
  LimitSlot limit_slot;             // its place under the rule's max_connections
  TargetSlot target_slot;           // its place among its target's open connections, once connected
  // How to reach the upstream, fixed at accept (engine.cc: ConnectUpstream).
  struct ConnectPlan {
    std::shared_ptr<TargetSet> targets;
    std::vector<uint32_t> order;  // indices into targets, in the order to try
    size_t attempt = 0;           // into order
    UpstreamOptions upstream;
    uint32_t connect_timeout_ms = 0;
    uint32_t sndbuf_bytes = 0;
    bool guarded = false;         // register with the loop guard
    std::vector<uint32_t> loop_path;
    uint64_t deadline_ns = 0;     // the current attempt's
  } plan;
  int8_t closed_first = -1;         // the Side whose EOF came first (-1: none yet)
  ConnState state = ConnState::kConnecting;
  RuleCounters* stats = nullptr;  // its rule's counters in this engine (they outlive it)
  Path path = kNoPath;            // the gauge it counts in (Engine::SetPath)
  // Declared before fd: destroyed after the sockets are closed, so the
  // upstream socket is registered for as long as it exists, on every path.
  LoopGuard::Entry loop_guard;
  UniqueFd fd[2];
  SockAddress client;  // the peer, or the client its PROXY header names
  std::optional<SockAddress> dialled;  // from a PROXY header: where that client connected to
  SockAddress upstream;
  uint64_t accepted_ns = 0;
  uint64_t connected_ns = 0;
  uint64_t last_activity_ns = 0;  // relayed connections only; the kernel stamps spliced ones
  uint64_t first_byte_ns = 0;     // relayed: when the first byte moved

  // Spliced.
  uint64_t cookie[2] = {0, 0};
  uint64_t written_base[2] = {0, 0};  // TcpBytesWritten(fd[side]) before the splice began
  uint64_t relayed_before[2] = {0, 0};  // bytes of fd[src] the relay moved before the splice began
  uint64_t written_seen[2] = {0, 0};  // WrittenSinceSetup at the last idle sweep
  SplicedDirection dir[2];            // indexed by src side
  bool ticking = false;               // in the engine's 1 ms poll list

  // Relayed.
  std::unique_ptr<Pump> pump[2];  // indexed by src side
};
