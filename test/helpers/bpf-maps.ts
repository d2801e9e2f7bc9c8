/**
 * Reads another process's BPF maps for assertions, through bpftool:
 *   const maps = bpfMapsOf(pid);           // name → map id, from /proc/PID/fdinfo
 *   ruleStats(maps.get('rule_stats')!, 1)  // struct rule_stats summed over CPUs
 *   entryCount(maps.get('conns')!)
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

function bpftool<T>(args: string[]): T {
  return JSON.parse(execFileSync('bpftool', ['-j', ...args], { encoding: 'utf8' })) as T;
}

export function bpfMapsOf(pid: number): Map<string, number> {
  const maps = new Map<string, number>();
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    let info: string;
    try {
      info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue;
    }
    const id = /^map_id:\s+(\d+)/m.exec(info);
    if (!id) continue;
    const { name } = bpftool<{ name: string }>(['map', 'show', 'id', id[1]!]);
    maps.set(name, Number(id[1]));
  }
  return maps;
}

export interface RuleStats {
  lookups: bigint;
  steered: bigint;
  droppedNoSocket: bigint;
  bytesToUpstream: bigint;
  bytesToClient: bigint;
  redirectFailed: bigint;
  paused: bigint;
}

const FIELDS: (keyof RuleStats)[] = ['lookups', 'steered', 'droppedNoSocket', 'bytesToUpstream', 'bytesToClient', 'redirectFailed', 'paused'];

export function ruleStats(mapId: number, ruleId: number): RuleStats {
  const key = [ruleId & 0xff, (ruleId >> 8) & 0xff, (ruleId >> 16) & 0xff, ruleId >>> 24].map(String);
  const entry = bpftool<{ values: { value: string[] }[] }>(['map', 'lookup', 'id', String(mapId), 'key', ...key]);
  const sum = Object.fromEntries(FIELDS.map((f) => [f, 0n])) as unknown as RuleStats;
  for (const { value } of entry.values) {
    const bytes = Buffer.from(value.map((b) => parseInt(b, 16)));
    FIELDS.forEach((f, i) => (sum[f] += bytes.readBigUInt64LE(i * 8)));
  }
  return sum;
}

export function entryCount(mapId: number): number {
  return bpftool<unknown[]>(['map', 'dump', 'id', String(mapId)]).length;
}
