/** What status, rules, conns and reload print without --json: aligned columns for people. Pure. */
import type { ConnectionReport, RuleReport, SourceLists, StatusReport } from '../admin/types.js';

interface Column<T> {
  header: string;
  value: (row: T) => string;
  /** Numbers line up on the right. */
  right?: boolean;
}

/** Columns two spaces apart, each as wide as its widest cell; no trailing blanks. */
function table<T>(columns: readonly Column<T>[], rows: readonly T[]): string {
  const cells = [columns.map((c) => c.header), ...rows.map((row) => columns.map((c) => c.value(row)))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i]!.length)));
  return cells
    .map((line) => line.map((cell, i) => (columns[i]!.right ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd())
    .join('\n');
}

/** 512B, 1.5KiB, 12MiB: three significant digits at most. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${Number(value.toFixed(digits))}${units[unit]}`;
}

/** 42s, 3m12s, 2h05m, 3d04h: the two largest units. */
export function formatAge(ms: number): string {
  const s = Math.floor(ms / 1000);
  const two = (n: number) => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d${two(Math.floor(s / 3600) % 24)}h`;
}

function counts(byName: Record<string, number>): string {
  const entries = Object.entries(byName);
  const total = entries.reduce((sum, [, n]) => sum + n, 0);
  return entries.length ? `${total} (${entries.map(([name, n]) => `${name} ${n}`).join(', ')})` : `${total}`;
}

function targetsLine(t: NonNullable<StatusReport['targets']>): string {
  const out = [t.ejected && `${t.ejected} ejected after failed connects`, t.down && `${t.down} down by health checks`].filter(Boolean);
  return `${t.total}${out.length ? ` (${out.join(', ')})` : ', all taking connections'}`;
}

function lastReload(report: StatusReport): string {
  const last = report.lastReload;
  if (!last) return 'never';
  return last.ok ? `ok at ${last.at}` : `refused at ${last.at}: ${last.error ?? 'no reason given'}`;
}

export function statusText(report: StatusReport, now = Date.now()): string {
  const features = Object.entries(report.features).map(([name, on]) => `${name} ${on ? 'yes' : 'no'}`);
  const fields: [string, string][] = [
    ['version', `${report.version} (pid ${report.pid}, up ${formatAge(now - Date.parse(report.startedAt))})`],
    ['datapath', `${report.datapath.name}: ${report.datapath.reason}`],
    ['kernel', features.join(', ') || 'not probed'],
    ['threads', String(report.threads)],
    ['rules', String(report.rules)],
    ...(report.targets ? [['targets', targetsLine(report.targets)] as [string, string]] : []),
    ['sources', `${sourcesText(report.sources)}${report.sources ? ' (every rule, on top of its own)' : ''}`],
    ...(report.interception ? [['interception', interceptionText(report.interception)] as [string, string]] : []),
    ['connections', counts(report.connections)],
    ['pauses', `${report.pauses.now} now, ${report.pauses.total} since start`],
    ['last reload', lastReload(report)],
  ];
  const width = Math.max(...fields.map(([name]) => name.length));
  return fields.map(([name, value]) => `${name.padEnd(width)}  ${value}`).join('\n');
}

/** What bpfredir changed on the box for interception, so an operator can find it with ip and bpftool. */
function interceptionText(i: NonNullable<StatusReport['interception']>): string {
  const interfaces = i.interfaces.map((f) => `${f.name}${f.role === 'return' ? ' (replies)' : ''}`).join(', ');
  return `TC ingress on ${interfaces || 'no interface'}; ip rule ${i.priority}: fwmark ${i.mark}/${i.mark} lookup ${i.table} (IPv4 and IPv6); table ${i.table}: local default dev lo; ${i.entries} trie entries`;
}

/** "allow 10.0.0.0/8; deny 10.0.5.0/24", or "any" without lists. */
export function sourcesText(lists: SourceLists | undefined): string {
  if (!lists) return 'any';
  const parts = [lists.allow.length ? `allow ${lists.allow.join(',')}` : '', lists.deny.length ? `deny ${lists.deny.join(',')}` : ''];
  return parts.filter(Boolean).join('; ');
}

function ruleMatch(rule: RuleReport): string {
  const m = rule.match;
  if (m?.interfaces) return `${m.destinations.join(',')} ports ${m.ports.join(',')} in ${m.interfaces.join(',')}${m.sources ? ` from ${m.sources.join(',')}` : ''}`;
  if (m) return `${m.destinations.join(',')} ports ${m.ports.join(',')}`;
  return rule.listen ?? '';
}

export function rulesText(rules: readonly RuleReport[]): string {
  if (rules.length === 0) return 'no rules';
  return table<RuleReport>(
    [
      { header: 'RULE', value: (r) => r.name },
      { header: 'ID', value: (r) => String(r.ruleId), right: true },
      { header: 'KIND', value: (r) => r.kind },
      { header: 'MATCH', value: ruleMatch },
      { header: 'SOURCES', value: (r) => sourcesText(r.sources) + (r.acceptProxy ? `; PROXY from ${r.acceptProxy.join(',')}` : '') },
      { header: 'TARGET', value: (r) => r.target },
      { header: 'SOCKET', value: (r) => r.address },
    ],
    rules,
  );
}

export function connsText(conns: readonly ConnectionReport[]): string {
  if (conns.length === 0) return 'no open connections';
  return table<ConnectionReport>(
    [
      { header: 'RULE', value: (c) => c.rule },
      { header: 'CLIENT', value: (c) => c.client },
      { header: 'DESTINATION', value: (c) => c.originalDestination },
      { header: 'UPSTREAM', value: (c) => c.upstream },
      { header: 'DATAPATH', value: (c) => c.datapath },
      { header: 'TO UPSTREAM', value: (c) => formatBytes(c.bytesToUpstream), right: true },
      { header: 'TO CLIENT', value: (c) => formatBytes(c.bytesToClient), right: true },
      { header: 'AGE', value: (c) => formatAge(c.ageMs), right: true },
    ],
    conns,
  );
}

export function reloadText(changes: readonly string[]): string {
  if (changes.length === 0) return 'reloaded: no changes';
  return [`reloaded: ${changes.length} change${changes.length === 1 ? '' : 's'}`, ...changes.map((c) => `  ${c}`)].join('\n');
}
