/** What `bpfredir check` prints: the compiled bindings per rule, and warnings. Pure. */
import { formatEndpoint as endpoint } from '../config/fields.js';
import { sourceLists } from '../admin/rule-report.js';
import type { Acl, Config, Rule } from '../config/types.js';
import { sourcesText } from './admin-text.js';
import type { TcpListener } from '../config/proc-listeners.js';
import { compileBindings, type Binding } from '../rules/compile.js';
import { configWarnings } from '../rules/conflicts.js';
import { formatPrefix } from '../rules/ip.js';
import { blockRange, formatRange } from '../rules/ports.js';
import type { SteerRule } from '../config/types.js';

/** Bindings listed per rule before "… and N more". */
const SHOWN_BINDINGS = 8;

function duration(ms: number): string {
  if (ms === 0) return 'never';
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

function size(bytes: number): string {
  for (const [unit, scale] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (bytes >= scale && bytes % scale === 0) return `${bytes / scale}${unit}`;
  }
  return `${bytes}B`;
}

function describeBinding(b: Binding): string {
  return `${formatPrefix(b.prefix)} port ${formatRange(blockRange(b))} (${b.port}/${b.portBits})`;
}

/** "  sources: allow 10.0.0.0/8; deny 10.0.5.0/24 (in the kernel)", or nothing without lists. */
function sourcesLine(acl: Acl | undefined, who: string): string[] {
  const lists = sourceLists(acl);
  return lists ? [`  ${who}sources: ${sourcesText(lists)} (checked by sk_lookup before accept)`] : [];
}

/** The per-connection settings a rule has beyond its target and timeouts. */
function upstreamLine(rule: Rule): string[] {
  const parts = [
    rule.proxyProtocol && `PROXY protocol v${rule.proxyProtocol}`,
    rule.sourceAddress && `from ${rule.sourceAddress}`,
    rule.mark && `mark 0x${rule.mark.toString(16)}`,
    rule.keepaliveMs && `keepalive ${duration(rule.keepaliveMs)}`,
    rule.maxConnections && `at most ${rule.maxConnections} open`,
  ].filter(Boolean);
  return parts.length ? [`  upstream: ${parts.join(', ')}`] : [];
}

/** "10.0.0.5:80", or "10.0.0.5:80, 10.0.0.6:80 (round_robin)". */
function targetsText(rule: Rule): string {
  const list = rule.targets.map(endpoint).join(', ');
  return rule.targets.length > 1 ? `${list} (${rule.balance})` : list;
}

function describeRule(rule: Rule, id: number, bindings: Binding[]): string[] {
  const timeouts = `connect ${duration(rule.connectTimeoutMs)}, idle ${duration(rule.idleTimeoutMs)}`;
  const extra = [...sourcesLine(rule.acl, ''), ...upstreamLine(rule)];
  if (rule.kind === 'listen') {
    return [`rule '${rule.name}' (id ${id}): listen ${endpoint(rule.listen)} → ${targetsText(rule)} (${timeouts})`, ...extra];
  }
  const matches = `${rule.destinations.map(formatPrefix).join(', ')} ports ${rule.ports.map(formatRange).join(', ')}`;
  const lines = [`rule '${rule.name}' (id ${id}): steer tcp ${matches} → ${targetsText(rule)} (${timeouts})`, ...extra];
  const mine = bindings.filter((b) => b.ruleId === id);
  lines.push(`  ${mine.length} binding${mine.length === 1 ? '' : 's'}${mine.length ? ':' : ' (every port is taken by narrower rules)'}`);
  for (const b of mine.slice(0, SHOWN_BINDINGS)) lines.push(`    ${describeBinding(b)}`);
  if (mine.length > SHOWN_BINDINGS) lines.push(`    … and ${mine.length - SHOWN_BINDINGS} more`);
  return lines;
}

export interface CheckReport {
  lines: string[];
  warnings: string[];
}

export function checkReport(config: Config, ids: ReadonlyMap<string, number>, listeners: readonly TcpListener[]): CheckReport {
  const steerRules = config.rules.filter((r): r is SteerRule => r.kind === 'steer');
  const compiled = compileBindings(steerRules, ids);
  const lines = [
    `${config.source}: ${config.rules.length} rules, ${compiled.bindings.length} bindings, datapath ${config.datapath}, threads ${config.threads || 'auto'}, budget ${config.budgetBytes ? size(config.budgetBytes) : 'unlimited'}, sndbuf ${config.sndbufBytes ? size(config.sndbufBytes) : 'autotune'}`,
    ...sourcesLine(config.acl, 'every rule: ').map((l) => l.trimStart()),
    ...(config.accessLog ? [`access log: ${config.accessLog.path} (${config.accessLog.format} format)`] : []),
    ...config.rules.flatMap((r) => describeRule(r, ids.get(r.name)!, compiled.bindings)),
  ];
  return { lines, warnings: configWarnings(config, listeners) };
}
