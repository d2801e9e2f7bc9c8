/** Turns one results document (what bench/results/<stamp>.json holds) into a markdown report and a chart. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchOptions } from './options.js';
import { RESULTS_DIR } from './paths.js';
import { renderMarkdown } from './report-md.js';
import { renderSvg } from './report-svg.js';
import { Figure, RunRecord, summarize } from './summary.js';
import { TargetCheck, checkTargets } from './targets.js';

export interface ResultsMeta {
  startedAt: string;
  finishedAt: string;
  host: string;
  kernel: string;
  cpus: number;
  cpuModel?: string;
  loadAverageAtStart: number;
  loadAverageAtEnd: number;
  /** TCP memory pressure at start or end: the figures are then not representative. */
  tcpMemoryPressure?: boolean;
  options: BenchOptions;
  /** Systems that could not run here, and why. */
  skipped: Record<string, string>;
  /** Systems and topologies in the order they ran (report rows and columns). */
  systems: string[];
}

export interface ResultsDocument {
  meta: ResultsMeta;
  runs: RunRecord[];
  errors: string[];
  figures?: Figure[];
  targets?: TargetCheck[];
}

export const resultsFileName = (startedAt: string) => `${startedAt.replace(/\.\d+Z$/, 'Z').replace(/:/g, '-')}.json`;

/** Writes <name>.md and <name>.svg; returns the document with figures and target checks filled in. */
export function writeReports(doc: ResultsDocument, name: string): ResultsDocument {
  const { meta, runs, errors } = doc;
  const figures = summarize(runs);
  const targets = checkTargets(figures);
  const o = meta.options;
  const notes = [
    `Run ${meta.startedAt} on ${meta.host}: kernel ${meta.kernel}, ${meta.cpus} CPUs (${meta.cpuModel ?? 'unknown'}), ${o.mode} mode, ${o.rounds} interleaved round(s); throughput and conn/s tests ${o.seconds} s, sockperf ${o.latencySeconds} s.`,
    `Load average (1 min) at start ${meta.loadAverageAtStart.toFixed(2)}, at end ${meta.loadAverageAtEnd.toFixed(2)}: anything else running on the machine makes these figures noisy.`,
    `bpfredir forward with ${o.sndbuf || o.budget ? `--sndbuf ${o.sndbuf ?? '(default)'} --budget ${o.budget ?? '(default)'}` : 'its default --sndbuf and --budget'}. Raw runs: [${resultsFileName(meta.startedAt)}](${resultsFileName(meta.startedAt)}).`,
    ...(meta.tcpMemoryPressure ? ['**TCP was under memory pressure** (/proc/net/protocols): every socket ran with small buffers; these figures are not representative.'] : []),
    ...(o.note ? [o.note] : []),
  ];
  const markdown = renderMarkdown(figures, targets, {
    title: `bpfredir benchmark: ${name}`,
    notes,
    systems: meta.systems,
    topologies: o.topologies,
    skipped: meta.skipped,
    errors,
  });
  writeFileSync(join(RESULTS_DIR, `${name}.md`), markdown);
  writeFileSync(join(RESULTS_DIR, `${name}.svg`), renderSvg(figures, o.topologies, meta.systems, `bpfredir benchmark ${meta.startedAt} (${o.mode}) — bar = median, whisker = min–max`));
  return { ...doc, figures, targets };
}
