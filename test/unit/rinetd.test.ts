import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRinetdConfig, readServices, rinetdAdmits, type RinetdConfig, type RinetdForward, type RinetdPattern } from '../../src/compat/rinetd.js';
import { BpfredirError } from '../../src/errors.js';
import { addressBytes, formatPrefix, samePrefixBits } from '../../src/rules/ip.js';
import { seededRandom as random } from '../helpers/random.js';
import { configProblems } from '../helpers/problems.js';

const FILE = 'rinetd.conf';

const parse = (...lines: string[]) => parseRinetdConfig(lines.join('\n'), FILE);

/** The problem lines a config produces (it must fail with ERR_BPFREDIR_CONFIG). */
const problemsOf = (...lines: string[]): string[] => configProblems(() => parse(...lines));

/** A forwarding rule without its line and patterns, for compact comparisons. */
function ruleOf(forward: RinetdForward) {
  const { line: _line, allow: _allow, deny: _deny, ...rest } = forward;
  return rest;
}

const texts = (patterns: readonly RinetdPattern[]) => patterns.map((p) => `${p.line}:${p.text}`);

// Written from the rinetd 0.73 manual's description of each form.
const MANUAL_EXAMPLE = [
  '# global rules first',
  'allow 192.168.2.*',
  'deny 192.168.2.1?',
  '',
  '206.125.69.81 80  10.1.1.2 80',
  '0.0.0.0 23  10.1.1.2 23',
  '206.125.69.81 8080/tcp  10.1.1.2 8000/udp',
  '0.0.0.0 8000/udp  10.1.1.2 80  [timeout=3600]',
  '192.168.1.1 80  10.1.1.127 80  [src=10.1.1.2]',
  'allow 206.125.69.*',
  '::1 80 192.168.1.2 80',
  '0.0.0.0 81 fe80::1 80',
  '127.0.0.1 4000/udp 127.0.0.1 22 [timeout=1200]',
  '127.0.0.1 8000/udp 192.168.1.2 8000/udp [src=192.168.1.2,timeout=1200]',
  '\tdeny 10.0.0.1   # per-rule, after a tab',
  'logfile /var/log/rinetd.log',
  'logcommon',
  'pidlogfile /var/run/rinetd.pid',
].join('\n');

test("the manual's forms parse: ports, /udp, options, allow and deny, logging", () => {
  const config = parseRinetdConfig(MANUAL_EXAMPLE, FILE);
  assert.equal(config.source, FILE);
  assert.deepEqual(config.forwards.map(ruleOf), [
    { bindAddress: '206.125.69.81', bindPort: 80, protocol: 'tcp', connectAddress: '10.1.1.2', connectPort: 80, connectProtocol: 'tcp' },
    { bindAddress: '0.0.0.0', bindPort: 23, protocol: 'tcp', connectAddress: '10.1.1.2', connectPort: 23, connectProtocol: 'tcp' },
    { bindAddress: '206.125.69.81', bindPort: 8080, protocol: 'tcp', connectAddress: '10.1.1.2', connectPort: 8000, connectProtocol: 'udp' },
    // The manual: 8000/udp forwarded to TCP port 80 (a connect port without suffix is TCP).
    { bindAddress: '0.0.0.0', bindPort: 8000, protocol: 'udp', connectAddress: '10.1.1.2', connectPort: 80, connectProtocol: 'tcp', timeoutSeconds: 3600 },
    { bindAddress: '192.168.1.1', bindPort: 80, protocol: 'tcp', connectAddress: '10.1.1.127', connectPort: 80, connectProtocol: 'tcp', sourceAddress: '10.1.1.2' },
    { bindAddress: '::1', bindPort: 80, protocol: 'tcp', connectAddress: '192.168.1.2', connectPort: 80, connectProtocol: 'tcp' },
    { bindAddress: '0.0.0.0', bindPort: 81, protocol: 'tcp', connectAddress: 'fe80::1', connectPort: 80, connectProtocol: 'tcp' },
    { bindAddress: '127.0.0.1', bindPort: 4000, protocol: 'udp', connectAddress: '127.0.0.1', connectPort: 22, connectProtocol: 'tcp', timeoutSeconds: 1200 },
    {
      bindAddress: '127.0.0.1',
      bindPort: 8000,
      protocol: 'udp',
      connectAddress: '192.168.1.2',
      connectPort: 8000,
      connectProtocol: 'udp',
      sourceAddress: '192.168.1.2',
      timeoutSeconds: 1200,
    },
  ]);
  assert.deepEqual(
    config.forwards.map((f) => f.line),
    [5, 6, 7, 8, 9, 11, 12, 13, 14],
  );
  assert.deepEqual(texts(config.globalAllow), ['2:192.168.2.*']);
  assert.deepEqual(texts(config.globalDeny), ['3:192.168.2.1?']);
  assert.deepEqual(texts(config.forwards[4]!.allow), ['10:206.125.69.*']);
  assert.deepEqual(config.globalAllow[0]!.prefixes.map(formatPrefix), ['192.168.2.0/24']);
  assert.deepEqual(texts(config.forwards[8]!.deny), ['15:10.0.0.1']);
  assert.equal(config.logFile, '/var/log/rinetd.log');
  assert.equal(config.logCommon, true);
  assert.equal(config.pidLogFile, '/var/run/rinetd.pid');
});

