/**
 * bpfredir's metric families, computed at scrape time from counters that exist anyway: the
 * engine's per-rule counters (summed over its threads), the kernel's per-CPU rule_stats map,
 * map fills and the reloader. Nothing is counted per connection in JavaScript.
 *
 * Conventions: base units (bytes, seconds), `_total` on counters, a `rule` label (never a
 * per-client one); `direction` is to_upstream | to_client; `datapath` names the way bytes
 * move now: connecting, copy (recv/send), splice (splice(2) through pipes), sockmap (in the
 * kernel). A source that fails to read is counted in bpfredir_metrics_collect_errors_total
 * and its families are left out of that scrape; the scrape itself never fails.
 */
import type { RuleStats as KernelRuleStats } from '../abi.js';
import type { Daemon, MapUsage, RuleStatsReport } from '../daemon.js';
import type { EngineHistogram, EngineRuleStats, TargetHealth } from '../native/index.js';
import type { ReloadStats } from '../reloader.js';
import { VERSION } from '../version.js';

export type Labels = Record<string, string>;

export interface Sample {
  labels?: Labels;
  value: number;
  /** For histograms: name_bucket, name_sum, name_count. */
  suffix?: '_bucket' | '_sum' | '_count';
}

export interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  samples: Sample[];
}

/** What one scrape reads. Each getter may throw; the collector counts and skips it. */
export interface MetricsSources {
  daemon: Pick<Daemon, 'decision' | 'config' | 'ruleIds'>;
  engineRules(): EngineRuleStats[];
  /** Each rule's targets, by rule name. */
  targets(): Map<string, TargetHealth[]>;
  kernelRules(): RuleStatsReport;
  maps(): MapUsage[];
  reloads?: ReloadStats;
}

const DIRECTIONS = ['to_upstream', 'to_client'] as const;

function histogramSamples(h: EngineHistogram, labels: Labels): Sample[] {
  return [
    ...h.le.map((le, i) => ({ suffix: '_bucket' as const, labels: { ...labels, le: String(le) }, value: h.buckets[i]! })),
    { suffix: '_bucket', labels: { ...labels, le: '+Inf' }, value: h.count },
    { suffix: '_sum', labels, value: h.sum },
    { suffix: '_count', labels, value: h.count },
  ];
}

