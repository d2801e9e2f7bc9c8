/**
 * iperf3 bulk transfer through the system. Reports the RECEIVER's bytes (a sockmap sender's count
 * includes bytes still queued in the kernel), whole-machine and redirector CPU per GB, and the
 * memory the kernel holds meanwhile.
 */
import { machineBusySeconds, startMemorySampler, summarizeMemory } from '../host.js';
import { runInNetns } from '../proc.js';
import type { BenchOptions } from '../options.js';
import { Metrics, Workload, withForward } from './workload.js';

interface IperfResult {
  error?: string;
  end?: { sum_sent?: { bytes: number }; sum_received?: { bytes: number; seconds: number } };
}

export interface ThroughputShape {
  name: string;
  reverse: boolean;
  streams: number;
  seconds(options: BenchOptions): number;
  systems?: string[];
  once?: boolean;
}

export function throughput(shape: ThroughputShape): Workload {
  return {
    name: shape.name,
    once: shape.once,
    appliesTo: (system) => !shape.systems || shape.systems.includes(system.name),
    seconds: (o) => shape.seconds(o) + 1,
    run: (ctx) =>
      withForward(ctx, 'iperf3', undefined, async ({ endpoint, cpuSeconds }): Promise<Metrics> => {
        const seconds = shape.seconds(ctx.options);
        const argv = ['iperf3', '-c', endpoint.host, '-p', String(endpoint.port), '-t', String(seconds), '-J', '--connect-timeout', '3000'];
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
        return {
          gbps: (received.bytes * 8) / received.seconds / 1e9,
          receivedGB: gigabytes,
          machineCpuSecPerGB: machineCpu / gigabytes,
          procCpuSecPerGB: procCpu / gigabytes,
          notDeliveredMB: Math.max(0, sent - received.bytes) / 1e6,
          ...summarizeMemory(samples),
        };
      }),
  };
}