test('defaults: no logging options, no patterns', () => {
  const config = parse('0.0.0.0 80 10.0.0.1 8080');
  assert.equal(config.logFile, undefined);
  assert.equal(config.pidLogFile, undefined);
  assert.equal(config.logCommon, false);
  assert.deepEqual([config.globalAllow, config.globalDeny, config.forwards[0]!.allow, config.forwards[0]!.deny], [[], [], [], []]);
  assert.equal(config.forwards[0]!.timeoutSeconds, undefined);
  assert.equal(config.forwards[0]!.sourceAddress, undefined);
});

test('addresses: IPv6 bare or bracketed, wildcards, host names kept as written, a lone 0', () => {
  const config = parse(
    ':: 443 [2001:db8::1] 443',
    '[::1] 8080 backend.internal 80',
    'gateway.example. 22 localhost 2222',
    '0 80 10.0.0.1 80',
  );
  assert.deepEqual(
    config.forwards.map((f) => [f.bindAddress, f.connectAddress]),
    [
      ['::', '2001:db8::1'],
      ['::1', 'backend.internal'],
      ['gateway.example.', 'localhost'],
      ['0.0.0.0', '10.0.0.1'],
    ],
  );
});

test('service names: built in, from /etc/services, per protocol', () => {
  const builtIn = parse('0.0.0.0 http 10.0.0.1 https', '0.0.0.0 domain/udp 10.0.0.53 domain/udp', '0.0.0.0 ssh 10.0.0.1 www');
  assert.deepEqual(
    builtIn.forwards.map((f) => [f.bindPort, f.protocol, f.connectPort, f.connectProtocol]),
    [
      [80, 'tcp', 443, 'tcp'],
      [53, 'udp', 53, 'udp'],
      [22, 'tcp', 80, 'tcp'],
    ],
  );
  const services = readServices('myapp\t7000/tcp\tmy-app # ours\nmyapp 7001/udp\nhttp 8081/tcp\n');
  const config = parseRinetdConfig('0.0.0.0 my-app 10.0.0.1 myapp/udp\n0.0.0.0 http 10.0.0.1 80', FILE, services);
  assert.deepEqual(
    config.forwards.map((f) => [f.bindPort, f.connectPort, f.connectProtocol]),
    [
      [7000, 7001, 'udp'],
      [8081, 80, 'tcp'],
    ],
    "the system's /etc/services wins over the built-in table",
  );
});

