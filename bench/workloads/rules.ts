/**
 * Rule-table scale for bpfredir: start `bpfredir run --config` with N steering entries in the
 * kernel's rule table (N /32 destinations on port 80, grouped 1000 to a rule: bpfredir gives each
 * rule a listening socket and caps rules at 65535, while the table itself is what has to scale),
 * time until it reports ready, then time connection setup to the first and last steered address
 * interleaved with plain connects to the server (no steering).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Background, runInNetns, sh, startBackground } from '../proc.js';
import { BENCH_TOOLS, BPFREDIR_CLI } from '../paths.js';
import { SERVICE_PORTS, startServer } from '../servers.js';
import { waitOutput } from '../ready.js';
import { Metrics, NOFILE, Workload, WorkloadContext } from './workload.js';

const STEERED_PREFIX = '10.200.0.0/14'; // room for 262,144 /32 rules
const STEERED_PORT = 80;
const READY_LINE = /bpfredir: \d+ rules?/;
const DESTINATIONS_PER_RULE = 1000;

/** The i-th steered address: 10.200.0.0 + i. */
function steeredAddress(i: number): string {
  const n = (10 << 24) + (200 << 16) + i;
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function writeRulesConfig(dir: string, count: number, target: string): string {
  const lines = ['datapath: splice', 'rules:'];
  for (let first = 0; first < count; first += DESTINATIONS_PER_RULE) {
    const destinations: string[] = [];
    for (let i = first; i < Math.min(count, first + DESTINATIONS_PER_RULE); i++) destinations.push(`${steeredAddress(i)}/32`);
    lines.push(`  - name: r${first}`, `    destination: [${destinations.join(', ')}]`, `    ports: ${STEERED_PORT}`, `    target: "${target}"`);
  }
  const file = join(dir, `rules-${count}.yaml`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/** One connect-latency run alternating over the targets; one result per target, in order. */
async function setupLatency(ctx: WorkloadContext, targets: string[]): Promise<Metrics[]> {
  const argv = [process.execPath, join(BENCH_TOOLS, 'connect-latency.js'), String(ctx.options.setupConnects), ...targets];
  const run = await runInNetns({ netns: ctx.topology.clientNs, argv }, 300_000);
  const lines = run.stdout.trim().split('\n').filter((l) => l.startsWith('{'));
  if (run.code !== 0 || lines.length !== targets.length) throw new Error(`connect-latency failed: ${run.stderr.trim().slice(0, 200)}`);
  const results = lines.map((l) => JSON.parse(l) as Metrics & { target: string });
  const failing = results.find((r) => r.failed > 0);
  if (failing) throw new Error(`${failing.failed} of ${ctx.options.setupConnects} connects to ${failing.target} failed`);
  return results;
}

const label = (n: number) => (n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : String(n));

export function rules(count: number): Workload {
  return {
    name: `rules-${label(count)}`,
    repeat: 'once',
    appliesTo: (system) => system.name === 'bpfredir',
    seconds: () => 3 + count / 2000, // start-up grows with the rule count
    async run(ctx) {
      const { topology } = ctx;
      const server = await startServer('hold', { netns: topology.serverNs, addr: topology.serverAddr, tmpDir: ctx.tmpDir, nofile: NOFILE });
      let daemon: Background | null = null;
      // The steered prefix is delivered locally in the redirector's namespace (AnyIP).
      sh(['ip', '-n', topology.redirectorNs, 'route', 'add', 'local', STEERED_PREFIX, 'dev', 'lo']);
      try {
        const config = writeRulesConfig(ctx.tmpDir, count, `${topology.serverAddr}:${SERVICE_PORTS.hold}`);
        const started = performance.now();
        daemon = startBackground(`bpfredir run (${count} rule entries)`, {
          netns: topology.redirectorNs,
          argv: [process.execPath, BPFREDIR_CLI, 'run', '--config', config],
          nofile: NOFILE,
        });
        await waitOutput(daemon, READY_LINE, 120_000);
        const loadSec = (performance.now() - started) / 1000;
        const [baseline, first, last] = await setupLatency(ctx, [
          `${topology.serverAddr}:${SERVICE_PORTS.hold}`,
          `${steeredAddress(0)}:${STEERED_PORT}`,
          `${steeredAddress(count - 1)}:${STEERED_PORT}`,
        ]);
        return {
          entries: count,
          rules: Math.ceil(count / DESTINATIONS_PER_RULE),
          loadSec,
          setupP50Us: Math.max(first.p50Us, last.p50Us),
          setupAvgUs: (first.avgUs + last.avgUs) / 2,
          setupP99Us: Math.max(first.p99Us, last.p99Us),
          plainConnectP50Us: baseline.p50Us,
          // What steering adds over a plain connect timed in the same interleaved loop: robust to machine drift.
          setupAddedP50Us: Math.max(first.p50Us, last.p50Us) - baseline.p50Us,
        };
      } finally {
        await daemon?.stop();
        await server.stop();
        sh(['ip', '-n', topology.redirectorNs, 'route', 'del', 'local', STEERED_PREFIX, 'dev', 'lo']);
      }
    },
  };
}
