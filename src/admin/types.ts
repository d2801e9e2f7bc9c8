/**
 * What a running bpfredir answers on its admin socket: the requests, the reports, and
 * AdminSource, the interface the daemon implements to produce them. Every field is plain
 * JSON (numbers, strings, booleans), so `--json` prints exactly what the daemon sent.
 */
import type { ErrorCode } from '../errors.js';

export const ADMIN_COMMANDS = ['status', 'rules', 'conns', 'reload'] as const;
export type AdminCommand = (typeof ADMIN_COMMANDS)[number];

export interface AdminRequest {
  cmd: AdminCommand;
}

/** How bytes move, as logs and metrics name it (e.g. sockmap, splice, copy). */
export type DatapathName = string;

export interface LastReload {
  /** ISO 8601. */
  at: string;
  ok: boolean;
  /** Why a reload was refused (the running rules stayed as they were). */
  error?: string;
}

export interface StatusReport {
  version: string;
  pid: number;
  /** ISO 8601. */
  startedAt: string;
  datapath: {
    /** The datapath new connections start on. */
    name: DatapathName;
    /** Why that one: what was asked for and, after a fallback, what the kernel lacked. */
    reason: string;
  };
  /** Kernel features probed at start, by name (e.g. sk_lookup, sockmap_verdict). */
  features: Record<string, boolean>;
  threads: number;
  rules: number;
  /** Targets of every rule: how many, and how many new connections skip now (ejected after failed connects, or down by a health check). */
  targets?: { total: number; ejected: number; down: number };
  /** The source lists every rule obeys; absent when there are none. */
  sources?: SourceLists;
  /** What interception changed on the box; absent while no rule intercepts. */
  interception?: {
    mark: string;
    table: number;
    priority: number;
    /** Interfaces with the TC program: "intercept" (a rule's inbound side) or "return" (replies only). */
    interfaces: { name: string; ifindex: number; role: string }[];
    entries: number;
  };
  /** Open connections by the datapath each is on now. */
  connections: Record<DatapathName, number>;
  pauses: {
    /** Directions paused by the in-flight budget now. */
    now: number;
    /** Times a direction was paused since start. */
    total: number;
  };
  lastReload: LastReload | null;
}

export interface RuleReport {
  name: string;
  ruleId: number;
  kind: 'listen' | 'steer' | 'intercept';
  /** listen rules: the address the rule binds. */
  listen?: string;
  /** steering and intercept rules: what sk_lookup (intercept: the TC program) takes. */
  match?: { destinations: string[]; ports: string[]; interfaces?: string[]; sources?: string[] };
  target: string;
  /** Where the rule's socket listens: the listen address, or [::]:<port> for a steering rule. */
  address: string;
  /** With several targets: how a connection picks one. */
  balance?: string;
  /** Each target and its health (open connections, failures in a row, ejected now). */
  targetHealth?: { address: string; open: number; consecutiveFailures: number; ejected: boolean; down: boolean; ejections: number }[];
  /** The rule's own source lists (the global ones are in status); absent when it has none. */
  sources?: SourceLists;
  /** accept_proxy: the load balancers whose PROXY headers it takes (the lists judge the clients they name). */
  acceptProxy?: string[];
}

/** Client prefixes, as the config writes them. */
export interface SourceLists {
  allow: string[];
  deny: string[];
}

export interface ConnectionReport {
  rule: string;
  /** "ip:port", "[ip6]:port" for IPv6. */
  client: string;
  /** What the client dialled (getsockname of the accepted socket). */
  originalDestination: string;
  upstream: string;
  datapath: DatapathName;
  bytesToUpstream: number;
  bytesToClient: number;
  ageMs: number;
}

export interface ReloadResult {
  ok: boolean;
  /** Why the new config was refused, one line per problem. */
  error?: string;
  /** The stable code of that error: a config error exits 2 like `check`. */
  code?: ErrorCode;
  /** One line per change applied, and one per setting that needs a restart to change. */
  changes?: string[];
}

/** Implemented by the daemon; called once per request. */
export interface AdminSource {
  status(): StatusReport;
  rules(): RuleReport[];
  conns(): Promise<ConnectionReport[]>;
  /** Read the config again and apply the difference; never rejects (a failure is ok: false). */
  reload(): Promise<ReloadResult>;
}

/** The payload of a successful answer, per command. */
export interface AdminReplies {
  status: { status: StatusReport };
  rules: { rules: RuleReport[] };
  conns: { conns: ConnectionReport[] };
  reload: { changes: string[] };
}

export interface AdminFailure {
  ok: false;
  error: string;
  code?: ErrorCode;
}

export type AdminResponse<C extends AdminCommand = AdminCommand> = ({ ok: true } & AdminReplies[C]) | AdminFailure;
