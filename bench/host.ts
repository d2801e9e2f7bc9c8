/**
 * Whole-machine counters: busy CPU from /proc/stat (softirq and kernel workers included — the
 * in-kernel splice path does its work there), MemAvailable, and the kernel's TCP memory.
 */
import { readFileSync } from 'node:fs';
import { CLOCK_TICKS_PER_SEC } from './proc.js';

const PAGE_SIZE = 4096;

/** Busy CPU seconds summed over all CPUs since boot (everything but idle and iowait). */
export function machineBusySeconds(): number {
  const first = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const [, ...values] = first.trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = values.map(Number); // skip idle, iowait
  return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS_PER_SEC;
}

function memAvailableBytes(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

/** Pages charged to TCP machine-wide (sockstat "TCP: ... mem N"), in bytes. */
function tcpMemoryBytes(): number {
  const m = /^TCP:.*\bmem (\d+)/m.exec(readFileSync('/proc/net/sockstat', 'utf8'));
  return Number(m?.[1] ?? 0) * PAGE_SIZE;
}

export interface MemorySample {
  t: number; // seconds since start
  memDrop: number; // bytes below MemAvailable at start
  tcpMem: number; // bytes
}

/** Samples memory every intervalMs until stop(); stop() returns the samples. */
export function startMemorySampler(intervalMs = 200): { stop(): MemorySample[] } {
  const start = performance.now();
  const base = memAvailableBytes();
  const samples: MemorySample[] = [];
  const take = () =>
    samples.push({ t: (performance.now() - start) / 1000, memDrop: base - memAvailableBytes(), tcpMem: tcpMemoryBytes() });
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

/** Machine-wide peaks during the run (context only: anything else running moves them). */
export function summarizeMemory(samples: MemorySample[]): { memDropMaxMB: number; tcpMemMaxMB: number } {
  const MB = 1e6;
  return {
    memDropMaxMB: Math.max(0, ...samples.map((s) => s.memDrop)) / MB,
    tcpMemMaxMB: Math.max(0, ...samples.map((s) => s.tcpMem)) / MB,
  };
}

/**
 * Whether TCP runs under memory pressure machine-wide (/proc/net/protocols "press"): then
 * every socket's buffers are held small and throughput collapses for every system alike
 * (seen: 5 instead of 35 Gbit/s through veth after 1.6 GB of accounting leaked).
 */
export function tcpMemoryPressure(): { on: boolean; pages: number } {
  const line = readFileSync('/proc/net/protocols', 'utf8').split('\n').find((l) => /^TCP\s/.test(l)) ?? '';
  const fields = line.trim().split(/\s+/);
  return { on: fields[4] === 'yes', pages: Number(fields[3] ?? 0) };
}
