/** What every workload looks like, and the helper that sets up server + redirector around one test. */
import type { BenchOptions } from '../options.js';
import type { Topology, TopologyKind } from '../topology.js';
import { Endpoint, RunningSystem, SystemDef, startSystem } from '../systems.js';
import { Background, hardNofileLimit } from '../proc.js';
import { PROXY_PORT_OFFSET, SERVICE_PORTS, Service, startServer } from '../servers.js';

export type Metrics = Record<string, number>;

export interface WorkloadContext {
  topology: Topology;
  system: SystemDef;
  options: BenchOptions;
  tmpDir: string;
}

export type Repeat = 'every-round' | 'first-round' | 'once';

/** Whether workload w runs in this round (1-based) and topology (index in the run's list). */
export function scheduled(w: Workload, round: number, topologyIndex: number): boolean {
  if (w.repeat === 'first-round') return round === 1;
  if (w.repeat === 'once') return round === 1 && topologyIndex === 0;
  return true;
}

/** What an intercepting system is measured on: bulk streams and connection rate, in the router topology. */
const INTERCEPT_WORKLOADS = ['tcp-1', 'tcp-1-reverse', 'tcp-8', 'connrate'];

/** Whether system runs workload in topology (applicability and the intercepting systems' limits). */
export function runsIn(w: Workload, system: SystemDef, topology: TopologyKind): boolean {
  if (!w.appliesTo(system)) return false;
  return system.kind !== 'intercept' || (topology === 'router' && INTERCEPT_WORKLOADS.includes(w.name));
}

export interface Workload {
  name: string;
  appliesTo(system: SystemDef): boolean;
  /** Every round (default); only in round 1 (slow); or only in round 1 of the first topology
   *  (figures that depend on neither, such as RSS and rule loading). */
  repeat?: Repeat;
  /** Rough duration in seconds, for the time plan printed at the start. */
  seconds(options: BenchOptions): number;
  run(ctx: WorkloadContext): Promise<Metrics>;
}

/** Descriptors for 10k idle connections (two sockets each) or 100k rules, as far as the hard limit allows. */
export const NOFILE = Math.min(400_000, hardNofileLimit());

export interface Forwarded {
  /** Where the client connects: the redirector, or the server itself for direct. */
  endpoint: Endpoint;
  /** The redirector's processes ([] for direct). */
  roots: number[];
  /** CPU seconds the redirector has used so far (0 for direct). */
  cpuSeconds(): number;
  /** The origin server's process. */
  server: Background;
}

/**
 * Start the service's server and (unless direct) the system forwarding to it, run fn, stop both.
 * cpu pins server and redirector (for the pinned-latency test).
 */
export async function withForward<T>(ctx: WorkloadContext, service: Service, cpu: number | undefined, fn: (f: Forwarded) => Promise<T>): Promise<T> {
  const { topology } = ctx;
  const server = await startServer(service, { netns: topology.serverNs, addr: topology.serverAddr, tmpDir: ctx.tmpDir, cpu, nofile: NOFILE });
  let redirector: RunningSystem | null = null;
  try {
    const target = { host: topology.serverAddr, port: SERVICE_PORTS[service] };
    if (ctx.system.kind === 'direct') return await fn({ endpoint: target, roots: [], cpuSeconds: () => 0, server });
    redirector = await startSystem(ctx.system, {
      netns: topology.redirectorNs,
      tmpDir: ctx.tmpDir,
      listen: { host: topology.proxyAddr, port: target.port + PROXY_PORT_OFFSET },
      target,
      cpu,
      nofile: NOFILE,
      bpfredir: { sndbuf: ctx.options.sndbuf, budget: ctx.options.budget },
      ...(topology.interfaces && { interfaces: topology.interfaces }),
    });
    return await fn({ ...redirector, server });
  } finally {
    await redirector?.stop();
    await server.stop();
  }
}
