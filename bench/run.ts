/**
 * `make bench`: runs every selected system through every workload in interleaved rounds
 * (round 1 of every system, then round 2 …) in namespaces it creates and always removes, then
 * writes bench/results/<timestamp>.json, latest.md and latest.svg (or --name).
 */
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, hostname, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanupAll, onCleanup } from './cleanup.js';
import { tcpMemoryPressure } from './host.js';
import { BenchOptions, parseOptions } from './options.js';
import { RESULTS_DIR } from './paths.js';
import { ResultsDocument, resultsFileName, writeReports } from './report.js';
import { ensurePackages } from './setup.js';
import type { RunRecord } from './summary.js';
import { SYSTEMS, SystemDef, resolveSystem } from './systems.js';
import { Topology, createTopology } from './topology.js';
import { allWorkloads } from './workloads/all.js';
import { Metrics, Workload, runsIn, scheduled } from './workloads/workload.js';

const HEADLINE: [string, string][] = [
  ['gbps', 'Gbit/s'],
  ['rttAvgUs', 'µs avg'],
  ['connPerSec', 'conn/s'],
  ['rssMB', 'MB RSS'],
  ['loadSec', 's to load'],
];

function headline(metrics: Metrics): string {
  const found = HEADLINE.find(([key]) => key in metrics);
  return found ? `${metrics[found[0]].toFixed(2)} ${found[1]}` : '';
}

function selectSystems(options: BenchOptions, skipped: Record<string, string>): SystemDef[] {
  const chosen = (options.systems ?? SYSTEMS.map((s) => s.name)).map(resolveSystem);
  for (const s of chosen) {
    const why = s.unavailable();
    if (why) skipped[s.name] = why;
  }
  return chosen.filter((s) => !skipped[s.name]);
}

function selectWorkloads(options: BenchOptions): Workload[] {
  const all = allWorkloads(options);
  if (!options.workloads) return all;
  const prefixes = options.workloads;
  const unmatched = prefixes.filter((p) => !all.some((w) => w.name.startsWith(p)));
  if (unmatched.length) throw new Error(`no workload matches ${unmatched.join(', ')}: choose from ${all.map((w) => w.name).join(', ')}`);
  return all.filter((w) => prefixes.some((p) => w.name.startsWith(p)));
}

/** Rough wall time of the plan: each test's own length plus ~0.5 s to start its servers. */
function planSeconds(options: BenchOptions, systems: SystemDef[], workloads: Workload[]): number {
  let total = 0;
  for (let round = 1; round <= options.rounds; round++) {
    options.topologies.forEach((_, t) => {
      for (const system of systems) {
        for (const w of workloads) {
          if (runsIn(w, system, options.topologies[t]!) && scheduled(w, round, t)) total += w.seconds(options) + 0.5;
        }
      }
    });
  }
  return total;
}

/** Write via a temp file and rename, so a crash never leaves half a JSON file. */
function writeResults(document: ResultsDocument): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, resultsFileName(document.meta.startedAt));
  writeFileSync(`${file}.tmp`, `${JSON.stringify(document, null, 1)}\n`);
  renameSync(`${file}.tmp`, file);
  return file;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (options.report) {
    const doc = JSON.parse(readFileSync(options.report, 'utf8')) as ResultsDocument;
    writeReports(doc, options.name);
    process.stderr.write(`bench: wrote ${join(RESULTS_DIR, options.name)}.md and .svg from ${options.report}\n`);
    return;
  }
  if (!options.skipSetup) ensurePackages();
  const skipped: Record<string, string> = {};
  const systems = selectSystems(options, skipped);
  const workloads = selectWorkloads(options);
  for (const [name, why] of Object.entries(skipped)) process.stderr.write(`bench: skipping ${name}: ${why}\n`);

  const startedAt = new Date().toISOString();
  const deadline = performance.now() + options.maxMinutes * 60_000;
  const tmpDir = mkdtempSync(join(tmpdir(), 'bfrbench-'));
  onCleanup(`temp dir ${tmpDir}`, () => rmSync(tmpDir, { recursive: true, force: true }));
  const loadAverageAtStart = loadavg()[0];
  const pressureAtStart = tcpMemoryPressure();
  if (pressureAtStart.on)
    process.stderr.write(
      `bench: warning: TCP is under memory pressure (sockstat "TCP: mem" ${pressureAtStart.pages} pages ≥ net.ipv4.tcp_mem[1]); ` +
        'every socket runs with small buffers, so these figures will not be representative. If no socket holds that memory ' +
        '(a leak), raise net.ipv4.tcp_mem by it or reboot; see docs/PERFORMANCE.md\n',
    );

  const plannedSeconds = planSeconds(options, systems, workloads);
  process.stderr.write(`bench: ${options.mode} mode, ${options.rounds} round(s), about ${Math.ceil(plannedSeconds / 60)} min (stops starting tests after ${options.maxMinutes} min)\n`);
  const topologies: Topology[] = options.topologies.map(createTopology);
  const runs: RunRecord[] = [];
  const errors: string[] = [];
  const document = (): ResultsDocument => ({
    meta: {
      startedAt,
      finishedAt: new Date().toISOString(),
      host: hostname(),
      kernel: release(),
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      loadAverageAtStart,
      loadAverageAtEnd: loadavg()[0],
      tcpMemoryPressure: pressureAtStart.on || tcpMemoryPressure().on,
      options,
      skipped,
      systems: systems.map((s) => s.name),
    },
    runs,
    errors,
  });

  let stoppedEarly = false;
  outer: for (let round = 1; round <= options.rounds; round++) {
    for (const [topologyIndex, topology] of topologies.entries()) {
      for (const system of systems) {
        for (const workload of workloads) {
          if (!runsIn(workload, system, topology.kind) || !scheduled(workload, round, topologyIndex)) continue;
          if (performance.now() > deadline) {
            stoppedEarly = true;
            break outer;
          }
          const tag = `[round ${round} ${topology.kind} ${system.name} ${workload.name}]`;
          const started = performance.now();
          const record: RunRecord = { round, topology: topology.kind, system: system.name, workload: workload.name, startedAt: new Date().toISOString(), seconds: 0, metrics: {} };
          try {
            record.metrics = await workload.run({ topology, system, options, tmpDir });
            process.stderr.write(`${tag} ${headline(record.metrics)}\n`);
          } catch (err) {
            record.error = (err as Error).message.split('\n')[0];
            errors.push(`${tag} ${record.error}`);
            process.stderr.write(`${tag} FAILED: ${record.error}\n`);
          }
          record.seconds = (performance.now() - started) / 1000;
          runs.push(record);
        }
      }
    }
    writeResults(document()); // partial results survive a later crash
  }
  if (stoppedEarly) errors.push(`stopped after ${options.maxMinutes} min (--max-minutes); later tests were not run`);
  cleanupAll();

  const final = writeReports(document(), options.name);
  const jsonFile = writeResults(final);
  const checks = final.targets ?? [];
  const met = checks.filter((c) => c.verdict === 'met').length;
  const missed = checks.filter((c) => c.verdict === 'missed').length;
  process.stderr.write(
    `bench: ${runs.length} runs (${errors.length} problems); targets met ${met}, missed ${missed}, not measured ${checks.length - met - missed}\n` +
      `bench: wrote ${jsonFile}, ${join(RESULTS_DIR, options.name)}.md and .svg\n`,
  );
}

main().catch((err: Error) => {
  process.stderr.write(`bench: ${err.message}\n`);
  cleanupAll();
  process.exitCode = 1;
});
