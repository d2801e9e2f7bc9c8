import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAccessLine, rinetdResult, rinetdTime, ruleEnds } from '../../src/access-log.js';
import { parseRinetdConfig } from '../../src/compat/rinetd.js';
import { rinetdRuleName, rinetdToConfig } from '../../src/compat/rinetd-config.js';
import { effectiveLogLevel } from '../../src/cli/common-options.js';
import { configFromObject } from '../../src/config/load.js';
import { formatPrefix } from '../../src/rules/ip.js';
import { syslogDatagram } from '../../src/syslog.js';
import type { EngineEvent } from '../../src/native/index.js';

const at = new Date(2026, 11, 3, 9, 5, 7); // local time, as rinetd writes it
const rule = configFromObject({ rules: [{ name: 'web', listen: '206.125.69.81:80', target: 'inside.example:80' }] }, 'test').rules[0]!;
const event = (over: Partial<EngineEvent>): EngineEvent => ({ type: 'connected', ruleId: 1, connId: 1, client: '206.125.69.5:40000', originalDst: '206.125.69.81:80', ...over });

test("rinetd's time: day/Mon/year:hh:mm:ss and a space, local time; the zone as +hhmm", () => {
  const { time, zone } = rinetdTime(at);
  assert.equal(time, '03/Dec/2026:09:05:07 ');
  assert.match(zone, /^[+-]\d{4}$/);
});

test('result words for every event rinetd logs', () => {
  assert.equal(rinetdResult(event({ type: 'connected' })), 'opened');
  assert.equal(rinetdResult(event({ type: 'closed', closedFirst: 'client' })), 'done-remote-closed');
  assert.equal(rinetdResult(event({ type: 'closed', closedFirst: 'upstream' })), 'done-local-closed');
  assert.equal(rinetdResult(event({ type: 'connect_failed' })), 'local-connect-failed -');
  assert.equal(rinetdResult(event({ type: 'denied', reason: 'denied' })), 'denied');
  assert.equal(rinetdResult(event({ type: 'denied', reason: 'not_allowed' })), 'not-allowed');
  assert.equal(rinetdResult(event({ type: 'fallback' })), undefined);
});

test('the tab-separated line: the config as written (the name, not its address), bytes in and out', () => {
  const closed = event({ type: 'closed', closedFirst: 'client', bytesToUpstream: 120, bytesToClient: 4500 });
  const ends = ruleEnds({ ...rule, written: { listenHost: '206.125.69.81', targetHosts: ['inside.example'] }, targets: [{ host: '10.1.1.2', port: 80 }] }, closed);
  assert.equal(formatAccessLine('rinetd', closed, ends, at), '03/Dec/2026:09:05:07 \t206.125.69.5\t206.125.69.81\t80\tinside.example\t80\t120\t4500\tdone-remote-closed\n');
});

test('the common log format line: bytes out in the size field, bytes in last; IPv6 clients without brackets', () => {
  const closed = event({ type: 'closed', client: '[2001:db8::5]:40000', bytesToUpstream: 7, bytesToClient: 9 });
  const line = formatAccessLine('common', closed, ruleEnds(rule, closed), at)!;
  assert.match(line, /^2001:db8::5 - - \[03\/Dec\/2026:09:05:07 [+-]\d{4}\] "GET \/rinetd-services\/206\.125\.69\.81\/80\/inside\.example\/80\/done-remote-closed HTTP\/1\.0" 200 9 - - - 7\n$/);
});

test('a steering rule logs the destination the client dialled as its listening end', () => {
  const steer = configFromObject({ rules: [{ name: 's', destination: '192.0.2.0/24', ports: 'any', target: '127.0.0.1:9000' }] }, 'test').rules[0]!;
  assert.deepEqual(ruleEnds(steer, event({ originalDst: '192.0.2.9:443' })), { fromHost: '192.0.2.9', fromPort: 443, toHost: '127.0.0.1', toPort: 9000 });
});

