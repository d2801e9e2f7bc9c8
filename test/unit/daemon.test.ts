import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromObject } from '../../src/config/load.js';
import { readRuleStats, startDaemon } from '../../src/daemon.js';
import { fakeNative } from './fake-native.js';
import { startupLine } from '../../src/cli/serve.js';

const config = configFromObject(
  {
    rules: [
      { name: 'anyip', destination: '127.0.0.2', ports: '8080-8090', target: '127.0.0.1:9000' },
      { name: 'web', listen: '127.0.0.1:8080', target: '127.0.0.1:9000' },
    ],
  },
  'test',
);
const listenOnly = configFromObject({ rules: [{ name: 'web', listen: '127.0.0.1:8080', target: '127.0.0.1:9000' }] }, 'test');
const runDir = mkdtempSync(join(tmpdir(), 'bpfredir-daemon-'));
after(() => rmSync(runDir, { recursive: true, force: true }));
const ALL_CAPABILITIES = (1n << 41n) - 1n;
const opts = { objectPath: '/x/bpfredir.bpf.o', runDir, capabilities: ALL_CAPABILITIES };

test('start: lock first, sockets before bindings; stop undoes it in reverse', async () => {
  const { native, calls } = fakeNative();
  const daemon = await startDaemon(config, { ...opts, native });
  assert.deepEqual(calls, [
    'loadObject bpfredir.bpf.o',
    'attachVerdict splice_verdict splice_active',
    'Engine splice',
    'attachSkLookup steer',
    'addListener rule 1 :::0 splice',
    'sockmapUpdate steer_sockets 1 fd 51',
    'addListener rule 2 127.0.0.1:8080 splice',
    'mapUpdateMany bindings 4', // 3 blocks of 8080-8090, 1 guard of the steering socket's port
    'mapUpdate settings',
  ]);
  assert.deepEqual(daemon.listeners, [
    { rule: 'anyip', ruleId: 1, address: '[::]:40001', steering: true },
    { rule: 'web', ruleId: 2, address: '127.0.0.1:8080', steering: false },
  ]);
  calls.length = 0;
  await Promise.all([daemon.stop(), daemon.stop()]);
  await daemon.stop();
  assert.deepEqual(calls, ['removeListener 1', 'removeListener 2', 'detach 7', 'engine.close', 'object.close']);
});

test('listen rules alone need no sk_lookup and no lock', async () => {
  const { native, calls } = fakeNative();
  const ownRunDir = join(runDir, 'listen-only');
  const daemon = await startDaemon(listenOnly, { ...opts, native, runDir: ownRunDir });
  assert.deepEqual(calls, ['loadObject bpfredir.bpf.o', 'attachVerdict splice_verdict splice_active', 'Engine splice', 'addListener rule 1 127.0.0.1:8080 splice']);
  assert.equal(existsSync(ownRunDir), false);
  await daemon.stop();
});

test('the user-space relay without steering loads no BPF at all', async () => {
  const { native, calls } = fakeNative();
  const daemon = await startDaemon(listenOnly, { ...opts, native, datapath: 'userspace' });
  assert.deepEqual(calls, ['Engine userspace', 'addListener rule 1 127.0.0.1:8080 userspace']);
  assert.deepEqual(readRuleStats(daemon).rules.get('web')?.steered, 0n);
  await daemon.stop();
});

test('a second instance in the netns is refused before it loads anything', async () => {
  const { native } = fakeNative();
  const first = await startDaemon(config, { ...opts, native });
  const second = fakeNative();
  await assert.rejects(startDaemon(config, { ...opts, native: second.native }), { code: 'ERR_BPFREDIR_ALREADY_RUNNING' });
  assert.deepEqual(second.calls, []);
  await first.stop();
});

test('a listen address in use fails with the rule and how to fix it, after undoing everything', async () => {
  const { native, calls } = fakeNative({ listenErrors: new Map([[8080, 'EADDRINUSE']]) });
  await assert.rejects(startDaemon(config, { ...opts, native }), {
    code: 'ERR_BPFREDIR_PORT_IN_USE',
    message: "test: rule 'web': 127.0.0.1:8080 is already in use; stop what listens there (ss -ltnp) or pick another port",
  });
  assert.deepEqual(calls.slice(-4), ['removeListener 1', 'detach 7', 'engine.close', 'object.close']);
});

test('ports below 1024 without privileges exit as a privilege problem', async () => {
  const low = configFromObject({ rules: [{ name: 'http', listen: '127.0.0.1:80', target: '127.0.0.1:9000' }] }, 'test');
  const { native } = fakeNative({ listenErrors: new Map([[80, 'EACCES']]) });
  await assert.rejects(startDaemon(low, { ...opts, native, datapath: 'userspace' }), {
    code: 'ERR_BPFREDIR_PRIVILEGES',
    message: "test: rule 'http': 127.0.0.1:80: ports below 1024 need root or CAP_NET_BIND_SERVICE",
  });
});

test('running out of file descriptors says which limit to raise', async () => {
  const { native } = fakeNative({ listenErrors: new Map([[8080, 'EMFILE']]) });
  await assert.rejects(startDaemon(listenOnly, { ...opts, native }), {
    code: 'ERR_BPFREDIR_RUNTIME',
    message: "test: rule 'web': 127.0.0.1:8080: out of file descriptors (every rule has its own listening socket); raise ulimit -n or merge rules that share a target",
  });
});

test('the start line names the datapath and the listeners, briefly', async () => {
  const many = configFromObject(
    { rules: Array.from({ length: 6 }, (_, i) => ({ name: `r${i}`, destination: `127.0.0.${i + 2}`, ports: 80, target: '127.0.0.1:9' })) },
    'test',
  );
  const { native } = fakeNative();
  const daemon = await startDaemon(many, { ...opts, native });
  assert.equal(
    startupLine(daemon),
    'bpfredir: 6 rules, datapath splice (sk_lookup on netns 4026531840), listening r0 via [::]:40001, r1 via [::]:40002, r2 via [::]:40003, r3 via [::]:40004, … (2 more)',
  );
  await daemon.stop();
});

test('a missing capability is named before anything is loaded', async () => {
  const { native, calls } = fakeNative();
  const noPerfmon = ALL_CAPABILITIES & ~(1n << 38n) & ~(1n << 21n);
  await assert.rejects(startDaemon(config, { ...opts, native, capabilities: noPerfmon }), {
    code: 'ERR_BPFREDIR_PRIVILEGES',
    message: /^rule 'anyip' steers with sk_lookup, which needs BPF \(missing CAP_PERFMON \(bpfredir needs CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON/,
  });
  assert.deepEqual(calls, []);
  const relayOnly = await startDaemon(listenOnly, { ...opts, native, capabilities: noPerfmon });
  assert.equal(relayOnly.decision.relay, 'userspace');
  await relayOnly.stop();
});
