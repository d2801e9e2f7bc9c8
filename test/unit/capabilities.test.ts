import { test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveCapabilities, missingCapabilities, withCapabilities } from '../../src/capabilities.js';

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
  assert.equal(withCapabilities(probe, BPF | PERFMON | NET_ADMIN), probe);
  assert.deepEqual(withCapabilities({ ...probe, problems: ['no CAP_BPF/CAP_NET_ADMIN: run as root'] }, BPF | NET_ADMIN), {
    skLookup: false,
    sockmapVerdict: false,
    problems: ['missing CAP_PERFMON (bpfredir needs CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON: run as root or grant them, e.g. systemd AmbientCapabilities=)'],
  });
});
