// SPDX-License-Identifier: GPL-2.0
/*
 * bpfredir data path: sk_lookup steering, the sockmap splice verdict and
 * the TC program that marks intercepted flows for local delivery.
 * Maps and layouts: bpfredir.h. Design: docs/ARCHITECTURE.md.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "bpfredir.h"

#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define TC_ACT_OK 0

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, BPFREDIR_MAX_BINDINGS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bind_key);
	__type(value, struct bind_value);
} bindings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct settings);
} settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, BPFREDIR_MAX_ACL);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct acl_key);
	__type(value, __u32);
} acl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BPFREDIR_MAX_RULES);
	__type(key, __u32);
	__type(value, struct rule_policy);
} rule_policy SEC(".maps");

/* Steering targets: one listening (TCP) or unconnected (UDP) socket per rule.
 * No programs are ever attached to this map (accepted sockets must not inherit
 * a psock from it). */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, BPFREDIR_MAX_RULES);
	__type(key, __u32);
	__type(value, __u32); /* socket fd when written from user space */
} steer_sockets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BPFREDIR_MAX_RULES);
	__type(key, __u32);
	__type(value, struct rule_stats);
} rule_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BPFREDIR_MAX_SOCKETS);
	__type(key, __u64);
	__type(value, struct conn);
} conns SEC(".maps");

/* Every spliced socket, keyed by cookie: the redirect target. No programs:
 * both sockets are targets here before either one's verdict runs, and a
 * socket that never made it into splice_active (set-up race) still is one. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, BPFREDIR_MAX_SOCKETS);
	__type(key, __u64);
	__type(value, __u32);
} splice_hold SEC(".maps");

/* Spliced sockets whose incoming bytes the verdict program handles; the
 * verdict is attached here. A socket stays until it is closed: a pause is the
 * verdict passing bytes, never a removal (docs/KERNEL-FACTS.md §17). */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, BPFREDIR_MAX_SOCKETS);
	__type(key, __u64);
	__type(value, __u32);
} splice_active SEC(".maps");

/* relayed: cookie → bytes user space has moved to the peer while paused.
 * Kept apart from conns so user-space writes never clobber the verdict's. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BPFREDIR_MAX_SOCKETS);
	__type(key, __u64);
	__type(value, __u64);
} relayed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, BPFREDIR_EVENTS_BYTES);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, BPFREDIR_DENIALS_BYTES);
} denials SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, BPFREDIR_MAX_INTERCEPTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct intercept_key);
	__type(value, struct bind_value);
} intercepts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct intercept_settings);
} intercept_settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BPFREDIR_MAX_FLOWS);
	__type(key, struct flow_key);
	__type(value, __u32);
} intercepted SEC(".maps");

static __always_inline struct rule_stats *stats_of(__u32 rule_id)
{
	return bpf_map_lookup_elem(&rule_stats, &rule_id);
}

/* Keep clang from merging the two families' context loads into one load at a
 * variable offset, which the verifier rejects for the context pointer. */
#define ctx_load(x) ({ __u32 __v = (x); asm volatile("" : "+r"(__v)); __v; })

/* out ← an IPv4 address as IPv4-mapped IPv6 (the maps' one form for both families). */
static __always_inline void map_ipv4(__u8 *out, __u32 addr)
{
	__u32 *w = (__u32 *)out;

	w[0] = 0;
	w[1] = 0;
	w[2] = bpf_htonl(0x0000ffff);
	w[3] = addr;
}

/* The first port of a port_bits-wide block (network byte order), as bindings keys hold it. */
static __always_inline __u16 port_block(__u16 host_port, int bits)
{
	return bpf_htons(bits ? (__u16)(host_port & (0xffffu << (16 - bits))) : 0);
}

/* addr ← one end of the connection (the ctx fields ip4/ip6: local_ or remote_),
 * IPv4 as IPv4-mapped IPv6; -1 for another family. */
