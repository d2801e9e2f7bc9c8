/**
 * Types of the raw addon (native/build/Release/bpfredir.node).
 * Only src/native/index.ts imports this file; everything else uses that module.
 *
 * Errors thrown by the addon look like Node's own system errors:
 * `err.code` ('ENOENT', 'EPERM', …), `err.errno` (positive number), `err.syscall`
 * ('bpf_map_update_elem', 'bind', …), and for BPF load failures `err.verifierLog`.
 */

/** A loaded bpfredir.bpf.o. Owns its map, program and link fds; close() releases all. */
export interface PolicyRule {
  priority: number;
  table: number;
  mark: number;
  mask: number;
  protocol: number;
}

export interface RawBpfObject {
  /** fd of a map by name (owned by the object; valid until close()). Throws ENOENT. */
  mapFd(name: string): number;
  /** Attach the sk_lookup program to a network namespace (path to an ns file, default
   *  /proc/self/ns/net). Returns a link id usable with detach. */
  attachSkLookup(program: string, netnsPath?: string): number;
  /** Link a TC program to an interface's ingress (tcx, Linux >= 6.6); returns a link id for detach(). */
  attachTcIngress(program: string, ifindex: number): number;
  /** Attach an sk_skb program as BPF_SK_SKB_VERDICT to a sockmap/sockhash. */
  attachVerdict(program: string, map: string): void;
  /** Detach one link (by id). */
  detach(linkId: number): void;
  /** Detach everything, close every fd. Idempotent. */
  close(): void;
}

export interface FeatureProbe {
  skLookup: boolean;
  sockmapVerdict: boolean;
  /** One line per missing feature: what is missing and how to fix it. */
  problems: string[];
}

export interface SocketAddress {
  host: string; // literal IPv4/IPv6 address (no names: the control plane resolves)
  port: number;
}

export type Datapath = 'splice' | 'userspace';

export interface ListenerOptions {
  ruleId: number;
  /** Address to bind: a `listen:` rule's own address, or [::]:0 (dual-stack) for a
   *  steering rule's socket, which only steering may reach (a guard in the bindings trie). */
  bind: SocketAddress;
  /** IPV6_V6ONLY off for [::] so one socket takes IPv4 too. */
  dualStack: boolean;
  backlog: number;
  /** Upstreams, in order; `balance` picks one per connection, a failed connect tries the next. */
  targets: SocketAddress[];
  /** Default failover: the first healthy target. */
  balance?: 'failover' | 'round_robin' | 'least_connections' | 'source_hash';
  connectTimeoutMs: number;
  /** 0 = no idle timeout. */
  idleTimeoutMs: number;
  datapath: Datapath;
  /** Max bytes in flight per direction in the kernel splice queue (0 = unlimited). */
  budgetBytes: number;
  /** SO_SNDBUF for spliced sockets (0 = kernel autotuning). */
  sndbufBytes: number;
  /** Splice datapath: relay this many bytes in user space first (default 0: splice at once). */
  spliceAfterBytes?: number;
  /** A flow that carries spliceAfterBytes within 10 ms of its first byte stays on the splice(2) relay (default false). */
  bulkOnRelay?: boolean;
  /** The target could reach one of this engine's listeners: bind each upstream socket before connect and
   *  register it, so a connection that comes back to a rule it already passed is reset (default false). */
  loopGuard?: boolean;
  /** PROXY protocol header sent to the upstream once connected: 0 none (default), 1 or 2. */
  proxyProtocol?: 0 | 1 | 2;
  /** Bind upstream sockets to this address (port 0) before connect; the targets' family. */
  sourceAddress?: SocketAddress;
  /** Connect upstream from the client's address: 1, any port; 2, and its port (IP_TRANSPARENT). 0: off (default). */
  transparentSource?: 0 | 1 | 2;
  /** Connect to the address each client dialled (an intercepted connection's original destination); targets empty. */
  originalDestination?: boolean;
  /** Every connection starts with a PROXY header (v1 or v2) from a trusted load balancer (useAccessLists first):
   *  read within connectTimeoutMs, its client judged by the lists, then connected as that client's (default false). */
  acceptProxy?: boolean;
  /** IP(V6)_TRANSPARENT on the listening socket: it takes connections to addresses this machine does not have. */
  transparent?: boolean;
  /** SO_MARK of upstream sockets (0: none, the default). */
  mark?: number;
  /** TCP keepalive on both sockets: idle seconds before the first probe (0: off, the default). */
  keepaliveS?: number;
  /** Open connections the rule's listener group admits; more are reset at accept (0: no limit, the default). */
  maxConnections?: number;
}

