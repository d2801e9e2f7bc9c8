/**
 * Reads another process's BPF maps for assertions, through bpftool:
 *   const maps = bpfMapsOf(pid);           // name → map id, from /proc/PID/fdinfo
 *   ruleStats(maps.get('rule_stats')!, 1)  // struct rule_stats summed over CPUs
 *   entryCount(maps.get('conns')!)
 *   netnsLinkCount(ns.path)                // BPF links attached to that netns (sk_lookup)
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { sumRuleStats, type RuleStats } from '../../src/abi.js';

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

export function ruleStats(mapId: number, ruleId: number): RuleStats {
  const key = [ruleId & 0xff, (ruleId >> 8) & 0xff, (ruleId >> 16) & 0xff, ruleId >>> 24].map(String);
  const entry = bpftool<{ values: { value: string[] }[] }>(['map', 'lookup', 'id', String(mapId), 'key', ...key]);
  return sumRuleStats(entry.values.map(({ value }) => Buffer.from(value.map((b) => parseInt(b, 16)))));
}

export function entryCount(mapId: number): number {
  return bpftool<unknown[]>(['map', 'dump', 'id', String(mapId)]).length;
}

/** How many BPF links are attached to the network namespace at nsPath. */
export function netnsLinkCount(nsPath: string): number {
  const inode = statSync(nsPath).ino;
  return bpftool<{ netns_ino?: number }[]>(['link', 'show']).filter((l) => l.netns_ino === inode).length;
}