#define LOAD_MAPPED(ctx, addr, ip4, ip6) ({					\
	__u32 *__w = (__u32 *)(addr);						\
	int __err = 0;								\
	__u32 __family = ctx_load((ctx)->family);				\
	if (__family == AF_INET) {						\
		map_ipv4((__u8 *)__w, ctx_load((ctx)->ip4));			\
	} else if (__family == AF_INET6) {					\
		__w[0] = ctx_load((ctx)->ip6[0]);				\
		__w[1] = ctx_load((ctx)->ip6[1]);				\
		__w[2] = ctx_load((ctx)->ip6[2]);				\
		__w[3] = ctx_load((ctx)->ip6[3]);				\
	} else {								\
		__err = -1;							\
	}									\
	__err;									\
})

/* Fill key with the connection's destination. */
static __always_inline int dest_key(struct bpf_sk_lookup *ctx, struct bind_key *key)
{
	key->prefixlen = 32 + 128;
	key->protocol = ctx->protocol;
	return LOAD_MAPPED(ctx, key->addr, local_ip4, local_ip6);
}

/* The client's address in key->addr, for the acl trie. */
static __always_inline int source_key(struct bpf_sk_lookup *ctx, struct acl_key *key)
{
	key->prefixlen = 64 + 128;
	return LOAD_MAPPED(ctx, key->addr, remote_ip4, remote_ip6);
}

static __always_inline bool listed(struct acl_key *key, __u32 scope, __u8 list)
{
	key->scope = scope;
	key->list = list;
	return bpf_map_lookup_elem(&acl, key) != NULL;
}

/* rinetd's rule, per scope (global, then the rule's own): a matching deny
 * refuses; a non-empty allow list admits only its prefixes (an accept_proxy
 * rule: only its trusted peers, see POLICY_PROXIED). Returns 0 when
 * admitted, else the enum denial_reason; *key holds the client address. */
static __always_inline int refusal(struct bpf_sk_lookup *ctx, __u32 rule_id, struct acl_key *key)
{
	__u32 scopes[2] = { 0, rule_id };

	struct rule_policy *own;

	if (source_key(ctx, key))
		return DENIAL_DENIED;
	own = bpf_map_lookup_elem(&rule_policy, &rule_id);
	if (own && (own->flags & POLICY_PROXIED))
		/* The peer is a load balancer: it must be trusted; the client it
		 * speaks for is judged once the engine has read its PROXY header. */
		return listed(key, rule_id, ACL_TRUSTED) ? 0 : DENIAL_NOT_TRUSTED;
	for (int i = 0; i < 2; i++) {
		struct rule_policy *policy = bpf_map_lookup_elem(&rule_policy, &scopes[i]);

		if (!policy)
			continue;
		if ((policy->flags & POLICY_HAS_DENY) && listed(key, scopes[i], ACL_DENY))
			return DENIAL_DENIED;
		if ((policy->flags & POLICY_HAS_ALLOW) && !listed(key, scopes[i], ACL_ALLOW))
			return DENIAL_NOT_ALLOWED;
	}
	return 0;
}

/* One record for the logs; a full ring only loses the record. */
static __always_inline void report_denial(struct bpf_sk_lookup *ctx, __u32 rule_id, int reason,
					  const struct acl_key *client, struct rule_stats *st)
{
	struct bind_key dest = {};
	struct denial d = {};

	__builtin_memcpy(d.client, client->addr, sizeof(d.client));
	dest_key(ctx, &dest);
	__builtin_memcpy(d.dest, dest.addr, sizeof(d.dest));
	d.client_port = bpf_ntohs(ctx->remote_port);
	d.dest_port = ctx->local_port;
	d.rule_id = rule_id;
	d.reason = reason;
	if (bpf_ringbuf_output(&denials, &d, sizeof(d), 0) && st)
		st->denials_unreported++;
}

static __always_inline bool reports_denials(void)
{
	__u32 zero = 0;
	struct settings *s = bpf_map_lookup_elem(&settings, &zero);

	return s && (s->flags & SETTINGS_REPORT_DENIALS);
}

