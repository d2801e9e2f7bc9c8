/**
 * Steering rules that cover a port something already listens on, whether a
 * socket in this netns or one of the config's own listen rules. sk_lookup
 * runs before the normal listener lookup, so the rule wins and the listener
 * stops getting those connections (think sshd under a wide rule).
 */
import type { Config, SteerRule } from '../config/types.js';
import type { TcpListener } from '../config/proc-listeners.js';
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

/** One warning line per (steering rule, listener) pair where the rule takes the listener's port. */
export function listenerConflictWarnings(config: Config, systemListeners: readonly TcpListener[]): string[] {
  const steerRules = config.rules.filter((r): r is SteerRule => r.kind === 'steer');
  const warnings: string[] = [];
  for (const listener of [...systemListeners, ...ownListeners(config)]) {
    for (const rule of steerRules) {
      if (!rule.ports.some((r) => r.lo <= listener.port && listener.port <= r.hi)) continue;
      const prefix = rule.destinations.find((p) => reaches(listener, p));
      if (!prefix) continue;
      warnings.push(
        `${rule.source}: warning: rule '${rule.name}' steers ${formatPrefix(prefix)} port ${listener.port}, where ${listener.text} already listens; sk_lookup runs first, so that listener stops getting those connections`,
      );
    }
  }
  return warnings;
}