test('readServices: name/proto and aliases, first entry wins, junk skipped', () => {
  const services = readServices(
    [
      '# Network services, Internet style',
      'ssh\t\t22/tcp\t\t\t\t# SSH Remote Login Protocol',
      'domain\t\t53/tcp',
      'domain\t\t53/udp',
      'http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP',
      'http\t\t8080/tcp',
      'broken\t\tnot-a-port',
      'zero\t\t0/tcp',
      'huge\t\t70000/tcp',
      '',
    ].join('\n'),
  );
  assert.deepEqual(
    [...services],
    [
      ['ssh/tcp', 22],
      ['domain/tcp', 53],
      ['domain/udp', 53],
      ['http/tcp', 80],
      ['www/tcp', 80],
    ],
  );
});

test('options: spaces around the punctuation, no space before the bracket, bracketed src', () => {
  const config = parse(
    '0.0.0.0 53/udp 10.0.0.53 53/udp [ timeout = 30 , src = 10.0.0.9 ]',
    '0.0.0.0 80 10.0.0.1 80[timeout=5]',
    ':: 80 [2001:db8::1] 80 [src=[2001:db8::2]]',
    '0.0.0.0 81 10.0.0.1 80 [src=egress.example]',
  );
  assert.deepEqual(
    config.forwards.map((f) => [f.timeoutSeconds, f.sourceAddress]),
    [
      [30, '10.0.0.9'],
      [5, undefined],
      [undefined, '2001:db8::2'],
      [undefined, 'egress.example'],
    ],
  );
});

test('comments, blank lines, tabs and CRLF line ends', () => {
  const config = parseRinetdConfig(
    '# only a comment\r\n\r\n   \t\r\n\t0.0.0.0\t80\t10.0.0.1\t80\t# trailing\r\n0.0.0.0 81 10.0.0.1 81#no space\r\n  allow 10.*#x\r\n',
    FILE,
  );
  assert.deepEqual(
    config.forwards.map((f) => [f.line, f.bindPort]),
    [
      [4, 80],
      [5, 81],
    ],
  );
  assert.deepEqual(texts(config.forwards[1]!.allow), ['6:10.*']);
});

test('log paths: quoted with spaces, unquoted with #, then a comment', () => {
  const config = parse('logfile "/var/log/my rinetd.log" # quoted', 'pidlogfile /run/rinetd#1.pid   # comment');
  assert.equal(config.logFile, '/var/log/my rinetd.log');
  assert.equal(config.pidLogFile, '/run/rinetd#1.pid');
});

test('allow and deny: global before the first rule, then the latest rule; the first line is not skipped', () => {
  const config = parse(
    'allow 10.*', // line 1: rinetd 0.73 itself would drop this one
    'deny 10.0.0.13',
    'allow 192.168.*',
    '0.0.0.0 80 10.0.0.1 80',
    'allow 10.1.*',
    'deny 10.1.2.3',
    '0.0.0.0 81 10.0.0.1 81',
    '0.0.0.0 82 10.0.0.1 82',
    'deny 10.2.*',
  );
  assert.deepEqual(texts(config.globalAllow), ['1:10.*', '3:192.168.*']);
  assert.deepEqual(texts(config.globalDeny), ['2:10.0.0.13']);
  assert.deepEqual(
    config.forwards.map((f) => [texts(f.allow), texts(f.deny)]),
    [
      [['5:10.1.*'], ['6:10.1.2.3']],
      [[], []],
      [[], ['9:10.2.*']],
    ],
  );
  // Where rinetd 0.73 loses a line: the first rule's first pattern, with no global ones.
  const first = parse('0.0.0.0 80 10.0.0.1 80', 'allow 10.9.*', 'deny 10.9.9.9');
  const [rule] = first.forwards as [RinetdForward];
  assert.deepEqual([texts(rule.allow), texts(rule.deny)], [['2:10.9.*'], ['3:10.9.9.9']]);
  assert.equal(rinetdAdmits(first, rule, '10.8.0.1'), false, 'the first allow line applies');
});

