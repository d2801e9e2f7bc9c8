/**
 * A parsed rinetd.conf as a bpfredir config: each forwarding line a listen
 * rule, its allow/deny patterns (as prefixes) the rule's source lists, the
 * global patterns the config's, logfile/logcommon the access log in rinetd's
 * format, pidlogfile the pid file. Validated like any config, with rinetd's
 * line numbers in every message. Pure.
 */
import { BpfredirError } from '../errors.js';
import type { Config } from '../config/types.js';
import { validateConfig } from '../config/validate.js';
import { plainTree, type TreeNode } from '../config/yaml-tree.js';
import { formatPrefix } from '../rules/ip.js';
import type { RinetdConfig, RinetdForward, RinetdPattern } from './rinetd.js';

const hostPort = (host: string, port: number) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
const prefixes = (patterns: readonly RinetdPattern[]) => [...new Set(patterns.flatMap((p) => p.prefixes.map(formatPrefix)))];

/** A stable name from what the rule binds (a reload keeps it when lines move): 0.0.0.0_8080. */
export function rinetdRuleName(forward: Pick<RinetdForward, 'bindAddress' | 'bindPort'>): string {
  return `${forward.bindAddress.toLowerCase().replace(/[^a-z0-9.-]/g, '_')}_${forward.bindPort}`.slice(0, 64);
}

function ruleTree(forward: RinetdForward): TreeNode {
  const allow = prefixes(forward.allow);
  const deny = prefixes(forward.deny);
  return plainTree(
    {
      name: rinetdRuleName(forward),
      listen: hostPort(forward.bindAddress, forward.bindPort),
      target: hostPort(forward.connectAddress, forward.connectPort),
      source: forward.sourceAddress,
      ...(allow.length && { allow }),
      ...(deny.length && { deny }),
    },
    forward.line,
  );
}

export function rinetdToConfig(rinetd: RinetdConfig): Config {
  const udp = rinetd.forwards.filter((f) => f.protocol === 'udp' || f.connectProtocol === 'udp');
  if (udp.length) {
    throw new BpfredirError(
      'ERR_BPFREDIR_CONFIG',
      udp.map((f) => `${rinetd.source}:${f.line}: UDP forwarding (${f.protocol}/${f.connectProtocol}) is not supported yet; remove the line or forward TCP`),
    );
  }
  const allow = prefixes(rinetd.globalAllow);
  const deny = prefixes(rinetd.globalDeny);
  const top = plainTree({
    ...(allow.length && { allow }),
    ...(deny.length && { deny }),
    ...(rinetd.logFile && { access_log: rinetd.logFile, access_log_format: rinetd.logCommon ? 'common' : 'rinetd' }),
    pid_file: rinetd.pidLogFile,
  });
  if (top.kind !== 'map') throw new Error('unreachable');
  const rules: TreeNode = { kind: 'seq', items: rinetd.forwards.map(ruleTree) };
  if (rinetd.forwards.length === 0) {
    throw new BpfredirError('ERR_BPFREDIR_CONFIG', `${rinetd.source}: no forwarding rules; add a line like 0.0.0.0 8080 10.0.0.5 80`);
  }
  return validateConfig({ kind: 'map', entries: [...top.entries, { key: 'rules', value: rules }] }, rinetd.source);
}
