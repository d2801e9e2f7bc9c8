/**
 * Byte layouts of bpf/bpfredir.h, for the maps user space reads and writes.
 * test/unit/abi-btf.test.ts checks them, member by member, against the BTF of
 * the built object, so a change to the header fails there until it is made
 * here. Host order is little-endian (x86-64, arm64); ports and addresses are
 * network order as the header says.
 */
import type { Binding } from './rules/compile.js';

export const ABI_VERSION = 4;

/** Map and program names in bpfredir.bpf.o. */
export const MAPS = {
  bindings: 'bindings',
  settings: 'settings',
  steerSockets: 'steer_sockets',
  ruleStats: 'rule_stats',
  conns: 'conns',
  spliceHold: 'splice_hold',
  spliceActive: 'splice_active',
  events: 'events',
  relayed: 'relayed',
  acl: 'acl',
  rulePolicy: 'rule_policy',
  denials: 'denials',
  intercepts: 'intercepts',
  interceptSettings: 'intercept_settings',
  intercepted: 'intercepted',
} as const;
export const PROGRAMS = { steer: 'steer', verdict: 'splice_verdict', intercept: 'intercept' } as const;

/** Size and member offsets of each struct user space encodes or decodes. */
export const LAYOUTS = {
  bind_key: { size: 24, offsets: { prefixlen: 0, protocol: 4, port_bits: 5, port: 6, addr: 8 } },
  bind_value: { size: 8, offsets: { rule_id: 0, addr_prefixlen: 4 } },
  settings: { size: 8, offsets: { port_bits_mask: 0, flags: 4 } },
  acl_key: { size: 28, offsets: { prefixlen: 0, scope: 4, list: 8, pad: 9, addr: 12 } },
  rule_policy: { size: 8, offsets: { flags: 0, reserved: 4 } },
  intercept_key: { size: 28, offsets: { prefixlen: 0, ifindex: 4, protocol: 8, port_bits: 9, port: 10, addr: 12 } },
  intercept_settings: { size: 8, offsets: { mark: 0, port_bits_mask: 4 } },
  flow_key: { size: 40, offsets: { saddr: 0, daddr: 16, sport: 32, dport: 34, protocol: 36, pad: 37 } },
  rule_stats: {
    size: 88,
    offsets: {
      lookups: 0,
      steered: 8,
      dropped_no_socket: 16,
      bytes_to_upstream: 24,
      bytes_to_client: 32,
      redirect_failed: 40,
      paused: 48,
      bytes_passed: 56,
      denied: 64,
      denials_unreported: 72,
      intercepted: 80,
    },
  },
} as const;

const KEY = LAYOUTS.bind_key.offsets;
const VALUE = LAYOUTS.bind_value.offsets;
export const BIND_KEY_SIZE = LAYOUTS.bind_key.size;
export const BIND_VALUE_SIZE = LAYOUTS.bind_value.size;
export const SETTINGS_SIZE = LAYOUTS.settings.size;
export const RULE_STATS_SIZE = LAYOUTS.rule_stats.size;
export const ACL_KEY_SIZE = LAYOUTS.acl_key.size;
export const ACL_VALUE_SIZE = 4;
export const RULE_POLICY_SIZE = LAYOUTS.rule_policy.size;

/** enum acl_list */
export const ACL_LIST = { allow: 1, deny: 2, source: 3, trusted: 4 } as const;
/** enum policy_flags */
export const POLICY = { hasAllow: 1 << 0, hasDeny: 1 << 1, pass: 1 << 2, hasSources: 1 << 3, proxied: 1 << 4 } as const;
/** scope, list and pad are always significant in the LPM prefix. */
const ACL_FIXED_BITS = 64;
/** protocol, port_bits and port are always significant in the LPM prefix. */
const KEY_FIXED_BITS = 32;

export function encodeBindKey(b: Binding, out: Buffer = Buffer.alloc(BIND_KEY_SIZE), offset = 0): Buffer {
  out.writeUInt32LE(KEY_FIXED_BITS + b.prefix.len, offset + KEY.prefixlen);
  out.writeUInt8(b.protocol, offset + KEY.protocol);
  out.writeUInt8(b.portBits, offset + KEY.port_bits);
  out.writeUInt16BE(b.port, offset + KEY.port);
  b.prefix.addr.copy(out, offset + KEY.addr, 0, 16);
  return out;
}

export function encodeBindValue(b: Binding, out: Buffer = Buffer.alloc(BIND_VALUE_SIZE), offset = 0): Buffer {
  out.writeUInt32LE(b.ruleId, offset + VALUE.rule_id);
  out.writeUInt32LE(b.prefix.len, offset + VALUE.addr_prefixlen);
  return out;
}