test('every malformed form is reported with its line and a fix', () => {
  assert.deepEqual(
    problemsOf(
      '0.0.0.0 80 10.0.0.1',
      '0.0.0.0 8o 10.0.0.1 80',
      '0.0.0.0 0 10.0.0.1 70000',
      '0.0.0.0 80/sctp 10.0.0.1 /udp',
      '0.0.0.0 htttp 10.0.0.1 80',
      '0.0.0.0 80 10.0.0.1 80 [timeout=0]',
      '0.0.0.0 80 10.0.0.1 80 [timout=5]',
      '0.0.0.0 80 10.0.0.1 80 [src=not!addr]',
      '0.0.0.0 80 10.0.0.1 80 [timeout=5',
      '0.0.0.0 80 10.0.0.1 80 [timeout=5,timeout=6]',
      '0.0.0.0 80 10.0.0.1 80 10.0.0.2',
      'logfle /var/log/rinetd.log',
      'frobnicate',
      'allow 10.0.0.x',
      'allow',
      'deny *.1',
      'allow 999.*',
      '1.2.3.256 80 bad_host! 80',
    ),
    [
      'rinetd.conf:1: forwarding rule has no connect port; write bindaddress bindport connectaddress connectport [options], e.g. 0.0.0.0 80 10.1.1.2 80',
      "rinetd.conf:2: bind port '8o' is neither a port number nor a service name; write e.g. 80 or http",
      "rinetd.conf:3: bind port '0' is out of range; use 1-65535",
      "rinetd.conf:3: connect port '70000' is out of range; use 1-65535",
      "rinetd.conf:4: bind port '80/sctp' has protocol 'sctp'; write /tcp or /udp (lower case)",
      "rinetd.conf:4: connect port '/udp' has no port before '/udp'; write e.g. 53/udp",
      "rinetd.conf:5: bind port 'htttp' is not a known tcp service (did you mean 'http'?); write the port number, or add the service to /etc/services",
      "rinetd.conf:6: option timeout='0' is not a whole number of seconds from 1 to 2147483647; write e.g. timeout=3600",
      "rinetd.conf:7: unknown option 'timout'; did you mean 'timeout'? rinetd's options are src and timeout",
      "rinetd.conf:8: option src 'not!addr' is not an IP address or host name; write e.g. 0.0.0.0, ::, 10.1.1.2 or gateway.example",
      "rinetd.conf:9: options '[timeout=5' are malformed; write options as [src=ADDRESS,timeout=SECONDS]",
      "rinetd.conf:10: option 'timeout' is given twice; keep one",
      "rinetd.conf:11: unexpected '10.0.0.2' after the connect port; options go in brackets, e.g. [src=10.1.1.2,timeout=3600]",
      "rinetd.conf:12: unknown keyword 'logfle'; did you mean 'logfile'?",
      "rinetd.conf:13: unknown keyword 'frobnicate'; a line is one of allow, deny, logfile, pidlogfile, logcommon or a forwarding rule: bindaddress bindport connectaddress connectport [options], e.g. 0.0.0.0 80 10.1.1.2 80",
      "rinetd.conf:14: allow pattern '10.0.0.x' has 'x', which never appears in a client address; use digits, '.', '?' and '*' (IPv6: hex digits and ':'), or a CIDR prefix",
      'rinetd.conf:15: allow needs a pattern; write e.g. allow 192.168.1.* (rinetd does not accept host names here)',
      "rinetd.conf:16: deny pattern '*.1' matches 16777216 separate address blocks, more than the 4096 prefixes allowed; write the ranges you mean as CIDR prefixes instead (e.g. 10.0.0.0/8)",
      "rinetd.conf:17: allow pattern '999.*' matches no address; client addresses are written with parts 0-255 and no leading zeros",
      "rinetd.conf:18: bind address '1.2.3.256' is not a dotted-quad IPv4 address; write four decimal parts 0-255 without leading zeros, e.g. 10.0.0.1 (short, octal and hex forms mean other addresses)",
      "rinetd.conf:18: connect address 'bad_host!' is not an IP address or host name; write e.g. 0.0.0.0, ::, 10.1.1.2 or gateway.example",
    ],
  );
});

