import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigText, resolveAndCheck } from '../../src/config/load.js';
import { localPrefixes } from '../../src/config/local-addresses.js';
import { listenLoops, rejectLoops, steeringLoops } from '../../src/rules/loops.js';

const config = (rules: string) => parseConfigText(`rules:\n${rules}`, 'cfg.yaml');

test('a steering rule that covers a target is a loop, named with the rule that wins', () => {
  const loops = steeringLoops(
    config(
      '  - {name: wide, destination: 127.0.0.0/8, ports: any, target: "127.0.0.1:9000"}\n' +
        '  - {name: web, listen: "127.0.0.1:8080", target: "127.0.0.5:80"}\n',
    ),
  );
  assert.deepEqual(loops, [
    "cfg.yaml:2: rule 'wide': target 127.0.0.1:9000 is steered by rule 'wide' back to bpfredir, which would connect to it again in a loop; narrow 'wide' (destination or ports) so it leaves the target out",
    "cfg.yaml:3: rule 'web': target 127.0.0.5:80 is steered by rule 'wide' back to bpfredir, which would connect to it again in a loop; narrow 'wide' (destination or ports) so it leaves the target out",
  ]);
});

test('targets outside every steered prefix or port are fine', () => {
  const ok = config(
    '  - {name: a, destination: 127.0.0.2/32, ports: 8080-8090, target: "127.0.0.1:9000"}\n' +
      '  - {name: b, destination: 127.0.0.1, ports: 80, target: "127.0.0.1:8081"}\n',
  );
  assert.deepEqual(steeringLoops(ok), []);
  assert.equal(rejectLoops(ok, []), ok);
});

test('rejectLoops throws a config error listing every loop', () => {
  const looping = config('  - {name: wide, destination: "::/0", ports: any, target: "[::1]:9000"}\n');
  assert.throws(() => rejectLoops(looping, []), { code: 'ERR_BPFREDIR_CONFIG', message: /target \[::1\]:9000 is steered by rule 'wide'/ });
});

test('the steerer named is the one the kernel would pick: longest prefix, then narrower ports, then earlier rule', () => {
  const steererOf = (rules: string) => /steered by rule '([^']+)'/.exec(steeringLoops(config(rules)).at(-1) ?? '')?.[1];
  const target = '  - {name: web, listen: "127.0.0.1:8080", target: "127.0.0.9:80"}\n';
  assert.equal(
    steererOf('  - {name: wide, destination: 127.0.0.0/8, ports: 80, target: "10.0.0.1:1"}\n  - {name: narrow, destination: 127.0.0.0/24, ports: any, target: "10.0.0.1:1"}\n' + target),
    'narrow',
  );
  assert.equal(
    steererOf('  - {name: any, destination: 127.0.0.0/24, ports: any, target: "10.0.0.1:1"}\n  - {name: some, destination: 127.0.0.0/24, ports: 70-90, target: "10.0.0.1:1"}\n' + target),
    'some',
  );
  assert.equal(
    steererOf('  - {name: first, destination: 127.0.0.0/24, ports: 70-90, target: "10.0.0.1:1"}\n  - {name: second, destination: 127.0.0.0/24, ports: 75-95, target: "10.0.0.1:1"}\n' + target),
    'first',
  );
});

/** This host, as the tests see it: loopback plus one address on eth0. */
const LOCAL = localPrefixes({ eth0: [{ address: '192.0.2.7' }, { address: '2001:db8::7' }] } as never);
const OUTCOME = 'so each connection would open another until file descriptors run out';
const listenLoopsOf = (rules: string) => listenLoops(config(rules), LOCAL);
const rule = (name: string, listen: string, target: string) => `  - {name: ${name}, listen: "${listen}", target: "${target}"}\n`;

test('local addresses: loopback always, and every interface address', () => {
  const has = (addr: string) => listenLoopsOf(rule('a', '0.0.0.0:9000', `${addr}:9000`)).length === 1;
  assert.deepEqual(['127.0.0.1', '127.9.9.9', '192.0.2.7', '192.0.2.8', '198.51.100.1'].map(has), [true, true, true, false, false]);
});

