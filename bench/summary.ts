/**
 * From raw runs to figures: median with min–max per (topology, workload, system, metric), the
 * ratio to direct and to the best peer tool, and the derived "over direct" figures.
 */
export interface RunRecord {
  round: number;
  topology: string;
  system: string;
  workload: string;
  startedAt: string;
  seconds: number;
  metrics: Record<string, number>;
  error?: string;
}

export interface Figure {
  topology: string;
  workload: string;
  system: string;
  metric: string;
  n: number;
  median: number;
  min: number;
  max: number;
  ratioToDirect?: number;
  ratioToBestPeer?: number;
  bestPeer?: string;
}

const PEERS = ['haproxy-splice', 'haproxy', 'nginx-stream', 'rinetd', 'redir', 'socat', 'haproxy-tproxy'];

/** Metrics where more is better; everything else (latency, CPU, memory, time) is lower-is-better. */
const HIGHER_IS_BETTER = new Set(['gbps', 'connPerSec', 'idleConnections']);

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Mean of the last quarter minus mean of the second quarter: does a series keep growing? */
export function quarterGrowth(values: number[]): number {
  const n = values.length;
  if (n < 8) return NaN;
  const mean = (q: number) => {
    const part = values.slice(Math.floor((n * q) / 4), Math.floor((n * (q + 1)) / 4));
    return part.reduce((a, b) => a + b, 0) / part.length;
  };
  return mean(3) - mean(1);
}

/**
 * Figures relative to direct: for CPU per GB the extra over direct's median
 * (machineCpuOverDirect), for round-trip time the added microseconds (rttAddedUs).
 */
const OVER_DIRECT: Record<string, string> = { machineCpuSecPerGB: 'machineCpuOverDirect', rttAvgUs: 'rttAddedUs', rttP50Us: 'rttP50AddedUs' };

export function summarize(runs: RunRecord[]): Figure[] {
  const groups = new Map<string, { key: Omit<Figure, 'n' | 'median' | 'min' | 'max'>; values: number[] }>();
  for (const run of runs) {
    if (run.error) continue;
    for (const [metric, value] of Object.entries(run.metrics)) {
      if (!Number.isFinite(value)) continue;
      const id = [run.topology, run.workload, run.system, metric].join('\0');
      if (!groups.has(id)) groups.set(id, { key: { topology: run.topology, workload: run.workload, system: run.system, metric }, values: [] });
      groups.get(id)!.values.push(value);
    }
  }
  const figures: Figure[] = [...groups.values()].map(({ key, values }) => ({
    ...key,
    n: values.length,
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
  }));
  const find = (f: Pick<Figure, 'topology' | 'workload' | 'metric'>, system: string) =>
    figures.find((g) => g.topology === f.topology && g.workload === f.workload && g.metric === f.metric && g.system === system);

  const derived: Figure[] = [];
  for (const f of figures) {
    const overName = OVER_DIRECT[f.metric];
    const direct = find(f, 'direct');
    if (overName && direct && f.system !== 'direct') {
      derived.push({ ...f, metric: overName, median: f.median - direct.median, min: f.min - direct.median, max: f.max - direct.median });
    }
  }
  const all = [...figures, ...derived];
  for (const f of all) {
    const direct = find(f, 'direct');
    if (direct && f.system !== 'direct' && direct.median !== 0) f.ratioToDirect = f.median / direct.median;
    const peers = all.filter((g) => PEERS.includes(g.system) && g.topology === f.topology && g.workload === f.workload && g.metric === f.metric);
    if (peers.length > 0) {
      const best = peers.reduce((a, b) => (HIGHER_IS_BETTER.has(f.metric) ? (b.median > a.median ? b : a) : b.median < a.median ? b : a));
      if (best.median !== 0) {
        f.ratioToBestPeer = f.median / best.median;
        f.bestPeer = best.system;
      }
    }
  }
  return all;
}

export function lookup(figures: Figure[], topology: string, workload: string, system: string, metric: string): Figure | undefined {
  return figures.find((f) => f.topology === topology && f.workload === workload && f.system === system && f.metric === metric);
}