/** What updateListener changes; the upstream settings (proxyProtocol, sourceAddress, mark, keepaliveS) go together. */
export type ListenerUpdate = Partial<
  Pick<ListenerOptions, 'targets' | 'balance' | 'connectTimeoutMs' | 'idleTimeoutMs' | 'proxyProtocol' | 'sourceAddress' | 'mark' | 'keepaliveS' | 'maxConnections' | 'transparentSource'>
>;

export interface ListenerHandle {
  id: number;
  /** The listening socket's fd, owned by the engine, for insertion into steer_sockets. */
  fd: number;
  /** Local port actually bound (useful with port 0). */
  port: number;
}

export type EngineEventType =
  | 'connected' // upstream connected, data path running
  | 'connect_failed' // upstream refused/unreachable/timeout; client closed
  | 'target_failed' // one of several targets failed; the next is being tried
  | 'closed' // connection finished (reason says how)
  | 'fallback' // this connection uses the user-space relay (reason says why)
  | 'denied' // refused by a source list: in the kernel before accept, or the client a PROXY header named (reason: denied, not_allowed or not_trusted)
  | 'proxy_header_failed' // acceptProxy: no valid PROXY header (reason: invalid, timeout or closed); client reset
  | 'denials_unlogged' // more than 1000 refusals in a second: how many were not reported one by one
  | 'error'; // engine-level problem (accept failure, map full, ...)

export interface EngineEvent {
  type: EngineEventType;
  ruleId: number;
  connId: number;
  /** "ip:port" strings ([v6]:port for IPv6). */
  client?: string;
  /** getsockname() of the accepted socket: the original destination. */
  originalDst?: string;
  upstream?: string;
  /** connected: where its bytes move first; closed: where they moved last (absent if it never connected). */
  datapath?: EnginePath;
  /** e.g. 'eof', 'reset', 'idle_timeout', 'connect_timeout', 'ECONNREFUSED', 'shutdown'. */
  reason?: string;
  bytesToUpstream?: number;
  bytesToClient?: number;
  durationMs?: number;
  code?: string; // errno name for 'error'/'connect_failed'
  message?: string;
  /** closed: whose EOF came first (absent when neither side ended cleanly). */
  closedFirst?: 'client' | 'upstream';
}

/** BPFREDIR_ENGINE_STATS (native/engine_stats.h): totals over the engine threads, derived from the rule counters. */
export interface EngineStats {
  listeners: number;
  connections: number; // open now
  spliced: number; // open now on the kernel path
  relayed: number; // open now on the user-space relay
  paused: number; // directions paused by the in-flight budget now
  pauses: number; // times a direction was paused, since start
  accepted: number; // totals since start
  connectFailed: number;
  closed: number;
  /** Connections kept on the splice(2) relay as bulk flows (bulkOnRelay), since start. */
  bulkRelayed: number;
  /** Connections from our own upstream sockets back to a rule they had passed (loopGuard), reset since start;
   *  not counted in accepted. */
  loopsRefused: number;
  /** accepted, per engine thread. */
  acceptedByThread: number[];
}

/** One target of a rule (native TargetSet): open connections and passive health. */
export interface TargetHealth {
  address: string;
  open: number;
  /** Connect failures in a row; at 3 the target is ejected for 10 s. */
  consecutiveFailures: number;
  /** Left out of new connections now (unless every target is). */
  ejected: boolean;
  /** An active health check found it down. */
  down: boolean;
  ejections: number;
}

/** The three ways the engine moves bytes (BPFREDIR_PATHS, native/rule_stats.h). */
export type EnginePath =
  | 'sockmap' // in the kernel: the sockmap verdict redirects them
  | 'splice' // splice(2) through a pipe per direction
  | 'copy'; // recv/send through a per-thread buffer

