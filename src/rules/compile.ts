/**
 * Steering rules → the entries of the kernel's bindings trie. Pure.
 *
 * The kernel picks the longest address prefix, then the narrowest port block.
 * Where rules overlap at the same prefix the compiler decides instead (the
 * narrower port range wins, then the earlier rule) and cuts the loser's range
 * around the winner's, so at most one block matches any port per prefix.
 */
import type { InterceptRule, SteerRule } from '../config/types.js';
import type { Prefix } from './ip.js';
import { decomposeRange, mergeRanges, rangeWidth, subtractRanges, type PortRange } from './ports.js';

export const IPPROTO_TCP = 6;

export interface Binding {
  protocol: number;
  prefix: Prefix;
  port: number; // host order, first port of the block
  portBits: number; // 0..16
  ruleId: number;
  /** Intercept bindings only: the inbound interface. */
  ifindex?: number;
}

export interface CompiledBindings {
  bindings: Binding[];
  /** Bit k set when some binding has portBits == k (settings.port_bits_mask). */
  portBitsMask: number;
}

interface Claim {
  order: number; // rule position in the config
  ruleId: number;
  range: PortRange;
}

interface Group {
  protocol: number;
  prefix: Prefix;
  claims: Claim[];
}

/** Who owns which ports of one prefix, after resolving overlaps. */
function resolveGroup(group: Group): { ruleId: number; ranges: PortRange[] }[] {
  const only = group.claims.length === 1 ? group.claims[0] : undefined;
  if (only) return [{ ruleId: only.ruleId, ranges: [only.range] }]; // the common case, kept cheap
  const byPrecedence = [...group.claims].sort((a, b) => rangeWidth(a.range) - rangeWidth(b.range) || a.order - b.order);
  let taken: PortRange[] = [];
  const owned = new Map<number, PortRange[]>();
  for (const claim of byPrecedence) {
    const free = subtractRanges(claim.range, taken);
    if (free.length === 0) continue;
    owned.set(claim.ruleId, [...(owned.get(claim.ruleId) ?? []), ...free]);
    taken = mergeRanges([...taken, ...free]);
  }
  return [...owned].map(([ruleId, ranges]) => ({ ruleId, ranges: mergeRanges(ranges) }));
}

/**
 * Identity of (protocol, prefix) for grouping. IPv4 prefixes get a number
 * (Map lookups by number stay fast at 100k rules), others a short string.
 */
export function prefixKey(protocol: number, prefix: Prefix): number | string {
  if (prefix.family === 4) return (protocol * 256 + prefix.len) * 2 ** 32 + prefix.addr.readUInt32BE(12);
  return String.fromCharCode(protocol, prefix.len) + prefix.addr.toString('latin1');
}

/** Compile steering rules; `ids` maps every rule name to its id. */
export function compileBindings(rules: readonly Pick<SteerRule | InterceptRule, 'name' | 'destinations' | 'ports'>[], ids: ReadonlyMap<string, number>): CompiledBindings {
  const groups = new Map<number | string, Group>();
  rules.forEach((rule, order) => {
    const ruleId = ids.get(rule.name);
    if (ruleId === undefined) throw new Error(`no id assigned to rule '${rule.name}'`);
    for (const prefix of rule.destinations) {
      const key = prefixKey(IPPROTO_TCP, prefix);
      let group = groups.get(key);
      if (!group) groups.set(key, (group = { protocol: IPPROTO_TCP, prefix, claims: [] }));
      for (const range of rule.ports) group.claims.push({ order, ruleId, range });
    }
  });

  const bindings: Binding[] = [];
  let portBitsMask = 0;
  for (const group of groups.values()) {
    for (const { ruleId, ranges } of resolveGroup(group)) {
      for (const block of ranges.flatMap(decomposeRange)) {
        bindings.push({ protocol: group.protocol, prefix: group.prefix, port: block.port, portBits: block.portBits, ruleId });
        portBitsMask |= 1 << block.portBits;
      }
    }
  }
  return { bindings, portBitsMask };
}

/** Most specific first (longest prefix, then narrowest block): the safe order to add in. */
export function bySpecificity(a: Binding, b: Binding): number {
  return b.prefix.len - a.prefix.len || b.portBits - a.portBits;
}

/** bind_value.rule_id of a guard entry (BPFREDIR_RULE_REFUSE in bpf/bpfredir.h). */
export const RULE_REFUSE = 0xffffffff;
const ANY_ADDRESS: Prefix = { addr: Buffer.alloc(16), len: 0, family: 6 };

/**
 * A steering rule's socket listens on [::]:<ephemeral port>, where the normal
 * socket lookup would deliver a connection that no rule steered — past the
 * rule's destinations, ports and ACLs. One guard per such port, any address,
 * exact port, refuses those lookups. It replaces a rule's entry with the same
 * key (only `::/0` on that exact port could collide).
 */
export function withProxyGuards(compiled: CompiledBindings, ports: readonly number[]): CompiledBindings {
  if (ports.length === 0) return compiled;
  const guarded = new Set(ports);
  const guards = ports.map((port) => ({ protocol: IPPROTO_TCP, prefix: ANY_ADDRESS, port, portBits: 16, ruleId: RULE_REFUSE }));
  const kept = compiled.bindings.filter((b) => !(b.prefix.len === 0 && b.portBits === 16 && guarded.has(b.port)));
  return { bindings: [...kept, ...guards], portBitsMask: compiled.portBitsMask | (1 << 16) };
}
