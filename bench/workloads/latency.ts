/**
 * Request/response round trip with sockperf ping-pong --full-rtt. Unpinned figures on a 2-core VM
 * are bimodal (a cross-CPU wake-up costs ~20 µs); pinned puts client, server and redirector on
 * CPU 0, which shows the per-hop cost.
 */
import { runInNetns } from '../proc.js';
import { Metrics, Workload, withForward } from './workload.js';

const PIN_CPU = 0;

function parseSockperf(output: string): Metrics {
  const text = output.replace(/\x1b\[[0-9;]*m/g, ''); // sockperf colours its summary
  const avg = /avg-rtt=([\d.]+)/.exec(text);
  const percentile = (p: string) => new RegExp(`percentile ${p} =\\s*([\\d.]+)`).exec(text);
  const p50 = percentile('50\\.000');
  const p99 = percentile('99\\.000');
  if (!avg || !p50 || !p99) throw new Error(`could not parse sockperf output: ${text.trim().split('\n').slice(-3).join(' | ')}`);
  return { rttAvgUs: Number(avg[1]), rttP50Us: Number(p50[1]), rttP99Us: Number(p99[1]) };
}

export function latency(pinned: boolean): Workload {
  return {
    name: pinned ? 'rtt-pinned' : 'rtt-unpinned',
    appliesTo: () => true,
    seconds: (o) => o.latencySeconds + 3,
    run: (ctx) =>
      withForward(ctx, 'sockperf', pinned ? PIN_CPU : undefined, async ({ endpoint }) => {
        const seconds = ctx.options.latencySeconds;
        const argv = ['sockperf', 'ping-pong', '--tcp', '-i', endpoint.host, '-p', String(endpoint.port), '-t', String(seconds), '--full-rtt'];
        const run = await runInNetns({ netns: ctx.topology.clientNs, argv, cpu: pinned ? PIN_CPU : undefined }, (seconds + 15) * 1000);
        if (run.timedOut) throw new Error(`sockperf did not finish within ${seconds + 15} s`);
        return parseSockperf(run.stdout + run.stderr);
      }),
  };
}
