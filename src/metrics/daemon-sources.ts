/** What a scrape reads from a running daemon: its engine, the kernel's counters, map fills, reloads. */
import { readRuleStats, type Daemon } from '../daemon.js';
import type { Reloader } from '../reloader.js';
import type { MetricsSources } from './families.js';

export function daemonMetricsSources(daemon: Daemon, reloader?: Reloader): MetricsSources {
  return {
    daemon,
    engineRules: () => daemon.ruleStats(),
    kernelRules: () => readRuleStats(daemon),
    maps: () => daemon.mapUsage(),
    targets: () => daemon.targetHealth(),
    ...(reloader && { reloads: reloader.stats }),
  };
}