static __always_inline bool passes(__u32 rule_id)
{
	struct rule_policy *policy = bpf_map_lookup_elem(&rule_policy, &rule_id);

	return policy && (policy->flags & POLICY_PASS);
}

/* Most specific binding for the destination: longest address prefix first,
 * then the narrowest port block (exact port beats range beats any). */
static __always_inline struct bind_value *best_binding(struct bpf_sk_lookup *ctx)
{
	struct bind_key key = {};
	struct bind_value *best = NULL;
	__u32 zero = 0, mask;
	struct settings *s;

	if (dest_key(ctx, &key))
		return NULL;
	s = bpf_map_lookup_elem(&settings, &zero);
	if (!s)
		return NULL;
	mask = s->port_bits_mask;

	for (int bits = 16; bits >= 0; bits--) {
		struct bind_value *v;

		if (!(mask & (1u << bits)))
			continue;
		key.port_bits = bits;
		key.port = port_block(ctx->local_port, bits);
		v = bpf_map_lookup_elem(&bindings, &key);
		/* Strictly longer only: at equal prefix the earlier (narrower) port block wins. */
		if (v && (!best || v->addr_prefixlen > best->addr_prefixlen))
			best = v;
	}
	return best;
}

/* The rule the TC program chose for this connection's flow, if any. */
static __always_inline __u32 *intercepted_rule(struct bpf_sk_lookup *ctx)
{
	struct flow_key flow = {};

	if (LOAD_MAPPED(ctx, flow.saddr, remote_ip4, remote_ip6) ||
	    LOAD_MAPPED(ctx, flow.daddr, local_ip4, local_ip6))
		return NULL;
	flow.sport = (__u16)ctx->remote_port;
	flow.dport = bpf_htons(ctx->local_port);
	flow.protocol = ctx->protocol;
	return bpf_map_lookup_elem(&intercepted, &flow);
}

SEC("sk_lookup")
int steer(struct bpf_sk_lookup *ctx)
{
	struct bind_value *binding;
	struct acl_key client = {};
	struct rule_stats *st;
	struct bpf_sock *sk;
	__u32 *intercept;
	__u32 rule_id;
	int reason;
	long err;

	intercept = intercepted_rule(ctx);
	if (intercept) {
		rule_id = *intercept;
		goto matched;
	}
	binding = best_binding(ctx);
	if (!binding) {
		st = stats_of(0);
		if (st)
			st->lookups++;
		/* Not ours: let the normal socket lookup run. */
		return SK_PASS;
	}
	rule_id = binding->rule_id;
	if (rule_id == BPFREDIR_RULE_REFUSE) {
		/* A direct connection to a steering socket's own port: only
		 * steering may reach it (the RST tells the client at once). */
		st = stats_of(0);
		if (st)
			st->dropped_no_socket++;
		return SK_DROP;
	}
matched:
	st = stats_of(rule_id);
	if (st)
		st->lookups++;
	reason = refusal(ctx, rule_id, &client);
	if (reason) {
		if (st)
			st->denied++;
		if (reports_denials())
			report_denial(ctx, rule_id, reason, &client, st);
		/* Refused by an allow or deny list before any socket sees it:
		 * TCP answers the SYN with a reset. */
		return SK_DROP;
	}
	if (passes(rule_id))
		/* A listen rule's client, admitted: its own listener takes it. */
		return SK_PASS;

	sk = bpf_map_lookup_elem(&steer_sockets, &rule_id);
	if (!sk) {
		if (st)
			st->dropped_no_socket++;
		/* Fail closed: a rule without its socket must not fall through to
		 * whatever else listens on that address. */
		return SK_DROP;
	}
	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	if (err) {
		if (st)
			st->dropped_no_socket++;
		/* Wrong protocol or family for the socket: same as no socket. */
		return SK_DROP;
	}
	if (st)
		st->steered++;
	/* Socket selected: deliver to it. */
	return SK_PASS;
}

/* Bytes redirected to the peer that the peer has not yet written into its own
 * socket: the in-flight queue the kernel does not limit. Bytes user space wrote
 * into the peer (relayed) advance write_seq too and are not ours. */
