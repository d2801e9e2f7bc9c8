/**
 * Byte layouts of bpf/bpfredir.h, for the maps user space reads and writes.
 * Must change with that header. Host order is little-endian (x86-64, arm64);
 * ports and addresses are network order as the header says.
 */
import type { Binding } from './rules/compile.js';

export const ABI_VERSION = 1;

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
} as const;
export const PROGRAMS = { steer: 'steer', verdict: 'splice_verdict' } as const;

/** struct bind_key { u32 prefixlen; u8 protocol; u8 port_bits; be16 port; u8 addr[16]; } */
export const BIND_KEY_SIZE = 24;
/** struct bind_value { u32 rule_id; u32 addr_prefixlen; } */
export const BIND_VALUE_SIZE = 8;
/** struct settings { u32 port_bits_mask; u32 flags; } */
export const SETTINGS_SIZE = 8;
/** struct rule_stats: eight u64 counters. */
export const RULE_STATS_SIZE = 64;
/** protocol, port_bits and port are always significant in the LPM prefix. */
const KEY_FIXED_BITS = 32;

export function encodeBindKey(b: Binding, out: Buffer = Buffer.alloc(BIND_KEY_SIZE), offset = 0): Buffer {
  out.writeUInt32LE(KEY_FIXED_BITS + b.prefix.len, offset);
  out.writeUInt8(b.protocol, offset + 4);
  out.writeUInt8(b.portBits, offset + 5);
  out.writeUInt16BE(b.port, offset + 6);
  b.prefix.addr.copy(out, offset + 8, 0, 16);
  return out;
}

export function encodeBindValue(b: Binding, out: Buffer = Buffer.alloc(BIND_VALUE_SIZE), offset = 0): Buffer {
  out.writeUInt32LE(b.ruleId, offset);
  out.writeUInt32LE(b.prefix.len, offset + 4);
  return out;
}

export function encodeSettings(portBitsMask: number): Buffer {
  const out = Buffer.alloc(SETTINGS_SIZE);
  out.writeUInt32LE(portBitsMask >>> 0, 0);
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
}

const RULE_STATS_FIELDS: (keyof RuleStats)[] = [
  'lookups',
  'steered',
  'droppedNoSocket',
  'bytesToUpstream',
  'bytesToClient',
  'redirectFailed',
  'paused',
  'bytesPassed',
];

export function zeroRuleStats(): RuleStats {
  return { lookups: 0n, steered: 0n, droppedNoSocket: 0n, bytesToUpstream: 0n, bytesToClient: 0n, redirectFailed: 0n, paused: 0n, bytesPassed: 0n };
}

/** Sum a per-CPU rule_stats value (one buffer per possible CPU). */
export function sumRuleStats(perCpu: readonly Buffer[]): RuleStats {
  const total = zeroRuleStats();
  for (const buf of perCpu) {
    RULE_STATS_FIELDS.forEach((name, i) => (total[name] += buf.readBigUInt64LE(i * 8)));
  }
  return total;
}