test('a rinetd.conf becomes listen rules named by what they bind, lists as prefixes, the log and pid files', () => {
  const rinetd = parseRinetdConfig(
    ['allow 192.168.2.*', 'deny 192.168.2.1?', '0.0.0.0 80 192.168.1.2 80', 'allow 10.*', '::1 8080 127.0.0.1 3000 [src=127.0.0.1]', 'logfile /var/log/rinetd.log', 'logcommon', 'pidlogfile /run/rinetd.pid'].join('\n'),
    'rinetd.conf',
  );
  const config = rinetdToConfig(rinetd);
  assert.deepEqual(config.acl?.allow.map(formatPrefix), ['192.168.2.0/24']);
  assert.deepEqual(config.acl?.deny.map(formatPrefix), ['192.168.2.10/31', '192.168.2.12/30', '192.168.2.16/30']);
  assert.deepEqual(config.rules.map((r) => r.name), ['0.0.0.0_80', '__1_8080']);
  assert.deepEqual(config.rules[0]!.acl?.allow.map(formatPrefix), ['10.0.0.0/8']);
  assert.equal(config.rules[1]!.sourceAddress, '127.0.0.1');
  assert.deepEqual(config.accessLog, { path: '/var/log/rinetd.log', format: 'common' });
  assert.equal(config.pidFile, '/run/rinetd.pid');
  assert.equal(rinetdRuleName({ bindAddress: 'Fe80::1', bindPort: 22 }), 'fe80__1_22');
});

test('a rinetd.conf that validation refuses names its line; UDP lines are refused for now', () => {
  assert.throws(() => rinetdToConfig(parseRinetdConfig('0.0.0.0 80 10.0.0.1 80\n0.0.0.0 80 10.0.0.2 80\n', 'r.conf')), /r\.conf:2: rule '0\.0\.0\.0_80': name is already used/m);
  assert.throws(() => rinetdToConfig(parseRinetdConfig('0.0.0.0 53/udp 10.0.0.1 53/udp\n', 'r.conf')), /r\.conf:1: UDP forwarding \(udp\/udp\) is not supported yet/);
  assert.throws(() => rinetdToConfig(parseRinetdConfig('logfile /tmp/x\n', 'r.conf')), /no forwarding rules/);
});

test("syslog datagrams: facility daemon, the level's severity, a BSD timestamp and the tag", () => {
  assert.equal(syslogDatagram('info', 'fwd', 'connected rule=web', at, 42).toString(), '<30>Dec  3 09:05:07 fwd[42]: connected rule=web');
  assert.match(syslogDatagram('error', 'fwd', 'x', at, 42).toString(), /^<27>/);
  assert.match(syslogDatagram('warn', 'fwd', 'x', at, 42).toString(), /^<28>/);
});

test("redir's --loglevel words map onto bpfredir's three levels", () => {
  const level = (loglevel?: 'none' | 'err' | 'notice' | 'info' | 'debug') => effectiveLogLevel({ 'log-level': 'info', ...(loglevel && { loglevel }) });
  assert.deepEqual([level('none'), level('err'), level('notice'), level('info'), level('debug'), level()], ['error', 'error', 'warn', 'info', 'info', 'info']);
});

test('a rule without targets (target: original) logs where the connection went', () => {
  const config = configFromObject({ rules: [{ name: 'web', intercept: '10.2.0.0/16', ports: 80, interfaces: ['eth1'], target: 'original' }] }, 'cfg');
  const event = { type: 'connected', ruleId: 1, connId: 1, client: '10.1.0.2:40000', originalDst: '10.2.0.5:80', upstream: '10.2.0.5:80' } as EngineEvent;
  assert.deepEqual(ruleEnds(config.rules[0]!, event), { fromHost: '10.2.0.5', fromPort: 80, toHost: '10.2.0.5', toPort: 80 });
});
