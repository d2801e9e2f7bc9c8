/**
 * Several targets per rule, through real sockets in a fresh netns: failover
 * past a target that refuses and one that cannot be reached, a target that
 * dies mid-run, passive ejection after repeated failures (visible in `rules
 * --json` and /metrics), round robin, least connections and source hash.
 * Targets are servers that answer with their own name.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, startBpfredir, type BpfredirProcess } from '../helpers/bpfredir.js';
import { slow } from '../helpers/emulation.js';
import { httpGet } from '../helpers/http.js';
import { bpfSkipReason, createNetns, type Netns } from '../helpers/netns.js';
import { runClient, startServer, type TrafficServer } from '../helpers/traffic.js';

const skip = bpfSkipReason();
const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const UNREACHABLE = '10.99.8.8'; // an `unreachable` route in the test's netns
const CLOSED = '127.0.0.1:7899'; // nothing listens there
const LATE = '127.0.0.1:7898'; // a server starts there during the test

describe('several targets', { skip }, () => {
  let ns: Netns;
  let dir: string;
  let runDir: string;
  let proxy: BpfredirProcess;
  const servers = new Map<string, TrafficServer>();
  let sink: TrafficServer; // reads slowly: a connection to it stays open

  async function named(name: string, host = '127.0.0.1'): Promise<string> {
    const server = await startServer(ns, { mode: 'name', name, host });
    servers.set(name, server);
    return `${host}:${server.port}`;
  }

  /** Which target answered a connection to port (from one of this netns's loopback addresses). */
  async function answer(port: number, from?: string): Promise<string> {
    const client = await runClient(ns, { port, timeoutMs: slow(10_000), ...(from && { localAddress: from }) });
    assert.equal(client.error, undefined, `connect to ${port}`);
    for (const name of servers.keys()) if (client.recvSha === sha(name)) return name;
    return `unknown (${client.recvBytes} bytes)`;
  }

  before(async () => {
    ns = createNetns('targets');
    ns.run('ip', ['route', 'add', 'unreachable', `${UNREACHABLE}/32`]);
    ns.run('ip', ['addr', 'add', '127.0.0.20/8', 'dev', 'lo']);
    dir = mkdtempSync(join(tmpdir(), 'bpfredir-targets-'));
    runDir = join(dir, 'run');
    const [a, b, c] = [await named('a'), await named('b'), await named('c')];
    sink = await startServer(ns, { mode: 'slow', rate: 64 << 10, host: '127.0.0.1' });
    const config = {
      metrics: '127.0.0.1:7890',
      rules: [
        { name: 'failover', listen: '127.0.0.1:7801', target: [CLOSED, `${UNREACHABLE}:80`, a, b] },
        { name: 'rr', listen: '127.0.0.1:7802', target: [a, b, c], balance: 'round_robin' },
        { name: 'least', listen: '127.0.0.1:7803', target: [`127.0.0.1:${sink.port}`, b], balance: 'least_connections' },
        { name: 'hash', listen: '127.0.0.1:7804', target: [a, b, c], balance: 'source_hash' },
        { name: 'checked', listen: '127.0.0.1:7805', target: [LATE, b], health_check: '200ms' },
      ],
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    proxy = await startBpfredir(ns, ['run', '--config', join(dir, 'config.json'), '--run-dir', runDir]);
  });

  after(async () => {
    await proxy?.stop();
    for (const s of servers.values()) await s.stop();
    await sink?.stop();
    ns?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('failover: past a refusing and an unreachable target to the first that answers, each failure logged', async () => {
    assert.equal(await answer(7801), 'a');
    const failed = proxy.logs.filter((l) => l.msg === 'target_failed' && l.rule === 'failover');
    assert.deepEqual(failed.map((l) => l.upstream), [CLOSED, `${UNREACHABLE}:80`]);
  });

  test('three failures in a row eject a target: then it is skipped, and rules and /metrics say so', async () => {
    for (let i = 0; i < 2; i++) assert.equal(await answer(7801), 'a');
    const before = proxy.logs.filter((l) => l.msg === 'target_failed').length;
    assert.equal(await answer(7801), 'a');
    assert.equal(proxy.logs.filter((l) => l.msg === 'target_failed').length, before, 'ejected targets are not tried');
    const rules = JSON.parse((await runCli(ns, ['rules', '--json', '--run-dir', runDir])).stdout) as { name: string; targetHealth?: { address: string; ejected: boolean; open: number }[] }[];
    const health = rules.find((r) => r.name === 'failover')!.targetHealth!;
    assert.deepEqual(health.map((t) => [t.address, t.ejected]), [[CLOSED, true], [`${UNREACHABLE}:80`, true], [servers.get('a') && `127.0.0.1:${servers.get('a')!.port}`, false], [`127.0.0.1:${servers.get('b')!.port}`, false]]);
    const metrics = (await httpGet(ns, 'http://127.0.0.1:7890/metrics')).body;
    assert.match(metrics, new RegExp(`^bpfredir_target_up\\{rule="failover",target="${CLOSED}"\\} 0$`, 'm'));
    assert.match(metrics, /^bpfredir_target_ejections_total\{rule="failover",target="10\.99\.8\.8:80"\} 1$/m);
  });

  test('round robin takes each target in turn', async () => {
    const seen = [];
    for (let i = 0; i < 6; i++) seen.push(await answer(7802));
    assert.deepEqual(seen.sort(), ['a', 'a', 'b', 'b', 'c', 'c']);
  });

  test('least connections: with a connection open on the first target, the next goes to the second', async () => {
    const held = runClient(ns, { port: 7803, bytes: 256 << 10, timeoutMs: slow(30_000) });
    await proxy.waitForLog((l) => l.msg === 'connected' && l.rule === 'least');
    assert.equal(await answer(7803), 'b');
    assert.equal((await held).error, undefined);
  });

  test('source hash: one client address always reaches the same target', async () => {
    const first = await answer(7804, '127.0.0.20');
    for (let i = 0; i < 4; i++) assert.equal(await answer(7804, '127.0.0.20'), first);
  });

  test('active health checks: a target that is down is not tried; once it answers, it takes connections again', async () => {
    await proxy.waitForLog((l) => l.msg === 'target_down' && l.rule === 'checked' && l.target === LATE, slow(5000));
    const before = proxy.logs.filter((l) => l.msg === 'target_failed' && l.rule === 'checked').length;
    assert.equal(await answer(7805), 'b');
    assert.equal(proxy.logs.filter((l) => l.msg === 'target_failed' && l.rule === 'checked').length, before, 'a down target is not tried');
    const rules = JSON.parse((await runCli(ns, ['rules', '--json', '--run-dir', runDir])).stdout) as { name: string; targetHealth?: { down: boolean }[] }[];
    assert.deepEqual(rules.find((r) => r.name === 'checked')!.targetHealth!.map((t) => t.down), [true, false]);
    const late = await startServer(ns, { mode: 'name', name: 'late', host: '127.0.0.1', port: 7898 });
    servers.set('late', late);
    await proxy.waitForLog((l) => l.msg === 'target_up' && l.rule === 'checked', slow(5000));
    assert.equal(await answer(7805), 'late');
  });

  test('a target that dies mid-run: new connections fail over to the next', async () => {
    await servers.get('a')!.stop();
    servers.delete('a');
    assert.equal(await answer(7801), 'b');
    assert.equal(await answer(7801), 'b');
  });
});
