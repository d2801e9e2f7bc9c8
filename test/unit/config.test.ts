import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { configFromObject, loadConfigFile, parseConfigText } from '../../src/config/load.js';
import { resolveHostnames } from '../../src/config/resolve.js';
import { BpfredirError } from '../../src/errors.js';
import { seededRandom as random } from '../helpers/random.js';
import { configProblems } from '../helpers/problems.js';

const FILE = 'cfg.yaml';

/** The problem lines a config produces (it must fail with ERR_BPFREDIR_CONFIG). */
const problemsOf = (text: string): string[] => configProblems(() => parseConfigText(text, FILE));

/** A config with one rule made of these YAML lines (at line 3 onwards). */
const oneRule = (...lines: string[]) => ['rules:', '  - name: web', ...lines.map((l) => `    ${l}`)].join('\n');

test('the example config is valid and has defaults filled in', () => {
  const config = parseConfigText(readFileSync('deploy/example.yaml', 'utf8'), 'deploy/example.yaml');
  assert.equal(config.datapath, 'auto');
  assert.equal(config.budgetBytes, 4 * 2 ** 20);
  assert.equal(config.threads, 0, 'auto: one engine thread per CPU');
  assert.equal(config.spliceAfterBytes, 64 * 1024);
  assert.equal(config.bulkFlows, 'relay');
  assert.deepEqual(
    config.rules.map((r) => [r.name, r.kind]),
    [
      ['anyip', 'steer'],
      ['web', 'listen'],
    ],
  );
  assert.equal(config.rules[1]!.connectTimeoutMs, 5000);
});

test('threads: auto or a count', () => {
  const rule = 'rules: [{name: a, listen: "127.0.0.1:1", target: "127.0.0.1:2"}]';
  assert.equal(parseConfigText(`threads: auto\n${rule}`, 'cfg.yaml').threads, 0);
  assert.equal(parseConfigText(`threads: 3\n${rule}`, 'cfg.yaml').threads, 3);
  assert.equal(parseConfigText(`threads: "1"\n${rule}`, 'cfg.yaml').threads, 1);
});

test('JSON is valid YAML', () => {
  const config = parseConfigText('{"rules": [{"name": "j", "listen": "[::1]:8080", "target": "[::1]:9000"}]}', 'c.json');
  const rule = config.rules[0]!;
  assert.ok(rule.kind === 'listen');
  assert.deepEqual(rule.listen, { host: '::1', port: 8080 });
});

test('JSON errors still carry line numbers', () => {
  const json = ['{', '  "rules": [', '    {"name": "j", "listen": "127.0.0.1:8080",', '     "target": "127.0.0.1:99999"}', '  ]', '}'].join('\n');
  assert.deepEqual(problemsOf(json), [
    "cfg.yaml:4: rule 'j': target: '99999' is not a port (1-65535); write e.g. 127.0.0.1:9000, [::1]:9000 or localhost:9000",
  ]);
});

test('ports: every accepted form', () => {
  const portsOf = (ports: string) => {
    const rule = parseConfigText(oneRule('destination: 127.0.0.2', `ports: ${ports}`, 'target: 127.0.0.1:9000'), FILE).rules[0]!;
    assert.ok(rule.kind === 'steer');
    return rule.ports;
  };
  assert.deepEqual(portsOf('80'), [{ lo: 80, hi: 80 }]);
  assert.deepEqual(portsOf('8080-8090'), [{ lo: 8080, hi: 8090 }]);
  assert.deepEqual(portsOf('any'), [{ lo: 0, hi: 65535 }]);
  assert.deepEqual(portsOf('[443, 80, 81-90, "8000 - 8001"]'), [
    { lo: 80, hi: 90 },
    { lo: 443, hi: 443 },
    { lo: 8000, hi: 8001 },
  ]);
});

