/**
 * Steering rules that cover a port something already listens on, whether a
 * socket in this netns or one of the config's own listen rules, or a
 * well-known service port, whose service may simply not run at check time.
 * sk_lookup runs before the normal listener lookup, so the rule wins and the
 * listener stops getting those connections (think sshd under a wide rule).
 */
import type { Config, SteerRule } from '../config/types.js';
import type { TcpListener } from '../config/proc-listeners.js';
import { ANY_PORT, formatRange, type PortRange } from './ports.js';
import { IPV4_ANY, IPV4_MAPPED_PREFIX_BITS, IPV6_ANY, addressBytes, formatPrefix, samePrefixBits, type Prefix } from './ip.js';

/** Whether connections to the prefix could have reached this listener. */
function reaches(listener: TcpListener, prefix: Prefix): boolean {
  // [::] takes IPv6 and (unless v6only) IPv4: any prefix.
  if (listener.addr.equals(IPV6_ANY)) return true;
  // 0.0.0.0 takes all IPv4: prefixes that overlap ::ffff:0:0/96.
  if (listener.addr.equals(IPV4_ANY)) return samePrefixBits(prefix.addr, IPV4_ANY, Math.min(prefix.len, IPV4_MAPPED_PREFIX_BITS));
  return samePrefixBits(listener.addr, prefix.addr, prefix.len);
}

/** The config's own listen rules, as the listeners they will become. */
function ownListeners(config: Config): TcpListener[] {
  return config.rules.flatMap((rule) =>
    rule.kind === 'listen'
      ? [{ addr: addressBytes(rule.listen.host), port: rule.listen.port, family: rule.listen.host.includes(':') ? 6 : 4, text: `rule '${rule.name}'` } as const]
      : [],
  );
}

type WellKnown = PortRange & { service: string };

/**
 * Services a steering rule cuts off although nothing listens at check time:
 * remote access (ssh), name resolution, mail, the web, databases, routing and
 * a Kubernetes node's control plane. Short on purpose: each line should matter.
 */
const WELL_KNOWN_PORTS: readonly WellKnown[] = (
  [
    [22, 22, 'ssh'], [25, 25, 'smtp'], [53, 53, 'dns'], [80, 80, 'http'], [110, 110, 'pop3'], [143, 143, 'imap'], [179, 179, 'bgp'], [443, 443, 'https'],
    [2379, 2380, 'etcd'], [3306, 3306, 'mysql'], [5432, 5432, 'postgresql'], [6443, 6443, 'kube-apiserver'], [10250, 10250, 'kubelet'],
  ] as const
).map(([lo, hi, service]) => ({ lo, hi, service }));

const CUT_OFF = "services there, running now or started later, get no connections to the rule's destinations (sk_lookup runs first)";

/** One line per steering rule over well-known ports, leaving out the ports a listener warning already named. */
function wellKnownPortWarnings(rule: SteerRule, named: ReadonlySet<number>): string[] {
  const list = (ports: readonly WellKnown[]) => ports.map((p) => `${formatRange(p)} ${p.service}`).join(', ');
  if (rule.ports.some((r) => r.lo <= 1 && r.hi === ANY_PORT.hi)) {
    return [`${rule.source}: warning: rule '${rule.name}' steers every port, the well-known ones too (${list(WELL_KNOWN_PORTS)}): ${CUT_OFF}; list only the ports it should take`];
  }
  const covered = WELL_KNOWN_PORTS.filter((p) => rule.ports.some((r) => r.lo <= p.hi && p.lo <= r.hi) && !named.has(p.lo) && !named.has(p.hi));
  if (covered.length === 0) return [];
  const [ports, them] = covered.length === 1 ? ['port', 'it'] : ['ports', 'them'];
  return [`${rule.source}: warning: rule '${rule.name}' steers well-known ${ports} ${list(covered)}: ${CUT_OFF}; leave ${them} out of ports unless that is the point`];
}

/**
 * One warning line per (steering rule, listener) pair where the rule takes the
 * listener's port, then one per rule over well-known ports.
 */
export function listenerConflictWarnings(config: Config, systemListeners: readonly TcpListener[]): string[] {
  const steerRules = config.rules.filter((r): r is SteerRule => r.kind === 'steer');
  const warnings: string[] = [];
  const named = new Map(steerRules.map((rule) => [rule, new Set<number>()]));
  for (const listener of [...systemListeners, ...ownListeners(config)]) {
    for (const rule of steerRules) {
      if (!rule.ports.some((r) => r.lo <= listener.port && listener.port <= r.hi)) continue;
      const prefix = rule.destinations.find((p) => reaches(listener, p));
      if (!prefix) continue;
      warnings.push(
        `${rule.source}: warning: rule '${rule.name}' steers ${formatPrefix(prefix)} port ${listener.port}, where ${listener.text} already listens; sk_lookup runs first, so that listener stops getting those connections`,
      );
      named.get(rule)!.add(listener.port);
    }
  }
  for (const rule of steerRules) warnings.push(...wellKnownPortWarnings(rule, named.get(rule)!));
  return warnings;
}

/**
 * A transparent-source rule that no intercept rule's interfaces or
 * return_interfaces serve: its servers' replies reach this machine only if
 * they are routed to it as local traffic (a local route for the clients'
 * addresses, say). Legitimate, so a warning; a connect that times out says the same.
 */
export function returnPathWarnings(config: Config): string[] {
  if (config.interception.returnInterfaces.length) return [];
  return config.rules
    .filter((r) => r.transparentSource && r.kind !== 'intercept')
    .map((r) => `${r.source}: warning: rule '${r.name}' connects from its clients' addresses (transparent_source), and no interception: return_interfaces are named; its servers' replies are delivered here only if the clients' addresses are routed locally, otherwise name the interfaces they arrive on, e.g. interception: return_interfaces: [eth1]`);
}

/** Everything check and run warn about: listeners a steering rule takes, and return paths. */
export function configWarnings(config: Config, systemListeners: readonly TcpListener[]): string[] {
  return [...listenerConflictWarnings(config, systemListeners), ...returnPathWarnings(config)];
}
