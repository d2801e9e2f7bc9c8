import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileBindings, type Binding } from '../../src/rules/compile.js';
import { addressBytes, formatPrefix, parsePrefix, type Prefix } from '../../src/rules/ip.js';
import type { PortRange } from '../../src/rules/ports.js';
import type { SteerRule } from '../../src/config/types.js';
import { modelLookup } from './lookup-model.js';

function rule(name: string, destinations: string[], ports: PortRange[]): SteerRule {
  return {
    kind: 'steer',
    name,
    protocol: 'tcp',
    destinations: destinations.map((d) => parsePrefix(d) as Prefix),
    ports,
    targets: [{ host: '127.0.0.1', port: 9000 }],
    balance: 'failover',
    connectTimeoutMs: 5000,
    idleTimeoutMs: 0,
    source: 'test',
  };
}

function compile(rules: SteerRule[]) {
  const ids = new Map(rules.map((r, i) => [r.name, i + 1]));
  const names = new Map(rules.map((r, i) => [i + 1, r.name]));
  const compiled = compileBindings(rules, ids);
  const winner = (addr: string, port: number) => {
    const b = modelLookup(compiled, addressBytes(addr), port);
    return b && names.get(b.ruleId);
  };
  return { compiled, winner };
}

const show = (b: Binding) => `${formatPrefix(b.prefix)} ${b.port}/${b.portBits} -> ${b.ruleId}`;

test('one rule: blocks per prefix, mask of port_bits in use', () => {
  const { compiled } = compile([rule('web', ['127.0.0.2/32', '::2'], [{ lo: 8080, hi: 8090 }])]);
  assert.deepEqual(compiled.bindings.map(show), [
    '127.0.0.2/32 8080/13 -> 1',
    '127.0.0.2/32 8088/15 -> 1',
    '127.0.0.2/32 8090/16 -> 1',
    '::2/128 8080/13 -> 1',
    '::2/128 8088/15 -> 1',
    '::2/128 8090/16 -> 1',
  ]);
  assert.equal(compiled.portBitsMask, (1 << 13) | (1 << 15) | (1 << 16));
});

test('precedence: longest prefix first, even over a narrower port block', () => {
  const { winner } = compile([
    rule('wide', ['10.0.0.0/8'], [{ lo: 80, hi: 80 }]),
    rule('narrow', ['10.1.0.0/16'], [{ lo: 0, hi: 65535 }]),
  ]);
  assert.equal(winner('10.1.2.3', 80), 'narrow');
  assert.equal(winner('10.2.2.3', 80), 'wide');
  assert.equal(winner('10.2.2.3', 81), undefined);
  assert.equal(winner('11.0.0.1', 80), undefined);
});

test('precedence: at equal prefix the narrower range wins and the wider one is cut around it', () => {
  const { compiled, winner } = compile([
    rule('any', ['127.0.0.2/32'], [{ lo: 0, hi: 65535 }]),
    rule('range', ['127.0.0.2/32'], [{ lo: 8000, hi: 8999 }]),
    rule('exact', ['127.0.0.2/32'], [{ lo: 8080, hi: 8080 }]),
  ]);
  assert.equal(winner('127.0.0.2', 22), 'any');
  assert.equal(winner('127.0.0.2', 8000), 'range');
  assert.equal(winner('127.0.0.2', 8079), 'range');
  assert.equal(winner('127.0.0.2', 8080), 'exact');
  assert.equal(winner('127.0.0.2', 8081), 'range');
  assert.equal(winner('127.0.0.2', 9000), 'any');
  assert.equal(winner('127.0.0.3', 8080), undefined);
  assertOneBlockPerPort(compiled.bindings);
});

test('overlap: equal width → the earlier rule wins; the later keeps the rest', () => {
  const { winner } = compile([
    rule('first', ['127.0.0.2'], [{ lo: 100, hi: 199 }]),
    rule('second', ['127.0.0.2'], [{ lo: 150, hi: 249 }]),
  ]);
  assert.equal(winner('127.0.0.2', 150), 'first');
  assert.equal(winner('127.0.0.2', 199), 'first');
  assert.equal(winner('127.0.0.2', 200), 'second');
  assert.equal(winner('127.0.0.2', 249), 'second');
});

test('IPv4 and IPv4-mapped IPv6 spellings are the same prefix; ::/0 also covers IPv4', () => {
  const { winner } = compile([
    rule('v6any', ['::/0'], [{ lo: 443, hi: 443 }]),
    rule('v4host', ['::ffff:127.0.0.2/128'], [{ lo: 443, hi: 443 }]),
  ]);
  assert.equal(winner('127.0.0.2', 443), 'v4host');
  assert.equal(winner('127.0.0.9', 443), 'v6any');
  assert.equal(winner('::9', 443), 'v6any');
});

test('random overlapping rules: kernel model agrees with the precedence definition', () => {
  let seed = 7;
  const next = () => ((seed = (seed * 1103515245 + 12345) >>> 0), seed / 2 ** 32);
  const prefixes = ['10.0.0.0/8', '10.1.0.0/16', '10.1.2.3/32'];
  for (let round = 0; round < 50; round++) {
    const rules = Array.from({ length: 6 }, (_, i) => {
      const a = Math.floor(next() * 64);
      const b = Math.floor(next() * 64);
      return rule(`r${i}`, [prefixes[Math.floor(next() * 3)]!], [{ lo: Math.min(a, b), hi: Math.max(a, b) }]);
    });
    const { compiled, winner } = compile(rules);
    assertOneBlockPerPort(compiled.bindings);
    for (let port = 0; port < 70; port++) {
      assert.equal(winner('10.1.2.3', port), expectedWinner(rules, port), `round ${round} port ${port}`);
    }
  }
});

/** Precedence by definition: longest prefix, then narrowest range, then earliest rule. */
function expectedWinner(rules: SteerRule[], port: number): string | undefined {
  const covering = rules.filter((r) => r.ports.some((p) => p.lo <= port && port <= p.hi));
  covering.sort((a, b) => {
    const width = (r: SteerRule) => r.ports[0]!.hi - r.ports[0]!.lo;
    return b.destinations[0]!.len - a.destinations[0]!.len || width(a) - width(b) || rules.indexOf(a) - rules.indexOf(b);
  });
  return covering[0]?.name;
}

function assertOneBlockPerPort(bindings: Binding[]): void {
  const seen = new Map<string, number>();
  for (const b of bindings) {
    const size = 2 ** (16 - b.portBits);
    for (let port = b.port; port < b.port + size; port++) {
      const key = `${formatPrefix(b.prefix)}|${port}`;
      assert.equal(seen.has(key), false, `port ${port} of ${formatPrefix(b.prefix)} is in two blocks`);
      seen.set(key, b.ruleId);
    }
  }
}
