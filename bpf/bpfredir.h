/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one ABI between bpf/ and native/ (and, through native/, src/).
 * Every map key and value that crosses the kernel boundary is defined here;
 * src/abi.ts mirrors the byte layouts and must change with this file.
 * Fixed-size, little-endian host layout, explicit padding: no implicit holes.
 */
#ifndef BPFREDIR_H
#define BPFREDIR_H

#ifndef __BPF__
#include <linux/types.h>
#endif

#define BPFREDIR_ABI_VERSION 4

/* Rule ids are small integers chosen by user space; 0 is reserved for
 * "no rule matched" so its counters hold the global miss count. */
#define BPFREDIR_MAX_RULES     65536
/* LPM entries after port-range decomposition (a range costs <= 30 entries). */
#define BPFREDIR_MAX_BINDINGS  1048576
/* Spliced sockets (two per connection). */
#define BPFREDIR_MAX_SOCKETS   262144
/* Source ACL entries (prefixes of every allow and deny list together). */
#define BPFREDIR_MAX_ACL       262144
/* Intercept trie entries (rule prefixes x ports x inbound interfaces). */
#define BPFREDIR_MAX_INTERCEPTS 262144
/* Intercepted flows remembered for their later packets (LRU). */
#define BPFREDIR_MAX_FLOWS     65536
/* Ring buffer for kernel → user-space notifications (bytes, power of 2). */
#define BPFREDIR_EVENTS_BYTES  (256 * 1024)
/* Ring buffer of refused connections, for logs (bytes, power of 2). */
#define BPFREDIR_DENIALS_BYTES (64 * 1024)

/*
 * bindings: LPM trie that steers new connections (sk_lookup).
 * The significant bits are protocol, port_bits and port (always all 32),
 * then the leading bits of addr: prefixlen = 32 + address prefix length.
 * IPv4 addresses are stored IPv4-mapped (::ffff:a.b.c.d, prefix + 96) so one
 * trie serves both families.
 * A port range is decomposed by user space into aligned power-of-two blocks;
 * a block keeps its leading port_bits bits (port_bits 16 = exact port,
 * 0 = any port). The lookup tries each port_bits in use (settings.port_bits_mask)
 * and keeps the longest address prefix, then the largest port_bits.
 */
struct bind_key {
	__u32 prefixlen;
	__u8 protocol;   /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 port_bits;  /* 0..16 significant leading bits of port */
	__u16 port;      /* network byte order, masked to port_bits */
	__u8 addr[16];   /* network byte order */
};

/* bind_value.rule_id of a guard: a lookup that would reach a steering
 * socket directly (its own port, not through a rule) is refused. Counted in
 * rule 0's dropped_no_socket. */
#define BPFREDIR_RULE_REFUSE 0xffffffffu

struct bind_value {
	__u32 rule_id;
	__u32 addr_prefixlen; /* 0..128, the address part of the key's prefix */
};

/*
 * acl: LPM trie of the source allow and deny lists. scope is a rule id (0: the
 * global lists, which every rule also obeys), list an enum acl_list; scope,
 * list and pad are always significant: prefixlen = 64 + address prefix length.
 * Addresses as in bind_key (IPv4 IPv4-mapped), so a client's IPv4 address and
 * its IPv4-mapped IPv6 form are the same key. The value is unused (1).
 */
struct acl_key {
	__u32 prefixlen;
	__u32 scope;
	__u8 list;       /* enum acl_list */
	__u8 pad[3];
	__u8 addr[16];   /* network byte order */
};

enum acl_list {
	ACL_ALLOW = 1,
	ACL_DENY = 2,
	/* An intercept rule's `sources:`: traffic from elsewhere is not its own
	 * (forwarded untouched), not refused. */
	ACL_SOURCE = 3,
	/* An `accept_proxy:` rule's load balancers: the only peers that may
	 * connect to it (the real client, from the PROXY header, is judged by the
	 * allow and deny lists in user space). */
	ACL_TRUSTED = 4,
};