test('each mistake is one located line saying how to fix it', () => {
  const cases: [string, string][] = [
    [oneRule('destination: 127.0.0.2', 'ports: 70000', 'target: 127.0.0.1:9000'), "cfg.yaml:4: rule 'web': ports: '70000' is not a port (1-65535); write e.g. 8080 or 8080-8090"],
    [oneRule('destination: 127.0.0.2', 'ports: 0', 'target: 127.0.0.1:9000'), "cfg.yaml:4: rule 'web': ports: '0' is not a port (1-65535); write e.g. 8080 or 8080-8090"],
    [oneRule('destination: 127.0.0.2', 'ports: 90-80', 'target: 127.0.0.1:9000'), "cfg.yaml:4: rule 'web': ports: '90-80' runs backwards; write 80-90"],
    [oneRule('destination: 127.0.0.2', 'ports: []', 'target: 127.0.0.1:9000'), "cfg.yaml:4: rule 'web': ports: empty list; write e.g. 8080, 8080-8090, any or [80, 443]"],
    [oneRule('destination: 127.0.0.2', 'target: 127.0.0.1:9000'), "cfg.yaml:3: rule 'web': ports: missing; steering needs ports, e.g. ports: 8080-8090 (or any)"],
    [oneRule('destination: 10.0.0.1/8', 'ports: 80', 'target: 127.0.0.1:9000'), "cfg.yaml:3: rule 'web': destination: '10.0.0.1/8' has bits set past /8; write 10.0.0.0/8"],
    [oneRule('destination: [10.0.0.0/8, nope]', 'ports: 80', 'target: 127.0.0.1:9000'), "cfg.yaml:3: rule 'web': destination: 'nope' is not an IP address; write e.g. 10.0.0.0/8, 127.0.0.2 or ::2/128"],
    [oneRule('listen: 127.0.0.1:8080', 'target: ::1:9000'), "cfg.yaml:4: rule 'web': target: IPv6 addresses need brackets; write e.g. [::1]:9000"],
    [oneRule('listen: 127.0.0.1', 'target: 127.0.0.1:9000'), "cfg.yaml:3: rule 'web': listen: '127.0.0.1' is not host:port; write e.g. 127.0.0.1:9000, [::1]:9000 or localhost:9000"],
    [oneRule('listen: "[nope]:80"', 'target: 127.0.0.1:9000'), "cfg.yaml:3: rule 'web': listen: 'nope' in brackets is not an IPv6 address; write e.g. 127.0.0.1:9000, [::1]:9000 or localhost:9000"],
    [oneRule('listen: 127.0.0.1:8080'), "cfg.yaml:2: rule 'web': target: missing; write e.g. target: 127.0.0.1:9000 (or original, with intercept:)"],
    [oneRule('target: 127.0.0.1:9000'), "cfg.yaml:2: rule 'web': needs listen: ADDRESS:PORT (bind it directly) or destination: PREFIX with ports: (steer with sk_lookup)"],
    [oneRule('listen: 127.0.0.1:8080', 'ports: 80', 'target: 127.0.0.1:9000'), "cfg.yaml:4: rule 'web': ports: only goes with destination; with listen the port is part of the address"],
    [oneRule('listen: 127.0.0.1:8080', 'destination: 127.0.0.2', 'target: 127.0.0.1:9000'), "cfg.yaml:3: rule 'web': has both listen and destination; a rule either binds one address (listen) or steers prefixes (destination + ports)"],
    [oneRule('protocol: udp', 'listen: 127.0.0.1:8080', 'target: 127.0.0.1:9000'), "cfg.yaml:3: rule 'web': protocol: udp is not supported yet; use tcp"],
    [oneRule('protocol: sctp', 'listen: 127.0.0.1:8080', 'target: 127.0.0.1:9000'), "cfg.yaml:3: rule 'web': protocol: 'sctp' is not a protocol; write tcp"],
    [oneRule('destinaton: 127.0.0.2', 'listen: 127.0.0.1:8080', 'target: 127.0.0.1:9000'), "cfg.yaml:3: rule 'web': unknown key 'destinaton'; did you mean 'destination'?"],
    [oneRule('colour: red', 'listen: 127.0.0.1:8080', 'target: 127.0.0.1:9000'), "cfg.yaml:3: rule 'web': unknown key 'colour'; allowed: name, protocol, listen, destination, ports, target, balance, connect_timeout, idle_timeout, keepalive, allow, deny, proxy_protocol, source, mark, max_connections, health_check, intercept, interfaces, sources, transparent_source, accept_proxy"],
    [oneRule('listen: 127.0.0.1:8080', 'target: 127.0.0.1:9000', 'connect_timeout: 0'), "cfg.yaml:5: rule 'web': connect_timeout: must be longer than 0; write e.g. 5s"],
    [oneRule('listen: 127.0.0.1:8080', 'target: 127.0.0.1:9000', 'idle_timeout: 10 min'), "cfg.yaml:5: rule 'web': idle_timeout: '10 min' is not a duration; write e.g. 10m, or 0 for never (units: ms, s, m, h)"],
    [oneRule('listen: 127.0.0.1:8080', 'target: []'), "cfg.yaml:4: rule 'web': target: empty list; write e.g. 127.0.0.1:9000 or [10.0.0.5:80, 10.0.0.6:80]"],
    [oneRule('listen: 127.0.0.1:8080', 'target: [127.0.0.1:9000, 127.0.0.1:9001]', 'balance: random'), "cfg.yaml:5: rule 'web': balance: 'random' is not one of failover, round_robin, least_connections, source_hash"],
    [oneRule('listen: 127.0.0.1:8080', 'target: 127.0.0.1:9000', 'balance: round_robin'), "cfg.yaml:5: rule 'web': balance: needs several targets; write target: [A:PORT, B:PORT]"],
    ['budget: 4XB\nrules: [{name: a, listen: "127.0.0.1:1", target: "127.0.0.1:2"}]', "cfg.yaml:1: budget: '4XB' is not a size; write e.g. 4MiB, or 0 for unlimited (units: B, KiB, MiB, GiB, k, M, G)"],
    ['budget: 3GiB\nrules: [{name: a, listen: "127.0.0.1:1", target: "127.0.0.1:2"}]', "cfg.yaml:1: budget: '3GiB' is too large (at most 2147483647 bytes); write e.g. 4MiB, or 0 for unlimited"],
    ['sndbuf: -1\nrules: [{name: a, listen: "127.0.0.1:1", target: "127.0.0.1:2"}]', 'cfg.yaml:1: sndbuf: -1 is not a whole number of bytes; write e.g. 4MiB, or 0 to autotune (units: B, KiB, MiB, GiB, k, M, G)'],
    ['threads: 0\nrules: [{name: a, listen: "127.0.0.1:1", target: "127.0.0.1:2"}]', "cfg.yaml:1: threads: '0' is not a thread count; write auto (one per CPU) or a number 1..64"],
    ['threads: 65\nrules: [{name: a, listen: "127.0.0.1:1", target: "127.0.0.1:2"}]', "cfg.yaml:1: threads: '65' is not a thread count; write auto (one per CPU) or a number 1..64"],
    ['connect_timeout: 5\nrules: [{name: a, listen: "127.0.0.1:1", target: "127.0.0.1:2"}]', 'cfg.yaml:1: connect_timeout: 5 has no unit; write e.g. 5s (units: ms, s, m, h)'],
    ['bulk_flows: fast\nrules: [{name: a, listen: "127.0.0.1:1", target: "127.0.0.1:2"}]', "cfg.yaml:1: bulk_flows: 'fast' is not one of relay, kernel"],
    ['splice_after: lots\nrules: [{name: a, listen: "127.0.0.1:1", target: "127.0.0.1:2"}]', "cfg.yaml:1: splice_after: 'lots' is not a size; write e.g. 64KiB, or 0 to splice at once (units: B, KiB, MiB, GiB, k, M, G)"],
    ['datapath: fast\nrules: [{name: a, listen: "127.0.0.1:1", target: "127.0.0.1:2"}]', "cfg.yaml:1: datapath: 'fast' is not one of auto, splice, userspace"],
    ['buget: 1MiB\nrules: [{name: a, listen: "127.0.0.1:1", target: "127.0.0.1:2"}]', "cfg.yaml:1: unknown key 'buget'; did you mean 'budget'?"],
    ['rules: []', 'cfg.yaml:1: rules: needs a list of at least one rule (see deploy/example.yaml)'],
    ['- 1', 'cfg.yaml:1: expected a map with rules: (see deploy/example.yaml)'],
    ['rules:\n  - just text', 'cfg.yaml:2: rule #1: expected a map with name, target and listen or destination'],
    ['rules:\n  - listen: 127.0.0.1:1\n    target: 127.0.0.1:2', 'cfg.yaml:2: rule #1: name: missing; give every rule a unique name, e.g. name: web'],
    ['rules:\n  - name: Web!\n    listen: 127.0.0.1:1\n    target: 127.0.0.1:2', "cfg.yaml:2: rule #1: name: 'Web!' is not a rule name; use 1-64 of a-z 0-9 _ . - (e.g. web-8080)"],
  ];
  for (const [text, expected] of cases) assert.deepEqual(problemsOf(text), [expected], text);
});

