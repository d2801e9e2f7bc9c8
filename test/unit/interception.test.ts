import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../../src/config/load.js';
import type { InterceptRule } from '../../src/config/types.js';
import { checkClashes, compileIntercepts, removeLeftovers, ROUTE_PROTOCOL } from '../../src/interception.js';
import { silentLogger } from '../../src/log.js';
import type { EngineEvent, PolicyRule } from '../../src/native/index.js';
import { transparentTimeoutHint } from '../../src/engine-log.js';
import { listeningInodes, socketOwner } from '../../src/proxy-socket.js';
import { configProblems } from '../helpers/problems.js';

const FILE = 'cfg.yaml';
const oneRule = (...lines: string[]) => ['rules:', '  - name: web', ...lines.map((l) => `    ${l}`)].join('\n');
const problemsOf = (text: string) => configProblems(() => parseConfigText(text, FILE));

test('an intercept rule: prefixes, ports, interfaces, sources, target original, transparent source', () => {
  const config = parseConfigText(
    oneRule('intercept: [0.0.0.0/0, "::/0"]', 'ports: [80, 443]', 'interfaces: [eth1, eth2]', 'sources: 10.1.0.0/24', 'target: original', 'transparent_source: address_and_port'),
    FILE,
  );
  const rule = config.rules[0] as InterceptRule;
  assert.equal(rule.kind, 'intercept');
  assert.deepEqual(rule.interfaces, ['eth1', 'eth2']);
  assert.equal(rule.destinations.length, 2);
  assert.equal(rule.sources.length, 1);
  assert.equal(rule.originalDestination, true);
  assert.deepEqual(rule.targets, []);
  assert.equal(rule.transparentSource, 'address_and_port');
  assert.deepEqual(config.interception, { mark: 0x40000000, table: 4250, priority: 4250, returnInterfaces: [] });
});

test('interception mistakes are one located line each, saying how to fix them', () => {
  assert.deepEqual(problemsOf(oneRule('intercept: 0.0.0.0/0', 'target: original')), [
    "cfg.yaml:3: rule 'web': ports: missing; interception needs ports, e.g. ports: 80 (or any)",
    "cfg.yaml:3: rule 'web': interfaces: missing; name the interfaces the traffic arrives on, e.g. interfaces: [eth1]",
  ]);
  assert.deepEqual(problemsOf(oneRule('listen: 127.0.0.1:80', 'target: original')), [
    "cfg.yaml:4: rule 'web': target: original only goes with intercept: (a listen or destination rule has no other destination to go to)",
  ]);
  assert.deepEqual(problemsOf(`interception: {mark: 0, table: 254}\n${oneRule('listen: 127.0.0.1:80', 'target: 10.0.0.1:80')}`), [
    'cfg.yaml:1: interception: mark: must not be 0; write a bit of its own, e.g. 0x40000000',
    "cfg.yaml:1: interception: table: '254' is not a free table number; write e.g. 4250 (not 0 or 253-255, the kernel's own)",
  ]);
  assert.deepEqual(problemsOf(oneRule('intercept: 0.0.0.0/0', 'ports: 80', 'interfaces: eth1', 'target: socket 127.0.0.1:3128', 'proxy_protocol: v2')), [
    "cfg.yaml:7: rule 'web': proxy_protocol: does nothing with target: socket (the other program makes the upstream connections); remove it",
  ]);
});

test('intercept bindings are compiled per inbound interface: overlaps on different interfaces do not clash', () => {
  const config = parseConfigText(
    [
      'rules:',
      '  - {name: a, intercept: 10.0.0.0/8, ports: 80, interfaces: [eth1], target: original}',
      '  - {name: b, intercept: 10.0.0.0/8, ports: 80-81, interfaces: [eth1, eth2], target: original}',
    ].join('\n'),
    FILE,
  );
  const ids = new Map([
    ['a', 1],
    ['b', 2],
  ]);
  const compiled = compileIntercepts(config.rules as InterceptRule[], ids, (name) => Number(name.slice(3)));
  const on = (ifindex: number) =>
    compiled.bindings
      .filter((b) => b.ifindex === ifindex)
      .map((b) => `${b.ruleId}:${b.port}/${b.portBits}`)
      .sort();
  assert.deepEqual(on(1), ['1:80/16', '2:81/16'], 'on eth1 the narrower rule a takes port 80');
  assert.deepEqual(on(2), ['2:80/15'], 'on eth2 rule b has both ports');
});

