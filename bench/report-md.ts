/** The markdown report: overview per topology, ratios, run-once figures, targets, every figure. */
import { Figure, lookup } from './summary.js';
import type { TargetCheck } from './targets.js';

export interface ReportMeta {
  title: string;
  notes: string[];
  systems: string[];
  topologies: string[];
  skipped: Record<string, string>;
  errors: string[];
}

const num = (x: number, d: number) => (Math.abs(x) >= 1000 ? Math.round(x).toLocaleString('en-US') : x.toFixed(d));

function cell(f: Figure | undefined, d = 1): string {
  if (!f) return '—';
  return f.n > 1 && f.min !== f.max ? `${num(f.median, d)} (${num(f.min, d)}–${num(f.max, d)})` : num(f.median, d);
}

const ratio = (x: number | undefined) => (x === undefined ? '—' : `${x.toFixed(2)}×`);

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export function renderMarkdown(figures: Figure[], checks: TargetCheck[], meta: ReportMeta): string {
  const out: string[] = [`# ${meta.title}`, '', ...meta.notes.map((n) => `- ${n}`), ''];
  for (const topology of meta.topologies) {
    const get = (system: string, workload: string, metric: string) => lookup(figures, topology, workload, system, metric);
    out.push(`## ${topology}`, '', 'Median of the rounds (min–max). Throughput is receiver-side.', '');
    out.push(
      table(
        ['system', '1-stream Gbit/s', 'reverse Gbit/s', '8-stream Gbit/s', 'RTT pinned µs', 'added pinned µs', 'unpinned p50 / p99 µs', 'conn/s', 'machine CPU-s/GB over direct', 'redirector CPU-s/GB', '1-stream in flight peak MB'],
        meta.systems.map((s) => [
          s,
          cell(get(s, 'tcp-1', 'gbps'), 2),
          cell(get(s, 'tcp-1-reverse', 'gbps'), 2),
          cell(get(s, 'tcp-8', 'gbps'), 2),
          cell(get(s, 'rtt-pinned', 'rttAvgUs')),
          cell(get(s, 'rtt-pinned', 'rttAddedUs')),
          `${cell(get(s, 'rtt-unpinned', 'rttP50Us'))} / ${cell(get(s, 'rtt-unpinned', 'rttP99Us'))}`,
          cell(get(s, 'connrate', 'connPerSec'), 0),
          s === 'direct' ? `(${cell(get(s, 'tcp-1', 'machineCpuSecPerGB'), 2)} total)` : cell(get(s, 'tcp-1', 'machineCpuOverDirect'), 2),
          cell(get(s, 'tcp-1', 'procCpuSecPerGB'), 3),
          cell(get(s, 'tcp-1', 'inFlightPeakMB'), 1),
        ]),
      ),
      '',
      'Ratios of the medians: × direct / × best peer tool (the best peer is chosen per column).',
      '',
      table(
        ['system', '1-stream', 'reverse', '8-stream', 'conn/s', 'added RTT pinned (× best peer)', 'unpinned p99 (× best peer)'],
        meta.systems
          .filter((s) => s !== 'direct')
          .map((s) => {
            const both = (f: Figure | undefined) => (f ? `${ratio(f.ratioToDirect)} / ${ratio(f.ratioToBestPeer)}` : '—');
            return [
              s,
              both(get(s, 'tcp-1', 'gbps')),
              both(get(s, 'tcp-1-reverse', 'gbps')),
              both(get(s, 'tcp-8', 'gbps')),
              both(get(s, 'connrate', 'connPerSec')),
              ratio(get(s, 'rtt-pinned', 'rttAddedUs')?.ratioToBestPeer),
              ratio(get(s, 'rtt-unpinned', 'rttP99Us')?.ratioToBestPeer),
            ];
          }),
      ),
      '',
    );
  }

  const idle = figures.filter((f) => f.workload === 'idle-10k' && f.metric === 'rssMB');
  if (idle.length) {
    out.push('## Redirector memory with idle connections', '', table(
      ['system', 'connections held', 'RSS MB', 'RSS before MB', 'KB per connection', 'RSS at requested count MB (linear)', 'processes'],
      idle.map((f) => [
        f.system,
        cell(lookup(figures, f.topology, 'idle-10k', f.system, 'idleConnections'), 0),
        cell(f, 1),
        cell(lookup(figures, f.topology, 'idle-10k', f.system, 'rssBeforeMB'), 1),
        cell(lookup(figures, f.topology, 'idle-10k', f.system, 'rssPerConnectionKB'), 1),
        cell(lookup(figures, f.topology, 'idle-10k', f.system, 'rssAtRequestedMB'), 1),
        cell(lookup(figures, f.topology, 'idle-10k', f.system, 'processes'), 0),
      ]),
    ), '');
  }
  const ruleLoads = figures.filter((f) => f.workload.startsWith('rules-') && f.metric === 'loadSec');
  if (ruleLoads.length) {
    out.push('## Rule-table scale (bpfredir run --config, sk_lookup steering)', '', 'N /32 destinations in the kernel rule table, 1000 per rule.', '', table(
      ['entries', 'rules', 'start until ready s', 'setup p50 µs', 'setup p99 µs', 'plain connect p50 µs (no steering)', 'added by steering p50 µs'],
      ruleLoads.map((f) => {
        const m = (metric: string) => lookup(figures, f.topology, f.workload, f.system, metric);
        return [f.workload.slice('rules-'.length), cell(m('rules'), 0), cell(f, 2), cell(m('setupP50Us')), cell(m('setupP99Us')), cell(m('plainConnectP50Us')), cell(m('setupAddedP50Us'))];
      }),
    ), '');
  }
  const soak = figures.filter((f) => f.workload === 'soak' && f.metric === 'gbps');
  if (soak.length) {
    out.push('## Bytes in flight over one long stream (bpfredir)', '', 'Sent − received every 0.5 s; growth = mean of the last quarter minus mean of the second quarter.', '', table(
      ['topology', 'system', 'Gbit/s', 'in flight peak MB', 'in flight growth MB', 'never delivered MB', 'MemAvailable drop peak MB', 'TCP mem peak MB'],
      soak.map((f) => {
        const m = (metric: string) => lookup(figures, f.topology, 'soak', f.system, metric);
        return [f.topology, f.system, cell(f, 2), cell(m('inFlightPeakMB'), 1), cell(m('inFlightGrowthMB'), 1), cell(m('notDeliveredMB'), 1), cell(m('memDropMaxMB'), 0), cell(m('tcpMemMaxMB'), 0)];
      }),
    ), '');
  }
  out.push('## Targets of issue #3 (bpfredir)', '', table(
    ['target', 'measured', 'verdict'],
    checks.map((c) => [c.target, c.measured, c.verdict === 'met' ? 'met' : c.verdict === 'missed' ? '**missed**' : 'not measured']),
  ), '');
  const skipped = Object.entries(meta.skipped);
  if (skipped.length || meta.errors.length) {
    out.push('## Not measured', '', ...skipped.map(([s, why]) => `- ${s}: ${why}`), ...meta.errors.map((e) => `- ${e}`), '');
  }
  out.push('<details><summary>Every figure (median, min–max, n, ratios)</summary>', '', table(
    ['topology', 'workload', 'metric', 'system', 'median', 'min–max', 'n', '× direct', '× best peer'],
    figures.map((f) => [f.topology, f.workload, f.metric, f.system, num(f.median, 3), `${num(f.min, 3)}–${num(f.max, 3)}`, String(f.n), ratio(f.ratioToDirect), f.bestPeer ? `${ratio(f.ratioToBestPeer)} (${f.bestPeer})` : '—']),
  ), '', '</details>', '');
  return out.join('\n');
}
