/**
 * iperf3 bulk transfer through the system. Reports the RECEIVER's bytes (a sockmap sender's count
 * includes bytes still queued in the kernel), whole-machine and redirector CPU per GB, and the
 * bytes in flight between sender and receiver every half second (sent − received so far: what
 * sits in socket buffers and the redirector's queues), with machine-wide memory beside it.
 */
import { machineBusySeconds, startMemorySampler, summarizeMemory } from '../host.js';
import { runInNetns } from '../proc.js';
import type { BenchOptions } from '../options.js';
import type { SystemDef } from '../systems.js';
import { quarterGrowth } from '../summary.js';
import { Metrics, Repeat, Workload, withForward } from './workload.js';

interface IperfInterval {
  sum: { bytes: number; sender: boolean };
}

interface IperfResult {
  error?: string;
  intervals?: IperfInterval[];
  server_output_json?: { intervals?: IperfInterval[] };
  end?: { sum_sent?: { bytes: number }; sum_received?: { bytes: number; seconds: number } };
}

const INTERVAL_SECONDS = 0.5;

/** Sent − received after each interval, from the sender's and the receiver's own interval reports. */
function inFlightSeries(result: IperfResult): number[] {
  const sides = [result.intervals ?? [], result.server_output_json?.intervals ?? []];
  const sender = sides.find((side) => side[0]?.sum.sender) ?? [];
  const receiver = sides.find((side) => side[0] && !side[0].sum.sender) ?? [];
  const series: number[] = [];
  let sent = 0;
  let received = 0;
  for (let i = 0; i < Math.min(sender.length, receiver.length); i++) {
    sent += sender[i].sum.bytes;
    received += receiver[i].sum.bytes;
    series.push(sent - received);
  }
  return series;
}

export interface ThroughputShape {
  name: string;
  reverse: boolean;
  streams: number;
  seconds(options: BenchOptions): number;
  /** Only for these systems (default: all). */
  only?: (system: SystemDef) => boolean;
  repeat?: Repeat;
}

export function throughput(shape: ThroughputShape): Workload {
  return {
    name: shape.name,
    repeat: shape.repeat,
    appliesTo: (system) => !shape.only || shape.only(system),
    seconds: (o) => shape.seconds(o) + 1,
    run: (ctx) =>
      withForward(ctx, 'iperf3', undefined, async ({ endpoint, cpuSeconds }): Promise<Metrics> => {
        const seconds = shape.seconds(ctx.options);
        const argv = ['iperf3', '-c', endpoint.host, '-p', String(endpoint.port), '-t', String(seconds), '-i', String(INTERVAL_SECONDS)];
        argv.push('-J', '--get-server-output', '--connect-timeout', '3000');
        if (shape.reverse) argv.push('-R');
        if (shape.streams > 1) argv.push('-P', String(shape.streams));
        const memory = startMemorySampler();
        const machine0 = machineBusySeconds();
        const proc0 = cpuSeconds();
        const run = await runInNetns({ netns: ctx.topology.clientNs, argv }, (seconds + 20) * 1000);
        const machineCpu = machineBusySeconds() - machine0;
        const procCpu = cpuSeconds() - proc0;
        const samples = memory.stop();
        if (run.timedOut) throw new Error(`iperf3 did not finish within ${seconds + 20} s`);
        let result: IperfResult;
        try {
          result = JSON.parse(run.stdout) as IperfResult;
        } catch {
          throw new Error(`iperf3 printed no JSON (exit ${run.code}): ${run.stderr.trim().slice(0, 200)}`);
        }
        if (result.error) throw new Error(`iperf3: ${result.error}`);
        const received = result.end?.sum_received;
        const sent = result.end?.sum_sent?.bytes ?? 0;
        if (!received || received.bytes <= 0) throw new Error('iperf3 reported no received bytes');
        const gigabytes = received.bytes / 1e9;
        const inFlight = inFlightSeries(result);
        return {
          gbps: (received.bytes * 8) / received.seconds / 1e9,
          receivedGB: gigabytes,
          machineCpuSecPerGB: machineCpu / gigabytes,
          procCpuSecPerGB: procCpu / gigabytes,
          notDeliveredMB: Math.max(0, sent - received.bytes) / 1e6,
          inFlightPeakMB: Math.max(0, ...inFlight) / 1e6,
          inFlightGrowthMB: quarterGrowth(inFlight) / 1e6,
          ...summarizeMemory(samples),
        };
      }),
  };
}
