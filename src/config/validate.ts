/**
 * Turns a parsed tree into a typed Config, collecting every problem (one line
 * each, "<file>:<line>: <where>: <what>; <how to fix>") before failing, so a
 * user fixes them all in one go and nothing is applied from a broken config.
 */
import { isIP } from 'node:net';
import { BpfredirError } from '../errors.js';
import { IPPROTO_TCP, prefixKey } from '../rules/compile.js';
import { MAX_RULE_ID } from '../rules/ids.js';
import { formatPrefix, type Prefix } from '../rules/ip.js';
import { formatRange } from '../rules/ports.js';
import { endpointHostProblem, formatEndpoint, parseEndpoint, parseInterfaces, parsePorts, parsePrefixes, parseTargets } from './fields.js';
import { closestMatch } from './suggest.js';
import { BALANCES, DEFAULTS, MAX_ENGINE_THREADS, type AccessLogFormat, type Acl, type Balance, type BulkFlows, type Config, type DatapathChoice, type Endpoint, type InterceptionSettings, type Rule, type TransparentSource } from './types.js';
import { parseDuration, parseSize, type Parsed } from './units.js';
import type { MapEntry, TreeNode } from './yaml-tree.js';

const TOP_KEYS = ['datapath', 'threads', 'budget', 'sndbuf', 'splice_after', 'bulk_flows', 'connect_timeout', 'idle_timeout', 'keepalive', 'metrics', 'allow', 'deny', 'access_log', 'access_log_format', 'pid_file', 'resolve_interval', 'interception', 'rules'] as const;
const INTERCEPTION_KEYS = ['mark', 'table', 'priority', 'return_interfaces'] as const;
const RULE_KEYS = [
  'name',
  'protocol',
  'listen',
  'destination',
  'ports',
  'target',
  'balance',
  'connect_timeout',
  'idle_timeout',
  'keepalive',
  'allow',
  'deny',
  'proxy_protocol',
  'source',
  'mark',
  'max_connections',
  'health_check',
  'intercept',
  'interfaces',
  'sources',
  'transparent_source',
  'accept_proxy',
] as const;
const DATAPATHS: readonly DatapathChoice[] = ['auto', 'splice', 'userspace'];
const BULK_FLOWS: readonly BulkFlows[] = ['relay', 'kernel'];
const ACCESS_LOG_FORMATS: readonly AccessLogFormat[] = ['rinetd', 'common'];
const RULE_NAME = /^[a-z0-9_.-]{1,64}$/;
/** The kernel's in-flight accounting uses 32-bit sequence arithmetic. */
const MAX_BUDGET = 2 ** 31 - 1;
/** setsockopt takes an int and the kernel doubles it. */
const MAX_SNDBUF = 2 ** 30;
/** Node and the engine keep milliseconds in a signed 32-bit range. */
const MAX_DURATION_MS = 2 ** 31 - 1;
/** The engine keeps it in 32 bits. */
const MAX_SPLICE_AFTER = 2 ** 32 - 1;

class Problems {
  private readonly found: { line: number; text: string }[] = [];
  constructor(private readonly file: string) {}

  add(line: number | undefined, where: string, message: string): void {
    this.found.push({ line: line ?? 0, text: `${this.at(line)}: ${where}${message}` });
  }

  get count(): number {
    return this.found.length;
  }

  /** In file order, so the list reads top to bottom. */
  get lines(): string[] {
    return [...this.found].sort((a, b) => a.line - b.line).map((p) => p.text);
  }

  at(line: number | undefined): string {
    return line === undefined ? this.file : `${this.file}:${line}`;
  }
}

function checkKeys(entries: MapEntry[], allowed: readonly string[], where: string, problems: Problems): void {
  for (const { key, line } of entries) {
    if (allowed.includes(key)) continue;
    const guess = closestMatch(key, allowed);
    const hint = guess ? `did you mean '${guess}'?` : `allowed: ${allowed.join(', ')}`;
    problems.add(line, where, `unknown key '${key}'; ${hint}`);
  }
}

function entryOf(entries: MapEntry[], key: string): MapEntry | undefined {
  return entries.find((e) => e.key === key);
}

