/**
 * Configs that send bpfredir's own upstream connections back to bpfredir,
 * which connects again, and again, until file descriptors run out.
 *
 * Steering loops: a steering rule covers a rule's target, so sk_lookup steers
 * the upstream connect back to bpfredir. The steerer is found with
 * the precedence the kernel and the compiler apply together (longest prefix,
 * then narrowest port range, then the earlier rule), straight from the rules:
 * compiling the whole table here cost ~0.4 s at 100k entries.
 *
 * Listen loops: a rule's target is where a listen rule listens (its address,
 * or any local address for a wildcard), whose target leads on, back round.
 */
import { formatEndpoint } from '../config/fields.js';
import type { Config, Endpoint, ListenRule, SteerRule } from '../config/types.js';
import { BpfredirError } from '../errors.js';
import { IPV4_ANY, IPV6_ANY, addressBytes, isIpv4Mapped, samePrefixBits, type Prefix } from './ip.js';
import { rangeWidth } from './ports.js';

/** 16 bytes of a resolved address, or undefined for a name not resolved yet. */
function bytesOf(host: string): Buffer | undefined {
  try {
    return addressBytes(host);
  } catch {
    return undefined;
  }
}

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
    for (const target of rule.targets) {
      const addr = bytesOf(target.host);
      if (!addr) continue; // not resolved yet: nothing to compare
      const key = `${addr.toString('hex')}:${target.port}`;
      if (!steererByTarget.has(key)) steererByTarget.set(key, steererOf(steerRules, addr, target.port));
      const steerer = steererByTarget.get(key);
      if (!steerer) continue;
      problems.push(
        `${rule.source}: rule '${rule.name}': target ${formatEndpoint(target)} is steered by rule '${steerer.name}' back to bpfredir, which would connect to it again in a loop; narrow '${steerer.name}' (destination or ports) so it leaves the target out`,
      );
    }
  }
  return problems;
}

/** Where connect() goes: to 0.0.0.0 or :: means to this host's loopback. */
function connectAddress(host: string): Buffer | undefined {
  const addr = bytesOf(host);
  if (addr?.equals(IPV4_ANY)) return addressBytes('127.0.0.1');
  if (addr?.equals(IPV6_ANY)) return addressBytes('::1');
  return addr;
}

/**
 * Whether a wildcard listen rule takes connections to this local address:
 * 0.0.0.0 takes IPv4, [::] IPv6 and, bound dual-stack as the daemon binds
 * exactly '::', IPv4 too.
 */
function wildcardTakes(rule: ListenRule, addr: Buffer): boolean {
  const listen = bytesOf(rule.listen.host);
  if (listen?.equals(IPV4_ANY)) return isIpv4Mapped(addr);
  if (listen?.equals(IPV6_ANY)) return rule.listen.host === '::' || !isIpv4Mapped(addr);
  return false;
}

/** The listen rule bpfredir's own connection to a target reaches: the exact address first, as the kernel picks. */
function listenRuleReached(listenRules: readonly ListenRule[], localPrefixes: readonly Prefix[]): (target: Endpoint) => ListenRule | undefined {
  const exact = new Map<string, ListenRule>(); // "addr hex:port", indexed: configs can hold 100k rules
  const wildcards = new Map<number, ListenRule[]>(); // port → 0.0.0.0 and [::] rules
  for (const rule of listenRules) {
    const addr = bytesOf(rule.listen.host);
    if (!addr) continue;
    if (addr.equals(IPV4_ANY) || addr.equals(IPV6_ANY)) wildcards.set(rule.listen.port, [...(wildcards.get(rule.listen.port) ?? []), rule]);
    const key = `${addr.toString('hex')}:${rule.listen.port}`;
    if (!exact.has(key)) exact.set(key, rule);
  }
  const isLocal = (addr: Buffer) => localPrefixes.some((p) => samePrefixBits(p.addr, addr, p.len));
  return (target) => {
    const addr = connectAddress(target.host);
    if (!addr) return undefined;
    const wild = wildcards.get(target.port);
    return exact.get(`${addr.toString('hex')}:${target.port}`) ?? (wild && isLocal(addr) ? wild.find((r) => wildcardTakes(r, addr)) : undefined);
  };
}

