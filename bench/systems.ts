/**
 * The systems compared: direct (no redirector), bpfredir on both datapaths, and the peer tools
 * from Debian's packages. Each peer is configured from a file generated into the run's temp dir
 * with the same single forward (listen → target), then started in the redirector namespace.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Background, runInNetns, sh, sleep, startBackground, treeCpuSeconds } from './proc.js';
import { createCpuGroup } from './cpu-group.js';
import { lastLines, waitListening, waitOutput } from './ready.js';
import { BENCH_TOOLS, BPFREDIR_ADDON, BPFREDIR_CLI, BPF_OBJECT } from './paths.js';

export interface Endpoint {
  host: string;
  port: number;
}

/** bpfredir forward's options of these names; unset = bpfredir's default. */
export interface BpfredirTuning {
  sndbuf?: string;
  budget?: string;
  threads?: string;
  'splice-after'?: string;
  'bulk-flows'?: string;
}

const TUNING_KEYS = ['sndbuf', 'budget', 'threads', 'splice-after', 'bulk-flows'] as const;

export interface StartContext {
  netns: string;
  tmpDir: string;
  listen: Endpoint;
  target: Endpoint;
  /** Pin the redirector (and its children) to this CPU. */
  cpu?: number;
  nofile: number;
  bpfredir: BpfredirTuning;
  /** Router topology: the redirector namespace's interfaces towards the client and the server. */
  interfaces?: { client: string; server: string };
}