test('YAML syntax errors are located; duplicate keys are one of them', () => {
  assert.deepEqual(problemsOf('rules: []\nrules: []'), ['cfg.yaml:2: Map keys must be unique; fix the YAML syntax']);
  for (const problem of problemsOf('rules: [\n  {name: a')) assert.match(problem, /^cfg\.yaml:2: .+; fix the YAML syntax$/);
});

test('conflicts between rules', () => {
  const rules = [
    'rules:',
    '  - {name: a, destination: 127.0.0.2, ports: 80-90, target: "127.0.0.1:1"}',
    '  - {name: a, listen: "127.0.0.1:80", target: "127.0.0.1:1"}',
    '  - {name: b, destination: "::ffff:127.0.0.2/128", ports: [80-90], target: "127.0.0.1:1"}',
    '  - {name: c, destination: 127.0.0.2, ports: 85-90, target: "127.0.0.1:1"}',
    '  - {name: d, listen: "127.0.0.1:80", target: "127.0.0.1:1"}',
  ].join('\n');
  assert.deepEqual(problemsOf(rules), [
    "cfg.yaml:3: rule 'a': name is already used by the rule at cfg.yaml:2; names must be unique",
    "cfg.yaml:4: rule 'b': destination 127.0.0.2/32 ports 80-90 is exactly what rule 'a' matches; remove one or make one narrower",
    "cfg.yaml:6: rule 'd': listen: 127.0.0.1:80 is already taken by rule 'a'; pick another port",
  ]);
});