static __always_inline __s64 in_flight(struct conn *c, __u64 user_written)
{
	struct bpf_sock *peer;
	struct tcp_sock *tp;
	__u32 write_seq = 0;
	int ok = 0;

	peer = bpf_map_lookup_elem(&splice_hold, &c->peer_cookie);
	if (!peer)
		return 0;
	tp = bpf_skc_to_tcp_sock(peer);
	if (tp) {
		write_seq = tp->write_seq;
		ok = 1;
	}
	bpf_sk_release(peer);
	if (!ok)
		return 0;
	if (!(c->flags & CONN_F_PEER_BASE_SET)) {
		/* Called before the first redirect: nothing of ours is written yet. */
		c->peer_write_base = write_seq;
		c->flags |= CONN_F_PEER_BASE_SET;
	}
	/* 32-bit sequence arithmetic: exact while less than 2 GiB is in flight. */
	return (__s32)((__u32)c->redirected - (write_seq - c->peer_write_base - (__u32)user_written));
}

static __always_inline __u64 relayed_by_user(__u64 cookie)
{
	__u64 *r = bpf_map_lookup_elem(&relayed, &cookie);

	return r ? *r : 0;
}

static __always_inline void notify(struct conn *c, __u64 cookie, __u32 type)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	/* A full ring only delays user space: it also polls paused connections. */
	if (!e)
		return;
	e->cookie = cookie;
	e->type = type;
	e->rule_id = c->rule_id;
	bpf_ringbuf_submit(e, 0);
}

/* Pause only while nothing is in flight towards this socket. Passed bytes
 * are charged to the rcvbuf (closing the sender's window) only when they go
 * straight to the receive queue; when the psock backlog already holds the
 * peer's bytes on their way out of this socket they queue behind them,
 * uncharged, and the window stays open. Measured in a 1 GiB echo with a
 * 4 MiB budget: 868 MB charged at once when the backlog drained, TCP then
 * dropped the client's ACKs, and the two relays waited on each other. With
 * this rule the peer can pause only once our queue towards it is empty,
 * which is what our relay waits for, so two pauses never wait on each other. */
static __always_inline int inbound_idle(struct conn *c)
{
	struct conn *peer = bpf_map_lookup_elem(&conns, &c->peer_cookie);

	return !peer || in_flight(peer, relayed_by_user(c->peer_cookie)) <= 0;
}

/* Paused: bytes go to this socket's receive path, charged to its rcvbuf, so
 * the sender's window closes; user space relays them. */
static __always_inline int pass_to_self(struct conn *c, struct rule_stats *st, __u32 len)
{
	c->passed += len;
	if (st)
		st->bytes_passed += len;
	return SK_PASS;
}

static __always_inline void pause(struct conn *c, struct rule_stats *st, __u64 cookie)
{
	c->flags |= CONN_F_PAUSED;
	if (st)
		st->paused++;
	notify(c, cookie, EVENT_PAUSED);
}

SEC("sk_skb")
int splice_verdict(struct __sk_buff *skb)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	struct rule_stats *st;
	struct conn *c;
	__u32 len = skb->len;
	__u64 user = 0;

	c = bpf_map_lookup_elem(&conns, &cookie);
	if (!c)
		/* Not a spliced connection we know: keep the bytes readable. */
		return SK_PASS;
	if (len == 0)
		/* A bare FIN: redirecting an empty skb makes the peer's send fail
		 * with EPIPE and stops its transmit. User space propagates EOF. */
		return SK_DROP;

	st = stats_of(c->rule_id);
	/* Counted whichever way the bytes go on (kernel or, paused, user space). */
	if (st) {
		if (c->side == CONN_SIDE_CLIENT)
			st->bytes_to_upstream += len;
		else
			st->bytes_to_client += len;
	}
	c->last_active_ns = bpf_ktime_get_ns();
	if (c->budget) {
		user = relayed_by_user(cookie);
		if (!(c->flags & CONN_F_PEER_BASE_SET))
			in_flight(c, 0);
	}
	if (c->flags & CONN_F_PAUSED) {
		/* Resume only when user space holds none of our bytes (order) and
		 * the queue towards the peer has drained to half the budget. */
		if (user != c->passed || in_flight(c, user) > c->budget / 2)
			return pass_to_self(c, st, len);
		c->flags &= ~CONN_F_PAUSED;
		notify(c, cookie, EVENT_RESUMED);
	}

	if (bpf_sk_redirect_hash(skb, &splice_hold, &c->peer_cookie, 0) != SK_PASS) {
		if (st)
			st->redirect_failed++;
		/* Peer gone: leave the bytes on this socket for user space. */
		return SK_PASS;
	}
	c->redirected += len;
	if (c->budget && in_flight(c, user) > c->budget && inbound_idle(c))
		pause(c, st, cookie);
	/* Redirect set up above: the kernel queues the bytes for the peer's egress. */
	return SK_PASS;
}

