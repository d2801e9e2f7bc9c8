/** The targets of issues #3 and #12, checked against one run's figures for bpfredir's in-kernel path. */
import { Figure, lookup } from './summary.js';

export interface TargetCheck {
  target: string;
  measured: string;
  verdict: 'met' | 'missed' | 'not measured';
}

const SUBJECT = 'bpfredir';
const fmt = (x: number, d = 2) => x.toFixed(d);
const signed = (x: number, d = 1) => `${x < 0 ? '−' : '+'}${Math.abs(x).toFixed(d)}`;

export function checkTargets(figures: Figure[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const get = (topology: string, workload: string, metric: string, system = SUBJECT) => lookup(figures, topology, workload, system, metric);
  const add = (target: string, values: (Figure | undefined)[], measured: (v: Figure[]) => string, ok: (v: Figure[]) => boolean) => {
    const present = values.every((v) => v !== undefined) ? (values as Figure[]) : null;
    checks.push(
      present ? { target, measured: measured(present), verdict: ok(present) ? 'met' : 'missed' } : { target, measured: '—', verdict: 'not measured' },
    );
  };

  const throughputTargets = [
    { topology: 'router', directRatio: 0.85 },
    { topology: 'loopback', directRatio: 0.5 },
  ];
  for (const { topology, directRatio } of throughputTargets) {
    for (const workload of ['tcp-1', 'tcp-1-reverse']) {
      const [me, direct, splice] = [get(topology, workload, 'gbps'), get(topology, workload, 'gbps', 'direct'), get(topology, workload, 'gbps', 'haproxy-splice')];
      add(
        `${topology} ${workload}: ≥ ${directRatio} × direct`,
        [me, direct],
        ([m, d]) => `${fmt(m.median)} / ${fmt(d.median)} Gbit/s = ${fmt(m.median / d.median)} ×`,
        ([m, d]) => m.median >= directRatio * d.median,
      );
      add(
        `${topology} ${workload}: ≥ 1.1 × HAProxy-splice`,
        [me, splice],
        ([m, h]) => `${fmt(m.median)} / ${fmt(h.median)} Gbit/s = ${fmt(m.median / h.median)} ×`,
        ([m, h]) => m.median >= 1.1 * h.median,
      );
    }
    add(
      `${topology} tcp-8: ≥ 1.1 × HAProxy-splice`,
      [get(topology, 'tcp-8', 'gbps'), get(topology, 'tcp-8', 'gbps', 'haproxy-splice')],
      ([m, h]) => `${fmt(m.median)} / ${fmt(h.median)} Gbit/s = ${fmt(m.median / h.median)} ×`,
      ([m, h]) => m.median >= 1.1 * h.median,
    );
  }

  for (const topology of ['loopback', 'router']) {
    const added = get(topology, 'rtt-pinned', 'rttAddedUs');
    add(
      `${topology} round trip added, pinned: ≤ 10 µs and ≤ 0.5 × best peer's`,
      [added],
      ([a]) => `${signed(a.median)} µs; best peer ${a.bestPeer ?? '—'} ratio ${a.ratioToBestPeer !== undefined ? fmt(a.ratioToBestPeer) : '—'} ×`,
      ([a]) => a.median <= 10 && a.ratioToBestPeer !== undefined && a.ratioToBestPeer <= 0.5,
    );
    const p99 = get(topology, 'rtt-unpinned', 'rttP99Us');
    add(
      `${topology} unpinned p99: ≤ 0.7 × best peer's`,
      [p99],
      ([p]) => `${fmt(p.median, 1)} µs = ${p.ratioToBestPeer !== undefined ? fmt(p.ratioToBestPeer) : '—'} × ${p.bestPeer ?? '—'}`,
      ([p]) => p.ratioToBestPeer !== undefined && p.ratioToBestPeer <= 0.7,
    );
    add(
      `${topology} new conn/s: ≥ 1.0 × HAProxy`,
      [get(topology, 'connrate', 'connPerSec'), get(topology, 'connrate', 'connPerSec', 'haproxy')],
      ([m, h]) => `${fmt(m.median / 1000, 1)}k / ${fmt(h.median / 1000, 1)}k = ${fmt(m.median / h.median)} ×`,
      ([m, h]) => m.median >= h.median,
    );
    for (const [workload, metric, unit] of [['tcp-1', 'gbps', 'Gbit/s'], ['connrate', 'connPerSec', 'conn/s']] as const) {
      add(
        `${topology} ${workload} with /metrics scraped every second: within 5 % of metrics off`,
        [get(topology, workload, metric, 'bpfredir-metrics'), get(topology, workload, metric)],
        ([on, off]) => `${fmt(on.median, 1)} vs ${fmt(off.median, 1)} ${unit} = ${fmt(on.median / off.median)} ×`,
        ([on, off]) => on.median >= 0.95 * off.median,
      );
    }
    add(
      `${topology} machine CPU-s/GB over direct: ≤ HAProxy-splice's`,
      [get(topology, 'tcp-1', 'machineCpuOverDirect'), get(topology, 'tcp-1', 'machineCpuOverDirect', 'haproxy-splice')],
      ([m, h]) => `${fmt(m.median)} vs ${fmt(h.median)}`,
      ([m, h]) => m.median <= h.median,
    );
    add(
      `${topology} redirector process CPU-s/GB: ≤ 1 % of HAProxy's`,
      [get(topology, 'tcp-1', 'procCpuSecPerGB'), get(topology, 'tcp-1', 'procCpuSecPerGB', 'haproxy')],
      ([m, h]) => `${fmt(m.median, 4)} vs ${fmt(h.median, 4)} (${fmt((100 * m.median) / h.median, 1)} %)`,
      ([m, h]) => m.median <= 0.01 * h.median,
    );
    add(
      `${topology} bytes in flight bounded over the soak run (growth < 16 MB)`,
      [get(topology, 'soak', 'inFlightGrowthMB'), get(topology, 'soak', 'inFlightPeakMB'), get(topology, 'soak', 'memDropMaxMB')],
      ([g, p, d]) => `growth ${fmt(g.median, 1)} MB, peak ${fmt(p.median, 1)} MB in flight; MemAvailable drop ${fmt(d.median, 0)} MB`,
      ([g]) => g.median < 16,
    );
  }

  // Router interception (issue 12): plain forwarding is "direct" in the router topology.
  for (const system of ['bpfredir-intercept', 'bpfredir-intercept-transparent']) {
    for (const workload of ['tcp-1', 'tcp-1-reverse']) {
      const [me, direct, tproxy] = [get('router', workload, 'gbps', system), get('router', workload, 'gbps', 'direct'), get('router', workload, 'gbps', 'haproxy-tproxy')];
      add(
        `router ${system} ${workload}: ≥ 1.2 × HAProxy-TPROXY`,
        [me, tproxy],
        ([m, h]) => `${fmt(m.median)} / ${fmt(h.median)} Gbit/s = ${fmt(m.median / h.median)} ×`,
        ([m, h]) => m.median >= 1.2 * h.median,
      );
      add(
        `router ${system} ${workload}: ≥ 0.7 × plain forwarding`,
        [me, direct],
        ([m, d]) => `${fmt(m.median)} / ${fmt(d.median)} Gbit/s = ${fmt(m.median / d.median)} ×`,
        ([m, d]) => m.median >= 0.7 * d.median,
      );
    }
    add(
      `router ${system} machine CPU-s/GB over plain forwarding: < HAProxy-TPROXY's`,
      [get('router', 'tcp-1', 'machineCpuOverDirect', system), get('router', 'tcp-1', 'machineCpuOverDirect', 'haproxy-tproxy')],
      ([m, h]) => `${fmt(m.median)} vs ${fmt(h.median)}`,
      ([m, h]) => m.median < h.median,
    );
  }

  const idle = (metric: string) => figures.find((f) => f.system === SUBJECT && f.workload === 'idle-10k' && f.metric === metric);
  add(
    '10,000 idle connections in ≤ 100 MB RSS',
    [idle('rssMB'), idle('idleConnections'), idle('rssAtRequestedMB')],
    ([r, c, x]) => `${fmt(r.median, 0)} MB holding ${fmt(c.median, 0)}; ${fmt(x.median, 0)} MB at 10,000 (linear)`,
    ([, c, x]) => x.median <= 100 && c.median >= 9000,
  );
  const load = figures.find((f) => f.system === SUBJECT && f.workload === 'rules-100k' && f.metric === 'loadSec');
  add('100k rules load in ≤ 2 s', [load], ([l]) => `${fmt(l.median)} s`, ([l]) => l.median <= 2);
  const setupSmall = figures.find((f) => f.system === SUBJECT && f.workload === 'rules-1' && f.metric === 'setupAddedP50Us');
  const setupBig = figures.find((f) => f.system === SUBJECT && f.workload === 'rules-100k' && f.metric === 'setupAddedP50Us');
  add(
    'connection setup at 100k rules: no measurable change (setup p50 over a plain connect within 5 µs of the 1-rule figure)',
    [setupSmall, setupBig],
    ([s, b]) => `${signed(s.median)} µs at 1 rule, ${signed(b.median)} µs at 100k`,
    ([s, b]) => b.median - s.median <= 5,
  );
  return checks;
}