test('more rules than the kernel rule table holds is a config error', () => {
  const rules = Array.from({ length: 65536 }, (_, i) => ({ name: `r${i}`, destination: '127.0.0.2', ports: i + 1 > 65535 ? 'any' : i + 1, target: '127.0.0.1:9' }));
  assert.throws(() => configFromObject({ rules }, 'gen'), {
    code: 'ERR_BPFREDIR_CONFIG',
    message: "gen: rules: 65536 rules, at most 65535 fit the kernel's rule table; merge rules that share a target (destination takes a list)",
  });
});

test('all problems are reported at once, in file order', () => {
  const problems = problemsOf(['budget: lots', 'rules:', '  - name: web', '    ports: 70000', '    destination: 1.2.3.4/33', '    target: x'].join('\n'));
  assert.deepEqual(
    problems.map((p) => p.split(':')[1]),
    ['1', '4', '5', '6'],
  );
});

test('configs built in code use the same validation, without line numbers', () => {
  assert.throws(
    () => configFromObject({ rules: [{ name: 'forward', listen: '127.0.0.1:80', target: 'x:0' }] }, 'command line'),
    { code: 'ERR_BPFREDIR_CONFIG', message: "command line: rule 'forward': target: '0' is not a port (1-65535); write e.g. 127.0.0.1:9000, [::1]:9000 or localhost:9000" },
  );
});

test('host names are resolved once, and failures name the rule', async () => {
  const config = parseConfigText(oneRule('listen: localhost:8080', 'target: backend:9000'), FILE);
  const resolved = await resolveHostnames(config, async (host) => ({ localhost: '127.0.0.1', backend: '::1' })[host]!);
  const rule = resolved.rules[0]!;
  assert.ok(rule.kind === 'listen');
  assert.deepEqual([rule.listen, rule.targets[0]], [
    { host: '127.0.0.1', port: 8080 },
    { host: '::1', port: 9000 },
  ]);
  const failing = async () => {
    throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' });
  };
  await assert.rejects(resolveHostnames(config, failing), {
    code: 'ERR_BPFREDIR_CONFIG',
    message: [
      "cfg.yaml:2: rule 'web': target: cannot resolve 'backend' (ENOTFOUND); use an IP address or fix the name",
      "cfg.yaml:2: rule 'web': listen: cannot resolve 'localhost' (ENOTFOUND); use an IP address or fix the name",
    ].join('\n'),
  });
});

test('a missing file says which path', async () => {
  await assert.rejects(loadConfigFile('/nonexistent/bpfredir.yaml'), {
    code: 'ERR_BPFREDIR_CONFIG',
    message: '/nonexistent/bpfredir.yaml: cannot read the config (ENOENT); check the path given to --config',
  });
});

