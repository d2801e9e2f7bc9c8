/**
 * What a reload changes: the running config against the new one, rule by rule,
 * matched by name. Pure; the daemon carries it out (docs/ARCHITECTURE.md, Reload).
 */
import { hex } from '../interception.js';
import type { Config, Endpoint, Rule } from '../config/types.js';
import { formatEndpoint } from '../config/fields.js';

export interface RuleDiff {
  added: Rule[];
  removed: Rule[];
  /** Same kind and listen address, something else differs: the listener is updated in place
   *  (target, timeouts) and, for steering rules, the trie diffed. */
  changed: Rule[];
  /** A new listen address, or steering ↔ listen: a new listener replaces the old one. */
  moved: { from: Rule; to: Rule }[];
  unchanged: Rule[];
  /** Settings that differ but only take effect after a restart, e.g. "threads: 2 → 4". */
  restartNeeded: string[];
}

/** Global settings the listeners and the engine are built with. */
const RESTART_SETTINGS = ['datapath', 'threads', 'budgetBytes', 'sndbufBytes', 'spliceAfterBytes', 'bulkFlows', 'pidFile'] as const;
const SETTING_NAMES: Record<(typeof RESTART_SETTINGS)[number], string> = {
  datapath: 'datapath',
  threads: 'threads',
  budgetBytes: 'budget',
  sndbufBytes: 'sndbuf',
  spliceAfterBytes: 'splice_after',
  bulkFlows: 'bulk_flows',
  pidFile: 'pid_file',
};

export const sameEndpoint = (a: Endpoint, b: Endpoint): boolean => a.host === b.host && a.port === b.port;

/** Everything but where the rule came from (a rule moved down the file is the same rule). */
function sameRule(a: Rule, b: Rule): boolean {
  const { source: _a, ...left } = a;
  const { source: _b, ...right } = b;
  return JSON.stringify(left) === JSON.stringify(right);
}

function sameListener(a: Rule, b: Rule): boolean {
  // Whether connections start with a PROXY header is the listener's own setting (its trusted peers are lists).
  if (!a.acceptProxy !== !b.acceptProxy) return false;
  // Another program's socket is the rule's listener: a different one is a new listener.
  if (a.proxySocket || b.proxySocket) return a.kind === b.kind && !!a.proxySocket && !!b.proxySocket && sameEndpoint(a.proxySocket, b.proxySocket);
  if (a.kind === 'intercept' || b.kind === 'intercept') {
    // Where connections go (the original destination or targets) is the listener's own setting.
    return a.kind === 'intercept' && b.kind === 'intercept' && a.originalDestination === b.originalDestination;
  }
  if (a.kind === 'steer' || b.kind === 'steer') return a.kind === b.kind;
  return sameEndpoint(a.listen, b.listen);
}

export function diffRules(running: Config, next: Config): RuleDiff {
  const before = new Map(running.rules.map((r) => [r.name, r]));
  const diff: RuleDiff = { added: [], removed: [], changed: [], moved: [], unchanged: [], restartNeeded: [] };
  for (const rule of next.rules) {
    const old = before.get(rule.name);
    if (!old) diff.added.push(rule);
    else if (sameRule(old, rule)) diff.unchanged.push(rule);
    else if (sameListener(old, rule)) diff.changed.push(rule);
    else diff.moved.push({ from: old, to: rule });
  }
  const kept = new Set(next.rules.map((r) => r.name));
  diff.removed = running.rules.filter((r) => !kept.has(r.name));
  for (const key of RESTART_SETTINGS) {
    if (running[key] !== next[key]) diff.restartNeeded.push(`${SETTING_NAMES[key]}: ${running[key]} → ${next[key]}`);
  }
  const routing = (c: Config) => `mark ${hex(c.interception.mark)}, table ${c.interception.table}, priority ${c.interception.priority}`;
  if (routing(running) !== routing(next)) diff.restartNeeded.push(`interception: ${routing(running)} → ${routing(next)}`);
  const metrics = (c: Config) => (c.metricsListen ? formatEndpoint(c.metricsListen) : 'none');
  if (metrics(running) !== metrics(next)) diff.restartNeeded.push(`metrics: ${metrics(running)} → ${metrics(next)}`);
  return diff;
}
