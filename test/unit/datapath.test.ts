import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseDatapath } from '../../src/datapath.js';
import { configFromObject } from '../../src/config/load.js';
import type { FeatureProbe } from '../../src/native/index.js';

const listenOnly = configFromObject({ rules: [{ name: 'web', listen: '127.0.0.1:8080', target: '127.0.0.1:9000' }] }, 'test');
const steering = configFromObject({ rules: [{ name: 'any', destination: '127.0.0.2', ports: 80, target: '127.0.0.1:9000' }] }, 'test');
const listenWithList = configFromObject({ rules: [{ name: 'web', listen: '127.0.0.1:8080', target: '127.0.0.1:9000', deny: '10.0.0.0/8' }] }, 'test');
const all: FeatureProbe = { skLookup: true, sockmapVerdict: true, problems: [] };
const noPrivilege: FeatureProbe = { skLookup: false, sockmapVerdict: false, problems: ['no CAP_BPF/CAP_NET_ADMIN: run as root or grant capabilities'] };
const oldKernel: FeatureProbe = { skLookup: true, sockmapVerdict: false, problems: ['sockmap verdict (BPF_SK_SKB_VERDICT) needs Linux >= 5.13: splice is unavailable'] };
const never = (): FeatureProbe => assert.fail('no probe needed');

test('auto uses splice when the kernel allows, steering only with steering rules', () => {
  assert.deepEqual(chooseDatapath('auto', listenOnly, () => all), { relay: 'splice', steering: false });
  assert.deepEqual(chooseDatapath('auto', steering, () => all), { relay: 'splice', steering: true });
});

test('auto falls back to the user-space relay with one line saying why', () => {
  assert.deepEqual(chooseDatapath('auto', listenOnly, () => noPrivilege), {
    relay: 'userspace',
    steering: false,
    fallbackReason: 'in-kernel splice unavailable (no CAP_BPF/CAP_NET_ADMIN: run as root or grant capabilities); using the user-space relay',
  });
});

test('userspace without steering rules needs no probe', () => {
  assert.deepEqual(chooseDatapath('userspace', listenOnly, never), { relay: 'userspace', steering: false });
  assert.deepEqual(chooseDatapath('userspace', steering, () => oldKernel), { relay: 'userspace', steering: true });
});

test('steering rules without sk_lookup fail with a clear error', () => {
  assert.throws(() => chooseDatapath('auto', steering, () => noPrivilege), {
    code: 'ERR_BPFREDIR_PRIVILEGES',
    message:
      "rule 'any' steers with sk_lookup, which needs BPF (no CAP_BPF/CAP_NET_ADMIN: run as root or grant capabilities); use listen: or run as root on Linux >= 5.13",
  });
});

test('an allow or deny list needs sk_lookup even without steering rules', () => {
  assert.deepEqual(chooseDatapath('userspace', listenWithList, () => all), { relay: 'userspace', steering: true });
  assert.throws(() => chooseDatapath('auto', listenWithList, () => noPrivilege), {
    code: 'ERR_BPFREDIR_PRIVILEGES',
    message:
      'allow/deny lists are enforced by sk_lookup, which needs BPF (no CAP_BPF/CAP_NET_ADMIN: run as root or grant capabilities); remove allow:/deny: or run as root on Linux >= 5.13',
  });
});

test('accept_proxy needs sk_lookup too, and says which rule', () => {
  const proxied = { ...listenWithList, rules: listenWithList.rules.map((r) => ({ ...r, acl: undefined, acceptProxy: [] })) };
  assert.throws(() => chooseDatapath('auto', { ...proxied, acl: undefined }, () => noPrivilege), {
    message: /^rule '[^']+': accept_proxy's trusted load balancers are enforced by sk_lookup, which needs BPF .*; remove accept_proxy: or run as root/,
  });
});

test('splice requested but unavailable is an error, classified kernel vs privileges', () => {
  assert.throws(() => chooseDatapath('splice', listenOnly, () => oldKernel), {
    code: 'ERR_BPFREDIR_KERNEL',
    message: 'datapath splice is unavailable (sockmap verdict (BPF_SK_SKB_VERDICT) needs Linux >= 5.13: splice is unavailable); use --datapath auto or userspace',
  });
  assert.throws(() => chooseDatapath('splice', listenOnly, () => noPrivilege), { code: 'ERR_BPFREDIR_PRIVILEGES' });
});
