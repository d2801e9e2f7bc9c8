/**
 * Source allow/deny lists enforced by sk_lookup, from another namespace over a
 * veth: IPv4, IPv6 and IPv4-mapped clients, on listen rules (a specific address,
 * 0.0.0.0 and a dual-stack [::]) and on a steering rule; the global lists on
 * top of a rule's; a denied client refused at once (a reset, not a hang) and
 * counted per rule; a reload that changes a list applies to new connections
 * and leaves an open one alone.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { bpfMapsOf, ruleStats } from '../helpers/bpf-maps.js';
import { startBpfredir, type BpfredirProcess, type LogLine } from '../helpers/bpfredir.js';
import { slow } from '../helpers/emulation.js';
import { addLocalRoute, bpfSkipReason, createNetns, linkNetns, type Netns } from '../helpers/netns.js';
import { runClient, startServer, type ClientReport, type TrafficServer } from '../helpers/traffic.js';

const skip = bpfSkipReason();
const ip = (args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });

// Clients: .2 is allowed everywhere, .3 is denied by the rules' own lists, .4 by the global list.
const PROXY4 = '10.99.5.1';
const PROXY6 = 'fd00:99:5::1';
const [GOOD4, BAD4, GLOBAL_BAD4] = ['10.99.5.2', '10.99.5.3', '10.99.5.4'];
const [GOOD6, BAD6] = ['fd00:99:5::2', 'fd00:99:5::3'];
const STEERED = '10.99.6.7'; // routed to the proxy's namespace, where nothing listens on it

describe('allow and deny lists, in the kernel', { skip }, () => {
  let ns: Netns;
  let outside: Netns;
  let dir: string;
  let configPath: string;
  let proxy: BpfredirProcess;
  let echo: TrafficServer;
  const ids = { specific: 1, any4: 2, dual: 3, open: 4, steered: 5 }; // rule order, from 1

  const config = (extra: { openDeny?: string[] } = {}) => ({
    deny: [GLOBAL_BAD4],
    rules: [
      { name: 'specific', listen: `${PROXY4}:7001`, target: `127.0.0.1:${echo.port}`, deny: `${BAD4}/32` },
      // Written IPv4-mapped: the same prefix as 10.99.5.3/32.
      { name: 'any4', listen: `0.0.0.0:7002`, target: `127.0.0.1:${echo.port}`, deny: `::ffff:${BAD4}/128` },
      { name: 'dual', listen: '[::]:7003', target: `127.0.0.1:${echo.port}`, allow: [GOOD6, '10.99.5.0/30'] },
      { name: 'open', listen: '0.0.0.0:7004', target: `127.0.0.1:${echo.port}`, ...(extra.openDeny && { deny: extra.openDeny }) },
      { name: 'steered', destination: '10.99.6.0/24', ports: 80, target: `127.0.0.1:${echo.port}`, allow: `${GOOD4}/32` },
    ],
  });

  const connect = (from: string, host: string, port: number, bytes = 64 << 10): Promise<ClientReport> =>
    runClient(outside, { host, port, bytes, localAddress: from, timeoutMs: slow(5000) });

  async function admitted(from: string, host: string, port: number): Promise<void> {
    const client = await connect(from, host, port);
    assert.equal(client.error, undefined, `${from} → ${host}:${port}`);
    assert.equal(client.recvSha, client.sentSha, `${from} → ${host}:${port}: every byte back`);
  }

  async function refused(from: string, host: string, port: number): Promise<void> {
    const client = await connect(from, host, port);
    assert.equal(client.error, 'ECONNREFUSED', `${from} → ${host}:${port} must be refused`);
    assert.ok(client.ms < slow(1000), `refused at once, not after ${client.ms} ms`);
  }

  const denied = (rule: number) => ruleStats(bpfMapsOf(proxy.pid).get('rule_stats')!, rule).denied;

  before(async () => {
    ns = createNetns('acl');
    outside = createNetns('acl-out');
    linkNetns(ns, outside, PROXY4, GOOD4);
    for (const addr of [`${BAD4}/24`, `${GLOBAL_BAD4}/24`]) ip(['-n', outside.name, 'addr', 'add', addr, 'dev', 'veth0']);
    ip(['-n', ns.name, 'addr', 'add', `${PROXY6}/64`, 'dev', 'veth0', 'nodad']);
    for (const addr of [GOOD6, BAD6]) ip(['-n', outside.name, 'addr', 'add', `${addr}/64`, 'dev', 'veth0', 'nodad']);
    ip(['-n', outside.name, 'route', 'add', '10.99.6.0/24', 'via', PROXY4]);
    addLocalRoute(ns, '10.99.6.0/24');
    echo = await startServer(ns, { mode: 'echo', host: '127.0.0.1' });
    dir = mkdtempSync(join(tmpdir(), 'bpfredir-acl-'));
    configPath = join(dir, 'acl.json');
    writeFileSync(configPath, JSON.stringify(config()));
    proxy = await startBpfredir(ns, ['run', '--config', configPath]);
  });

  after(async () => {
    await proxy?.stop();
    await echo?.stop();
    ns?.destroy();
    outside?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a listen rule on one address: its deny list refuses before accept, others get through intact', async () => {
    await admitted(GOOD4, PROXY4, 7001);
    await refused(BAD4, PROXY4, 7001);
    assert.equal(denied(ids.specific), 1n);
    // Reported by the kernel, one log line per refusal, saying who and why.
    const line = await proxy.waitForLog((l) => l.msg === 'denied' && l.rule === 'specific');
    assert.match(String(line.client), new RegExp(`^${BAD4.replace(/\./g, '\\.')}:\\d+$`));
    assert.equal(line.dst, `${PROXY4}:7001`);
    assert.equal(line.reason, 'denied');
  });

  test('0.0.0.0 and an IPv4-mapped deny: the IPv4 client and its mapped form are both refused', async () => {
    await admitted(GOOD4, PROXY4, 7002);
    await refused(BAD4, PROXY4, 7002);
    // An IPv6 socket connecting to a mapped address: IPv4 on the wire, the same verdict.
    await refused(`::ffff:${BAD4}`, `::ffff:${PROXY4}`, 7002);
    assert.equal(denied(ids.any4), 2n);
  });

  test('a dual-stack [::] listener with an allow list: IPv6 and IPv4 clients outside it are refused', async () => {
    await admitted(GOOD6, PROXY6, 7003);
    await admitted(GOOD4, PROXY4, 7003);
    await refused(BAD6, PROXY6, 7003);
    await refused(GLOBAL_BAD4, PROXY4, 7003); // inside 10.99.5.0/30, but the global deny wins
    const outsideAllow = '10.99.5.5';
    ip(['-n', outside.name, 'addr', 'add', `${outsideAllow}/24`, 'dev', 'veth0']);
    await refused(outsideAllow, PROXY4, 7003);
    assert.equal(denied(ids.dual), 3n);
    const line = await proxy.waitForLog((l) => l.msg === 'denied' && l.rule === 'dual' && String(l.client).startsWith(`[${BAD6}]:`));
    assert.equal(line.reason, 'not_allowed');
    assert.equal(line.dst, `[${PROXY6}]:7003`);
  });

  test('the global deny list holds for a rule without lists of its own', async () => {
    await admitted(GOOD4, PROXY4, 7004);
    await admitted(BAD4, PROXY4, 7004);
    await refused(GLOBAL_BAD4, PROXY4, 7004);
    await refused(GLOBAL_BAD4, PROXY4, 7001);
    assert.equal(denied(ids.open), 1n);
  });

  test('a steering rule: only its allowed source is steered, the rest refused', async () => {
    await admitted(GOOD4, STEERED, 80);
    await refused(BAD4, STEERED, 80);
    assert.equal(denied(ids.steered), 1n);
    assert.equal(ruleStats(bpfMapsOf(proxy.pid).get('rule_stats')!, ids.steered).steered, 1n);
  });

  test('a reload that changes a list: new connections obey it at once, an open one goes on', async () => {
    // The next matching log line, not one already seen.
    const next = (match: (l: LogLine) => boolean) => {
      const seen = proxy.logs.filter(match).length;
      return proxy.waitForLog(() => proxy.logs.filter(match).length > seen);
    };
    const reloaded = (l: LogLine) => l.msg === 'reloaded';
    const connected = next((l) => l.msg === 'connected' && l.rule === 'open');
    const open = runClient(outside, { host: PROXY4, port: 7004, localAddress: GOOD4, bytes: 32 << 20, timeoutMs: slow(30_000) });
    await connected;
    let done = next(reloaded);
    writeFileSync(configPath, JSON.stringify(config({ openDeny: [`${GOOD4}/32`] })));
    process.kill(proxy.pid, 'SIGHUP');
    await done;
    await refused(GOOD4, PROXY4, 7004);
    await admitted(BAD4, PROXY4, 7004);
    const report = await open;
    assert.equal(report.error, undefined);
    assert.equal(report.recvSha, report.sentSha, 'the connection open during the reload: every byte');
    done = next(reloaded);
    writeFileSync(configPath, JSON.stringify(config()));
    process.kill(proxy.pid, 'SIGHUP');
    await done;
    await admitted(GOOD4, PROXY4, 7004);
  });
});