/** Reads one field with a parser; records the problem and returns the fallback on error. */
function field<T>(
  entries: MapEntry[],
  key: string,
  where: string,
  problems: Problems,
  parse: (v: unknown) => Parsed<T>,
  fallback: T,
): T {
  const entry = entryOf(entries, key);
  if (!entry) return fallback;
  if (entry.value.kind !== 'scalar') {
    problems.add(entry.line, where, `${key}: expected a single value, not a ${entry.value.kind === 'seq' ? 'list' : 'map'}`);
    return fallback;
  }
  const parsed = parse(entry.value.value);
  if (parsed.ok) return parsed.value;
  problems.add(entry.value.line ?? entry.line, where, `${key}: ${parsed.reason}`);
  return fallback;
}

const sizeUpTo =
  (max: number, example: string) =>
  (v: unknown): Parsed<number> => {
    const parsed = parseSize(v);
    if (!parsed.ok) return { ok: false, reason: `${parsed.reason}; write e.g. ${example} (units: B, KiB, MiB, GiB, k, M, G)` };
    if (parsed.value > max) return { ok: false, reason: `'${v}' is too large (at most ${max} bytes); write e.g. ${example}` };
    return parsed;
  };

const duration =
  (options: { allowZero: boolean; example: string }) =>
  (v: unknown): Parsed<number> => {
    const parsed = parseDuration(v);
    if (!parsed.ok) return { ok: false, reason: `${parsed.reason}; write e.g. ${options.example} (units: ms, s, m, h)` };
    if (parsed.value === 0 && !options.allowZero) return { ok: false, reason: `must be longer than 0; write e.g. ${options.example}` };
    if (parsed.value > MAX_DURATION_MS) return { ok: false, reason: `'${v}' is too long (at most 24 days)` };
    return parsed;
  };

/** 'auto' (0: one per CPU) or 1..MAX_ENGINE_THREADS. */
const threadCount = (v: unknown): Parsed<number> => {
  const text = String(v ?? '').trim();
  if (text === 'auto') return { ok: true, value: 0 };
  const n = /^\d{1,3}$/.test(text) ? Number(text) : NaN;
  if (n >= 1 && n <= MAX_ENGINE_THREADS) return { ok: true, value: n };
  return { ok: false, reason: `'${text}' is not a thread count; write auto (one per CPU) or a number 1..${MAX_ENGINE_THREADS}` };
};

const connectTimeout = duration({ allowZero: false, example: '5s' });
const idleTimeout = duration({ allowZero: true, example: '10m, or 0 for never' });
const keepalive = duration({ allowZero: true, example: '60s, or 0 for off' });

const proxyProtocol = (v: unknown): Parsed<1 | 2 | undefined> => {
  const text = String(v ?? '').trim();
  if (text === 'v1' || text === '1') return { ok: true, value: 1 };
  if (text === 'v2' || text === '2') return { ok: true, value: 2 };
  if (text === 'none' || text === 'off') return { ok: true, value: undefined };
  return { ok: false, reason: `'${text}' is not a PROXY protocol version; write v1 (text), v2 (binary) or none` };
};

/** A literal address, no port: where upstream connections come from. */
const sourceAddress = (v: unknown): Parsed<string> => {
  const text = String(v ?? '').trim().replace(/^\[(.*)\]$/, '$1');
  const problem = isIP(text) ? endpointHostProblem(text) : `'${text}' is not an IP address`;
  return problem ? { ok: false, reason: `${problem}; write an address of this host, e.g. 192.0.2.10 or 2001:db8::10` } : { ok: true, value: text };
};

/** A 32-bit integer, decimal or 0x hex. */
const mark = (v: unknown): Parsed<number> => {
  const text = String(v ?? '').trim();
  const n = /^(0x[0-9a-f]{1,8}|\d{1,10})$/i.test(text) ? Number(text) : NaN;
  return n >= 0 && n <= 0xffffffff ? { ok: true, value: n } : { ok: false, reason: `'${text}' is not a mark; write a 32-bit number, e.g. 100 or 0x64` };
};

const connectionLimit = (v: unknown): Parsed<number> => {
  const text = String(v ?? '').trim();
  const n = /^\d{1,10}$/.test(text) ? Number(text) : NaN;
  return n >= 0 && n <= 0xffffffff ? { ok: true, value: n } : { ok: false, reason: `'${text}' is not a connection count; write e.g. 1000, or 0 for no limit` };
};

