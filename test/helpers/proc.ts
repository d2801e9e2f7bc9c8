/**
 * Process and machine accounting for kernel tests, read from /proc.
 *   cpuSeconds(pid)      utime + stime of a process (all threads)
 *   kworkerCpuSeconds()  CPU of every kernel worker thread (sockmap's egress runs there)
 *   machineCpuSeconds()  busy time of the whole machine (softirq included)
 *   openFds(pid)         number of open fds of a process
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICKS = 100; // USER_HZ on Linux

function statFields(path: string): string[] | null {
  try {
    const text = readFileSync(path, 'utf8');
    // comm may contain spaces: fields start after the last ')'.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null; // the process went away
  }
}

export function cpuSeconds(pid: number): number {
  const f = statFields(`/proc/${pid}/stat`);
  if (!f) throw new Error(`process ${pid} is gone`);
  return (Number(f[11]) + Number(f[12])) / TICKS;
}

export function kworkerCpuSeconds(): number {
  let total = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let comm: string;
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8');
    } catch {
      continue;
    }
    if (!comm.startsWith('kworker')) continue;
    const f = statFields(`/proc/${pid}/stat`);
    if (f) total += (Number(f[11]) + Number(f[12])) / TICKS;
  }
  return total;
}

export function machineCpuSeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) / TICKS;
}

export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * Pages the kernel's TCP memory accounting holds, machine-wide (sockstat "TCP: mem").
 * A socket freed with charged memory leaks this count for good; above
 * net.ipv4.tcp_mem[1] every TCP socket on the machine then runs under memory pressure.
 */
export function tcpMemPages(): number {
  const line = readFileSync('/proc/net/sockstat', 'utf8').split('\n').find((l) => l.startsWith('TCP:'));
  return Number(/ mem (\d+)/.exec(line ?? '')?.[1] ?? 0);
}

export function memAvailableBytes(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
  return Number(m![1]) * 1024;
}

/** Per-socket TCP byte counters (`ss -tni`) inside a netns, keyed "local peer". */
export function tcpByteCounters(ns: { run(cmd: string, args: string[]): string }): Map<string, { acked: number; received: number }> {
  const out = ns.run('ss', ['-tniH', 'state', 'established']);
  const sockets = new Map<string, { acked: number; received: number }>();
  let current: string | undefined;
  for (const line of out.split('\n')) {
    if (line && !/^\s/.test(line)) {
      const fields = line.trim().split(/\s+/); // [state] recv-q send-q local peer
      current = `${fields.at(-2)} ${fields.at(-1)}`;
      continue;
    }
    if (!current) continue;
    const acked = /bytes_acked:(\d+)/.exec(line);
    const received = /bytes_received:(\d+)/.exec(line);
    sockets.set(current, { acked: Number(acked?.[1] ?? 0), received: Number(received?.[1] ?? 0) });
    current = undefined;
  }
  return sockets;
}