type Reach = (target: Endpoint) => ListenRule | undefined;

/** One line for a cycle of listen rules, located at its first rule in the config. */
function describeCycle(cycle: ListenRule[], position: ReadonlyMap<ListenRule, number>, reach: Reach): string {
  const start = cycle.indexOf(cycle.reduce((a, b) => (position.get(a)! <= position.get(b)! ? a : b)));
  const rules = [...cycle.slice(start), ...cycle.slice(0, start)];
  const first = rules[0]!;
  const reached = rules[1] ?? first;
  const target = first.targets.find((t) => reach(t) === reached)!;
  const exact = bytesOf(reached.listen.host)!.equals(connectAddress(target.host)!);
  const listen = `${formatEndpoint(reached.listen)}${exact ? '' : ', which takes every local address'}`;
  const opening = `${first.source}: rule '${first.name}': target ${formatEndpoint(target)}`;
  const outcome = 'so each connection would open another until file descriptors run out';
  if (rules.length === 1) return `${opening} reaches the rule's own listen ${listen}, ${outcome}; point target at the real service`;
  const round = [...rules, first].map((r) => r.name).join(' → ');
  return `${opening} reaches rule '${reached.name}' (listen ${listen}), and the targets go round ${round}, ${outcome}; point one of these targets at the real service`;
}

/**
 * One line per cycle of listen rules whose targets lead back to themselves
 * (a → a, a → b → a, ...; any of a rule's targets counts: failover may take
 * it), after host names are resolved. A chain that ends elsewhere is fine.
 */
export function listenLoops(config: Config, localPrefixes: readonly Prefix[]): string[] {
  const listenRules = config.rules.filter((r): r is ListenRule => r.kind === 'listen');
  const reach = listenRuleReached(listenRules, localPrefixes);
  const position = new Map(listenRules.map((r, i) => [r, i]));
  const successors = new Map(listenRules.map((r) => [r, r.targets.map(reach).filter((n): n is ListenRule => n !== undefined)]));
  const problems: string[] = [];
  const reported = new Set<string>();
  const state = new Map<ListenRule, 'open' | 'done'>();
  // Depth first, without recursion (configs can hold 100k rules): an edge back onto the path closes a cycle.
  for (const start of listenRules) {
    if (state.has(start)) continue;
    const path: { rule: ListenRule; next: number }[] = [{ rule: start, next: 0 }];
    state.set(start, 'open');
    while (path.length > 0) {
      const top = path[path.length - 1]!;
      const succ = successors.get(top.rule)!;
      if (top.next === succ.length) {
        state.set(top.rule, 'done');
        path.pop();
        continue;
      }
      const n = succ[top.next++]!;
      if (!state.has(n)) {
        state.set(n, 'open');
        path.push({ rule: n, next: 0 });
      } else if (state.get(n) === 'open') {
        const cycle = path.slice(path.findIndex((p) => p.rule === n)).map((p) => p.rule);
        const key = cycle.map((r) => r.name).sort().join(' ');
        if (!reported.has(key)) problems.push(describeCycle(cycle, position, reach));
        reported.add(key);
      }
    }
  }
  return problems;
}

/** Throws ERR_BPFREDIR_CONFIG listing every loop of either kind; applies nothing. */
export function rejectLoops(config: Config, localPrefixes: readonly Prefix[]): Config {
  const problems = [...steeringLoops(config), ...listenLoops(config, localPrefixes)];
  if (problems.length > 0) throw new BpfredirError('ERR_BPFREDIR_CONFIG', problems);
  return config;
}