const oneOf =
  <T extends string>(allowed: readonly T[]) =>
  (v: unknown): Parsed<T> =>
    allowed.includes(v as T) ? { ok: true, value: v as T } : { ok: false, reason: `'${v}' is not one of ${allowed.join(', ')}` };

/** Where /metrics, /healthz and /readyz listen: an address and a port, like listen:. */
export const metricsAddress = (v: unknown): Parsed<Endpoint> => {
  const parsed = parseEndpoint(v);
  return parsed.ok ? parsed : { ok: false, reason: parsed.reason.replace(/write e\.g\. .*/, 'write e.g. 127.0.0.1:9477 or [::]:9477') };
};

const protocol = (v: unknown): Parsed<'tcp'> => {
  if (v === 'tcp') return { ok: true, value: 'tcp' };
  if (v === 'udp') return { ok: false, reason: 'udp is not supported yet; use tcp' };
  return { ok: false, reason: `'${v}' is not a protocol; write tcp` };
};

/** An absolute or relative file path. */
const filePath = (v: unknown): Parsed<string> => {
  const text = typeof v === 'string' ? v.trim() : '';
  return text && !text.includes('\0') ? { ok: true, value: text } : { ok: false, reason: `'${v}' is not a file path; write e.g. /var/log/bpfredir/access.log` };
};

/** yes / address / address_and_port, or off. */
const transparentSource = (v: unknown): Parsed<TransparentSource | undefined> => {
  const text = String(v ?? '').trim();
  if (text === 'true' || text === 'yes' || text === 'address') return { ok: true, value: 'address' };
  if (text === 'address_and_port') return { ok: true, value: 'address_and_port' };
  if (text === 'false' || text === 'no' || text === 'off') return { ok: true, value: undefined };
  return { ok: false, reason: `'${text}' is not a transparent source; write address (the client's address, any port), address_and_port, or off` };
};

/** A routing table or rule priority: 1..2^32-1, not the kernel's own tables (253-255). */
const tableNumber = (v: unknown): Parsed<number> => {
  const text = String(v ?? '').trim();
  const n = /^\d{1,10}$/.test(text) ? Number(text) : NaN;
  if (n >= 1 && n <= 0xffffffff && !(n >= 253 && n <= 255)) return { ok: true, value: n };
  return { ok: false, reason: `'${text}' is not a free table number; write e.g. 4250 (not 0 or 253-255, the kernel's own)` };
};

const rulePriority = (v: unknown): Parsed<number> => {
  const text = String(v ?? '').trim();
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  return n >= 1 && n < 32766 ? { ok: true, value: n } : { ok: false, reason: `'${text}' is not a rule priority; write 1..32765 (before the main table's 32766), e.g. 4250` };
};

function interceptionSettings(entries: MapEntry[], problems: Problems): InterceptionSettings {
  const defaults = DEFAULTS.interception;
  const entry = entryOf(entries, 'interception');
  if (!entry) return { ...defaults, returnInterfaces: [] };
  if (entry.value.kind !== 'map') {
    problems.add(entry.line, '', 'interception: expected a map (mark, table, priority, return_interfaces)');
    return { ...defaults, returnInterfaces: [] };
  }
  const inner = entry.value.entries;
  const where = 'interception: ';
  checkKeys(inner, INTERCEPTION_KEYS, where, problems);
  const markValue = field(inner, 'mark', where, problems, mark, defaults.mark);
  if (markValue === 0) problems.add(entryOf(inner, 'mark')?.line, where, 'mark: must not be 0; write a bit of its own, e.g. 0x40000000');
  const returns = entryOf(inner, 'return_interfaces');
  const parsed = returns ? parseInterfaces(returns.value) : { names: [], problems: [] };
  for (const p of parsed.problems) problems.add(returns?.line, where, `return_interfaces: ${p}`);
  return {
    mark: markValue,
    table: field(inner, 'table', where, problems, tableNumber, defaults.table),
    priority: field(inner, 'priority', where, problems, rulePriority, defaults.priority),
    returnInterfaces: parsed.names,
  };
}

const ruleName = (v: unknown): Parsed<string> =>
  typeof v === 'string' && RULE_NAME.test(v)
    ? { ok: true, value: v }
    : { ok: false, reason: `'${v}' is not a rule name; use 1-64 of a-z 0-9 _ . - (e.g. web-8080)` };

