import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ruleReport } from '../../src/admin/rule-report.js';
import type { ConnectionReport, StatusReport } from '../../src/admin/types.js';
import { connsText, formatAge, formatBytes, reloadText, rulesText, sourcesText, statusText } from '../../src/cli/admin-text.js';
import { DEFAULTS, type ListenRule, type SteerRule } from '../../src/config/types.js';
import { parsePrefix, type Prefix } from '../../src/rules/ip.js';

test('formatBytes: bytes exact, larger units to three significant digits', () => {
  const cases: [number, string][] = [
    [0, '0B'],
    [1023, '1023B'],
    [1024, '1KiB'],
    [1536, '1.5KiB'],
    [10 * 1024 + 100, '10.1KiB'],
    [150 * 2 ** 20, '150MiB'],
    [3.25 * 2 ** 30, '3.25GiB'],
    [2 ** 50, '1024TiB'],
  ];
  for (const [bytes, text] of cases) assert.equal(formatBytes(bytes), text, String(bytes));
});

test('formatAge: the two largest units', () => {
  const cases: [number, string][] = [
    [999, '0s'],
    [42_000, '42s'],
    [192_000, '3m12s'],
    [2 * 3_600_000 + 5 * 60_000 + 59_000, '2h05m'],
    [3 * 86_400_000 + 4 * 3_600_000, '3d04h'],
  ];
  for (const [ms, text] of cases) assert.equal(formatAge(ms), text, String(ms));
});

const STATUS: StatusReport = {
  version: '0.1.0',
  pid: 4242,
  startedAt: '2026-12-01T12:00:00.000Z',
  datapath: { name: 'sockmap', reason: 'auto: the kernel has sk_lookup and the sockmap verdict' },
  features: { sk_lookup: true, sockmap_verdict: false },
  threads: 2,
  rules: 3,
  connections: { sockmap: 3, splice: 1, copy: 0 },
  pauses: { now: 1, total: 12 },
  lastReload: { at: '2026-12-01T13:00:00.000Z', ok: false, error: "rule 'web': target: '70000' is not a port" },
};

test('status: one aligned line per field', () => {
  assert.equal(
    statusText(STATUS, Date.parse('2026-12-01T15:12:30.000Z')),
    [
      'version      0.1.0 (pid 4242, up 3h12m)',
      'datapath     sockmap: auto: the kernel has sk_lookup and the sockmap verdict',
      'kernel       sk_lookup yes, sockmap_verdict no',
      'threads      2',
      'rules        3',
      'sources      any',
      'connections  4 (sockmap 3, splice 1, copy 0)',
      'pauses       1 now, 12 since start',
      "last reload  refused at 2026-12-01T13:00:00.000Z: rule 'web': target: '70000' is not a port",
    ].join('\n'),
  );
  const fresh = statusText({ ...STATUS, lastReload: null, connections: {} }, Date.parse(STATUS.startedAt)).split('\n');
  assert.equal(fresh[6], 'connections  0');
  assert.equal(fresh[8], 'last reload  never');
  const listed = statusText({ ...STATUS, sources: { allow: [], deny: ['192.0.2.0/24'] } }).split('\n');
  assert.equal(listed[5], 'sources      deny 192.0.2.0/24 (every rule, on top of its own)');
  const targets = (t: { total: number; ejected: number; down: number }) => statusText({ ...STATUS, targets: t }).split('\n')[5];
  assert.equal(targets({ total: 3, ejected: 1, down: 1 }), 'targets      3 (1 ejected after failed connects, 1 down by health checks)');
  assert.equal(targets({ total: 2, ejected: 0, down: 0 }), 'targets      2, all taking connections');
  assert.match(statusText({ ...STATUS, lastReload: { at: STATUS.startedAt, ok: true } }), /^last reload {2}ok at 2026-12-01T12:00:00\.000Z$/m);
});

const common = { protocol: 'tcp' as const, connectTimeoutMs: DEFAULTS.connectTimeoutMs, idleTimeoutMs: 0, source: 'test' };
const web: ListenRule = { ...common, name: 'web', kind: 'listen', listen: { host: '0.0.0.0', port: 8080 }, targets: [{ host: '10.0.0.5', port: 80 }], balance: 'failover' };
const anyip: SteerRule = {
  ...common,
  name: 'anyip',
  kind: 'steer',
  destinations: ['192.0.2.0/24', '2001:db8::/64'].map((text) => parsePrefix(text) as Prefix),
  ports: [{ lo: 8000, hi: 8999 }, { lo: 9443, hi: 9443 }],
  targets: [{ host: '::1', port: 9000 }],
  balance: 'failover',
};