/*
 * rule_policy: ARRAY indexed by rule id (0: the global lists). Which lists a
 * scope has (an empty allow list admits everyone; a non-empty one only its
 * prefixes), and what an admitted connection of a listen rule does.
 */
enum policy_flags {
	POLICY_HAS_ALLOW = 1 << 0,
	POLICY_HAS_DENY  = 1 << 1,
	/* A listen rule: its binding exists only to enforce the lists; an admitted
	 * connection takes the normal socket lookup to the rule's own listener. */
	POLICY_PASS      = 1 << 2,
	/* An intercept rule with a `sources:` list (ACL_SOURCE entries). */
	POLICY_HAS_SOURCES = 1 << 3,
	/* An `accept_proxy:` rule: sk_lookup admits only its ACL_TRUSTED peers
	 * and leaves every other list to the engine, which reads the PROXY header. */
	POLICY_PROXIED = 1 << 4,
};

struct rule_policy {
	__u32 flags;      /* enum policy_flags */
	__u32 reserved;
};

/* settings: one-element ARRAY written by user space. */
enum settings_flags {
	/* Someone reads `denials`: report every connection a list refuses. */
	SETTINGS_REPORT_DENIALS = 1 << 0,
};

struct settings {
	__u32 port_bits_mask; /* bit k set: some binding has port_bits == k */
	__u32 flags;          /* enum settings_flags */
};

/* denials: RINGBUF records, one per connection a source list refused (with
 * SETTINGS_REPORT_DENIALS), for the access log. A full ring drops the record
 * and counts it in rule_stats.denials_unreported; the refusal itself stands. */
enum denial_reason {
	DENIAL_DENIED = 1,      /* a deny list matched */
	DENIAL_NOT_ALLOWED = 2, /* outside a non-empty allow list */
	DENIAL_NOT_TRUSTED = 3, /* an accept_proxy rule's peer outside its trusted prefixes */
};

struct denial {
	__u8 client[16];   /* network byte order, IPv4 IPv4-mapped */
	__u8 dest[16];     /* what the client dialled, same form */
	__u16 client_port; /* host byte order */
	__u16 dest_port;   /* host byte order */
	__u32 rule_id;
	__u32 reason;      /* enum denial_reason */
	__u32 reserved;
};

/*
 * Router interception (TC ingress program `intercept`).
 *
 * intercepts: LPM trie of the intercept rules, like bindings but keyed by the
 * inbound interface too: ifindex, protocol, port_bits and port are always
 * significant (prefixlen = 64 + address prefix length).
 */
struct intercept_key {
	__u32 prefixlen;
	__u32 ifindex;
	__u8 protocol;
	__u8 port_bits;
	__u16 port;      /* network byte order, masked to port_bits */
	__u8 addr[16];   /* destination, network byte order, IPv4 IPv4-mapped */
};

/* intercept_settings: one-element ARRAY written by user space. */
struct intercept_settings {
	__u32 mark;           /* ORed into skb->mark of intercepted packets; 0: off */
	__u32 port_bits_mask; /* as settings.port_bits_mask, for intercepts */
};

/*
 * intercepted: LRU_HASH of the flows the TC program chose, keyed as the
 * client sent them; value the rule id. Later packets of the flow are marked
 * from it (a SYN-cookie handshake has no request socket to find), and
 * sk_lookup steers only flows found here, so the router's own services on
 * the same address and port stay its own.
 */
struct flow_key {
	__u8 saddr[16];  /* client, IPv4 IPv4-mapped */
	__u8 daddr[16];  /* original destination, same form */
	__u16 sport;     /* network byte order */
	__u16 dport;     /* network byte order */
	__u8 protocol;
	__u8 pad[3];
};