/** Families built from the engine's per-rule counters. */
function engineFamilies(rules: readonly EngineRuleStats[], nameOf: ReadonlyMap<number, string>, kernel: Map<string, KernelRuleStats>): Family[] {
  // Rules that run now: a removed rule's series end with it (its kernel counters are gone too).
  const running = rules.filter((r) => nameOf.has(r.ruleId));
  const per = (f: (r: EngineRuleStats, rule: string) => Sample[]) => running.flatMap((r) => f(r, nameOf.get(r.ruleId)!));
  const byName = (counts: Record<string, number>, label: string, rule: string) =>
    Object.entries(counts).map(([key, value]) => ({ labels: { rule, [label]: key }, value }));
  // Every byte once: the verdict counts what the kernel saw (paused bytes included), the engine what it wrote itself.
  const kernelBytes = (rule: string, direction: (typeof DIRECTIONS)[number]) => {
    const k = kernel.get(rule);
    return k ? Number(direction === 'to_upstream' ? k.bytesToUpstream : k.bytesToClient) : 0;
  };
  return [
    { name: 'bpfredir_connections_accepted_total', help: 'Connections accepted, per rule.', type: 'counter', samples: per((r, rule) => [{ labels: { rule }, value: r.accepted }]) },
    { name: 'bpfredir_connections_closed_total', help: 'Connections closed, per rule and how they ended (eof, reset, idle_timeout, shutdown).', type: 'counter', samples: per((r, rule) => byName(r.closed, 'reason', rule)) },
    {
      name: 'bpfredir_connections_active',
      help: 'Open connections, per rule and the way their bytes move now (connecting, copy, splice, sockmap).',
      type: 'gauge',
      samples: per((r, rule) => [{ labels: { rule, datapath: 'connecting' }, value: r.connecting }, ...byName(r.active, 'datapath', rule)]),
    },
    {
      name: 'bpfredir_bytes_total',
      help: 'Bytes forwarded, per rule and direction, whichever way they moved (sockmap, splice, copy).',
      type: 'counter',
      samples: per((r, rule) => [
        { labels: { rule, direction: 'to_upstream' }, value: r.bytesToUpstream + kernelBytes(rule, 'to_upstream') },
        { labels: { rule, direction: 'to_client' }, value: r.bytesToClient + kernelBytes(rule, 'to_client') },
      ]),
    },
    { name: 'bpfredir_upstream_connect_failures_total', help: 'Upstream connects that failed, per rule and reason (refused, timeout, unreachable, no_resources, other).', type: 'counter', samples: per((r, rule) => byName(r.connectFailed, 'reason', rule)) },
    { name: 'bpfredir_upstream_connect_duration_seconds', help: 'Time from accept to the upstream connect completing, per rule.', type: 'histogram', samples: per((r, rule) => histogramSamples(r.connectSeconds, { rule })) },
    { name: 'bpfredir_connection_duration_seconds', help: 'Time from accept to close, per rule.', type: 'histogram', samples: per((r, rule) => histogramSamples(r.durationSeconds, { rule })) },
    {
      name: 'bpfredir_connections_refused_total',
      help: 'Connections reset at accept, per rule and reason (max_connections: the rule had that many open; proxy_header: accept_proxy and no valid PROXY header within connect_timeout; denied: accept_proxy and an untrusted peer, or a header naming a client the lists refuse).',
      type: 'counter',
      samples: per((r, rule) => [
        { labels: { rule, reason: 'max_connections' }, value: r.limitRefused },
        { labels: { rule, reason: 'proxy_header' }, value: r.proxyHeaderFailed },
        { labels: { rule, reason: 'denied' }, value: r.proxyDenied },
      ]),
    },
    { name: 'bpfredir_loops_refused_total', help: "Connections from bpfredir's own upstream sockets that came back to a rule on their path, reset.", type: 'counter', samples: per((r, rule) => [{ labels: { rule }, value: r.loopsRefused }]) },
    { name: 'bpfredir_bulk_flows_total', help: 'Connections kept on the splice(2) relay as bulk flows, per rule.', type: 'counter', samples: per((r, rule) => [{ labels: { rule }, value: r.bulkFlows }]) },
    { name: 'bpfredir_backpressure_pauses_total', help: 'Times a direction of a sockmap connection was paused by the in-flight budget, per rule.', type: 'counter', samples: per((r, rule) => [{ labels: { rule }, value: r.pauses }]) },
    { name: 'bpfredir_backpressure_paused_directions', help: 'Directions paused by the in-flight budget now, per rule.', type: 'gauge', samples: per((r, rule) => [{ labels: { rule }, value: r.paused }]) },
    {
      name: 'bpfredir_backpressure_user_space_bytes_total',
      help: 'Bytes that crossed user space while their direction was paused, per rule and direction.',
      type: 'counter',
      samples: per((r, rule) => [
        { labels: { rule, direction: 'to_upstream' }, value: r.pausedBytesToUpstream },
        { labels: { rule, direction: 'to_client' }, value: r.pausedBytesToClient },
      ]),
    },
  ];
}

/** Families from the kernel's rule_stats map: what sk_lookup and the verdict did. */
function kernelFamilies(report: RuleStatsReport): Family[] {
  const rules = [...report.rules];
  const per = (pick: (s: KernelRuleStats) => bigint) => rules.map(([rule, s]) => ({ labels: { rule }, value: Number(pick(s)) }));
  return [
    { name: 'bpfredir_sk_lookup_steered_total', help: "Connections sk_lookup handed to a rule's socket.", type: 'counter', samples: per((s) => s.steered) },
    {
      name: 'bpfredir_sk_lookup_dropped_total',
      help: 'Connections sk_lookup refused, per rule and reason (denied: by an allow or deny list; no_socket: the rule had no socket and failed closed).',
      type: 'counter',
      samples: rules.flatMap(([rule, s]) => [
        { labels: { rule, reason: 'denied' }, value: Number(s.denied) },
        { labels: { rule, reason: 'no_socket' }, value: Number(s.droppedNoSocket) },
      ]),
    },
    { name: 'bpfredir_denials_unreported_total', help: 'Refused connections the kernel could not report for the logs (its ring buffer was full), per rule.', type: 'counter', samples: per((s) => s.denialsUnreported) },
    { name: 'bpfredir_sk_lookup_unmatched_total', help: 'sk_lookup runs that matched no rule (the normal socket lookup went on).', type: 'counter', samples: [{ value: Number(report.unmatchedLookups) }] },
    { name: 'bpfredir_sockmap_redirect_failed_total', help: 'Messages the sockmap verdict could not redirect to the peer socket, per rule.', type: 'counter', samples: per((s) => s.redirectFailed) },
  ];
}

