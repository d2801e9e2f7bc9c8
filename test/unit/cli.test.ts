import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../../deploy/example.yaml', import.meta.url));

function bpfredir(...args: string[]) {
  const result = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('entry point starts with a shebang', () => {
  assert.match(readFileSync(MAIN, 'utf8'), /^#!\/usr\/bin\/env node\n/);
});

test('--version prints the package version', () => {
  const { version } = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.deepEqual(bpfredir('--version'), { code: 0, stdout: `${version}\n`, stderr: '' });
});

test('--help lists the commands and the exit codes', () => {
  const { code, stdout } = bpfredir('--help');
  assert.equal(code, 0);
  for (const text of ['bpfredir run', 'bpfredir forward <listen> <target>', 'bpfredir check', '3  missing privileges or kernel feature']) {
    assert.ok(stdout.includes(text), `help mentions ${text}`);
  }
});

test('usage errors exit 2', () => {
  assert.equal(bpfredir().code, 2);
  const unknown = bpfredir('frobnicate');
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /Unknown argument: frobnicate; see bpfredir --help/);
  assert.equal(bpfredir('run', '--datapath', 'warp').code, 2);
});

test('check: a good config exits 0 with a summary', () => {
  const { code, stdout } = bpfredir('check', '--config', EXAMPLE);
  assert.equal(code, 0);
  assert.match(stdout, /rule 'anyip' \(id 1\): steer tcp 127\.0\.0\.2\/32 ports 8080-8090/);
  assert.match(stdout, /config OK/);
});

test('check: a bad config exits 2 and lists every problem', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bpfredir-cli-'));
  try {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'budget: lots\nrules:\n  - name: web\n    listen: 127.0.0.1:70000\n    target: 127.0.0.1:9000\n');
    const { code, stderr } = bpfredir('check', '--config', file);
    assert.equal(code, 2);
    assert.equal(stderr.trim().split('\n').length, 2);
    assert.match(stderr, /bad\.yaml:1: budget: 'lots' is not a size/);
    assert.match(stderr, /bad\.yaml:4: rule 'web': listen: '70000' is not a port/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('forward: bad arguments exit 2 before touching anything', () => {
  const { code, stderr } = bpfredir('forward', '127.0.0.1:8080', '127.0.0.1:9000', '--idle-timeout', '30');
  assert.equal(code, 2);
  assert.equal(stderr, "command line: rule 'forward': idle_timeout: '30' is not a duration; write e.g. 10m, or 0 for never (units: ms, s, m, h)\n");
});

test('forward: a target that is its own listen address exits 2 before touching anything', () => {
  const { code, stderr } = bpfredir('forward', '0.0.0.0:9000', '127.0.0.1:9000');
  assert.equal(code, 2);
  assert.match(stderr, /^command line: rule 'forward': target 127\.0\.0\.1:9000 reaches the rule's own listen 0\.0\.0\.0:9000, which takes every local address/);
});

test('an unknown flag is reported once, as it was typed', () => {
  for (const flag of ['--bogus-flag', '--no-bogus', '--bogus.flag', '--idleTimeout']) {
    const { code, stderr } = bpfredir('forward', '127.0.0.1:8080', '127.0.0.1:9000', flag, '1');
    assert.equal(code, 2);
    assert.equal(stderr, `Unknown argument: ${flag.slice(2)}; see bpfredir --help\n`);
  }
});

test('--log-format json: start-up errors are JSON lines, one per problem, with the error code', () => {
  const { code, stderr } = bpfredir('forward', 'nope', '127.0.0.1:0', '--log-format', 'json');
  assert.equal(code, 2);
  const lines = stderr.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.deepEqual(
    lines.map(({ level, msg, code }) => ({ level, msg, code })),
    [
      { level: 'error', msg: "command line: rule 'forward': target: '0' is not a port (1-65535); write e.g. 127.0.0.1:9000, [::1]:9000 or localhost:9000", code: 'ERR_BPFREDIR_CONFIG' },
      { level: 'error', msg: "command line: rule 'forward': listen: 'nope' is not host:port; write e.g. 127.0.0.1:9000, [::1]:9000 or localhost:9000", code: 'ERR_BPFREDIR_CONFIG' },
    ],
  );
  const usage = bpfredir('forward', '127.0.0.1:8080', '127.0.0.1:9000', '--log-format=json', '--bogus');
  assert.equal(usage.code, 2);
  assert.deepEqual(JSON.parse(usage.stderr), { ...JSON.parse(usage.stderr), level: 'error', msg: 'Unknown argument: bogus; see bpfredir --help', code: 'ERR_BPFREDIR_USAGE' });
});

test('forward --intercept: MATCH is DESTINATION:PORTS, TARGET may be original', async () => {
  const { forwardConfig, interceptMatch } = await import('../../src/cli/forward.js');
  assert.deepEqual(interceptMatch(':80'), { intercept: ['0.0.0.0/0', '::/0'], ports: '80' });
  assert.deepEqual(interceptMatch('192.0.2.0/24:443'), { intercept: ['192.0.2.0/24'], ports: '443' });
  assert.deepEqual(interceptMatch('[2001:db8::/32]:8000-8999'), { intercept: ['2001:db8::/32'], ports: '8000-8999' });
  assert.throws(() => interceptMatch('eth1'), /--intercept: 'eth1' is not DESTINATION:PORTS; write e\.g\. :80/);
  const config = forwardConfig({ listen: ':80', target: 'original', intercept: 'eth1,eth2', sources: ['10.1.0.0/24'], 'transparent-source': true });
  const rule = config.rules[0]!;
  assert.equal(rule.kind, 'intercept');
  if (rule.kind !== 'intercept') return;
  assert.deepEqual(rule.interfaces, ['eth1', 'eth2']);
  assert.equal(rule.originalDestination, true);
  assert.equal(rule.transparentSource, 'address');
  assert.deepEqual(rule.ports, [{ lo: 80, hi: 80 }]);
  assert.equal(rule.sources.length, 1);
});

test('forward: --accept-proxy and a transparent source with its return interfaces', async () => {
  const { forwardConfig } = await import('../../src/cli/forward.js');
  const config = forwardConfig({ listen: '0.0.0.0:25', target: '10.0.0.9:25', 'accept-proxy': ['10.0.1.10', '10.0.1.11'], 'transparent-port': true, 'return-interface': 'eth1' });
  assert.equal(config.rules[0]!.acceptProxy?.length, 2);
  assert.equal(config.rules[0]!.transparentSource, 'address_and_port');
  assert.deepEqual(config.interception.returnInterfaces, ['eth1']);
});

test("forward: redir's -p/--transproxy is --transparent-source", () => {
  const { code, stdout } = bpfredir('forward', '--help');
  assert.equal(code, 0);
  assert.match(stdout, /-p, --transparent-source, --transproxy/);
});
