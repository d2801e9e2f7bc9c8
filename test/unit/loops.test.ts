import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { rejectSteeringLoops, steeringLoops } from '../../src/rules/loops.js';

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
  assert.equal(rejectSteeringLoops(ok), ok);
});

test('rejectSteeringLoops throws a config error listing every loop', () => {
  const looping = config('  - {name: wide, destination: "::/0", ports: any, target: "[::1]:9000"}\n');
  assert.throws(() => rejectSteeringLoops(looping), { code: 'ERR_BPFREDIR_CONFIG', message: /target \[::1\]:9000 is steered by rule 'wide'/ });
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