/** How a connection ended (BPFREDIR_CLOSE_REASONS). */
export type CloseReason = 'eof' | 'reset' | 'idle_timeout' | 'shutdown';
/** Why an upstream connect failed, by errno (BPFREDIR_CONNECT_FAILURES). */
export type ConnectFailure = 'refused' | 'timeout' | 'unreachable' | 'no_resources' | 'other';

/** Prometheus-shaped: cumulative counts per upper bound `le` (seconds); the +Inf bucket is `count`. */
export interface EngineHistogram {
  le: readonly number[];
  buckets: number[];
  count: number;
  /** Seconds. */
  sum: number;
}

/** One rule's counters (BPFREDIR_RULE_COUNTERS, native/rule_stats.h), summed over the engine threads.
 *  Counted since the engine started, also across listener changes; gauges say "now". */
export interface EngineRuleStats {
  ruleId: number;
  accepted: number;
  /** Gauge: upstream connect in progress. */
  connecting: number;
  loopsRefused: number;
  /** Reset at accept because the rule had maxConnections open. */
  limitRefused: number;
  /** acceptProxy: reset because no valid PROXY header came within connectTimeoutMs. */
  proxyHeaderFailed: number;
  /** acceptProxy: reset because the peer is not trusted, or the header's client is refused by a list. */
  proxyDenied: number;
  /** Connections kept on the splice(2) relay as bulk flows. */
  bulkFlows: number;
  /** Bytes user space wrote to the peer that the sockmap verdict never saw (recv/send copy, splice(2), a direction
   *  left outside the kernel path). The verdict's bytes are in the BPF map rule_stats: the two add up to every byte. */
  bytesToUpstream: number;
  bytesToClient: number;
  /** Times a direction was paused by the in-flight budget. */
  pauses: number;
  /** Gauge: directions paused now. */
  paused: number;
  /** Bytes user space relayed while a direction was paused (the verdict counted them already, except for a
   *  direction outside the kernel path). */
  pausedBytesToUpstream: number;
  pausedBytesToClient: number;
  closed: Record<CloseReason, number>;
  connectFailed: Record<ConnectFailure, number>;
  /** Gauge: open connections by the path their bytes take now. */
  active: Record<EnginePath, number>;
  /** Accept to upstream connected. */
  connectSeconds: EngineHistogram;
  /** Accept to close. */
  durationSeconds: EngineHistogram;
}

/** One open connection (engine.connections()). */
export interface EngineConnection {
  connId: number;
  ruleId: number;
  client: string;
  /** getsockname() of the accepted socket: where the client connected to. */
  originalDestination: string;
  upstream: string;
  /** Absent while the upstream connect is in progress. */
  datapath?: EnginePath;
  /** Sockmap path: the verdict's count plus what user space relayed, read when listed (a map lookup per side). */
  bytesToUpstream: number;
  bytesToClient: number;
  ageMs: number;
}

export interface EngineOptions {
  /** Map fds for the kernel splice path; omit for a user-space-only engine.
   *  `relayed` is required for listeners with budgetBytes > 0 (addListener throws EINVAL otherwise). */
  maps?: { conns: number; spliceHold: number; spliceActive: number; events: number; relayed?: number };
  /** false: no 'connected'/'closed' events, when nothing would log them (default true). */
  connectionEvents?: boolean;
  /** Engine threads, 1..64 (default 1); each holds a member of every listener's SO_REUSEPORT group. */
  threads?: number;
  /** Called on the JS thread with batches of events. */
  onEvents: (events: EngineEvent[]) => void;
}

