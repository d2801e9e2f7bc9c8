/** A rule as `bpfredir rules` shows it, from the validated config and the rule's socket. Pure. */
import { formatEndpoint } from '../config/fields.js';
import type { Rule } from '../config/types.js';
import { formatPrefix } from '../rules/ip.js';
import { formatRange } from '../rules/ports.js';
import type { RuleReport } from './types.js';

/** address: what the rule's socket is bound to (the daemon's listener address). */
export function ruleReport(rule: Rule, ruleId: number, address: string): RuleReport {
  const common = { name: rule.name, ruleId, kind: rule.kind, target: formatEndpoint(rule.target), address };
  if (rule.kind === 'listen') return { ...common, listen: formatEndpoint(rule.listen) };
  return { ...common, match: { destinations: rule.destinations.map(formatPrefix), ports: rule.ports.map(formatRange) } };
}