test('inet_aton forms are no IPv4 address: neither taken as one nor resolved as a name', async () => {
  const fix = 'is not a dotted-quad IPv4 address; write four decimal parts 0-255 without leading zeros, e.g. 10.0.0.1 (short, octal and hex forms mean other addresses)';
  for (const host of ['1.2.3', '0x7f.1', '017.0.0.1', '2130706433', '0x7f']) {
    assert.deepEqual(problemsOf(oneRule('listen: 127.0.0.1:8080', `target: "${host}:80"`)), [`cfg.yaml:4: rule 'web': target: '${host}' ${fix}`]);
    assert.deepEqual(problemsOf(oneRule(`destination: "${host}"`, 'ports: 80', 'target: 127.0.0.1:9000')), [
      `cfg.yaml:3: rule 'web': destination: '${host}' ${fix}`,
    ]);
  }
  const names = parseConfigText(oneRule('listen: 1.2.3.4:8080', 'target: 1password.example:80'), FILE);
  assert.equal(names.rules[0]!.targets[0]!.host, '1password.example', 'names with digits are still names');
});

test('link-local IPv6 needs a zone, and zones are not supported by the data path', async () => {
  const unsupported = 'which bpfredir does not support; use a global or unique-local IPv6 address';
  assert.deepEqual(problemsOf(oneRule('listen: "[fe80::1]:80"', 'target: 127.0.0.1:9000')), [
    `cfg.yaml:3: rule 'web': listen: 'fe80::1' is link-local and needs a zone (e.g. [fe80::1%eth0]), ${unsupported}`,
  ]);
  assert.deepEqual(problemsOf(oneRule('listen: 127.0.0.1:80', 'target: "[fe80::1%eth0]:80"')), [
    `cfg.yaml:4: rule 'web': target: 'fe80::1%eth0' has a zone (%eth0), ${unsupported}`,
  ]);
  const byName = parseConfigText(oneRule('listen: 127.0.0.1:80', 'target: router:80'), FILE);
  await assert.rejects(resolveHostnames(byName, async () => 'fe80::1'), {
    message: `cfg.yaml:2: rule 'web': target: 'router' resolves to fe80::1: 'fe80::1' is link-local and needs a zone (e.g. [fe80::1%eth0]), ${unsupported}`,
  });
  assert.ok(parseConfigText(oneRule('destination: fe80::/10', 'ports: 80', 'target: "[fd00::1]:80"'), FILE), 'a steered link-local prefix needs no zone');
});

test('random and truncated configs: never a crash, always one-line problems', () => {
  const valid = [
    'datapath: auto',
    'allow: [10.0.0.0/8, "2001:db8::/32"]',
    'access_log: /tmp/access.log',
    'rules:',
    '  - name: web',
    '    listen: 0.0.0.0:8080',
    '    target: [10.0.0.5:80, "[2001:db8::5]:80"]',
    '    balance: round_robin',
    '    proxy_protocol: v2',
    '    max_connections: 100',
    '  - name: anyip',
    '    destination: [192.0.2.0/24]',
    '    ports: 8000-8999',
    '    target: 127.0.0.1:9000',
    '    deny: 192.0.2.7',
  ].join('\n');
  const rnd = random(20261203);
  const alphabet = ' :-[]{},."\'#\n\tabcdefgh0123456789/_';
  const inputs: string[] = [];
  for (let i = 0; i < 1500; i++) inputs.push(valid.slice(0, Math.floor(rnd() * valid.length)));
  for (let i = 0; i < 1500; i++) {
    const chars = [...valid];
    for (let k = 0; k < 1 + Math.floor(rnd() * 4); k++) chars[Math.floor(rnd() * chars.length)] = alphabet[Math.floor(rnd() * alphabet.length)]!;
    inputs.push(chars.join(''));
  }
  for (const text of inputs) {
    try {
      parseConfigText(text, 'fuzz.yaml');
    } catch (err) {
      assert.ok(err instanceof BpfredirError, `not a BpfredirError for ${JSON.stringify(text)}: ${err}`);
      for (const problem of err.problems) assert.ok(!problem.includes('\n') && problem.startsWith('fuzz.yaml'), JSON.stringify(problem));
    }
  }
});