test('keyword lines: missing or extra values, duplicates, unknown services with no near name', () => {
  assert.deepEqual(
    problemsOf(
      'logfile /var/log/a.log',
      'logfile /var/log/b.log',
      'pidlogfile',
      'logfile "/var/log/a b',
      'pidlogfile /run/a b',
      'logcommon yes',
      'allow 1.2.3.4 5.6.7.8',
      'Allow 10.*',
      '0.0.0.0 nosuchservice 10.0.0.1 80',
      '0.0.0.0 80 10.0.0.1 80 [] ',
      'fe80::1%eth0 80 [::1 80',
    ),
    [
      "rinetd.conf:2: logfile is given twice (first as '/var/log/a.log'); keep one",
      'rinetd.conf:3: pidlogfile needs a path; write e.g. pidlogfile /run/rinetd.pid',
      `rinetd.conf:4: logfile path '"/var/log/a b' has no closing '"'; end the quoted path with '"'`,
      "rinetd.conf:5: pidlogfile path '/run/a' is followed by 'b'; put a path with spaces in double quotes",
      "rinetd.conf:6: logcommon takes no value; remove 'yes'",
      'rinetd.conf:7: allow takes one pattern, not 2; write e.g. allow 192.168.1.* (rinetd does not accept host names here)',
      "rinetd.conf:8: unknown keyword 'Allow'; did you mean 'allow'?",
      "rinetd.conf:9: bind port 'nosuchservice' is not a known tcp service; write the port number, or add the service to /etc/services",
      "rinetd.conf:10: options '[]' are malformed; write options as [src=ADDRESS,timeout=SECONDS]",
      "rinetd.conf:11: bind address 'fe80::1%eth0' has a zone, which rinetd's syntax has no place for; use an address that needs none",
      "rinetd.conf:11: connect address '[::1' has no closing ']'; write e.g. [::1]",
    ],
  );
});

test("rinetd's own IPv6 wildcard examples are refused with a CIDR to write instead", () => {
  assert.deepEqual(problemsOf('allow fe80:*', 'deny 2001:618:*:e43f'), [
    "rinetd.conf:1: allow pattern 'fe80:*' is an IPv6 wildcard, which has no exact prefix form; write a CIDR prefix instead, e.g. 2001:db8::/32",
    "rinetd.conf:2: deny pattern '2001:618:*:e43f' is an IPv6 wildcard, which has no exact prefix form; write a CIDR prefix instead, e.g. 2001:db8::/32",
  ]);
});

test('patterns after a broken rule are still checked, and never become global', () => {
  assert.deepEqual(problemsOf('0.0.0.0 80 10.0.0.1', 'allow 10.x'), [
    'rinetd.conf:1: forwarding rule has no connect port; write bindaddress bindport connectaddress connectport [options], e.g. 0.0.0.0 80 10.1.1.2 80',
    "rinetd.conf:2: allow pattern '10.x' has 'x', which never appears in a client address; use digits, '.', '?' and '*' (IPv6: hex digits and ':'), or a CIDR prefix",
  ]);
});

const ACCESS_CONFIG = [
  'allow 10.*',
  'allow 192.168.1.*',
  'deny 10.0.0.13',
  '0.0.0.0 80 10.9.9.9 80',
  'allow 10.1.*',
  'allow 192.168.1.1?',
  'deny 10.1.2.3',
  '0.0.0.0 81 10.9.9.9 81',
  '0.0.0.0 82 10.9.9.9 82',
  'deny 192.168.1.5',
].join('\n');

test('rinetdAdmits: global allow, global deny, then the rule allow and deny', () => {
  const config = parseRinetdConfig(ACCESS_CONFIG, FILE);
  const [restricted, open, denying] = config.forwards as [RinetdForward, RinetdForward, RinetdForward];
  const admits = (forward: RinetdForward, client: string) => rinetdAdmits(config, forward, client);
  assert.equal(admits(restricted, '10.1.0.1'), true);
  assert.equal(admits(restricted, '192.168.1.12'), true);
  assert.equal(admits(restricted, '10.2.0.1'), false, 'passes the global allow, not the rule allow');
  assert.equal(admits(restricted, '10.1.2.3'), false, 'rule deny');
  assert.equal(admits(restricted, '10.0.0.13'), false, 'global deny');
  assert.equal(admits(open, '10.2.0.1'), true);
  assert.equal(admits(open, '172.16.0.1'), false, 'no global allow matches');
  assert.equal(admits(open, '10.0.0.13'), false);
  assert.equal(admits(denying, '192.168.1.5'), false);
  assert.equal(admits(denying, '192.168.1.6'), true);
  const unrestricted = parse('0.0.0.0 80 10.0.0.1 80');
  assert.equal(rinetdAdmits(unrestricted, unrestricted.forwards[0]!, '203.0.113.7'), true);
  assert.equal(rinetdAdmits(unrestricted, unrestricted.forwards[0]!, '2001:db8::1'), true);
});

