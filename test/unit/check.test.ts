import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseProcNetTcp } from '../../src/config/proc-listeners.js';
import { configFromObject } from '../../src/config/load.js';
import { checkReport } from '../../src/cli/check-report.js';
import { RuleIds } from '../../src/rules/ids.js';

const PROC_TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
`;
const PROC_TCP6 = `  sl  local_address                         remote_address                        st
   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000
   1: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000
`;

test('/proc/net/tcp{,6}: only LISTEN sockets, addresses decoded', () => {
  assert.deepEqual(
    [...parseProcNetTcp(PROC_TCP, 4), ...parseProcNetTcp(PROC_TCP6, 6)].map((l) => l.text),
    ['0.0.0.0:22', '127.0.0.1:8080', '[::1]:80', '[::]:443'],
  );
});

test('check: summary of bindings per rule and warnings for ports taken from listeners', () => {
  const config = configFromObject(
    {
      rules: [
        { name: 'ssh-grab', destination: '0.0.0.0/0', ports: '20-23', target: '127.0.0.1:9000' },
        { name: 'loop', destination: ['127.0.0.1', '::1'], ports: ['80', '8080'], target: '[::1]:9000' },
        { name: 'v6only', destination: '2001:db8::/32', ports: 'any', target: '[::1]:9000' },
        { name: 'web', listen: '127.0.0.1:8081', target: '127.0.0.1:9000', idle_timeout: '90s' },
        { name: 'shadowed', listen: '[::1]:8080', target: '127.0.0.1:9000' },
      ],
    },
    'cfg',
  );
  const ids = new RuleIds().assign(config.rules.map((r) => r.name));
  const listeners = [...parseProcNetTcp(PROC_TCP, 4), ...parseProcNetTcp(PROC_TCP6, 6)];
  const report = checkReport(config, ids, listeners);
  assert.deepEqual(report.lines, [
    'cfg: 5 rules, 6 bindings, datapath auto, threads auto, budget 4MiB, sndbuf 4MiB',
    "rule 'ssh-grab' (id 1): steer tcp 0.0.0.0/0 ports 20-23 → 127.0.0.1:9000 (connect 5s, idle never)",
    '  1 binding:',
    '    0.0.0.0/0 port 20-23 (20/14)',
    "rule 'loop' (id 2): steer tcp 127.0.0.1/32, ::1/128 ports 80, 8080 → [::1]:9000 (connect 5s, idle never)",
    '  4 bindings:',
    '    127.0.0.1/32 port 80 (80/16)',
    '    127.0.0.1/32 port 8080 (8080/16)',
    '    ::1/128 port 80 (80/16)',
    '    ::1/128 port 8080 (8080/16)',
    "rule 'v6only' (id 3): steer tcp 2001:db8::/32 ports any → [::1]:9000 (connect 5s, idle never)",
    '  1 binding:',
    '    2001:db8::/32 port any (0/0)',
    "rule 'web' (id 4): listen 127.0.0.1:8081 → 127.0.0.1:9000 (connect 5s, idle 90s)",
    "rule 'shadowed' (id 5): listen [::1]:8080 → 127.0.0.1:9000 (connect 5s, idle never)",
  ]);
  const where = 'sk_lookup runs first, so that listener stops getting those connections';
  assert.deepEqual(report.warnings, [
    `cfg: warning: rule 'ssh-grab' steers 0.0.0.0/0 port 22, where 0.0.0.0:22 already listens; ${where}`,
    `cfg: warning: rule 'loop' steers 127.0.0.1/32 port 8080, where 127.0.0.1:8080 already listens; ${where}`,
    `cfg: warning: rule 'loop' steers ::1/128 port 80, where [::1]:80 already listens; ${where}`,
    `cfg: warning: rule 'v6only' steers 2001:db8::/32 port 443, where [::]:443 already listens; ${where}`,
    `cfg: warning: rule 'loop' steers ::1/128 port 8080, where rule 'shadowed' already listens; ${where}`,
    `cfg: warning: rule 'v6only' steers every port, the well-known ones too (${WELL_KNOWN}): ${CUT_OFF}; list only the ports it should take`,
  ]);
});

const WELL_KNOWN = '22 ssh, 25 smtp, 53 dns, 80 http, 110 pop3, 143 imap, 179 bgp, 443 https, 2379-2380 etcd, 3306 mysql, 5432 postgresql, 6443 kube-apiserver, 10250 kubelet';
const CUT_OFF = "services there, running now or started later, get no connections to the rule's destinations (sk_lookup runs first)";

test('check: steering over well-known ports warns once per rule, even with nothing listening', () => {
  const config = configFromObject(
    {
      rules: [
        { name: 'ssh', destination: '192.0.2.0/24', ports: '22', target: '127.0.0.1:9000' },
        { name: 'wide', destination: '192.0.2.0/24', ports: ['1-100', '2380-6443'], target: '127.0.0.1:9000' },
        { name: 'all', destination: '198.51.100.0/24', ports: '1-65535', target: '127.0.0.1:9000' },
        { name: 'quiet', destination: '192.0.2.0/24', ports: '8000-8999', target: '127.0.0.1:9000' },
      ],
    },
    'cfg',
  );
  const warnings = checkReport(config, new RuleIds().assign(config.rules.map((r) => r.name)), []).warnings;
  assert.deepEqual(warnings, [
    `cfg: warning: rule 'ssh' steers well-known port 22 ssh: ${CUT_OFF}; leave it out of ports unless that is the point`,
    `cfg: warning: rule 'wide' steers well-known ports 22 ssh, 25 smtp, 53 dns, 80 http, 2379-2380 etcd, 3306 mysql, 5432 postgresql, 6443 kube-apiserver: ${CUT_OFF}; leave them out of ports unless that is the point`,
    `cfg: warning: rule 'all' steers every port, the well-known ones too (${WELL_KNOWN}): ${CUT_OFF}; list only the ports it should take`,
  ]);
});