/*
 * Router interception. sk_lookup never runs for forwarded packets, so this
 * TC ingress program marks every packet of an intercepted flow; a policy rule
 * on that mark (user space's) delivers them locally, where sk_lookup steers
 * the flow's SYN to its rule's socket. Unmarked traffic is forwarded as before.
 *
 * A SYN is decided afresh (a rule may have changed since its 4-tuple was last
 * seen); any other packet is marked when its flow was intercepted or when it
 * belongs to a local socket that is not a listener: an accepted connection,
 * or a transparent-source upstream socket bound to the client's address
 * whose replies come back through this machine.
 */
struct packet {
	struct flow_key flow;
	__u8 family;
	__u8 tcp_flags;    /* byte 13 of the TCP header */
	struct bpf_sock_tuple tuple;
	__u32 tuple_size;
};

#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10

static __always_inline int tcp_ports(struct packet *p, struct tcphdr *tcp, void *end)
{
	if ((void *)(tcp + 1) > end)
		return -1;
	p->flow.sport = tcp->source;
	p->flow.dport = tcp->dest;
	p->flow.protocol = IPPROTO_TCP;
	p->tcp_flags = ((__u8 *)tcp)[13];
	return 0;
}

/* TCP over IPv4 or IPv6 (no extension headers): -1 for anything else. */
static __always_inline int parse(struct __sk_buff *skb, struct packet *p)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return -1;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_TCP || ip->ihl < 5)
			return -1;
		if (ip->frag_off & bpf_htons(0x1fff))
			return -1; /* a later fragment has no TCP header */
		if (tcp_ports(p, (void *)ip + ip->ihl * 4, end))
			return -1;
		p->family = AF_INET;
		map_ipv4(p->flow.saddr, ip->saddr);
		map_ipv4(p->flow.daddr, ip->daddr);
		p->tuple.ipv4.saddr = ip->saddr;
		p->tuple.ipv4.daddr = ip->daddr;
		p->tuple.ipv4.sport = p->flow.sport;
		p->tuple.ipv4.dport = p->flow.dport;
		p->tuple_size = sizeof(p->tuple.ipv4);
		return 0;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_TCP)
			return -1;
		if (tcp_ports(p, (void *)(ip6 + 1), end))
			return -1;
		p->family = AF_INET6;
		__builtin_memcpy(p->flow.saddr, &ip6->saddr, 16);
		__builtin_memcpy(p->flow.daddr, &ip6->daddr, 16);
		__builtin_memcpy(p->tuple.ipv6.saddr, &ip6->saddr, 16);
		__builtin_memcpy(p->tuple.ipv6.daddr, &ip6->daddr, 16);
		p->tuple.ipv6.sport = p->flow.sport;
		p->tuple.ipv6.dport = p->flow.dport;
		p->tuple_size = sizeof(p->tuple.ipv6);
		return 0;
	}
	return -1;
}

/* Whether the kernel would forward the packet (not deliver it locally):
 * the router's own addresses are never intercepted. Needs forwarding on
 * for the inbound interface, as any router has. */
