/**
 * Steering rules that cover a port something already listens on. sk_lookup
 * runs before the normal listener lookup, so the rule wins and the listener
 * stops getting those connections (think sshd under a wide rule).
 */
import type { SteerRule } from '../config/types.js';
import type { TcpListener } from '../config/proc-listeners.js';
import { IPV4_MAPPED_PREFIX_BITS, addressBytes, samePrefixBits, type Prefix } from './ip.js';

export interface ListenerConflict {
  rule: SteerRule;
  prefix: Prefix;
  listener: TcpListener;
}

const IPV4_ANY = addressBytes('0.0.0.0');
const IPV6_ANY = addressBytes('::');

/** Whether connections to the prefix could have reached this listener. */
function reaches(listener: TcpListener, prefix: Prefix): boolean {
  // [::] takes IPv6 and (unless v6only) IPv4: any prefix.
  if (listener.addr.equals(IPV6_ANY)) return true;
  // 0.0.0.0 takes all IPv4: prefixes that overlap ::ffff:0:0/96.
  if (listener.addr.equals(IPV4_ANY)) return samePrefixBits(prefix.addr, IPV4_ANY, Math.min(prefix.len, IPV4_MAPPED_PREFIX_BITS));
  return samePrefixBits(listener.addr, prefix.addr, prefix.len);
}

export function findListenerConflicts(rules: readonly SteerRule[], listeners: readonly TcpListener[]): ListenerConflict[] {
  const conflicts: ListenerConflict[] = [];
  for (const rule of rules) {
    for (const listener of listeners) {
      if (!rule.ports.some((r) => r.lo <= listener.port && listener.port <= r.hi)) continue;
      const prefix = rule.destinations.find((p) => reaches(listener, p));
      if (prefix) conflicts.push({ rule, prefix, listener });
    }
  }
  return conflicts;
}
