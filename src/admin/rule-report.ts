/** A rule as `bpfredir rules` shows it, from the validated config and the rule's socket. Pure. */
import { formatEndpoint } from '../config/fields.js';
import type { Acl, Rule } from '../config/types.js';
import { formatPrefix } from '../rules/ip.js';
import { formatRange } from '../rules/ports.js';
import type { RuleReport, SourceLists } from './types.js';

/** allow/deny lists for the admin socket; undefined when there are none. */
export function sourceLists(acl: Acl | undefined): SourceLists | undefined {
  if (!acl || (acl.allow.length === 0 && acl.deny.length === 0)) return undefined;
  return { allow: acl.allow.map(formatPrefix), deny: acl.deny.map(formatPrefix) };
}

/** The rule's target as the config writes it. */
function targetText(rule: Rule): string {
  if (rule.proxySocket) return `socket ${formatEndpoint(rule.proxySocket)}`;
  if (rule.kind === 'intercept' && rule.originalDestination) return 'original';
  return rule.targets.map(formatEndpoint).join(',');
}

/** address: what the rule's socket is bound to (the daemon's listener address). */
export function ruleReport(rule: Rule, ruleId: number, address: string): RuleReport {
  const sources = sourceLists(rule.acl);
  const common = { name: rule.name, ruleId, kind: rule.kind, target: targetText(rule), ...(rule.targets.length > 1 && { balance: rule.balance }), address, ...(sources && { sources }), ...(rule.acceptProxy && { acceptProxy: rule.acceptProxy.map(formatPrefix) }) };
  if (rule.kind === 'listen') return { ...common, listen: formatEndpoint(rule.listen) };
  const match = { destinations: rule.destinations.map(formatPrefix), ports: rule.ports.map(formatRange) };
  if (rule.kind === 'steer') return { ...common, match };
  return { ...common, match: { ...match, interfaces: rule.interfaces, ...(rule.sources.length && { sources: rule.sources.map(formatPrefix) }) } };
}