/* rule_stats: PERCPU_ARRAY indexed by rule id, summed by user space at scrape. */
struct rule_stats {
	__u64 lookups;           /* sk_lookup runs that matched this rule (rule 0: no match) */
	__u64 steered;           /* connections handed to the rule's socket */
	__u64 dropped_no_socket; /* matched but the rule has no socket: failed closed
	                          * (rule 0: lookups refused by a guard) */
	__u64 bytes_to_upstream; /* spliced client → upstream (kernel and paused relay) */
	__u64 bytes_to_client;   /* spliced upstream → client (kernel and paused relay) */
	__u64 redirect_failed;   /* verdict could not redirect; bytes left to user space */
	__u64 paused;            /* times a direction hit its in-flight budget */
	__u64 bytes_passed;      /* of those bytes, how many user space relayed while paused */
	__u64 denied;            /* refused by a source allow or deny list */
	__u64 denials_unreported; /* of those, not reported: the denials ring was full */
	__u64 intercepted;       /* new flows the TC program chose for this rule (SYNs seen) */
};

enum conn_side {
	CONN_SIDE_CLIENT = 0,   /* accepted socket; its bytes go to upstream */
	CONN_SIDE_UPSTREAM = 1, /* connected socket; its bytes go to the client */
};

enum conn_flags {
	CONN_F_PEER_BASE_SET = 1 << 0, /* peer_write_base holds the peer's write_seq */
	CONN_F_PAUSED        = 1 << 1, /* over budget: bytes stay on this socket for user space */
};

/*
 * conns: HASH keyed by the socket cookie (__u64) of each spliced socket.
 * Written by user space once, before the socket enters the splice maps; after
 * that only the verdict program writes it. Two entries per connection.
 *
 * Backpressure protocol (see docs/ARCHITECTURE.md): while PAUSED the verdict
 * passes bytes to the socket's own receive path (charged to its rcvbuf, so its
 * window closes) and counts them in `passed`; user space moves exactly those
 * bytes to the peer once `in_flight` is 0 and publishes its total in the
 * `relayed` map. The verdict resumes redirecting only when relayed == passed.
 * A direction pauses only while nothing is in flight towards its own socket,
 * so its passed bytes are never queued (uncharged) behind the peer's.
 * To let user space catch up, it clamps the socket's receive window
 * (TCP_WINDOW_CLAMP, 256 KiB) on EVENT_PAUSED and lifts the clamp on
 * EVENT_RESUMED; otherwise new bytes keep arriving as fast as it relays them.
 */
struct conn {
	__u64 peer_cookie;     /* key of the peer in splice_hold */
	__u64 redirected;      /* bytes this socket received and redirected to the peer */
	__u64 passed;          /* bytes this socket received while paused (left to user space) */
	__u64 last_active_ns;  /* bpf_ktime_get_ns() of the last byte (CLOCK_MONOTONIC) */
	__u32 rule_id;
	__u32 budget;          /* max bytes redirected but not yet written by the peer; 0 = unlimited */
	__u32 peer_write_base; /* peer write_seq before this side's first redirect */
	__u8 side;             /* enum conn_side */
	__u8 flags;            /* enum conn_flags */
	__u8 engine;           /* engine thread that owns the connection (user space only) */
	__u8 reserved;
};

/* events: RINGBUF records, kernel → native engine. */
enum event_type {
	/* cookie's direction went over budget: its bytes now wait on the socket for
	 * user space to relay (value 1 belonged to a rejected protocol: not reused). */
	EVENT_PAUSED = 2,
	/* user space caught up and the queue drained: cookie splices again */
	EVENT_RESUMED = 3,
};

struct event {
	__u64 cookie;
	__u32 type;
	__u32 rule_id;
};

/* Names of the maps and programs in bpfredir.bpf.o, for the loader. */
#define BPFREDIR_PROG_STEER    "steer"
#define BPFREDIR_PROG_VERDICT  "splice_verdict"
#define BPFREDIR_PROG_INTERCEPT "intercept"

#endif /* BPFREDIR_H */