static __always_inline bool forwarded(struct __sk_buff *skb, struct packet *p)
{
	struct bpf_fib_lookup fib = {};
	long ret;

	fib.family = p->family;
	fib.l4_protocol = IPPROTO_TCP;
	fib.sport = p->flow.sport;
	fib.dport = p->flow.dport;
	fib.ifindex = skb->ifindex;
	if (p->family == AF_INET) {
		fib.ipv4_src = p->tuple.ipv4.saddr;
		fib.ipv4_dst = p->tuple.ipv4.daddr;
	} else {
		__builtin_memcpy(fib.ipv6_src, p->tuple.ipv6.saddr, 16);
		__builtin_memcpy(fib.ipv6_dst, p->tuple.ipv6.daddr, 16);
	}
	ret = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	return ret == BPF_FIB_LKUP_RET_SUCCESS || ret == BPF_FIB_LKUP_RET_NO_NEIGH ||
	       ret == BPF_FIB_LKUP_RET_FRAG_NEEDED;
}

/* An intercept rule with `sources:` takes only clients in them. */
static __always_inline bool source_matches(__u32 rule_id, const struct packet *p)
{
	struct rule_policy *policy = bpf_map_lookup_elem(&rule_policy, &rule_id);
	struct acl_key key = {};

	if (!policy || !(policy->flags & POLICY_HAS_SOURCES))
		return true;
	key.prefixlen = 64 + 128;
	__builtin_memcpy(key.addr, p->flow.saddr, 16);
	return listed(&key, rule_id, ACL_SOURCE);
}

/* The intercept rule for a SYN, as best_binding does for sk_lookup: 0 when none. */
static __always_inline __u32 intercept_rule(struct __sk_buff *skb, struct packet *p, __u32 mask)
{
	struct intercept_key key = {};
	struct bind_value *best = NULL;
	__u16 port = bpf_ntohs(p->flow.dport);

	key.prefixlen = 64 + 128;
	key.ifindex = skb->ifindex;
	key.protocol = p->flow.protocol;
	__builtin_memcpy(key.addr, p->flow.daddr, 16);
	for (int bits = 16; bits >= 0; bits--) {
		struct bind_value *v;

		if (!(mask & (1u << bits)))
			continue;
		key.port_bits = bits;
		key.port = port_block(port, bits);
		v = bpf_map_lookup_elem(&intercepts, &key);
		if (v && (!best || v->addr_prefixlen > best->addr_prefixlen))
			best = v;
	}
	if (!best || !source_matches(best->rule_id, p) || !forwarded(skb, p))
		return 0;
	return best->rule_id;
}

/* A local socket other than a listener owns the packet's flow. */
static __always_inline bool local_flow(struct __sk_buff *skb, struct packet *p)
{
	struct bpf_sock *sk = bpf_skc_lookup_tcp(skb, &p->tuple, p->tuple_size, BPF_F_CURRENT_NETNS, 0);
	bool owned;

	if (!sk)
		return false;
	owned = sk->state != BPF_TCP_LISTEN;
	bpf_sk_release(sk);
	return owned;
}

SEC("tc")
int intercept(struct __sk_buff *skb)
{
	struct intercept_settings *settings;
	struct packet p = {};
	__u32 zero = 0, rule_id;

	settings = bpf_map_lookup_elem(&intercept_settings, &zero);
	if (!settings || !settings->mark || parse(skb, &p))
		return TC_ACT_OK;

	if ((p.tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN) {
		rule_id = intercept_rule(skb, &p, settings->port_bits_mask);
		if (!rule_id) {
			/* Not (or no longer) ours: its later packets are not either. */
			bpf_map_delete_elem(&intercepted, &p.flow);
			return TC_ACT_OK;
		}
		bpf_map_update_elem(&intercepted, &p.flow, &rule_id, BPF_ANY);
		struct rule_stats *st = stats_of(rule_id);
		if (st)
			st->intercepted++;
	} else if (!bpf_map_lookup_elem(&intercepted, &p.flow) && !local_flow(skb, &p)) {
		return TC_ACT_OK;
	}
	skb->mark |= settings->mark;
	return TC_ACT_OK;
}
