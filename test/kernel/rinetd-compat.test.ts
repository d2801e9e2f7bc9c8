/**
 * rinetd's own configuration, run by rinetd 0.73 (Debian's) and by
 * `bpfredir run --rinetd-config` in turn, in the same namespaces, with the
 * same clients: the same connections get through (checksummed), the same are
 * refused, and the log files agree field by field (time aside), in both of
 * rinetd's formats. The rules are the examples of rinetd's manual: a virtual
 * interface address to an inside host, all addresses, a source address
 * option, global and per-rule allow/deny patterns. Every address here exists
 * only inside the test's namespaces.
 */
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startBpfredir } from '../helpers/bpfredir.js';
import { slow } from '../helpers/emulation.js';
import { bpfSkipReason, createNetns, linkNetns, type Netns } from '../helpers/netns.js';
import { runClient, startServer, type TrafficServer } from '../helpers/traffic.js';

const skip = bpfSkipReason();
const ip = (args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// The manual's addresses, local to the proxy's namespace.
const VIRTUAL = '206.125.69.81';
const INSIDE = '10.1.1.2';
const INSIDE_B = '10.1.1.127';
const SECOND = '192.168.1.1';
// Clients in the other namespace: allowed everywhere; denied by rule 1's pattern; outside the global allow.
const [ALLOWED, DENIED_ON_1, STRANGER] = ['206.125.69.5', '206.125.69.12', '192.0.2.7'];

const config = (logfile: string, common: boolean) =>
  [
    '# After the examples of rinetd(8).',
    'allow 206.125.69.*',
    '',
    `${VIRTUAL} 80  ${INSIDE} 80`,
    'deny 206.125.69.1?',
    `0.0.0.0 8080 ${INSIDE} 80`,
    `${SECOND} 80  ${INSIDE_B} 80  [src=${INSIDE}]`,
    '',
    `logfile ${logfile}`,
    ...(common ? ['logcommon'] : []),
    '',
  ].join('\n');

/** client address → (host, port) it dials; the matrix both servers get. */
const MATRIX: [from: string, host: string, port: number][] = [
  [ALLOWED, VIRTUAL, 80],
  [DENIED_ON_1, VIRTUAL, 80],
  [STRANGER, VIRTUAL, 80],
  [ALLOWED, VIRTUAL, 8080],
  [DENIED_ON_1, VIRTUAL, 8080],
  [STRANGER, VIRTUAL, 8080],
  [ALLOWED, SECOND, 80],
];

describe('rinetd compatibility: the same config, the same outcomes, the same log lines', { skip }, () => {
  let ns: Netns;
  let outside: Netns;
  let dir: string;
  const servers: TrafficServer[] = [];

  before(async () => {
    ns = createNetns('rinetd');
    outside = createNetns('rinetd-out');
    linkNetns(ns, outside, VIRTUAL, ALLOWED);
    for (const addr of [DENIED_ON_1, `${STRANGER}/32`]) ip(['-n', outside.name, 'addr', 'add', addr.includes('/') ? addr : `${addr}/24`, 'dev', 'veth0']);
    ip(['-n', ns.name, 'route', 'add', `${STRANGER}/32`, 'dev', 'veth0']);
    ip(['-n', outside.name, 'route', 'add', `${SECOND}/32`, 'via', VIRTUAL]);
    for (const addr of [INSIDE, INSIDE_B, SECOND]) ip(['-n', ns.name, 'addr', 'add', `${addr}/32`, 'dev', 'lo']);
    for (const host of [INSIDE, INSIDE_B]) servers.push(await startServer(ns, { mode: 'echo', host, port: 80 }));
    dir = mkdtempSync(join(tmpdir(), 'bpfredir-rinetd-'));
  });

  after(async () => {
    for (const s of servers) await s.stop();
    ns?.destroy();
    outside?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Each client of the matrix in turn: did its bytes come back intact? */
  async function runMatrix(): Promise<boolean[]> {
    // The link and its neighbours first: a closed port answers once both are up.
    for (let i = 0; i < 50; i++) {
      const probe = await runClient(outside, { host: VIRTUAL, port: 9, localAddress: ALLOWED, timeoutMs: slow(1000) });
      if (probe.error === 'ECONNREFUSED') break;
    }
    const admitted: boolean[] = [];
    for (const [from, host, port] of MATRIX) {
      // The client closes only after its echo is back: rinetd ends a connection at the client's FIN (no half-close).
      const client = await runClient(outside, { host, port, bytes: 5000, keepOpen: true, expect: 5000, localAddress: from, timeoutMs: slow(5000) });
      admitted.push(client.error === undefined && client.recvBytes === 5000 && client.recvSha === client.sentSha);
    }
    return admitted;
  }

  async function untilListening(ports: number[], proc: ChildProcess): Promise<void> {
    for (let i = 0; i < 200; i++) {
      const ss = ns.run('ss', ['-Hltn']);
      if (ports.every((p) => new RegExp(`:${p}\\s`).test(ss))) return;
      if (proc.exitCode !== null) throw new Error(`rinetd exited ${proc.exitCode}`);
      await sleep(25);
    }
    throw new Error('rinetd is not listening');
  }

  async function withRinetd(common: boolean): Promise<{ admitted: boolean[]; log: string[] }> {
    const log = join(dir, `rinetd-${common ? 'common' : 'tab'}.log`);
    const conf = join(dir, `rinetd-${common}.conf`);
    writeFileSync(conf, config(log, common));
    const rinetd = ns.exec('rinetd', ['-f', '-c', conf], { stdio: 'ignore' });
    try {
      await untilListening([80, 8080], rinetd);
      const admitted = await runMatrix();
      await sleep(slow(200)); // its last close
      return { admitted, log: readFileSync(log, 'utf8').trim().split('\n') };
    } finally {
      rinetd.kill('SIGTERM');
      await new Promise((r) => (rinetd.exitCode !== null ? r(null) : rinetd.once('exit', r)));
    }
  }

  async function withBpfredir(common: boolean): Promise<{ admitted: boolean[]; log: string[] }> {
    const log = join(dir, `bpfredir-${common ? 'common' : 'tab'}.log`);
    const conf = join(dir, `bpfredir-${common}.conf`);
    writeFileSync(conf, config(log, common));
    const proxy = await startBpfredir(ns, ['run', '--rinetd-config', conf]);
    let admitted: boolean[];
    try {
      admitted = await runMatrix();
      const closed = () => proxy.logs.filter((l) => l.msg === 'closed').length;
      for (let i = 0; i < 100 && closed() < admitted.filter(Boolean).length; i++) await sleep(slow(20));
    } finally {
      assert.equal(await proxy.stop(), 0);
    }
    return { admitted, log: readFileSync(log, 'utf8').trim().split('\n') };
  }

  /**
   * A log line as comparable fields: the time dropped (its form checked), and
   * rinetd 0.73's two slips undone, which bpfredir does not copy: its result
   * table is one entry short of its codes, so a client outside the allow list
   * is logged "denied" and one a deny pattern matched "(null)" (bpfredir:
   * not-allowed and denied, as the table means); logcommon puts two spaces
   * before the zone (bpfredir: one, as the common log format has it).
   */
  function fields(line: string, common: boolean, rinetd: boolean): { key: string; bytesOut: number } {
    const word = (w: string) => (!rinetd ? w : w === 'denied' ? 'not-allowed' : w === '(null)' ? 'denied' : w);
    if (common) {
      const m = /^(\S+) - - \[(\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d)( {1,2})[+-]\d{4}\] "GET \/rinetd-services\/(.*)\/([^/ ]+) HTTP\/1\.0" 200 (\d+) - - - (\d+)$/.exec(line);
      assert.ok(m, `common log line: ${line}`);
      assert.equal(m[3], rinetd ? '  ' : ' ');
      return { key: `${m[1]} ${m[4]} ${word(m[5]!)} in ${m[7]}`, bytesOut: Number(m[6]) };
    }
    const parts = line.split('\t');
    assert.equal(parts.length, 9, `nine tab-separated fields: ${JSON.stringify(line)}`);
    assert.match(parts[0]!, /^\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d $/);
    return { key: [...parts.slice(1, 7), word(parts[8]!)].join('\t'), bytesOut: Number(parts[7]) };
  }

  /** Lines in a stable order; bytes out apart, since rinetd may log a close before its last write. */
  function compare(ours: string[], theirs: string[], common: boolean): void {
    const sort = (lines: string[], rinetd: boolean) => lines.map((l) => fields(l, common, rinetd)).sort((a, b) => a.key.localeCompare(b.key));
    const [mine, rinetds] = [sort(ours, false), sort(theirs, true)];
    assert.deepEqual(mine.map((f) => f.key), rinetds.map((f) => f.key));
    mine.forEach((f, i) => {
      const done = f.key.includes('done-');
      assert.equal(f.bytesOut, done ? 5000 : 0, `bytes to the client: ${f.key}`);
      assert.ok(rinetds[i]!.bytesOut <= f.bytesOut, `rinetd's count never exceeds them: ${f.key}`);
    });
  }

  for (const common of [false, true]) {
    test(`${common ? 'logcommon' : 'the tab-separated log'}: outcomes and lines equal rinetd's`, { timeout: slow(120_000) }, async () => {
      const theirs = await withRinetd(common);
      const proxy = await withBpfredir(common);
      if (process.env.BPFREDIR_TEST_KEEP) process.stderr.write(`rinetd:\n${theirs.log.join('\n')}\nbpfredir:\n${proxy.log.join('\n')}\n`);
      assert.deepEqual(theirs.admitted, [true, false, false, true, true, false, true], 'rinetd itself admits what its manual says');
      assert.deepEqual(proxy.admitted, theirs.admitted, 'the same clients get through');
      compare(proxy.log, theirs.log, common);
    });
  }
});
