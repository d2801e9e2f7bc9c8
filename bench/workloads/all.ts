/** Every workload, in the order a round runs them. */
import type { BenchOptions } from '../options.js';
import { connrate } from './connrate.js';
import { idle } from './idle.js';
import { latency } from './latency.js';
import { rules } from './rules.js';
import { throughput } from './throughput.js';
import type { Workload } from './workload.js';

export function allWorkloads(options: BenchOptions): Workload[] {
  const test = (o: BenchOptions) => o.seconds;
  return [
    throughput({ name: 'tcp-1', reverse: false, streams: 1, seconds: test }),
    throughput({ name: 'tcp-1-reverse', reverse: true, streams: 1, seconds: test }),
    throughput({ name: 'tcp-8', reverse: false, streams: 8, seconds: test }),
    latency(false),
    latency(true),
    connrate,
    // One long stream: does the kernel's in-flight memory stay bounded? (bpfredir's own path, and its variants)
    throughput({ name: 'soak', reverse: false, streams: 1, seconds: (o) => o.soakSeconds, only: (s) => s.name === 'bpfredir' || s.name.startsWith('bpfredir:'), repeat: 'first-round' }),
    idle,
    ...options.ruleSizes.map(rules),
  ];
}
