/**
 * Which kernel features this run uses: sk_lookup steering (needed by every
 * `destination:` rule) and the in-kernel splice (else the user-space relay).
 */
import type { Config, DatapathChoice } from './config/types.js';
import { BpfredirError, type ErrorCode } from './errors.js';
import type { Datapath, FeatureProbe } from './native/index.js';
import { usesAcls } from './rules/acl.js';

export interface DatapathDecision {
  /** How bytes are moved. */
  relay: Datapath;
  /** Whether sk_lookup is attached (only when some rule steers or some allow/deny list is set). */
  steering: boolean;
  /** Set when auto fell back to the user-space relay: one line saying why. */
  fallbackReason?: string;
}

/** The probe's lines name missing capabilities one way; everything else is the kernel. */
function codeFor(problems: readonly string[]): ErrorCode {
  return problems.some((p) => /CAP_|root|permission/i.test(p)) ? 'ERR_BPFREDIR_PRIVILEGES' : 'ERR_BPFREDIR_KERNEL';
}

/** What in the config needs sk_lookup, and what else the user could write: undefined if nothing. */
function skLookupUser(config: Pick<Config, 'rules' | 'acl'>): { what: string; instead: string } | undefined {
  const steeringRule = config.rules.find((r) => r.kind !== 'listen');
  if (steeringRule) return { what: `rule '${steeringRule.name}' steers with sk_lookup`, instead: 'use listen:' };
  const proxied = config.rules.find((r) => r.acceptProxy);
  if (proxied) return { what: `rule '${proxied.name}': accept_proxy's trusted load balancers are enforced by sk_lookup`, instead: 'remove accept_proxy:' };
  if (usesAcls(config)) return { what: 'allow/deny lists are enforced by sk_lookup', instead: 'remove allow:/deny:' };
  return undefined;
}

export function chooseDatapath(choice: DatapathChoice, config: Pick<Config, 'rules' | 'acl'>, probe: () => FeatureProbe): DatapathDecision {
  const user = skLookupUser(config);
  if (choice === 'userspace' && !user) return { relay: 'userspace', steering: false };

  const features = probe();
  const why = features.problems.join('; ') || 'the kernel refused the probe';
  if (user && !features.skLookup) {
    throw new BpfredirError(codeFor(features.problems), `${user.what}, which needs BPF (${why}); ${user.instead} or run as root on Linux >= 5.13`);
  }
  const steering = user !== undefined;
  if (choice === 'userspace') return { relay: 'userspace', steering };
  if (features.sockmapVerdict) return { relay: 'splice', steering };
  if (choice === 'splice') {
    throw new BpfredirError(codeFor(features.problems), `datapath splice is unavailable (${why}); use --datapath auto or userspace`);
  }
  return { relay: 'userspace', steering, fallbackReason: `in-kernel splice unavailable (${why}); using the user-space relay` };
}

/** One line for `status`: the datapath new connections use, and why that one. */
export function describeDecision(decision: DatapathDecision, choice: DatapathChoice, bulkFlows: 'relay' | 'kernel'): string {
  if (decision.fallbackReason) return decision.fallbackReason;
  if (decision.relay === 'userspace') return `--datapath ${choice}: recv/send copy, then splice(2) through pipes`;
  const bulk = bulkFlows === 'relay' ? 'bulk flows on splice(2), the rest' : 'then';
  return `${choice}: the kernel has the sockmap verdict; connections start on recv/send copy, ${bulk} into the sockmap`;
}
