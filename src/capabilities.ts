/**
 * The capabilities the BPF data path needs, checked before anything is
 * loaded, so a missing one is named instead of surfacing as the kernel's
 * "Bad address" (the verifier's answer to a program that reads kernel
 * structures without CAP_PERFMON).
 *
 *   CAP_BPF       load programs and create maps
 *   CAP_PERFMON   programs that read kernel socket structures (bpf_skc_to_tcp_sock)
 *   CAP_NET_ADMIN attach sk_lookup to the netns and the verdict to a sockmap; SO_SNDBUFFORCE
 *
 * CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON, as the kernel allows.
 */
import { readFileSync } from 'node:fs';
import type { FeatureProbe } from './native/index.js';

const BITS = { CAP_NET_ADMIN: 12n, CAP_SYS_ADMIN: 21n, CAP_PERFMON: 38n, CAP_BPF: 39n } as const;
export type Capability = keyof typeof BITS;

export const BPF_CAPABILITIES: readonly Capability[] = ['CAP_BPF', 'CAP_NET_ADMIN', 'CAP_PERFMON'];

/** The effective set (CapEff of /proc/self/status) as a bit mask. */
export function effectiveCapabilities(status = readFileSync('/proc/self/status', 'utf8')): bigint {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  return hex ? BigInt(`0x${hex}`) : 0n;
}

/** Which of the data path's capabilities the mask lacks, in BPF_CAPABILITIES order. */
export function missingCapabilities(effective: bigint): Capability[] {
  const has = (cap: Capability) => ((effective >> BITS[cap]) & 1n) === 1n;
  const sysAdmin = has('CAP_SYS_ADMIN');
  return BPF_CAPABILITIES.filter((cap) => !has(cap) && !(sysAdmin && cap !== 'CAP_NET_ADMIN'));
}

/** Whether a seccomp filter is on this process (Seccomp: 2 in /proc/self/status). */
export function seccompFiltered(status = readFileSync('/proc/self/status', 'utf8')): boolean {
  return /^Seccomp:\s*2$/m.test(status);
}

/**
 * The kernel probe, with the features turned off and one line naming the capabilities when
 * some are missing. When none is missing and the kernel still says EPERM, the capabilities are
 * not the cause: a seccomp profile (a container runtime's default one refuses bpf(2)) or a
 * security module is, and the line says which.
 */
export function withCapabilities(probe: FeatureProbe, effective: bigint, filtered = seccompFiltered()): FeatureProbe {
  const missing = missingCapabilities(effective);
  const refused = probe.problems.some((p) => /CAP_/.test(p));
  const others = probe.problems.filter((p) => !/CAP_/.test(p));
  if (missing.length === 0) {
    if (!refused) return probe;
    const why = filtered
      ? 'a seccomp profile blocks bpf(2) (container runtimes\' default ones do): run with deploy/container/seccomp.json or one that allows bpf and perf_event_open (docs/CONTAINER.md)'
      : 'a security module (SELinux, AppArmor, lockdown) refuses it: allow bpf for bpfredir';
    return { ...probe, problems: [`bpf(2) was refused although ${BPF_CAPABILITIES.join(', ')} are held: ${why}`, ...others] };
  }
  const line = `missing ${missing.join(', ')} (bpfredir needs ${BPF_CAPABILITIES.join(', ')}: run as root or grant them, e.g. systemd AmbientCapabilities=)`;
  return { skLookup: false, sockmapVerdict: false, problems: [line, ...others] };
}