/** The forwarding engine: epoll threads that own every proxied socket. */
export interface RawEngine {
  addListener(opts: ListenerOptions): ListenerHandle;
  /** Change targets/timeouts of a listener; open connections keep theirs. */
  updateListener(id: number, opts: ListenerUpdate): void;
  /** Read the steering program's `denials` ring buffer (its fd): a 'denied' event per refused connection. */
  watchDenials(denialsFd: number): void;
  /** The `acl` trie and `rule_policy` array (their fds, duplicated): acceptProxy listeners judge trusted peers and
   *  the clients their headers name by them. */
  useAccessLists(aclFd: number, policyFd: number): void;
  /** Stop accepting on this listener and close its socket; connections go on. */
  removeListener(id: number): void;
  stats(): EngineStats;
  /** Counters per rule id that ever had a listener on this engine, in id order; read from every thread, no locks. */
  ruleStats(): EngineRuleStats[];
  /** The open connections, each engine thread listing its own; [] once closed. */
  connections(): Promise<EngineConnection[]>;
  /** The listener's targets as new connections see them now. */
  targetHealth(listenerId: number): TargetHealth[];
  /** An active health check's verdict: a down target is left out of new connections. */
  setTargetDown(listenerId: number, index: number, down: boolean): void;
  /** Stop accepting, close every connection and the thread. Resolves when done. */
  close(): Promise<void>;
}

export interface RawBinding {
  /** Load (and verify) a BPF object file; the sk_skb program gets BPF_SK_SKB_VERDICT. */
  loadObject(path: string): Promise<RawBpfObject>;
  probeFeatures(): FeatureProbe;
  /** flock(fd, LOCK_EX | LOCK_NB): false when another open file holds the lock. */
  tryLock(fd: number): boolean;
  /** Inode of a netns file (default /proc/self/ns/net), as a bigint. */
  netnsInode(path?: string): bigint;

  mapUpdate(fd: number, key: Buffer, value: Buffer, flags?: number): void;
  /** Returns false if the key was not there (ENOENT). */
  mapDelete(fd: number, key: Buffer): boolean;
  /** null if the key is not there. */
  mapLookup(fd: number, key: Buffer, valueSize: number): Buffer | null;
  /** Per-CPU map lookup: one Buffer per possible CPU, or null. */
  mapLookupPercpu(fd: number, key: Buffer, valueSize: number): Buffer[] | null;
  /** All keys of a map. */
  mapKeys(fd: number, keySize: number): Buffer[];
  /** What the kernel says of a map (bpf_obj_get_info_by_fd). */
  mapInfo(fd: number): { name: string; keySize: number; valueSize: number; maxEntries: number };
  /** Update many entries: keys and values packed back to back. Falls back to a loop
   *  where BPF_MAP_UPDATE_BATCH is not supported (LPM trie). */
  mapUpdateMany(fd: number, keys: Buffer, values: Buffer, keySize: number, valueSize: number): void;
  /** Put a socket fd into a SOCKMAP/SOCKHASH under key. */
  sockmapUpdate(fd: number, key: Buffer, socketFd: number): void;
  /** Number of open fds of this process (for leak tests). */
  openFdCount(): number;
  /** One datagram to a unix socket (syslog's /dev/log); false when nothing took it. */
  sendUnixDatagram(path: string, data: Buffer): boolean;
  /** Policy rules of a family (4 or 6) in this netns; mask 0 when the rule matches no mark. */
  listPolicyRules(family: 4 | 6): PolicyRule[];
  /** "fwmark mark/mask lookup table" at priority, tagged with protocol (EEXIST if it is there). */
  addPolicyRule(family: 4 | 6, rule: PolicyRule): void;
  deletePolicyRule(family: 4 | 6, rule: PolicyRule): void;
  /** Every route of a family in one table. */
  listTableRoutes(family: 4 | 6, table: number): { type: number; dstLen: number; protocol: number }[];
  /** "local default dev lo table T proto P". */
  addLocalDefaultRoute(family: 4 | 6, table: number, protocol: number): void;
  deleteLocalDefaultRoute(family: 4 | 6, table: number, protocol: number): void;
  /** if_nametoindex; throws ENODEV for an unknown name. */
  interfaceIndex(name: string): number;
  /** A duplicate of another process's fd (pidfd_open + pidfd_getfd). */
  pidfdGetfd(pid: number, fd: number): number;
  closeFd(fd: number): void;
  /** IP(V6)_TRANSPARENT on a socket this process holds. */
  setTransparent(fd: number): void;

  Engine: new (opts: EngineOptions) => RawEngine;
}