export const INTERCEPT_KEY_SIZE = LAYOUTS.intercept_key.size;
/** ifindex, protocol, port_bits and port are always significant in the LPM prefix. */
const INTERCEPT_FIXED_BITS = 64;

/** An intercepts trie key: a binding on one inbound interface (b.ifindex). */
export function encodeInterceptKey(b: Binding, out: Buffer = Buffer.alloc(INTERCEPT_KEY_SIZE), offset = 0): Buffer {
  const at = LAYOUTS.intercept_key.offsets;
  out.writeUInt32LE(INTERCEPT_FIXED_BITS + b.prefix.len, offset + at.prefixlen);
  out.writeUInt32LE(b.ifindex ?? 0, offset + at.ifindex);
  out.writeUInt8(b.protocol, offset + at.protocol);
  out.writeUInt8(b.portBits, offset + at.port_bits);
  out.writeUInt16BE(b.port, offset + at.port);
  b.prefix.addr.copy(out, offset + at.addr, 0, 16);
  return out;
}

export function encodeInterceptSettings(mark: number, portBitsMask: number): Buffer {
  const out = Buffer.alloc(LAYOUTS.intercept_settings.size);
  out.writeUInt32LE(mark >>> 0, LAYOUTS.intercept_settings.offsets.mark);
  out.writeUInt32LE(portBitsMask >>> 0, LAYOUTS.intercept_settings.offsets.port_bits_mask);
  return out;
}

/** enum settings_flags */
export const SETTINGS_FLAGS = { reportDenials: 1 << 0 } as const;

export function encodeSettings(portBitsMask: number, flags = 0): Buffer {
  const out = Buffer.alloc(SETTINGS_SIZE);
  out.writeUInt32LE(portBitsMask >>> 0, LAYOUTS.settings.offsets.port_bits_mask);
  out.writeUInt32LE(flags >>> 0, LAYOUTS.settings.offsets.flags);
  return out;
}

/** The acl trie's key of one prefix of one list of one scope (a rule id, 0 = global). */
export function encodeAclKey(scope: number, list: number, prefix: { addr: Buffer; len: number }): Buffer {
  const out = Buffer.alloc(ACL_KEY_SIZE);
  const at = LAYOUTS.acl_key.offsets;
  out.writeUInt32LE(ACL_FIXED_BITS + prefix.len, at.prefixlen);
  out.writeUInt32LE(scope, at.scope);
  out.writeUInt8(list, at.list);
  prefix.addr.copy(out, at.addr, 0, 16);
  return out;
}

export function encodeRulePolicy(flags: number): Buffer {
  const out = Buffer.alloc(RULE_POLICY_SIZE);
  out.writeUInt32LE(flags, LAYOUTS.rule_policy.offsets.flags);
  return out;
}

/** Key of an ARRAY / PERCPU_ARRAY / SOCKMAP indexed by u32 (settings: 0, rule ids). */
export function encodeU32Key(index: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32LE(index, 0);
  return out;
}

export interface RuleStats {
  lookups: bigint;
  steered: bigint;
  droppedNoSocket: bigint;
  bytesToUpstream: bigint;
  bytesToClient: bigint;
  redirectFailed: bigint;
  paused: bigint;
  bytesPassed: bigint;
  denied: bigint;
  denialsUnreported: bigint;
  intercepted: bigint;
}

/** Each counter's member in struct rule_stats. */
const RULE_STATS_MEMBERS: Record<keyof RuleStats, keyof typeof LAYOUTS.rule_stats.offsets> = {
  lookups: 'lookups',
  steered: 'steered',
  droppedNoSocket: 'dropped_no_socket',
  bytesToUpstream: 'bytes_to_upstream',
  bytesToClient: 'bytes_to_client',
  redirectFailed: 'redirect_failed',
  paused: 'paused',
  bytesPassed: 'bytes_passed',
  denied: 'denied',
  denialsUnreported: 'denials_unreported',
  intercepted: 'intercepted',
};

export function zeroRuleStats(): RuleStats {
  return { lookups: 0n, steered: 0n, droppedNoSocket: 0n, bytesToUpstream: 0n, bytesToClient: 0n, redirectFailed: 0n, paused: 0n, bytesPassed: 0n, denied: 0n, denialsUnreported: 0n, intercepted: 0n };
}

/** Sum a per-CPU rule_stats value (one buffer per possible CPU). */
export function sumRuleStats(perCpu: readonly Buffer[]): RuleStats {
  const total = zeroRuleStats();
  for (const buf of perCpu) {
    for (const [name, member] of Object.entries(RULE_STATS_MEMBERS) as [keyof RuleStats, keyof typeof LAYOUTS.rule_stats.offsets][]) {
      total[name] += buf.readBigUInt64LE(LAYOUTS.rule_stats.offsets[member]);
    }
  }
  return total;
}