/** allow: and deny: of a rule or of the whole config; undefined when neither is given. */
function sourceLists(entries: MapEntry[], where: string, problems: Problems): Acl | undefined {
  const list = (key: 'allow' | 'deny'): Prefix[] => {
    const entry = entryOf(entries, key);
    if (!entry) return [];
    const parsed = parsePrefixes(entry.value);
    for (const p of parsed.problems) problems.add(entry.value.line ?? entry.line, where, `${key}: ${p.replace('write e.g.', 'write client prefixes, e.g.')}`);
    return parsed.prefixes;
  };
  const allow = list('allow');
  const deny = list('deny');
  return allow.length || deny.length ? { allow, deny } : undefined;
}

/** accept_proxy: the load balancers whose PROXY headers a rule trusts; undefined when absent. */
function trustedProxies(entries: MapEntry[], where: string, problems: Problems): Prefix[] | undefined {
  const entry = entryOf(entries, 'accept_proxy');
  if (!entry) return undefined;
  const parsed = parsePrefixes(entry.value);
  for (const p of parsed.problems) problems.add(entry.value.line ?? entry.line, where, `accept_proxy: ${p.replace('write e.g.', 'write the load balancers\' prefixes, e.g.')}`);
  return parsed.prefixes;
}

interface RuleDefaults {
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  keepaliveMs: number;
}