test('a listen rule whose target is its own listener loops: exact address, a wildcard, or 0.0.0.0', () => {
  const fix = 'point target at the real service';
  assert.deepEqual(listenLoopsOf(rule('a', '127.0.0.1:9000', '127.0.0.1:9000')), [
    `cfg.yaml:2: rule 'a': target 127.0.0.1:9000 reaches the rule's own listen 127.0.0.1:9000, ${OUTCOME}; ${fix}`,
  ]);
  assert.deepEqual(listenLoopsOf(rule('a', '0.0.0.0:9000', '192.0.2.7:9000')), [
    `cfg.yaml:2: rule 'a': target 192.0.2.7:9000 reaches the rule's own listen 0.0.0.0:9000, which takes every local address, ${OUTCOME}; ${fix}`,
  ]);
  assert.equal(listenLoopsOf(rule('a', '127.0.0.1:9000', '0.0.0.0:9000')).length, 1, 'connecting to 0.0.0.0 goes to loopback');
  assert.deepEqual(listenLoopsOf(rule('a', '0.0.0.0:9000', '127.0.0.1:9001')), [], 'another port');
  assert.deepEqual(listenLoopsOf(rule('a', '0.0.0.0:9000', '[::1]:9000')), [], '0.0.0.0 takes no IPv6');
});

test('[::] takes both families (bound dual-stack); other spellings of it are v6-only, as the daemon binds them', () => {
  assert.equal(listenLoopsOf(rule('a', '[::]:9000', '127.0.0.1:9000')).length, 1);
  assert.equal(listenLoopsOf(rule('a', '[::]:9000', '[2001:db8::7]:9000')).length, 1);
  assert.equal(listenLoopsOf(rule('a', '[::]:9000', '[::ffff:127.0.0.1]:9000')).length, 1);
  assert.equal(listenLoopsOf(rule('a', '[0::0]:9000', '[::1]:9000')).length, 1);
  assert.deepEqual(listenLoopsOf(rule('a', '[0::0]:9000', '127.0.0.1:9000')), []);
});

test('listen rules whose targets go round: one line per cycle, at its first rule in the config', () => {
  const fix = 'point one of these targets at the real service';
  assert.deepEqual(listenLoopsOf(rule('a', '127.0.0.1:9001', '127.0.0.1:9002') + rule('b', '0.0.0.0:9002', '127.0.0.1:9001')), [
    `cfg.yaml:2: rule 'a': target 127.0.0.1:9002 reaches rule 'b' (listen 0.0.0.0:9002, which takes every local address), and the targets go round a → b → a, ${OUTCOME}; ${fix}`,
  ]);
  // z leads into the cycle a → b → a: refused through the cycle, which is named from b, first in the file.
  const chainIntoCycle = rule('z', '127.0.0.1:9000', '127.0.0.1:9001') + rule('b', '127.0.0.1:9002', '127.0.0.1:9001') + rule('a', '127.0.0.1:9001', '127.0.0.1:9002');
  assert.deepEqual(listenLoopsOf(chainIntoCycle), [
    `cfg.yaml:3: rule 'b': target 127.0.0.1:9001 reaches rule 'a' (listen 127.0.0.1:9001), and the targets go round b → a → b, ${OUTCOME}; ${fix}`,
  ]);
  const three = rule('a', '127.0.0.1:1', '127.0.0.1:2') + rule('b', '127.0.0.1:2', '127.0.0.1:3') + rule('c', '127.0.0.1:3', '127.0.0.1:1');
  assert.match(listenLoopsOf(three).join('\n'), /^cfg\.yaml:2: rule 'a': .* a → b → c → a, /);
});

test('a chain of listen rules that ends at a real service is fine', () => {
  const chain = rule('a', '127.0.0.1:1', '127.0.0.1:2') + rule('b', '0.0.0.0:2', '[::1]:3') + rule('c', '[::1]:3', '198.51.100.1:80');
  assert.deepEqual(listenLoopsOf(chain), []);
});

test('loops are found after host names are resolved, with the steering loops', async () => {
  const looping = config(rule('a', '127.0.0.1:8001', 'localhost:8001') + '  - {name: s, destination: 10.0.0.0/8, ports: 80, target: "10.0.0.1:80"}\n');
  await assert.rejects(resolveAndCheck(looping, { lookup: async () => '127.0.0.1', localPrefixes: LOCAL }), (err: Error & { problems: string[] }) => {
    assert.deepEqual(
      err.problems.map((p) => p.split(':').slice(0, 3).join(':')),
      ["cfg.yaml:3: rule 's'", "cfg.yaml:2: rule 'a'"],
    );
    return true;
  });
});
