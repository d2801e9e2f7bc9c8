/** The validated config: what every other layer reads. Built only by src/config/. */
import type { Prefix } from '../rules/ip.js';
import type { PortRange } from '../rules/ports.js';

export type DatapathChoice = 'auto' | 'splice' | 'userspace';
/** How a new connection picks among a rule's targets (native TargetSet). */
export type Balance = 'failover' | 'round_robin' | 'least_connections' | 'source_hash';
export const BALANCES: readonly Balance[] = ['failover', 'round_robin', 'least_connections', 'source_hash'];
export type BulkFlows = 'relay' | 'kernel';

export interface Endpoint {
  /** A literal IP address once resolveHostnames() has run; before, maybe a name. */
  host: string;
  port: number;
}

/**
 * Source access control, enforced by sk_lookup before any socket sees the
 * connection. rinetd's semantics: a client in a deny prefix is refused; if the
 * allow list is not empty, a client outside all of its prefixes is too.
 * Prefixes are in the IPv4-mapped space, so 10.0.0.0/8 also covers ::ffff:10.x.
 */
export type AccessLogFormat = 'rinetd' | 'common';

export interface AccessLogSetting {
  path: string;
  /** rinetd's tab-separated lines, or its common-log-format lines (logcommon). */
  format: AccessLogFormat;
}

export interface Acl {
  allow: Prefix[];
  deny: Prefix[];
}

interface RuleCommon {
  name: string;
  protocol: 'tcp';
  /** Where connections go, at least one; with several, `balance` picks and a failed connect tries the next. */
  targets: Endpoint[];
  balance: Balance;
  connectTimeoutMs: number;
  /** 0 = never. */
  idleTimeoutMs: number;
  /** This rule's own lists, obeyed on top of the config's; none when absent. */
  acl?: Acl;
  /**
   * `accept_proxy:` the load balancers (prefixes) that may connect, each connection
   * starting with a PROXY header that names the real client; off when absent.
   */
  acceptProxy?: Prefix[];
  /** PROXY protocol header sent to the target before any client byte; none when absent. */
  proxyProtocol?: 1 | 2;
  /** Literal address upstream connections are made from (`source:`); the kernel's choice when absent. */
  sourceAddress?: string;
  /** SO_MARK of upstream connections; none when absent. */
  mark?: number;
  /** TCP keepalive idle time on both sockets, ms; off when absent. */
  keepaliveMs?: number;
  /** Open connections the rule admits; more are reset at accept. No limit when absent. */
  maxConnections?: number;
  /**
   * Another program's listening socket at this address takes the rule's connections
   * (`target: socket ADDR:PORT`): bpfredir steers to a duplicate of it; targets is empty.
   */
  proxySocket?: Endpoint;
  /** Connect upstream from the client's own address (`transparent_source:`), and port with 'address_and_port'; off when absent. */
  transparentSource?: TransparentSource;
  /** Active TCP health checks of each target, every this many ms; none when absent. */
  healthCheckMs?: number;
  /** Hosts as the config wrote them (names before resolution), for logs that quote the rule. */
  written?: { listenHost?: string; targetHosts: string[] };
  /** "file:line" of the rule, for later errors about it. */
  source: string;
}

/** Bind the address directly, like rinetd or redir. */
export interface ListenRule extends RuleCommon {
  kind: 'listen';
  listen: Endpoint;
}

/** Steer connections to these prefixes and ports with sk_lookup. */
export interface SteerRule extends RuleCommon {
  kind: 'steer';
  destinations: Prefix[];
  /** Sorted, disjoint. */
  ports: PortRange[];
}

/**
 * Intercept connections routed through this machine (TC marks them for local
 * delivery, sk_lookup steers them). targets is empty with originalDestination.
 */
export interface InterceptRule extends RuleCommon {
  kind: 'intercept';
  destinations: Prefix[];
  /** Sorted, disjoint. */
  ports: PortRange[];
  /** Inbound interfaces whose traffic the rule takes. */
  interfaces: string[];
  /** Only clients in these prefixes are intercepted (others pass untouched); everyone when empty. */
  sources: Prefix[];
  /** `target: original`: connect to the destination the client dialled. */
  originalDestination: boolean;
}

export type Rule = ListenRule | SteerRule | InterceptRule;
export type TransparentSource = 'address' | 'address_and_port';

/** What bpfredir adds to the box for interception (`interception:`). */
export interface InterceptionSettings {
  /** ORed into the mark of intercepted packets; the policy rule matches mark/mark. */
  mark: number;
  /** Routing table of the `local default dev lo` route. */
  table: number;
  /** Priority of the fwmark policy rule (before the main table's 32766). */
  priority: number;
  /** Interfaces where only replies to transparent-source connections arrive (server side). */
  returnInterfaces: string[];
}

export interface Config {
  datapath: DatapathChoice;
  /** Engine threads; 0 = one per CPU. */
  threads: number;
  /** In-flight bytes per direction in the kernel splice queue (0 = unlimited). */
  budgetBytes: number;
  /** SO_SNDBUF of spliced sockets (0 = autotune). */
  sndbufBytes: number;
  /** Bytes a connection carries on the user-space relay before it is spliced (0 = at once). */
  spliceAfterBytes: number;
  /** Where a flow that carried spliceAfterBytes within 10 ms goes: the splice(2) relay or the kernel. */
  bulkFlows: BulkFlows;
  /** Where /metrics, /healthz and /readyz listen (`metrics:`, --metrics-listen); none by default. */
  metricsListen?: Endpoint;
  /** Lists every rule obeys (`allow:`/`deny:` at the top); none when absent. */
  acl?: Acl;
  /** One line per connection event in a file (`access_log:`), reopened on every reload; none when absent. */
  accessLog?: AccessLogSetting;
  /** Where the process id is written at start and removed at exit (`pid_file:`); none when absent. */
  pidFile?: string;
  /** How often host names in rules are looked up again (`resolve_interval:`); 0 = only at load and reload. */
  resolveIntervalMs: number;
  interception: InterceptionSettings;
  rules: Rule[];
  /** Where the config came from (a path or "command line"). */
  source: string;
}

/** The native engine's limit (EngineGroup::kMaxThreads). */
export const MAX_ENGINE_THREADS = 64;

export const DEFAULTS = {
  datapath: 'auto' as DatapathChoice,
  // Like HAProxy's nbthread: accepting and setting up connections is per-CPU work.
  threads: 0,
  // "A few MiB" bounds the kernel queue per direction; 0 = unlimited.
  budgetBytes: 4 * 2 ** 20,
  sndbufBytes: 4 * 2 ** 20,
  // Short connections stay on the user-space relay (cheaper than setting up and tearing down
  // the kernel path: measured 0.80 → 0.89 × HAProxy's conn/s); bulk moves into the kernel.
  spliceAfterBytes: 64 * 2 ** 10,
  // On the kernels measured (6.18) one bulk stream moves ~2.5 x faster through splice(2)
  // than through the sockmap path (docs/PERFORMANCE.md).
  bulkFlows: 'relay' as BulkFlows,
  connectTimeoutMs: 5000,
  idleTimeoutMs: 0,
  keepaliveMs: 0,
  // DNS records of upstreams change (a failover, a cluster's service IP): look again every minute.
  resolveIntervalMs: 60_000,
  // A bit and a table number unlikely to be anyone else's (checked at start); the rule goes
  // before the main table (32766) and after the usual `local` lookup (0).
  interception: { mark: 0x4000_0000, table: 4250, priority: 4250, returnInterfaces: [] as string[] },
};