test('ruleReport: a listen rule shows its address, a steering rule what sk_lookup takes', () => {
  assert.deepEqual(ruleReport(web, 1, '0.0.0.0:8080'), {
    name: 'web', ruleId: 1, kind: 'listen', listen: '0.0.0.0:8080', target: '10.0.0.5:80', address: '0.0.0.0:8080',
  });
  assert.deepEqual(ruleReport(anyip, 2, '[::]:41234'), {
    name: 'anyip', ruleId: 2, kind: 'steer', match: { destinations: ['192.0.2.0/24', '2001:db8::/64'], ports: ['8000-8999', '9443'] },
    target: '[::1]:9000', address: '[::]:41234',
  });
});

test('rules: a table with a header, numbers on the right', () => {
  const rules = [ruleReport(web, 1, '0.0.0.0:8080'), ruleReport(anyip, 12, '[::]:41234')];
  assert.equal(
    rulesText(rules),
    [
      'RULE   ID  KIND    MATCH                                            SOURCES  TARGET       SOCKET',
      'web     1  listen  0.0.0.0:8080                                     any      10.0.0.5:80  0.0.0.0:8080',
      'anyip  12  steer   192.0.2.0/24,2001:db8::/64 ports 8000-8999,9443  any      [::1]:9000   [::]:41234',
    ].join('\n'),
  );
  assert.equal(rulesText([]), 'no rules');
});

test("rules: a rule's own allow and deny lists", () => {
  const acl = { allow: ['10.0.0.0/8', '2001:db8::/32'].map((t) => parsePrefix(t) as Prefix), deny: [parsePrefix('10.0.5.0/24') as Prefix] };
  const report = ruleReport({ ...web, acl }, 1, '0.0.0.0:8080');
  assert.deepEqual(report.sources, { allow: ['10.0.0.0/8', '2001:db8::/32'], deny: ['10.0.5.0/24'] });
  assert.equal(sourcesText(report.sources), 'allow 10.0.0.0/8,2001:db8::/32; deny 10.0.5.0/24');
  assert.equal(sourcesText({ allow: [], deny: ['192.0.2.1/32'] }), 'deny 192.0.2.1/32');
});

test('rules: an accept_proxy rule names its load balancers', () => {
  const report = ruleReport({ ...web, acceptProxy: [parsePrefix('10.0.1.10') as Prefix] }, 1, '0.0.0.0:8080');
  assert.deepEqual(report.acceptProxy, ['10.0.1.10/32']);
  assert.match(rulesText([report]), /any; PROXY from 10\.0\.1\.10\/32/);
});

test('conns: a table with sizes and ages people read', () => {
  const conn: ConnectionReport = {
    rule: 'web', client: '127.0.0.1:50312', originalDestination: '127.0.0.1:8080', upstream: '10.0.0.5:80',
    datapath: 'sockmap', bytesToUpstream: 1536, bytesToClient: 150 * 2 ** 20, ageMs: 192_000,
  };
  const v6 = { ...conn, rule: 'anyip', client: '[2001:db8::7]:40000', originalDestination: '[2001:db8::1]:8443', upstream: '[::1]:9000', datapath: 'copy', bytesToUpstream: 0, bytesToClient: 12, ageMs: 500 };
  assert.equal(
    connsText([conn, v6]),
    [
      'RULE   CLIENT               DESTINATION         UPSTREAM     DATAPATH  TO UPSTREAM  TO CLIENT    AGE',
      'web    127.0.0.1:50312      127.0.0.1:8080      10.0.0.5:80  sockmap        1.5KiB     150MiB  3m12s',
      'anyip  [2001:db8::7]:40000  [2001:db8::1]:8443  [::1]:9000   copy               0B        12B     0s',
    ].join('\n'),
  );
  assert.equal(connsText([]), 'no open connections');
});

test('reload: what changed, one line each', () => {
  assert.equal(reloadText([]), 'reloaded: no changes');
  assert.equal(reloadText(["rule 'web': target 10.0.0.5:80 → 10.0.0.6:80"]), "reloaded: 1 change\n  rule 'web': target 10.0.0.5:80 → 10.0.0.6:80");
  assert.equal(reloadText(['a', 'b']), 'reloaded: 2 changes\n  a\n  b');
});
