import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { needsLoopGuard } from '../../src/rules/loop-guard.js';

const config = (rules: string) => parseConfigText(`rules:\n${rules}`, 'cfg.yaml');
const guarded = (rules: string) => {
  const c = config(rules);
  return c.rules.filter((r) => r.targets.some((t) => needsLoopGuard(c, t))).map((r) => r.name);
};

test('a target on the port of some listen rule is guarded, at any listen address', () => {
  assert.deepEqual(
    guarded(
      '  - {name: front, listen: "0.0.0.0:8080", target: "10.0.0.5:80"}\n' +
        '  - {name: back, listen: "127.0.0.1:80", target: "10.0.0.6:9000"}\n' +
        '  - {name: other, listen: "[::1]:9001", target: "[2001:db8::1]:443"}\n',
    ),
    ['front'],
  );
});

test('a target on a port some steering rule takes is guarded; ports outside every range are not', () => {
  const rules =
    '  - {name: web, destination: 10.0.0.0/8, ports: 8000-8099, target: "127.0.0.1:9000"}\n' +
    '  - {name: edge-lo, listen: "127.0.0.1:7000", target: "192.0.2.1:8000"}\n' +
    '  - {name: edge-hi, listen: "127.0.0.1:7001", target: "192.0.2.1:8099"}\n' +
    '  - {name: past, listen: "127.0.0.1:7002", target: "192.0.2.1:8100"}\n';
  assert.deepEqual(guarded(rules), ['edge-lo', 'edge-hi']);
});

test('ports: any guards every rule, and no listen or steering port guards none', () => {
  assert.deepEqual(guarded('  - {name: all, destination: 10.0.0.0/8, ports: any, target: "127.0.0.1:9000"}\n'), ['all']);
  assert.deepEqual(guarded('  - {name: a, listen: "127.0.0.1:7000", target: "192.0.2.1:80"}\n'), []);
});
