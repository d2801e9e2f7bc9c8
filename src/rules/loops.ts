/**
 * A steering rule that covers a rule's own target makes a loop: the proxy's
 * upstream connect is a new connection too, sk_lookup steers it back to
 * bpfredir, which connects again, until fds run out. The steerer is found with
 * the precedence the kernel and the compiler apply together (longest prefix,
 * then narrowest port range, then the earlier rule), straight from the rules:
 * compiling the whole table here cost ~0.4 s at 100k entries.
 */
import type { Config, SteerRule } from '../config/types.js';
import { BpfredirError } from '../errors.js';
import { addressBytes, samePrefixBits } from './ip.js';
import { rangeWidth } from './ports.js';

/** The steering rule that would take a connection to addr:port, if any. */
function steererOf(rules: readonly SteerRule[], addr: Buffer, port: number): SteerRule | undefined {
  let best: SteerRule | undefined;
  let bestLen = -1;
  let bestWidth = Infinity;
  for (const rule of rules) {
    const range = rule.ports.find((r) => r.lo <= port && port <= r.hi);
    if (!range) continue;
    const width = rangeWidth(range);
    for (const prefix of rule.destinations) {
      // Strictly better only: at a tie the earlier rule keeps the port.
      if (prefix.len < bestLen || (prefix.len === bestLen && width >= bestWidth)) continue;
      if (!samePrefixBits(prefix.addr, addr, prefix.len)) continue;
      best = rule;
      bestLen = prefix.len;
      bestWidth = width;
    }
  }
  return best;
}

/** One line per rule whose target its own config would steer back to bpfredir. */
export function steeringLoops(config: Config): string[] {
  const steerRules = config.rules.filter((r): r is SteerRule => r.kind === 'steer');
  if (steerRules.length === 0) return [];
  const steererByTarget = new Map<string, SteerRule | undefined>();
  const problems: string[] = [];
  for (const rule of config.rules) {
    const { host, port } = rule.target;
    let addr: Buffer;
    try {
      addr = addressBytes(host);
    } catch {
      continue; // not resolved yet: nothing to compare
    }
    const key = `${addr.toString('hex')}:${port}`;
    if (!steererByTarget.has(key)) steererByTarget.set(key, steererOf(steerRules, addr, port));
    const steerer = steererByTarget.get(key);
    if (!steerer) continue;
    const target = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    problems.push(
      `${rule.source}: rule '${rule.name}': target ${target} is steered by rule '${steerer.name}' back to bpfredir, which would connect to it again in a loop; narrow '${steerer.name}' (destination or ports) so it leaves the target out`,
    );
  }
  return problems;
}

/** Throws ERR_BPFREDIR_CONFIG listing every loop; applies nothing. */
export function rejectSteeringLoops(config: Config): Config {
  const problems = steeringLoops(config);
  if (problems.length > 0) throw new BpfredirError('ERR_BPFREDIR_CONFIG', problems);
  return config;
}