function fakeOps(rules: (PolicyRule & { family: 4 | 6 })[], routes: { family: 4 | 6; table: number; protocol: number }[]) {
  const calls: string[] = [];
  return {
    calls,
    ops: {
      listPolicyRules: (family: 4 | 6) => rules.filter((r) => r.family === family),
      addPolicyRule: () => undefined,
      deletePolicyRule: (family: 4 | 6, r: PolicyRule) => void calls.push(`delete rule ${family} ${r.priority}`),
      listTableRoutes: (family: 4 | 6, table: number) => routes.filter((r) => r.family === family && r.table === table).map((r) => ({ type: 2, dstLen: 0, protocol: r.protocol })),
      addLocalDefaultRoute: () => undefined,
      deleteLocalDefaultRoute: (family: 4 | 6, table: number) => void calls.push(`delete route ${family} ${table}`),
    },
  };
}

const settings = { mark: 0x40000000, table: 4250, priority: 4250, returnInterfaces: [] };

test('leftovers of an earlier run are found by their protocol tag and removed; others are left alone', () => {
  const { ops, calls } = fakeOps(
    [
      { family: 4, priority: 4250, table: 77, mark: 0x40000000, mask: 0x40000000, protocol: ROUTE_PROTOCOL },
      { family: 4, priority: 100, table: 100, mark: 1, mask: 1, protocol: 4 },
    ],
    [{ family: 4, table: 77, protocol: ROUTE_PROTOCOL }],
  );
  removeLeftovers(ops, silentLogger);
  assert.deepEqual(calls, ['delete rule 4 4250', 'delete route 4 77']);
});

test("someone else's priority, mark bits or table is refused with the setting to change", () => {
  const clash = (rule: Partial<PolicyRule>, routes: { family: 4 | 6; table: number; protocol: number }[] = []) =>
    assert.throws(() => checkClashes(fakeOps([{ family: 6, priority: 1, table: 1, mark: 0, mask: 0, protocol: 4, ...rule }], routes).ops, settings), (err: Error) => {
      assert.match(err.message, /^interception: .*; pick .* with interception: (priority|mark|table):$/);
      return true;
    });
  clash({ priority: 4250 });
  clash({ mark: 0x40000001, mask: 0xffffffff });
  clash({ table: 4250 });
  clash({}, [{ family: 4, table: 4250, protocol: 3 }]);
  checkClashes(fakeOps([{ family: 4, priority: 100, table: 100, mark: 1, mask: 1, protocol: 4 }], []).ops, settings);
});

test('a listening socket is found by address in /proc/net/tcp and by inode in /proc/PID/fd', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bpfredir-proc-'));
  try {
    mkdirSync(join(dir, 'net'));
    // 127.0.0.1:3128 listening (0A), inode 4242; the same port established (01), inode 1.
    writeFileSync(
      join(dir, 'net', 'tcp'),
      [
        '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
        '   0: 0100007F:0C38 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0',
        '   1: 0100007F:0C38 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 1 1 0 20 4 30 10 -1',
      ].join('\n'),
    );
    writeFileSync(join(dir, 'net', 'tcp6'), '  sl  local_address\n   0: 000080FE00000000000000000100FF00:0C38 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 77 1\n');
    assert.deepEqual(listeningInodes({ host: '127.0.0.1', port: 3128 }, join(dir, 'net')), ['4242']);
    assert.deepEqual(listeningInodes({ host: 'fe80::ff:1', port: 3128 }, join(dir, 'net')), ['77']);
    mkdirSync(join(dir, '4711', 'fd'), { recursive: true });
    writeFileSync(join(dir, '4711', 'comm'), 'haproxy\n');
    symlinkSync('socket:[4242]', join(dir, '4711', 'fd', '7'));
    assert.deepEqual(socketOwner(['4242'], dir), { pid: 4711, fd: 7, command: 'haproxy' });
    assert.equal(socketOwner(['9999'], dir), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a timed-out transparent connect names the route back', () => {
  const hint = transparentTimeoutHint({ type: 'connect_failed', ruleId: 1, connId: 1, client: '10.1.0.2:40000', code: 'ETIMEDOUT' } as EngineEvent);
  assert.equal(hint, "no reply to 10.1.0.2: with transparent_source the target's replies must be routed back through this machine (check the target's route to 10.1.0.2, and interception: return_interfaces)");
});

test('transparent_source on a listen rule without return_interfaces: a warning, not an error', async () => {
  const { returnPathWarnings } = await import('../../src/rules/conflicts.js');
  const config = parseConfigText(oneRule('listen: 127.0.0.1:80', 'target: 10.0.0.1:80', 'transparent_source: address'), 'cfg.yaml');
  assert.deepEqual(returnPathWarnings(config), [
    "cfg.yaml:2: warning: rule 'web' connects from its clients' addresses (transparent_source), and no interception: return_interfaces are named; its servers' replies are delivered here only if the clients' addresses are routed locally, otherwise name the interfaces they arrive on, e.g. interception: return_interfaces: [eth1]",
  ]);
  assert.deepEqual(returnPathWarnings(parseConfigText(`interception: {return_interfaces: [eth1]}\n${oneRule('listen: 127.0.0.1:80', 'target: 10.0.0.1:80', 'transparent_source: address')}`, 'cfg.yaml')), []);
});
