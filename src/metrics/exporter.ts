/**
 * A private prom-client Registry holding bpfredir's families (./families.ts) and Node's
 * process metrics. A scrape reads every source once, then the registry renders that
 * snapshot: each family is a registry metric whose get() returns its part of it.
 */
import { collectDefaultMetrics, Registry, type Metric } from 'prom-client';
import { collectFamilies, type Family, type MetricsSources } from './families.js';

export interface MetricsExporter {
  readonly contentType: string;
  /** The Prometheus text format, every source read now. */
  scrape(): Promise<string>;
}

const COLLECT_ERRORS = 'bpfredir_metrics_collect_errors_total';
/** prom-client's gauges with a counter's suffix (promtool's lint refuses them); nodejs_active_handles etc. say the same. */
const MISNAMED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** Every family collectFamilies can return, by name: the registry needs them up front. */
function familyNames(sources: MetricsSources): Family[] {
  const full: MetricsSources = {
    ...sources,
    engineRules: () => [],
    kernelRules: () => ({ rules: new Map(), unmatchedLookups: 0n }),
    maps: () => [],
    reloads: sources.reloads ?? { succeeded: 0, failed: 0, last: undefined },
  };
  return collectFamilies(full).families;
}

export function createExporter(sources: MetricsSources): MetricsExporter {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name);
  const collectErrors = new Map<string, number>();
  let snapshot = new Map<string, Family>();

  const register = (name: string, help: string, type: Family['type'], current: () => Family | undefined) => {
    // prom-client renders any metric object with get(); its exported types name only its own classes.
    const metric = {
      name,
      help,
      type,
      aggregator: 'sum',
      get: async () => ({
        name,
        help,
        type,
        aggregator: 'sum',
        values: (current()?.samples ?? []).map((s) => ({ value: s.value, labels: s.labels ?? {}, ...(s.suffix && { metricName: `${name}${s.suffix}` }) })),
      }),
    };
    registry.registerMetric(metric as unknown as Metric);
  };
  for (const family of familyNames(sources)) register(family.name, family.help, family.type, () => snapshot.get(family.name));
  register(COLLECT_ERRORS, 'Sources that failed to read during a scrape (engine, rule_stats, maps); their families were left out of it.', 'counter', () => ({
    name: COLLECT_ERRORS,
    help: '',
    type: 'counter',
    samples: [...collectErrors].map(([source, value]) => ({ labels: { source }, value })),
  }));

  return {
    contentType: registry.contentType,
    async scrape() {
      const { families, failed } = collectFamilies(sources);
      for (const source of failed) collectErrors.set(source, (collectErrors.get(source) ?? 0) + 1);
      snapshot = new Map(families.map((f) => [f.name, f]));
      return registry.metrics();
    },
  };
}