export interface RunningSystem {
  /** Where clients connect. */
  endpoint: Endpoint;
  /** Root pids whose process trees are the redirector (RSS is summed over them). */
  roots: number[];
  /** CPU seconds used so far by the redirector and all its children, exited ones included. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/** intercept: takes connections routed through the router to the server (router topology only). */
export type SystemKind = 'direct' | 'bpfredir' | 'peer' | 'intercept';

export interface SystemDef {
  name: string;
  kind: SystemKind;
  /** Why this system cannot run here, or null. */
  unavailable(): string | null;
  /** Command line for the single forward described by ctx (not used for direct). */
  command(ctx: StartContext): string[];
  /** A helper started beside it once it listens (e.g. a scraper); its CPU is not the system's. */
  sidecar?(ctx: StartContext): string[];
  /** Commands run in its namespace before it starts, and after it stops (firewall and routing recipes). */
  setup?(ctx: StartContext): string[][];
  teardown?(ctx: StartContext): string[][];
  /** Ready when `bpfredir status` answers (its sockets are private), not when a port listens. */
  readyByStatus?: boolean;
}

const hostPort = (e: Endpoint) => `${e.host}:${e.port}`;

/** Descriptors a redirector keeps for itself (listeners, logs, epoll …). */
const RESERVED_FDS = 100;
/** HAProxy's splice pipes (two descriptors each); enough for the benchmark's concurrent streams. */
const HAPROXY_PIPES = 256;

function configFile(ctx: StartContext, name: string, text: string): { dir: string; file: string } {
  const dir = mkdtempSync(join(ctx.tmpDir, `${name}-`));
  const file = join(dir, name);
  writeFileSync(file, text);
  return { dir, file };
}

function haproxy(name: string, splice: boolean): SystemDef {
  return {
    name,
    kind: 'peer',
    unavailable: () => (existsSync('/usr/sbin/haproxy') ? null : 'haproxy is not installed'),
    command(ctx) {
      const { file } = configFile(
        ctx,
        'haproxy.cfg',
        [
          'global',
          `  maxconn ${Math.floor((ctx.nofile - RESERVED_FDS - (splice ? 2 * HAPROXY_PIPES : 0)) / 2)}`,
          splice ? `  maxpipes ${HAPROXY_PIPES}` : '',
          'defaults',
          '  mode tcp',
          '  timeout connect 5s',
          '  timeout client 10m',
          '  timeout server 10m',
          splice ? '  option splice-auto' : '',
          'frontend bench',
          `  bind ${hostPort(ctx.listen)}`,
          '  default_backend upstream',
          'backend upstream',
          `  server origin ${hostPort(ctx.target)}`,
          '',
        ].join('\n'),
      );
      return ['haproxy', '-db', '-f', file];
    },
  };
}

const NGINX_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

const nginxStream: SystemDef = {
  name: 'nginx-stream',
  kind: 'peer',
  unavailable: () => (existsSync(NGINX_STREAM_MODULE) ? null : `nginx stream module missing (${NGINX_STREAM_MODULE}): apt-get install libnginx-mod-stream`),
  command(ctx) {
    const { dir, file } = configFile(
      ctx,
      'nginx.conf',
      [
        `load_module ${NGINX_STREAM_MODULE};`,
        'daemon off;',
        'worker_processes auto;',
        `worker_rlimit_nofile ${ctx.nofile};`,
        'pid nginx.pid;',
        'error_log error.log warn;',
        `events { worker_connections ${ctx.nofile - RESERVED_FDS}; }`,
        `stream { server { listen ${hostPort(ctx.listen)}; proxy_pass ${hostPort(ctx.target)}; } }`,
        '',
      ].join('\n'),
    );
    return ['nginx', '-p', dir, '-e', `${dir}/error.log`, '-c', file];
  },
};

const rinetd: SystemDef = {
  name: 'rinetd',
  kind: 'peer',
  unavailable: () => (existsSync('/usr/sbin/rinetd') ? null : 'rinetd is not installed'),
  command(ctx) {
    const { file } = configFile(ctx, 'rinetd.conf', `${ctx.listen.host} ${ctx.listen.port} ${ctx.target.host} ${ctx.target.port}\n`);
    return ['rinetd', '-f', '-c', file];
  },
};

const redir: SystemDef = {
  name: 'redir',
  kind: 'peer',
  unavailable: () => (existsSync('/usr/bin/redir') ? null : 'redir is not installed'),
  command: (ctx) => ['redir', '-n', '-l', 'err', hostPort(ctx.listen), hostPort(ctx.target)],
};

const socat: SystemDef = {
  name: 'socat',
  kind: 'peer',
  unavailable: () => (existsSync('/usr/bin/socat') ? null : 'socat is not installed'),
  command: (ctx) => ['socat', `TCP-LISTEN:${ctx.listen.port},bind=${ctx.listen.host},fork,reuseaddr`, `TCP:${hostPort(ctx.target)}`],
};

function bpfredirUnavailable(): string | null {
  for (const [path, what] of [
    [BPFREDIR_CLI, 'CLI'],
    [BPFREDIR_ADDON, 'native addon'],
    [BPF_OBJECT, 'BPF object'],
  ]) {
    if (!existsSync(path)) return `bpfredir ${what} not built (${path}): run make`;
  }
  return null;
}

/** Where the metrics-on variant serves /metrics inside the redirector namespace. */
const METRICS_ENDPOINT = '127.0.0.1:9477';
const SCRAPE_INTERVAL_MS = 1000;

function bpfredir(name: string, datapath: 'splice' | 'userspace', scraped = false): SystemDef {
  return {
    name,
    kind: 'bpfredir',
    unavailable: bpfredirUnavailable,
    ...(scraped && { sidecar: () => [process.execPath, join(BENCH_TOOLS, 'scrape.js'), `http://${METRICS_ENDPOINT}/metrics`, String(SCRAPE_INTERVAL_MS), '7200'] }),
    command: (ctx) => [
      process.execPath,
      BPFREDIR_CLI,
      'forward',
      hostPort(ctx.listen),
      hostPort(ctx.target),
      '--datapath',
      datapath,
      // No per-connection log lines, like the peers here (none has an access log configured).
      '--log-level',
      'warn',
      // Each setting is the forward option of the same name.
      ...TUNING_KEYS.flatMap((key) => (ctx.bpfredir[key] ? [`--${key}`, ctx.bpfredir[key]!] : [])),
      ...(scraped ? ['--metrics-listen', METRICS_ENDPOINT] : []),
    ],
  };
}

/**
 * A transparent-source proxy leaves its closed upstream connections in TIME_WAIT on the router,
 * bound to the client's address and port; for 60 s a plain forwarded connection that reuses
 * that 4-tuple is dropped (early demux finds the local socket, ip_forward refuses it). So that
 * one system's run cannot fail the next one's (plain forwarding's connrate did), the router
 * keeps no TIME_WAIT while a transparent system runs: the same for bpfredir and HAProxy.
 */
const TW_BUCKETS = 'net.ipv4.tcp_max_tw_buckets';
const savedTwBuckets = new Map<string, string>();
const noTimeWait = {
  setup: (ctx: StartContext): string[][] => {
    savedTwBuckets.set(ctx.netns, sh(['ip', 'netns', 'exec', ctx.netns, 'sysctl', '-n', TW_BUCKETS]).trim());
    return [['sysctl', '-qw', `${TW_BUCKETS}=0`]];
  },
  teardown: (ctx: StartContext): string[][] => [['sysctl', '-qw', `${TW_BUCKETS}=${savedTwBuckets.get(ctx.netns) ?? '262144'}`]],
};

/** bpfredir run with one intercept rule for the service, to the original destination. */
function bpfredirIntercept(name: string, transparent: boolean): SystemDef {
  return {
    name,
    kind: 'intercept',
    unavailable: bpfredirUnavailable,
    readyByStatus: true,
    ...(transparent && noTimeWait),
    command(ctx) {
      const { client, server } = ctx.interfaces!;
      const config = {
        ...(ctx.bpfredir.sndbuf && { sndbuf: ctx.bpfredir.sndbuf }),
        ...(ctx.bpfredir.budget && { budget: ctx.bpfredir.budget }),
        ...(transparent && { interception: { return_interfaces: [server] } }),
        rules: [
          {
            name: 'intercept',
            intercept: `${ctx.target.host}/32`,
            ports: ctx.target.port,
            interfaces: [client],
            target: 'original',
            ...(transparent && { transparent_source: 'address' }),
          },
        ],
      };
      const { file } = configFile(ctx, 'bpfredir.json', JSON.stringify(config));
      return [process.execPath, BPFREDIR_CLI, 'run', '--config', file, '--log-level', 'warn'];
    },
  };
}

/**
 * HAProxy behind the classic TPROXY recipe (Documentation/networking/tproxy.rst): iptables
 * marks packets of local sockets and diverts the service port to HAProxy's transparent
 * listener, a policy route delivers marked packets locally, and `usesrc clientip` connects
 * from the client's address. Splice on, as its fastest configuration.
 */
const TPROXY_MARK = '0x1';
const TPROXY_TABLE = '100';
const haproxyTproxy: SystemDef = {
  name: 'haproxy-tproxy',
  kind: 'intercept',
  unavailable: () => (existsSync('/usr/sbin/haproxy') && existsSync('/usr/sbin/iptables') ? null : 'haproxy or iptables is not installed'),
  setup: (ctx) => [
    ...noTimeWait.setup(ctx),
    ['iptables', '-t', 'mangle', '-N', 'DIVERT'],
    ['iptables', '-t', 'mangle', '-A', 'PREROUTING', '-p', 'tcp', '-m', 'socket', '-j', 'DIVERT'],
    ['iptables', '-t', 'mangle', '-A', 'DIVERT', '-j', 'MARK', '--set-mark', TPROXY_MARK],
    ['iptables', '-t', 'mangle', '-A', 'DIVERT', '-j', 'ACCEPT'],
    ['iptables', '-t', 'mangle', '-A', 'PREROUTING', '-i', ctx.interfaces!.client, '-p', 'tcp', '--dport', String(ctx.target.port), '-j', 'TPROXY', '--tproxy-mark', `${TPROXY_MARK}/${TPROXY_MARK}`, '--on-port', String(ctx.listen.port)],
    ['ip', 'rule', 'add', 'fwmark', TPROXY_MARK, 'lookup', TPROXY_TABLE],
    ['ip', 'route', 'add', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', TPROXY_TABLE],
  ],
  teardown: (ctx) => [
    ...noTimeWait.teardown(ctx),
    ['iptables', '-t', 'mangle', '-F'],
    ['iptables', '-t', 'mangle', '-X', 'DIVERT'],
    ['ip', 'rule', 'del', 'fwmark', TPROXY_MARK, 'lookup', TPROXY_TABLE],
    ['ip', 'route', 'flush', 'table', TPROXY_TABLE],
  ],
  command(ctx) {
    const { file } = configFile(
      ctx,
      'haproxy.cfg',
      [
        'global',
        `  maxconn ${Math.floor((ctx.nofile - RESERVED_FDS - 2 * HAPROXY_PIPES) / 2)}`,
        `  maxpipes ${HAPROXY_PIPES}`,
        'defaults',
        '  mode tcp',
        '  timeout connect 5s',
        '  timeout client 10m',
        '  timeout server 10m',
        '  option splice-auto',
        'frontend bench',
        `  bind 0.0.0.0:${ctx.listen.port} transparent`,
        '  default_backend upstream',
        'backend upstream',
        '  source 0.0.0.0 usesrc clientip',
        `  server origin ${hostPort(ctx.target)}`,
        '',
      ].join('\n'),
    );
    return ['haproxy', '-db', '-f', file];
  },
};

const direct: SystemDef = { name: 'direct', kind: 'direct', unavailable: () => null, command: () => [] };

export const SYSTEMS: SystemDef[] = [
  direct,
  // Defaults (datapath auto): each connection's first 64 KiB on the recv/send copy, bulk flows
  // on splice(2), the rest in the sockmap. (Named bpfredir-splice before 2026-12-03.)
  bpfredir('bpfredir', 'splice'),
  // The same, with /metrics scraped every second: what metrics cost (PERFORMANCE.md).
  bpfredir('bpfredir-metrics', 'splice', true),
  // --datapath userspace: no BPF; copy, then splice(2).
  bpfredir('bpfredir-userspace', 'userspace'),
  haproxy('haproxy-splice', true),
  haproxy('haproxy', false),
  nginxStream,
  rinetd,
  redir,
  socat,
  // Router interception (router topology; "direct" there is plain forwarding).
  bpfredirIntercept('bpfredir-intercept', false),
  bpfredirIntercept('bpfredir-intercept-transparent', true),
  haproxyTproxy,
];

/**
 * A system by name, or a bpfredir variant with its own tuning to compare side by side in one
 * run, e.g. "bpfredir:sndbuf=16MiB:budget=0", "bpfredir:threads=1" or, every flow in the
 * sockmap, "bpfredir:bulk-flows=kernel".
 */
export function resolveSystem(spec: string): SystemDef {
  const [given, ...settings] = spec.split(':');
  const name = given === 'bpfredir-splice' ? 'bpfredir' : given; // its old name
  const base = SYSTEMS.find((s) => s.name === name);
  if (!base) throw new Error(`unknown system ${name}: choose from ${SYSTEMS.map((s) => s.name).join(', ')}`);
  if (settings.length === 0) return base;
  const howTo = 'sndbuf=SIZE, budget=SIZE, threads=N, splice-after=SIZE or bulk-flows=relay|kernel';
  if (base.kind !== 'bpfredir') throw new Error(`${spec}: only bpfredir systems take settings (${howTo})`);
  const tuning: BpfredirTuning = {};
  for (const setting of settings) {
    const [key, value] = setting.split('=');
    const known = TUNING_KEYS.find((k) => k === key);
    if (!known || !value) throw new Error(`${spec}: '${setting}' is not ${howTo}`);
    tuning[known] = value;
  }
  return { ...base, name: spec, command: (ctx) => base.command({ ...ctx, bpfredir: { ...ctx.bpfredir, ...tuning } }) };
}

/** Resolves once `bpfredir status` answers in netns: its rules are applied. */
async function waitStatus(netns: string, proc: Background, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await runInNetns({ netns, argv: [process.execPath, BPFREDIR_CLI, 'status'] }, 5000);
    if (run.code === 0) return;
    if (proc.hasExited() || Date.now() > deadline) throw new Error(`bpfredir did not answer status within ${timeoutMs} ms: ${lastLines(run.stderr)} ${lastLines(proc.output())}`);
    await sleep(100);
  }
}

/** Start a redirector for one forward and wait until it listens. */
export async function startSystem(system: SystemDef, ctx: StartContext): Promise<RunningSystem> {
  const inNs = (argv: string[]) => sh(['ip', 'netns', 'exec', ctx.netns, ...argv]);
  for (const argv of system.setup?.(ctx) ?? []) inNs(argv);
  const undoSetup = () => {
    for (const argv of system.teardown?.(ctx) ?? []) {
      try {
        inNs(argv);
      } catch {
        // best effort: the namespace goes at the end of the run anyway
      }
    }
  };
  const group = createCpuGroup(system.name);
  const proc: Background = startBackground(system.name, { netns: ctx.netns, argv: system.command(ctx), cpu: ctx.cpu, nofile: ctx.nofile, cgroup: group?.path });
  let sidecar: Background | undefined;
  const stopAll = async () => {
    await sidecar?.stop();
    await proc.stop();
    group?.remove();
    undoSetup();
  };
  try {
    if (system.readyByStatus) await waitStatus(ctx.netns, proc);
    else await waitListening(ctx.netns, ctx.listen.port, proc);
    if (system.sidecar) {
      sidecar = startBackground(`${system.name} sidecar`, { netns: ctx.netns, argv: system.sidecar(ctx) });
      await waitOutput(sidecar, /^scraping$/m, 10_000);
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  return {
    // Intercepting systems take the client's own connection to the server.
    endpoint: system.kind === 'intercept' ? ctx.target : ctx.listen,
    roots: [proc.pid],
    cpuSeconds: group ? group.cpuSeconds : () => treeCpuSeconds([proc.pid]),
    stop: stopAll,
  };
}
