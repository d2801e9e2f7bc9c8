/** Command-line options of `node dist/bench/run.js` and the quick/full presets. */
import { TOPOLOGIES, TopologyKind } from './topology.js';

export interface BenchOptions {
  mode: 'quick' | 'full';
  rounds: number;
  /** Length of each throughput and conn-rate test. */
  seconds: number;
  /** Length of each sockperf test (sockperf adds ~2.3 s of its own around it). */
  latencySeconds: number;
  /** Length of the long single-stream run that checks in-flight memory does not grow. */
  soakSeconds: number;
  idleConnections: number;
  ruleSizes: number[];
  /** Sequential connects per connection-setup latency figure. */
  setupConnects: number;
  /** Stop starting new tests after this many minutes (results so far are still written). */
  maxMinutes: number;
  systems: string[] | null; // null = all
  workloads: string[] | null; // prefixes; null = all
  topologies: TopologyKind[];
  /** bpfredir's --sndbuf / --budget; undefined = bpfredir's own default. */
  sndbuf?: string;
  budget?: string;
  skipSetup: boolean;
  /** Free text recorded with the results (e.g. what else ran on the machine). */
  note: string;
  /** Only re-render the report from this results file; run nothing. */
  report?: string;
  /** Report files are bench/results/<name>.md and .svg. */
  name: string;
}

const PRESETS: Record<BenchOptions['mode'], Omit<BenchOptions, 'systems' | 'workloads' | 'topologies' | 'sndbuf' | 'budget' | 'skipSetup' | 'note' | 'name'>> = {
  quick: { mode: 'quick', rounds: 1, seconds: 1, latencySeconds: 1, soakSeconds: 6, idleConnections: 10_000, ruleSizes: [1, 10_000], setupConnects: 300, maxMinutes: 8 },
  full: { mode: 'full', rounds: 3, seconds: 3, latencySeconds: 1, soakSeconds: 30, idleConnections: 10_000, ruleSizes: [1, 10_000, 100_000], setupConnects: 1000, maxMinutes: 24 },
};

export const USAGE = `usage: node dist/bench/run.js [--quick|--full] [--systems a,b] [--workloads x,y] [--topology loopback,router]
       [--rounds N] [--seconds S] [--max-minutes M] [--sndbuf 4MiB] [--budget 4MiB] [--skip-setup] [--note TEXT]
       node dist/bench/run.js --report bench/results/<timestamp>.json
  --quick       1 round, 1 s tests, rule sizes 1 and 10k (default; ~5 min)
  --full        3 interleaved rounds, 3 s throughput tests, 30 s soak, rule sizes up to 100k (~20 min)
  --rounds/--seconds  override the preset (--seconds: throughput and conn/s tests)
  --systems     direct,bpfredir,bpfredir-metrics,bpfredir-userspace,haproxy-splice,haproxy,nginx-stream,rinetd,redir,socat
                bpfredir variants side by side: bpfredir:sndbuf=16MiB:budget=0, bpfredir:threads=1, bpfredir:bulk-flows=kernel
  --workloads   name prefixes: tcp-1,tcp-1-reverse,tcp-8,rtt-unpinned,rtt-pinned,connrate,soak,idle,rules
  --topology    loopback,router (both by default; router counts most)
  --sndbuf/--budget   passed to bpfredir forward (default: bpfredir's own defaults)
  --note        free text stored with the results (what else ran on the machine)
  --report FILE re-render the report from a results JSON; runs nothing
  --name NAME   write bench/results/NAME.md and NAME.svg instead of latest.*`;

export function parseOptions(argv: string[]): BenchOptions {
  let mode: BenchOptions['mode'] = 'quick';
  const overrides: Partial<BenchOptions> = {};
  const list = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value\n${USAGE}`);
      return v;
    };
    const positive = () => {
      const n = Number(value());
      if (!(n > 0)) throw new Error(`${arg} needs a positive number\n${USAGE}`);
      return n;
    };
    switch (arg) {
      case '--quick':
      case '--full':
        mode = arg === '--quick' ? 'quick' : 'full';
        break;
      case '--systems':
        overrides.systems = list(value());
        break;
      case '--workloads':
        overrides.workloads = list(value());
        break;
      case '--topology':
      case '--topologies': {
        const kinds = list(value());
        const bad = kinds.filter((k) => !TOPOLOGIES.includes(k as TopologyKind));
        if (bad.length) throw new Error(`unknown topology ${bad.join(', ')}: use loopback and/or router`);
        overrides.topologies = kinds as TopologyKind[];
        break;
      }
      case '--rounds':
        overrides.rounds = Math.round(positive());
        break;
      case '--seconds':
        overrides.seconds = positive();
        break;
      case '--max-minutes':
        overrides.maxMinutes = positive();
        break;
      case '--sndbuf':
        overrides.sndbuf = value();
        break;
      case '--budget':
        overrides.budget = value();
        break;
      case '--name':
        overrides.name = value();
        if (!/^[\w.-]+$/.test(overrides.name)) throw new Error(`--name ${overrides.name}: use letters, digits, '.', '-', '_'`);
        break;
      case '--report':
        overrides.report = value();
        break;
      case '--note':
        overrides.note = value();
        break;
      case '--skip-setup':
        overrides.skipSetup = true;
        break;
      case '--help':
      case '-h':
        throw new Error(USAGE);
      default:
        throw new Error(`unknown option ${arg}\n${USAGE}`);
    }
  }
  return {
    ...PRESETS[mode],
    systems: null,
    workloads: null,
    topologies: [...TOPOLOGIES],
    skipSetup: false,
    note: '',
    name: 'latest',
    ...overrides,
  };
}