/** What an LPM lookup over the prefixes decides, to hold against the text model. */
function prefixesAdmit(config: RinetdConfig, forward: RinetdForward, client: string): boolean {
  const addr = addressBytes(client);
  const inAny = (patterns: readonly RinetdPattern[]) => patterns.some((p) => p.prefixes.some((q) => samePrefixBits(addr, q.addr, q.len)));
  const scope = (allow: readonly RinetdPattern[], deny: readonly RinetdPattern[]) => (allow.length === 0 || inAny(allow)) && !inAny(deny);
  return scope(config.globalAllow, config.globalDeny) && scope(forward.allow, forward.deny);
}

test('the prefixes decide as the text model does', () => {
  const config = parseRinetdConfig(ACCESS_CONFIG, FILE);
  const next = random(99);
  const near = ['10.0.0.13', '10.1.2.3', '10.1.0.1', '192.168.1.5', '192.168.1.15', '192.168.1.1', '10.2.0.1', '172.16.0.1'];
  const clients = [...near, ...Array.from({ length: 2000 }, () => [10, 192, 168, 1].map((o) => (next() < 0.5 ? o : Math.floor(next() * 256))).join('.'))];
  for (const forward of config.forwards) {
    for (const client of clients) assert.equal(prefixesAdmit(config, forward, client), rinetdAdmits(config, forward, client), `${forward.line} ${client}`);
  }
});

/** Parse, and on failure require the one error type with one-line problems. */
function parseOrExplain(text: string): void {
  try {
    parseRinetdConfig(text, FILE);
  } catch (err) {
    assert.ok(err instanceof BpfredirError, `not a BpfredirError for ${JSON.stringify(text)}: ${String(err)}`);
    assert.equal(err.code, 'ERR_BPFREDIR_CONFIG');
    assert.ok(err.problems.length > 0);
    for (const problem of err.problems) assert.match(problem, /^rinetd\.conf:\d+: [^\x00-\x1f\x7f\u2028\u2029]+$/, JSON.stringify(text));
  }
}

test('cut, mutated and random configs fail only with one-line BpfredirError problems', () => {
  const next = random(4242);
  const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
  const alphabet = '0123456789abcdefxyz.:*?[]=,/#"- \t\n\r\x00\x0b\u2028é';
  const words = ['allow', 'deny', 'logfile', 'pidlogfile', 'logcommon', '0.0.0.0', '::', '[::1]', '80', '53/udp', 'http', '[timeout=5]', '[src=', ']', '#', '"', '10.*', '*'];
  for (let i = 0; i < 1000; i++) {
    const cut = Math.floor(next() * MANUAL_EXAMPLE.length);
    parseOrExplain(MANUAL_EXAMPLE.slice(0, cut));
    parseOrExplain(MANUAL_EXAMPLE.slice(cut));
    const at = Math.floor(next() * MANUAL_EXAMPLE.length);
    parseOrExplain(MANUAL_EXAMPLE.slice(0, at) + pick([...alphabet]) + MANUAL_EXAMPLE.slice(at + 1));
  }
  for (let i = 0; i < 1000; i++) {
    parseOrExplain(Array.from({ length: 1 + Math.floor(next() * 60) }, () => pick([...alphabet])).join(''));
    parseOrExplain(Array.from({ length: 1 + Math.floor(next() * 12) }, () => pick(words) + pick([' ', '\t', '', '\n'])).join(''));
  }
});
