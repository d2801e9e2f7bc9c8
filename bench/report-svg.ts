/**
 * A hand-written SVG chart: one column per topology, one panel per headline metric, one bar
 * per system (median) with a min–max whisker. bpfredir is coloured, direct grey, peers blue.
 */
import { Figure, lookup } from './summary.js';

interface Panel {
  title: string;
  workload: string;
  metric: string;
  decimals: number;
  /** The figure is relative to direct, so direct's row is the zero line. */
  overDirect?: boolean;
}

const PANELS: Panel[] = [
  { title: 'single stream, Gbit/s (higher is better)', workload: 'tcp-1', metric: 'gbps', decimals: 1 },
  { title: 'single stream reverse, Gbit/s', workload: 'tcp-1-reverse', metric: 'gbps', decimals: 1 },
  { title: '8 streams, Gbit/s', workload: 'tcp-8', metric: 'gbps', decimals: 1 },
  { title: 'round trip added, pinned, µs (lower is better)', workload: 'rtt-pinned', metric: 'rttAddedUs', decimals: 1, overDirect: true },
  { title: 'new connections/s (higher is better)', workload: 'connrate', metric: 'connPerSec', decimals: 0 },
  { title: 'machine CPU-s per GB over direct (lower is better)', workload: 'tcp-1', metric: 'machineCpuOverDirect', decimals: 2, overDirect: true },
];

const BAR_SPACE = 250;
const VALUE_SPACE = 60;
const CHAR_WIDTH = 6.2; // of an 11px sans-serif label, roughly
const ROW = 16;
const PANEL_GAP = 34;

const LEGEND = 'dark orange: bpfredir (defaults) and its variants · light orange: bpfredir --datapath userspace · grey: direct · blue: peer tools';

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function colour(system: string): string {
  if (system.startsWith('bpfredir')) return system.startsWith('bpfredir-userspace') ? '#fdb462' : '#d95f02';
  return system === 'direct' ? '#999999' : '#4c78a8';
}

function panel(figures: Figure[], topology: string, systems: string[], p: Panel, x: number, y: number, labelWidth: number): string {
  const rows = systems.map((s) => ({ system: s, f: lookup(figures, topology, p.workload, s, p.metric) }));
  const scaleMax = Math.max(1e-9, ...rows.map((r) => (r.f ? Math.max(r.f.max, r.f.median, 0) : 0)));
  const px = (v: number) => (Math.max(0, v) / scaleMax) * BAR_SPACE;
  const parts = [`<text x="${x}" y="${y}" class="title">${escape(`${topology}: ${p.title}`)}</text>`];
  rows.forEach(({ system, f }, i) => {
    const top = y + 8 + i * ROW;
    const mid = top + ROW / 2;
    parts.push(`<text x="${x + labelWidth - 6}" y="${mid + 4}" class="label">${escape(system)}</text>`);
    if (!f) {
      const note = p.overDirect && system === 'direct' ? 'baseline' : 'not measured';
      parts.push(`<text x="${x + labelWidth + 4}" y="${mid + 4}" class="missing">${note}</text>`);
      return;
    }
    const x0 = x + labelWidth;
    parts.push(`<rect x="${x0}" y="${top + 2}" width="${px(f.median).toFixed(1)}" height="${ROW - 4}" fill="${colour(system)}"/>`);
    if (f.n > 1) parts.push(`<line x1="${(x0 + px(f.min)).toFixed(1)}" x2="${(x0 + px(f.max)).toFixed(1)}" y1="${mid}" y2="${mid}" class="whisker"/>`);
    const value = f.median.toFixed(p.decimals);
    parts.push(`<text x="${(x0 + px(Math.max(f.median, f.max)) + 4).toFixed(1)}" y="${mid + 4}" class="value">${value}</text>`);
  });
  return parts.join('\n');
}

export function renderSvg(figures: Figure[], topologies: string[], systems: string[], caption: string): string {
  const labelWidth = Math.max(130, Math.ceil(Math.max(...systems.map((s) => s.length)) * CHAR_WIDTH) + 10);
  const panelWidth = labelWidth + BAR_SPACE + VALUE_SPACE;
  const panelHeight = 8 + systems.length * ROW + PANEL_GAP;
  const width = Math.max(640, topologies.length * (panelWidth + 20) + 20); // room for the legend
  const height = 56 + PANELS.length * panelHeight;
  const body = PANELS.flatMap((p, row) => topologies.map((t, col) => panel(figures, t, systems, p, 20 + col * (panelWidth + 20), 72 + row * panelHeight, labelWidth)));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">
<style>
  .title { font-size: 12px; font-weight: bold; fill: #222; }
  .label { font-size: 11px; text-anchor: end; fill: #333; }
  .value { font-size: 10px; fill: #333; }
  .missing { font-size: 10px; fill: #aaa; font-style: italic; }
  .whisker { stroke: #222; stroke-width: 1.2; }
  .caption { font-size: 11px; fill: #555; }
</style>
<rect width="100%" height="100%" fill="white"/>
<text x="20" y="22" class="caption">${escape(caption)}</text>
<text x="20" y="38" class="caption">${escape(LEGEND)}</text>
${body.join('\n')}
</svg>
`;
}
