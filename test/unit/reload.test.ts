/** Daemon.apply against a recording fake: the order of a reload's steps, and all-or-nothing. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { configFromObject } from '../../src/config/load.js';
import { startDaemon } from '../../src/daemon.js';
import { diffRules } from '../../src/rules/diff.js';
import { fakeNative } from './fake-native.js';

const runDir = mkdtempSync(join(tmpdir(), 'bpfredir-reload-'));
after(() => rmSync(runDir, { recursive: true, force: true }));
const opts = { objectPath: '/x/bpfredir.bpf.o', runDir, capabilities: (1n << 41n) - 1n };

const steer = (name: string, ports: string, target = '127.0.0.1:9000') => ({ name, destination: '10.0.0.0/8', ports, target });
const listen = (name: string, address: string, target = '127.0.0.1:9000') => ({ name, listen: address, target });
const cfg = (rules: object[], extra: object = {}) => configFromObject({ ...extra, rules }, 'test');

test('diff: added, removed, changed in place, moved, unchanged, and settings that need a restart', () => {
  const running = cfg([steer('a', '80'), steer('b', '81'), listen('c', '127.0.0.1:8080'), listen('d', '127.0.0.1:8081')], { threads: 2 });
  const next = cfg([steer('a', '80'), steer('b', '82'), listen('c', '127.0.0.1:8082'), listen('e', '127.0.0.1:8083')], { threads: 4 });
  const diff = diffRules(running, next);
  assert.deepEqual(diff.added.map((r) => r.name), ['e']);
  assert.deepEqual(diff.removed.map((r) => r.name), ['d']);
  assert.deepEqual(diff.changed.map((r) => r.name), ['b']);
  assert.deepEqual(diff.moved.map((m) => m.to.name), ['c']);
  assert.deepEqual(diff.unchanged.map((r) => r.name), ['a']);
  assert.deepEqual(diff.restartNeeded, ['threads: 2 → 4']);
});

test('a rule that only moved down the file is unchanged', () => {
  const running = configFromObject({ rules: [listen('x', '127.0.0.1:1'), listen('y', '127.0.0.1:2')] }, 'a.yaml');
  const next = configFromObject({ rules: [listen('y', '127.0.0.1:2'), listen('x', '127.0.0.1:1')] }, 'b.yaml');
  assert.equal(diffRules(running, next).unchanged.length, 2);
});

test('an added steering rule gets its socket before the trie names it; a removed one loses the trie first', async () => {
  const { native, calls } = fakeNative();
  const daemon = await startDaemon(cfg([steer('a', '80')]), { ...opts, native });
  calls.length = 0;
  const added = await daemon.apply(cfg([steer('a', '80'), steer('b', '81')]));
  assert.deepEqual(added.added, ['b']);
  assert.deepEqual(calls, ['addListener rule 2 :::0 splice', 'sockmapUpdate steer_sockets 2 fd 52', 'mapUpdateMany bindings 2', 'mapUpdate settings']);

  calls.length = 0;
  const removed = await daemon.apply(cfg([steer('b', '81')]));
  assert.deepEqual(removed.removed, ['a']);
  // Trie first (its socket's guard is kept until the socket is gone), then the socket's
  // steer_sockets entry, then the socket: closing it empties the slot on the engine thread later.
  const trie = calls.indexOf('mapDelete bindings');
  assert.ok(trie >= 0 && trie < calls.indexOf('mapDelete steer_sockets'), calls.join(', '));
  assert.ok(calls.indexOf('mapDelete steer_sockets') < calls.indexOf('removeListener 1'), calls.join(', '));
  assert.equal(calls.filter((c) => c === 'mapDelete bindings').length, 2, 'rule a and the guard of its socket');
  assert.deepEqual(daemon.listeners.map((l) => l.rule), ['b']);
  assert.equal(daemon.ruleIds.get('b'), 2, 'ids are stable across reloads');
  await daemon.stop();
});

test('a new target updates the listener in place: nothing is closed or reopened', async () => {
  const { native, calls } = fakeNative();
  const daemon = await startDaemon(cfg([steer('a', '80'), listen('web', '127.0.0.1:8080')]), { ...opts, native });
  calls.length = 0;
  const report = await daemon.apply(cfg([steer('a', '80', '127.0.0.1:9001'), listen('web', '127.0.0.1:8080', '127.0.0.1:9002')]));
  assert.deepEqual(report.changed, ['a', 'web']);
  assert.deepEqual(calls, ['mapUpdate settings', 'updateListener 1 127.0.0.1:9001', 'updateListener 2 127.0.0.1:9002']);
  await daemon.stop();
});

test('a listen address passing to another rule is closed before it is opened again', async () => {
  const { native, calls } = fakeNative();
  const daemon = await startDaemon(cfg([listen('old', '127.0.0.1:8080')]), { ...opts, native });
  calls.length = 0;
  await daemon.apply(cfg([listen('new', '127.0.0.1:8080')]));
  assert.deepEqual(calls, ['removeListener 1', 'addListener rule 2 127.0.0.1:8080 splice']);
  await daemon.stop();
});

test('a reload that cannot bind changes nothing, and the next one works', async () => {
  const { native, calls } = fakeNative({ listenErrors: new Map([[8081, 'EADDRINUSE']]) });
  const daemon = await startDaemon(cfg([steer('a', '80'), listen('web', '127.0.0.1:8080')]), { ...opts, native });
  const before = daemon.listeners;
  calls.length = 0;
  await assert.rejects(daemon.apply(cfg([steer('b', '81'), listen('web', '127.0.0.1:8080'), listen('api', '127.0.0.1:8081')])), {
    code: 'ERR_BPFREDIR_PORT_IN_USE',
  });
  // b's listener was opened and closed again; a's socket and the trie were not touched.
  assert.deepEqual(calls, ['addListener rule 3 :::0 splice', 'sockmapUpdate steer_sockets 3 fd 53', 'addListener rule 4 127.0.0.1:8081 splice', 'removeListener 3']);
  assert.deepEqual(daemon.listeners, before);
  assert.deepEqual([...daemon.ruleIds.keys()], ['a', 'web']);

  const report = await daemon.apply(cfg([steer('a', '80'), listen('web', '127.0.0.1:8080'), listen('api', '127.0.0.1:8082')]));
  assert.deepEqual(report.added, ['api']);
  assert.equal(daemon.ruleIds.get('api'), 3, 'the id the failed reload planned was never taken');
  await daemon.stop();
});

test('settings that cannot change live are reported and keep their running values', async () => {
  const { native } = fakeNative();
  const daemon = await startDaemon(cfg([listen('web', '127.0.0.1:8080')], { budget: '4MiB' }), { ...opts, native });
  const report = await daemon.apply(cfg([listen('web', '127.0.0.1:8080')], { budget: '8MiB', datapath: 'userspace' }));
  assert.deepEqual(report.restartNeeded, ['datapath: auto → userspace', 'budget: 4194304 → 8388608']);
  assert.equal(daemon.config.budgetBytes, 4 * 2 ** 20);
  await daemon.stop();
});

test('the first steering rule of a reload takes the lock and attaches sk_lookup then', async () => {
  const { native, calls } = fakeNative();
  const daemon = await startDaemon(cfg([listen('web', '127.0.0.1:8080')]), { ...opts, native });
  assert.equal(daemon.decision.steering, false);
  calls.length = 0;
  await daemon.apply(cfg([listen('web', '127.0.0.1:8080'), steer('a', '80')]));
  assert.equal(calls[0], 'attachSkLookup steer');
  assert.equal(daemon.decision.steering, true);
  await daemon.stop();
});

test('Reloader: a rejected config is counted and logged line by line; reloads run one at a time', async () => {
  const { Reloader } = await import('../../src/reloader.js');
  const { BpfredirError } = await import('../../src/errors.js');
  const lines: string[] = [];
  const logger = { info: (m: string) => lines.push(`info ${m}`), warn: (m: string) => lines.push(`warn ${m}`), error: (m: string) => lines.push(`error ${m}`) };
  let applying = 0;
  let most = 0;
  const daemon = {
    apply: async () => {
      most = Math.max(most, ++applying);
      await new Promise((r) => setTimeout(r, 10));
      applying--;
      return { added: [], removed: [], changed: [], moved: [], unchanged: 1, restartNeeded: ['threads: 1 → 2'] };
    },
  };
  let invalid = true;
  const load = async () => {
    if (invalid) throw new BpfredirError('ERR_BPFREDIR_CONFIG', ['a.yaml:3: bad port', 'a.yaml:7: bad target']);
    return cfg([listen('web', '127.0.0.1:8080')]);
  };
  const reloader = new Reloader(daemon, load, logger);
  const rejected = await reloader.reload('SIGHUP');
  assert.equal(rejected.ok, false);
  assert.deepEqual(lines, ['error reload rejected, the running rules stay: a.yaml:3: bad port', 'error reload rejected, the running rules stay: a.yaml:7: bad target']);

  invalid = false;
  lines.length = 0;
  const outcomes = await Promise.all([reloader.reload('a'), reloader.reload('b'), reloader.reload('c')]);
  assert.equal(most, 1, 'never two applies at once');
  assert.deepEqual(outcomes.map((o) => o.trigger), ['a', 'b', 'b'], 'requests during a reload fold into one more');
  assert.deepEqual(reloader.stats, { succeeded: 2, failed: 1, last: outcomes[2] });
  assert.ok(lines.includes('warn reload: threads: 1 → 2 takes effect only after a restart; the running value stays'));
});

test('a rule that turns from steering to listen gets a new id: its old bindings never meet its new policy', async () => {
  const { native } = fakeNative();
  const daemon = await startDaemon(cfg([steer('x', '80')]), { ...opts, native });
  const before = daemon.ruleIds.get('x');
  await daemon.apply(cfg([listen('x', '127.0.0.1:8090')], { deny: '192.0.2.0/24' }));
  const after = daemon.ruleIds.get('x');
  assert.notEqual(after, before);
  assert.equal(daemon.ruleName(after!), 'x');
  await daemon.stop();
});