/** Per target (a rule has a handful: no per-client label anywhere). */
function targetFamilies(targets: Map<string, TargetHealth[]>): Family[] {
  const per = (pick: (t: TargetHealth) => number) => [...targets].flatMap(([rule, list]) => list.map((t) => ({ labels: { rule, target: t.address }, value: pick(t) })));
  return [
    { name: 'bpfredir_target_up', help: '1 while a target takes new connections, 0 while it is ejected after failed connects or a health check finds it down.', type: 'gauge', samples: per((t) => (t.ejected || t.down ? 0 : 1)) },
    { name: 'bpfredir_target_connections', help: 'Open connections per target.', type: 'gauge', samples: per((t) => t.open) },
    { name: 'bpfredir_target_ejections_total', help: 'Times a target was ejected after 3 failed connects in a row.', type: 'counter', samples: per((t) => t.ejections) },
  ];
}

function mapFamilies(maps: readonly MapUsage[]): Family[] {
  return [
    { name: 'bpfredir_map_entries', help: 'Entries in use in a kernel map.', type: 'gauge', samples: maps.map((m) => ({ labels: { map: m.map }, value: m.entries })) },
    { name: 'bpfredir_map_capacity', help: 'Entries a kernel map can hold.', type: 'gauge', samples: maps.map((m) => ({ labels: { map: m.map }, value: m.capacity })) },
  ];
}

function reloadFamilies(stats: ReloadStats): Family[] {
  const last = stats.last;
  return [
    { name: 'bpfredir_reloads_total', help: 'Config reloads, by result (success, failure).', type: 'counter', samples: [{ labels: { result: 'success' }, value: stats.succeeded }, { labels: { result: 'failure' }, value: stats.failed }] },
    { name: 'bpfredir_last_reload_timestamp_seconds', help: 'When the last reload ran (0: none yet).', type: 'gauge', samples: [{ value: last ? last.at.getTime() / 1000 : 0 }] },
    { name: 'bpfredir_last_reload_success', help: '1 when the last reload was applied, 0 when it was refused (1 before any).', type: 'gauge', samples: [{ value: !last || last.ok ? 1 : 0 }] },
  ];
}

/** Everything bpfredir itself exports; failed sources are named in `failed`. */
export function collectFamilies(sources: MetricsSources): { families: Family[]; failed: string[] } {
  const failed: string[] = [];
  const read = <T>(source: string, get: () => T): T | undefined => {
    try {
      return get();
    } catch {
      failed.push(source);
      return undefined;
    }
  };
  const { daemon } = sources;
  const kernel = read('rule_stats', () => sources.kernelRules());
  const engine = read('engine', () => sources.engineRules());
  const maps = read('maps', () => sources.maps());
  const targets = read('targets', () => sources.targets());
  const families: Family[] = [
    { name: 'bpfredir_build_info', help: 'Always 1; the labels say which bpfredir and Node.js run.', type: 'gauge', samples: [{ labels: { version: VERSION, nodejs: process.versions.node }, value: 1 }] },
    {
      name: 'bpfredir_datapath_info',
      help: 'Always 1; datapath says where connections can go (splice: the kernel sockmap path is available; userspace: copy and splice(2) only), steering whether sk_lookup is attached.',
      type: 'gauge',
      samples: [{ labels: { datapath: daemon.decision.relay, steering: String(daemon.decision.steering) }, value: 1 }],
    },
    { name: 'bpfredir_rules', help: 'Rules running, by kind (listen, steer).', type: 'gauge', samples: (['listen', 'steer'] as const).map((kind) => ({ labels: { kind }, value: daemon.config.rules.filter((r) => r.kind === kind).length })) },
    // Without the kernel's share, bytes_total would go backwards: leave the engine out of this scrape too.
    ...(engine && kernel ? engineFamilies(engine, new Map([...daemon.ruleIds].map(([name, id]) => [id, name])), kernel.rules) : []),
    ...(kernel ? kernelFamilies(kernel) : []),
    ...(maps ? mapFamilies(maps) : []),
    ...(targets ? targetFamilies(targets) : []),
    ...(sources.reloads ? reloadFamilies(sources.reloads) : []),
  ];
  return { families, failed };
}
