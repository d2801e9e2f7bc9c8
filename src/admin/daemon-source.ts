/**
 * The admin socket's answers, from a running daemon and its reloader. Everything is read
 * when asked: the engine's counters, its connection lists, the last reload.
 */
import type { Daemon, ApplyReport } from '../daemon.js';
import { describeDecision } from '../datapath.js';
import { BpfredirError, errorMessage } from '../errors.js';
import type { Reloader } from '../reloader.js';
import { hex } from '../interception.js';
import { VERSION } from '../version.js';
import { ruleReport, sourceLists } from './rule-report.js';
import type { AdminSource, ConnectionReport, ReloadResult, RuleReport, StatusReport } from './types.js';

export interface DaemonSourceOptions {
  daemon: Daemon;
  /** Absent for `forward`, which has no config file to read again. */
  reloader?: Reloader;
  startedAt: Date;
}

/** One line per change, as `bpfredir reload` prints them. */
export function changeLines(report: ApplyReport): string[] {
  const rule = (verb: string) => (name: string) => `rule '${name}' ${verb}`;
  return [
    ...report.added.map(rule('added')),
    ...report.removed.map(rule('removed')),
    ...report.changed.map(rule('changed in place (open connections keep their upstream)')),
    ...report.moved.map(rule('has a new listening socket (open connections go on)')),
    ...report.restartNeeded.map((setting) => `${setting}: needs a restart; the running value stays`),
  ];
}

function targetCounts(daemon: Daemon): { total: number; ejected: number; down: number } {
  const all = [...daemon.targetHealth().values()].flat();
  return { total: all.length, ejected: all.filter((t) => t.ejected).length, down: all.filter((t) => t.down).length };
}

export function daemonSource({ daemon, reloader, startedAt }: DaemonSourceOptions): AdminSource {
  return {
    status(): StatusReport {
      const rules = daemon.ruleStats();
      const connections: Record<string, number> = {};
      const add = (name: string, n: number) => n && (connections[name] = (connections[name] ?? 0) + n);
      for (const r of rules) {
        add('connecting', r.connecting);
        for (const [path, n] of Object.entries(r.active)) add(path, n);
      }
      const features = daemon.features;
      const last = reloader?.stats.last;
      const sources = sourceLists(daemon.config.acl);
      const interception = daemon.interceptionReport();
      return {
        version: VERSION,
        pid: process.pid,
        startedAt: startedAt.toISOString(),
        datapath: { name: daemon.decision.relay, reason: describeDecision(daemon.decision, daemon.config.datapath, daemon.config.bulkFlows) },
        features: features ? { sk_lookup: features.skLookup, sockmap_verdict: features.sockmapVerdict } : {},
        threads: daemon.threads,
        rules: daemon.config.rules.length,
        targets: targetCounts(daemon),
        ...(sources && { sources }),
        ...(interception && { interception: { ...interception, mark: hex(interception.mark) } }),
        connections,
        pauses: { now: rules.reduce((n, r) => n + r.paused, 0), total: rules.reduce((n, r) => n + r.pauses, 0) },
        lastReload: last ? { at: last.at.toISOString(), ok: last.ok, ...(last.errors && { error: last.errors.join('; ') }) } : null,
      };
    },

    rules(): RuleReport[] {
      const addressOf = new Map(daemon.listeners.map((l) => [l.rule, l.address]));
      const ids = daemon.ruleIds;
      const health = daemon.targetHealth();
      return daemon.config.rules.map((rule) => {
        const report = ruleReport(rule, ids.get(rule.name)!, addressOf.get(rule.name) ?? '');
        const targets = health.get(rule.name);
        return targets && rule.targets.length > 1 ? { ...report, targetHealth: targets } : report;
      });
    },

    async conns(): Promise<ConnectionReport[]> {
      const open = await daemon.connections();
      return open
        .sort((a, b) => b.ageMs - a.ageMs)
        .map((c) => ({
          rule: daemon.ruleName(c.ruleId) ?? `#${c.ruleId}`,
          client: c.client,
          originalDestination: c.originalDestination,
          upstream: c.upstream,
          datapath: c.datapath ?? 'connecting',
          bytesToUpstream: c.bytesToUpstream,
          bytesToClient: c.bytesToClient,
          ageMs: Math.round(c.ageMs),
        }));
    },

    async reload(): Promise<ReloadResult> {
      if (!reloader) return { ok: false, error: 'this bpfredir runs `forward`, which has no config file to reload; restart it with new arguments', code: 'ERR_BPFREDIR_USAGE' };
      try {
        const outcome = await reloader.reload('admin socket');
        if (outcome.ok) return { ok: true, changes: changeLines(outcome.report!) };
        return { ok: false, error: (outcome.errors ?? ['reload failed']).join('\n'), ...(outcome.code && { code: outcome.code }) };
      } catch (err) {
        return { ok: false, error: errorMessage(err), ...(err instanceof BpfredirError && { code: err.code }) };
      }
    },
  };
}
