import { test } from 'node:test';
import assert from 'node:assert/strict';
import { zeroRuleStats } from '../../src/abi.js';
import { parseConfigText } from '../../src/config/load.js';
import { BpfredirError } from '../../src/errors.js';
import { collectFamilies, type Family, type MetricsSources } from '../../src/metrics/families.js';
import { createExporter } from '../../src/metrics/exporter.js';
import { diffRules } from '../../src/rules/diff.js';
import type { EngineRuleStats } from '../../src/native/index.js';

const histogram = (le: number[], counts: number[], sum: number) => ({ le, buckets: counts.slice(0, le.length), count: counts.at(-1)!, sum });

function engineRule(ruleId: number, over: Partial<EngineRuleStats> = {}): EngineRuleStats {
  return {
    ruleId, accepted: 3, connecting: 0, loopsRefused: 0, limitRefused: 0, proxyHeaderFailed: 0, proxyDenied: 0, bulkFlows: 1, bytesToUpstream: 100, bytesToClient: 200, pauses: 0, paused: 0,
    pausedBytesToUpstream: 0, pausedBytesToClient: 0,
    closed: { eof: 2, reset: 1, idle_timeout: 0, shutdown: 0 },
    connectFailed: { refused: 0, timeout: 0, unreachable: 0, no_resources: 0, other: 0 },
    active: { sockmap: 0, splice: 0, copy: 0 },
    connectSeconds: histogram([0.001, 0.01], [1, 3, 3], 0.004),
    durationSeconds: histogram([1], [3, 3], 0.5),
    ...over,
  };
}

const config = parseConfigText('rules:\n  - { name: web, listen: "127.0.0.1:8080", target: "127.0.0.1:9000" }\n', 'a.yaml');

function sources(over: Partial<MetricsSources> = {}): MetricsSources {
  return {
    daemon: { decision: { relay: 'splice', steering: false }, config, ruleIds: new Map([['web', 1]]) },
    // Rule 2 was removed: its series end with it.
    engineRules: () => [engineRule(1), engineRule(2)],
    kernelRules: () => ({ rules: new Map([['web', { ...zeroRuleStats(), bytesToUpstream: 1000n, bytesToClient: 2000n, steered: 4n }]]), unmatchedLookups: 9n }),
    maps: () => [{ map: 'conns', entries: 2, capacity: 262144 }],
    targets: () => new Map(),
    ...over,
  };
}

const family = (families: Family[], name: string) => families.find((f) => f.name === name);
const value = (f: Family | undefined, labels: Record<string, string>) => f?.samples.find((s) => JSON.stringify(s.labels) === JSON.stringify(labels))?.value;

test('bytes_total adds what the kernel verdict counted to what the engine wrote itself; removed rules are left out', () => {
  const { families, failed } = collectFamilies(sources());
  assert.deepEqual(failed, []);
  const bytes = family(families, 'bpfredir_bytes_total');
  assert.equal(value(bytes, { rule: 'web', direction: 'to_upstream' }), 1100);
  assert.equal(value(bytes, { rule: 'web', direction: 'to_client' }), 2200);
  assert.equal(bytes!.samples.length, 2, 'rule 2 no longer runs');
  assert.equal(value(family(families, 'bpfredir_sk_lookup_steered_total'), { rule: 'web' }), 4);
  assert.equal(family(families, 'bpfredir_sk_lookup_unmatched_total')!.samples[0]!.value, 9);
  assert.equal(value(family(families, 'bpfredir_connections_closed_total'), { rule: 'web', reason: 'reset' }), 1);
});

test('a histogram has cumulative buckets, +Inf equal to its count, a sum and a count', () => {
  const connect = family(collectFamilies(sources()).families, 'bpfredir_upstream_connect_duration_seconds')!;
  assert.equal(connect.type, 'histogram');
  assert.deepEqual(
    connect.samples.map((s) => [s.suffix, s.labels?.le, s.value]),
    [['_bucket', '0.001', 1], ['_bucket', '0.01', 3], ['_bucket', '+Inf', 3], ['_sum', undefined, 0.004], ['_count', undefined, 3]],
  );
});

test('a source that fails is named and its families left out; bytes never go backwards without the kernel share', () => {
  const { families, failed } = collectFamilies(sources({ kernelRules: () => { throw new Error('EBADF'); } }));
  assert.deepEqual(failed, ['rule_stats']);
  assert.equal(family(families, 'bpfredir_bytes_total'), undefined);
  assert.equal(family(families, 'bpfredir_sk_lookup_steered_total'), undefined);
  assert.ok(family(families, 'bpfredir_map_entries'), 'the other sources still report');
});

test('the exporter renders the text format and counts collect errors across scrapes', async () => {
  let fail = false;
  const exporter = createExporter(sources({ maps: () => { if (fail) throw new Error('gone'); return []; } }));
  const first = await exporter.scrape();
  assert.match(first, /^bpfredir_bytes_total\{rule="web",direction="to_upstream"\} 1100$/m);
  assert.match(first, /^bpfredir_upstream_connect_duration_seconds_bucket\{rule="web",le="\+Inf"\} 3$/m);
  assert.match(first, /^# TYPE bpfredir_connections_active gauge$/m);
  assert.match(first, /^process_cpu_seconds_total /m, 'Node process metrics');
  assert.doesNotMatch(first, /nodejs_active_handles_total/);
  fail = true;
  await exporter.scrape();
  const third = await exporter.scrape();
  assert.match(third, /^bpfredir_metrics_collect_errors_total\{source="maps"\} 2$/m);
  assert.match(third, /^bpfredir_bytes_total\{rule="web",direction="to_client"\} 2200$/m, 'the scrape still works');
});

test('metrics: in the config is an address; changing it on reload needs a restart', () => {
  const withMetrics = parseConfigText('metrics: "[::]:9477"\nrules:\n  - { name: web, listen: "127.0.0.1:8080", target: "127.0.0.1:9000" }\n', 'b.yaml');
  assert.deepEqual(withMetrics.metricsListen, { host: '::', port: 9477 });
  assert.equal(config.metricsListen, undefined);
  assert.deepEqual(diffRules(config, withMetrics).restartNeeded, ['metrics: none → [::]:9477']);
  assert.throws(
    () => parseConfigText('metrics: 9477\nrules:\n  - { name: web, listen: "127.0.0.1:8080", target: "127.0.0.1:9000" }\n', 'c.yaml'),
    (err: unknown) => err instanceof BpfredirError && /^c\.yaml:1: metrics: '9477' is not host:port; write e\.g\. 127\.0\.0\.1:9477 or \[::\]:9477$/.test(err.message),
  );
});