function validateRule(node: TreeNode, index: number, defaults: RuleDefaults, problems: Problems): Rule | undefined {
  if (node.kind !== 'map') {
    problems.add(node.line, `rule #${index + 1}: `, 'expected a map with name, target and listen or destination');
    return undefined;
  }
  const before = problems.count;
  const entries = node.entries;
  const nameEntry = entryOf(entries, 'name');
  const name = nameEntry ? field(entries, 'name', `rule #${index + 1}: `, problems, ruleName, undefined) : undefined;
  const where = name ? `rule '${name}': ` : `rule #${index + 1}: `;
  if (!nameEntry) problems.add(node.line, where, 'name: missing; give every rule a unique name, e.g. name: web');
  checkKeys(entries, RULE_KEYS, where, problems);
  field(entries, 'protocol', where, problems, protocol, 'tcp');
  const targetEntry = entryOf(entries, 'target');
  const targetText = targetEntry?.value.kind === 'scalar' ? String(targetEntry.value.value) : '';
  const originalDestination = targetText === 'original';
  const socketTarget = /^socket\s+/.test(targetText) ? parseEndpoint(targetText.replace(/^socket\s+/, '')) : undefined;
  if (socketTarget && !socketTarget.ok) problems.add(targetEntry?.line, where, `target: socket ${socketTarget.reason}`);
  const proxySocket = socketTarget?.ok ? socketTarget.value : undefined;
  const parsedTargets = targetEntry && !originalDestination && !socketTarget ? parseTargets(targetEntry.value) : { endpoints: [], problems: [] };
  for (const p of parsedTargets.problems) problems.add(targetEntry?.value.line ?? targetEntry?.line, where, `target: ${p}`);
  const targets = parsedTargets.endpoints;
  const target = targets[0];
  if (!targetEntry) problems.add(node.line, where, 'target: missing; write e.g. target: 127.0.0.1:9000 (or original, with intercept:)');
  const balance = field(entries, 'balance', where, problems, oneOf(BALANCES), 'failover' as Balance);
  const balanceEntry = entryOf(entries, 'balance');
  if (balanceEntry && targets.length === 1) problems.add(balanceEntry.line, where, 'balance: needs several targets; write target: [A:PORT, B:PORT]');
  const connectTimeoutMs = field(entries, 'connect_timeout', where, problems, connectTimeout, defaults.connectTimeoutMs);
  const idleTimeoutMs = field(entries, 'idle_timeout', where, problems, idleTimeout, defaults.idleTimeoutMs);
  const acl = sourceLists(entries, where, problems);
  const keepaliveMs = field(entries, 'keepalive', where, problems, keepalive, defaults.keepaliveMs);
  const proxy = field(entries, 'proxy_protocol', where, problems, proxyProtocol, undefined);
  const from = field(entries, 'source', where, problems, sourceAddress, undefined);
  const markValue = field(entries, 'mark', where, problems, mark, 0);
  const maxConnections = field(entries, 'max_connections', where, problems, connectionLimit, 0);
  const transparent = field(entries, 'transparent_source', where, problems, transparentSource, undefined);
  const transparentEntry = entryOf(entries, 'transparent_source');
  if (transparent && from) problems.add(transparentEntry?.line, where, 'transparent_source: and source: exclude each other; keep one');
  const acceptProxy = trustedProxies(entries, where, problems);
  const healthCheckMs = field(entries, 'health_check', where, problems, duration({ allowZero: true, example: '5s, or 0 for none' }), 0);
  const sourceEntry = entryOf(entries, 'source');
  for (const t of targets) {
    if (from && isIP(t.host) && isIP(from) !== isIP(t.host)) {
      problems.add(sourceEntry?.line, where, `source: ${from} and target ${formatEndpoint(t)} are of different address families; use an IPv${isIP(t.host)} source`);
    }
  }
  const common = {
    name: name ?? '',
    protocol: 'tcp' as const,
    targets,
    balance,
    connectTimeoutMs,
    idleTimeoutMs,
    ...(acl && { acl }),
    ...(proxy && { proxyProtocol: proxy }),
    ...(from && { sourceAddress: from }),
    ...(markValue && { mark: markValue }),
    ...(keepaliveMs && { keepaliveMs }),
    ...(maxConnections && { maxConnections }),
    ...(healthCheckMs && { healthCheckMs }),
    ...(transparent && { transparentSource: transparent }),
    ...(proxySocket && { proxySocket }),
    ...(acceptProxy && { acceptProxy }),
    source: problems.at(node.line),
  };
  const written = (listen?: Endpoint) => (target ? { written: { ...(listen && { listenHost: listen.host }), targetHosts: targets.map((t) => t.host) } } : {});

  const listenEntry = entryOf(entries, 'listen');
  const destinationEntry = entryOf(entries, 'destination');
  const portsEntry = entryOf(entries, 'ports');
  const interceptEntry = entryOf(entries, 'intercept');
  for (const key of ['interfaces', 'sources'] as const) {
    const entry = entryOf(entries, key);
    if (entry && !interceptEntry) problems.add(entry.line, where, `${key}: only goes with intercept:`);
  }
  if (proxySocket && listenEntry) {
    problems.add(targetEntry?.line, where, 'target: socket goes with intercept: or destination: (a listen rule has its own socket)');
  }
  if (acceptProxy && (interceptEntry || proxySocket)) {
    const why = interceptEntry ? 'intercepted connections come straight from their clients' : 'the other program reads what its connections carry';
    problems.add(entryOf(entries, 'accept_proxy')?.line, where, `accept_proxy: goes with listen: and destination: rules (${why}); remove it`);
  }
  if (proxySocket) {
    for (const key of ['transparent_source', 'proxy_protocol', 'source', 'mark', 'max_connections', 'health_check', 'balance'] as const) {
      const entry = entryOf(entries, key);
      if (entry) problems.add(entry.line, where, `${key}: does nothing with target: socket (the other program makes the upstream connections); remove it`);
    }
  }
  if (originalDestination && !interceptEntry) {
    problems.add(targetEntry?.line, where, 'target: original only goes with intercept: (a listen or destination rule has no other destination to go to)');
  }
  if (interceptEntry && (listenEntry || destinationEntry)) {
    problems.add(interceptEntry.line, where, 'intercept: takes the place of listen and destination; a rule does one of the three');
    return undefined;
  }
  if (interceptEntry) {
    const destinations = parsePrefixes(interceptEntry.value);
    for (const p of destinations.problems) problems.add(interceptEntry.value.line ?? interceptEntry.line, where, `intercept: ${p.replace('write e.g.', 'write destination prefixes, e.g.')}`);
    if (!portsEntry) problems.add(interceptEntry.line, where, 'ports: missing; interception needs ports, e.g. ports: 80 (or any)');
    const ports = portsEntry ? parsePorts(portsEntry.value) : { ranges: [], problems: [] };
    for (const p of ports.problems) problems.add(portsEntry?.value.line ?? portsEntry?.line, where, `ports: ${p}`);
    const interfacesEntry = entryOf(entries, 'interfaces');
    const interfaces = interfacesEntry ? parseInterfaces(interfacesEntry.value) : { names: [], problems: [] };
    for (const p of interfaces.problems) problems.add(interfacesEntry?.line, where, `interfaces: ${p}`);
    if (!interfacesEntry) problems.add(interceptEntry.line, where, 'interfaces: missing; name the interfaces the traffic arrives on, e.g. interfaces: [eth1]');
    const sourcesEntry = entryOf(entries, 'sources');
    const sources = sourcesEntry ? parsePrefixes(sourcesEntry.value) : { prefixes: [], problems: [] };
    for (const p of sources.problems) problems.add(sourcesEntry?.line, where, `sources: ${p.replace('write e.g.', 'write client prefixes, e.g.')}`);
    return problems.count === before
      ? {
          ...common,
          ...written(),
          kind: 'intercept',
          destinations: destinations.prefixes,
          ports: ports.ranges,
          interfaces: interfaces.names,
          sources: sources.prefixes,
          originalDestination,
        }
      : undefined;
  }
  if (listenEntry && destinationEntry) {
    problems.add(listenEntry.line, where, 'has both listen and destination; a rule either binds one address (listen) or steers prefixes (destination + ports)');
    return undefined;
  }
  if (listenEntry) {
    if (portsEntry) problems.add(portsEntry.line, where, 'ports: only goes with destination; with listen the port is part of the address');
    const listen = field(entries, 'listen', where, problems, parseEndpoint, undefined);
    return problems.count === before ? { ...common, ...written(listen), kind: 'listen', listen: listen! } : undefined;
  }
  if (destinationEntry) {
    const destinations = parsePrefixes(destinationEntry.value);
    for (const p of destinations.problems) problems.add(destinationEntry.value.line ?? destinationEntry.line, where, `destination: ${p}`);
    if (!portsEntry) problems.add(destinationEntry.line, where, 'ports: missing; steering needs ports, e.g. ports: 8080-8090 (or any)');
    const ports = portsEntry ? parsePorts(portsEntry.value) : { ranges: [], problems: [] };
    for (const p of ports.problems) problems.add(portsEntry?.value.line ?? portsEntry?.line, where, `ports: ${p}`);
    return problems.count === before
      ? { ...common, ...written(), kind: 'steer', destinations: destinations.prefixes, ports: ports.ranges }
      : undefined;
  }
  problems.add(node.line, where, 'needs listen: ADDRESS:PORT (bind it directly) or destination: PREFIX with ports: (steer with sk_lookup)');
  return undefined;
}

