import { test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveCapabilities, missingCapabilities, seccompFiltered, withCapabilities } from '../../src/capabilities.js';

const bit = (n: number) => 1n << BigInt(n);
const [NET_ADMIN, SYS_ADMIN, PERFMON, BPF] = [bit(12), bit(21), bit(38), bit(39)];
const probe = { skLookup: true, sockmapVerdict: true, problems: [] };

test('reads CapEff from /proc/self/status', () => {
  assert.equal(effectiveCapabilities('Name:\tnode\nCapEff:\t000000c000001000\n'), BPF | PERFMON | NET_ADMIN);
  assert.equal(effectiveCapabilities('Name:\tnode\n'), 0n);
});

test('names each missing capability; CAP_SYS_ADMIN covers CAP_BPF and CAP_PERFMON, not CAP_NET_ADMIN', () => {
  assert.deepEqual(missingCapabilities(BPF | PERFMON | NET_ADMIN), []);
  assert.deepEqual(missingCapabilities(BPF | NET_ADMIN), ['CAP_PERFMON']);
  assert.deepEqual(missingCapabilities(0n), ['CAP_BPF', 'CAP_NET_ADMIN', 'CAP_PERFMON']);
  assert.deepEqual(missingCapabilities(SYS_ADMIN), ['CAP_NET_ADMIN']);
});

test('a missing capability turns the kernel features off with one line', () => {
  assert.equal(withCapabilities(probe, BPF | PERFMON | NET_ADMIN, false), probe);
  assert.deepEqual(withCapabilities({ ...probe, problems: ['no CAP_BPF/CAP_NET_ADMIN: run as root'] }, BPF | NET_ADMIN, false), {
    skLookup: false,
    sockmapVerdict: false,
    problems: ['missing CAP_PERFMON (bpfredir needs CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON: run as root or grant them, e.g. systemd AmbientCapabilities=)'],
  });
});

test('EPERM with every capability held names the seccomp profile (or a security module), not the capabilities', () => {
  const refused = { skLookup: false, sockmapVerdict: false, problems: ['no CAP_BPF/CAP_NET_ADMIN: run as root or grant capabilities'] };
  assert.deepEqual(withCapabilities(refused, BPF | PERFMON | NET_ADMIN, true).problems, [
    "bpf(2) was refused although CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON are held: a seccomp profile blocks bpf(2) (container runtimes' default ones do): run with deploy/container/seccomp.json or one that allows bpf and perf_event_open (docs/CONTAINER.md)",
  ]);
  assert.match(withCapabilities(refused, BPF | PERFMON | NET_ADMIN, false).problems[0]!, /: a security module \(SELinux, AppArmor, lockdown\) refuses it/);
  assert.equal(seccompFiltered('Name:\tnode\nSeccomp:\t2\nSeccomp_filters:\t1\n'), true);
  assert.equal(seccompFiltered('Name:\tnode\nSeccomp:\t0\n'), false);
});