/** Two rules may not claim the same thing: a name, a listen address, or an identical match. */
function checkConflicts(rules: Rule[], lines: Map<Rule, number | undefined>, problems: Problems): void {
  const names = new Map<string, Rule>();
  const listens = new Map<string, Rule>();
  const matches = new Map<number | string, Map<number, Rule>>(); // prefix → port range → rule
  for (const rule of rules) {
    const where = `rule '${rule.name}': `;
    const line = lines.get(rule);
    const sameName = names.get(rule.name);
    if (sameName) problems.add(line, where, `name is already used by the rule at ${sameName.source}; names must be unique`);
    else names.set(rule.name, rule);

    if (rule.kind === 'intercept') continue; // overlaps resolve like destination rules', per interface
    if (rule.kind === 'listen') {
      const key = `${rule.listen.host.toLowerCase()}|${rule.listen.port}`;
      const other = listens.get(key);
      if (other) problems.add(line, where, `listen: ${rule.listen.host}:${rule.listen.port} is already taken by rule '${other.name}'; pick another port`);
      else listens.set(key, rule);
      continue;
    }
    for (const prefix of rule.destinations) {
      for (const range of rule.ports) {
        const key = prefixKey(IPPROTO_TCP, prefix);
        const byRange = matches.get(key) ?? matches.set(key, new Map()).get(key)!;
        const other = byRange.get(range.lo * 65536 + range.hi);
        if (other && other !== rule) {
          problems.add(
            line,
            where,
            `destination ${formatPrefix(prefix)} ports ${formatRange(range)} is exactly what rule '${other.name}' matches; remove one or make one narrower`,
          );
        } else byRange.set(range.lo * 65536 + range.hi, rule);
      }
    }
  }
}

/** Validate a parsed config; throws ERR_BPFREDIR_CONFIG listing every problem. */
export function validateConfig(tree: TreeNode | null, file: string): Config {
  const problems = new Problems(file);
  const fail = () => new BpfredirError('ERR_BPFREDIR_CONFIG', problems.lines);
  if (!tree || tree.kind !== 'map') {
    problems.add(tree?.line, '', 'expected a map with rules: (see deploy/example.yaml)');
    throw fail();
  }
  const entries = tree.entries;
  checkKeys(entries, TOP_KEYS, '', problems);
  const datapath = field(entries, 'datapath', '', problems, oneOf(DATAPATHS), DEFAULTS.datapath);
  const threads = field(entries, 'threads', '', problems, threadCount, DEFAULTS.threads);
  const budgetBytes = field(entries, 'budget', '', problems, sizeUpTo(MAX_BUDGET, '4MiB, or 0 for unlimited'), DEFAULTS.budgetBytes);
  const sndbufBytes = field(entries, 'sndbuf', '', problems, sizeUpTo(MAX_SNDBUF, '4MiB, or 0 to autotune'), DEFAULTS.sndbufBytes);
  const spliceAfterBytes = field(entries, 'splice_after', '', problems, sizeUpTo(MAX_SPLICE_AFTER, '64KiB, or 0 to splice at once'), DEFAULTS.spliceAfterBytes);
  const bulkFlows = field(entries, 'bulk_flows', '', problems, oneOf(BULK_FLOWS), DEFAULTS.bulkFlows);
  const metricsListen = field(entries, 'metrics', '', problems, metricsAddress, undefined);
  const acl = sourceLists(entries, '', problems);
  const accessLogPath = field(entries, 'access_log', '', problems, filePath, undefined);
  const accessLogFormat = field(entries, 'access_log_format', '', problems, oneOf(ACCESS_LOG_FORMATS), 'rinetd' as AccessLogFormat);
  const pidFile = field(entries, 'pid_file', '', problems, filePath, undefined);
  const resolveIntervalMs = field(entries, 'resolve_interval', '', problems, duration({ allowZero: true, example: '60s, or 0 for only at load' }), DEFAULTS.resolveIntervalMs);
  const formatEntry = entryOf(entries, 'access_log_format');
  if (formatEntry && !accessLogPath) problems.add(formatEntry.line, '', 'access_log_format: goes with access_log: PATH, which is missing');
  const defaults: RuleDefaults = {
    connectTimeoutMs: field(entries, 'connect_timeout', '', problems, connectTimeout, DEFAULTS.connectTimeoutMs),
    idleTimeoutMs: field(entries, 'idle_timeout', '', problems, idleTimeout, DEFAULTS.idleTimeoutMs),
    keepaliveMs: field(entries, 'keepalive', '', problems, keepalive, DEFAULTS.keepaliveMs),
  };

  const rulesEntry = entryOf(entries, 'rules');
  const rules: Rule[] = [];
  const ruleLines = new Map<Rule, number | undefined>();
  if (!rulesEntry || rulesEntry.value.kind !== 'seq' || rulesEntry.value.items.length === 0) {
    problems.add(rulesEntry?.line ?? tree.line, '', 'rules: needs a list of at least one rule (see deploy/example.yaml)');
  } else {
    rulesEntry.value.items.forEach((node, i) => {
      const rule = validateRule(node, i, defaults, problems);
      if (!rule) return;
      rules.push(rule);
      ruleLines.set(rule, node.line);
    });
  }
  if (rules.length > MAX_RULE_ID) {
    problems.add(rulesEntry?.line, '', `rules: ${rules.length} rules, at most ${MAX_RULE_ID} fit the kernel's rule table; merge rules that share a target (destination takes a list)`);
  }
  checkConflicts(rules, ruleLines, problems);
  const interception = interceptionSettings(entries, problems);
  if (problems.count) throw fail();
  return {
    datapath,
    threads,
    budgetBytes,
    sndbufBytes,
    spliceAfterBytes,
    bulkFlows,
    ...(metricsListen && { metricsListen }),
    ...(acl && { acl }),
    ...(accessLogPath && { accessLog: { path: accessLogPath, format: accessLogFormat } }),
    ...(pidFile && { pidFile }),
    resolveIntervalMs,
    interception,
    rules,
    source: file,
  };
}
