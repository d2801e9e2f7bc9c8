/**
 * sk_lookup steering through `bpfredir run --config`, in a fresh netns: which
 * rule wins, the original destination seen by the proxy, IPv6, per-rule
 * counters, no map entries left behind, one instance per netns, no way into
 * a rule's target past its destinations and ports, and a SIGTERM that leaves
 * no program attached.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { bpfMapsOf, entryCount, netnsLinkCount, ruleStats } from '../helpers/bpf-maps.js';
import { startBpfredir, type BpfredirProcess } from '../helpers/bpfredir.js';
import { addLocalRoute, bpfSkipReason, createNetns, linkNetns, listeningPorts, type Netns } from '../helpers/netns.js';
import { runClient, startServer, type TrafficServer } from '../helpers/traffic.js';

const skip = bpfSkipReason();
const sha = (text: string) => createHash('sha256').update(text).digest('hex');

describe('sk_lookup steering', { skip }, () => {
  let ns: Netns;
  let outside: Netns; // another host on a veth link
  let dir: string;
  let configPath: string;
  let proxy: BpfredirProcess;
  const servers: TrafficServer[] = [];

  // Upstreams live on 127.0.1.1, outside the steered 127.0.0.0/24: a rule that
  // covered its own target would steer the proxy's upstream connect back to itself.
  async function named(name: string): Promise<TrafficServer> {
    const server = await startServer(ns, { mode: 'name', name, host: '127.0.1.1' });
    servers.push(server);
    return server;
  }

  async function whoAnswers(host: string, port: number): Promise<string> {
    const client = await runClient(ns, { host, port, timeoutMs: 5000 });
    assert.equal(client.error, undefined, `connect to ${host}:${port}`);
    for (const name of ['wide', 'narrow', 'v6']) if (client.recvSha === sha(name)) return name;
    return `unknown reply (${client.recvBytes} bytes)`;
  }

  before(async () => {
    ns = createNetns('steer');
    outside = createNetns('outside');
    linkNetns(ns, outside, '10.99.3.1', '10.99.3.2');
    addLocalRoute(ns, '2001:db8::/64'); // exists only inside this netns
    dir = mkdtempSync(join(tmpdir(), 'bpfredir-test-'));
    const [wide, narrow, v6] = [await named('wide'), await named('narrow'), await named('v6')];
    const config = {
      rules: [
        { name: 'wide', destination: '127.0.0.0/24', ports: 'any', target: `127.0.1.1:${wide.port}` },
        { name: 'narrow', destination: '127.0.0.2', ports: '8080-8090', target: `127.0.1.1:${narrow.port}` },
        { name: 'v6', destination: '2001:db8::/64', ports: 443, target: `127.0.1.1:${v6.port}` },
      ],
    };
    configPath = join(dir, 'steer.json');
    writeFileSync(configPath, JSON.stringify(config));
    proxy = await startBpfredir(ns, ['run', '--config', configPath]);
    assert.match(proxy.startup, /datapath splice \(sk_lookup on netns \d+\)/);
  });

  after(async () => {
    await proxy?.stop();
    for (const s of servers) await s.stop();
    ns?.destroy();
    outside?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a port with no listener is steered, and the proxy sees the original destination', async () => {
    assert.equal(await whoAnswers('127.0.0.2', 8085), 'narrow');
    const line = await proxy.waitForLog((l) => l.msg === 'connected' && l.rule === 'narrow');
    assert.equal(line.dst, '127.0.0.2:8085');
  });

  test('longest prefix wins, then the narrower port block', async () => {
    assert.equal(await whoAnswers('127.0.0.2', 8080), 'narrow');
    assert.equal(await whoAnswers('127.0.0.2', 8090), 'narrow');
    assert.equal(await whoAnswers('127.0.0.2', 8091), 'wide');
    assert.equal(await whoAnswers('127.0.0.2', 7000), 'wide');
    assert.equal(await whoAnswers('127.0.0.77', 8085), 'wide');
  });

  test('IPv6 destinations are steered too', async () => {
    assert.equal(await whoAnswers('2001:db8::7', 443), 'v6');
    const line = await proxy.waitForLog((l) => l.msg === 'connected' && l.rule === 'v6');
    assert.equal(line.dst, '[2001:db8::7]:443');
  });

  test('per-rule counters count lookups and steered connections', () => {
    const maps = bpfMapsOf(proxy.pid);
    const ids = { wide: 1, narrow: 2 }; // ids are given in rule order from 1
    const narrow = ruleStats(maps.get('rule_stats')!, ids.narrow);
    assert.equal(narrow.steered, 3n); // 8085, 8080, 8090
    assert.equal(narrow.lookups, 3n);
    assert.equal(narrow.droppedNoSocket, 0n);
    assert.equal(ruleStats(maps.get('rule_stats')!, ids.wide).steered, 3n);
  });

  test('no map entries are left once the connections are closed', async () => {
    const maps = bpfMapsOf(proxy.pid);
    let left = entryCount(maps.get('conns')!);
    for (let i = 0; i < 50 && left > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      left = entryCount(maps.get('conns')!);
    }
    assert.equal(left, 0);
    assert.equal(entryCount(maps.get('relayed')!), 0);
  });

  test('a steering socket cannot be reached directly, from another host or from this one', async () => {
    const ports = listeningPorts(ns, proxy.pid);
    assert.equal(ports.length, 3, `one socket per rule: ${ports.join(', ')}`);
    const before = ruleStats(bpfMapsOf(proxy.pid).get('rule_stats')!, 0).droppedNoSocket;
    for (const port of ports) {
      for (const [from, host] of [[outside, '10.99.3.1'], [ns, '10.99.3.1'], [ns, '::1']] as const) {
        const client = await runClient(from, { host, port, timeoutMs: 5000 });
        assert.equal(client.error, 'ECONNREFUSED', `${host}:${port} from ${from.name}`);
      }
    }
    const after = ruleStats(bpfMapsOf(proxy.pid).get('rule_stats')!, 0).droppedNoSocket;
    assert.equal(after - before, BigInt(ports.length * 3), 'counted as refused lookups');
    // A rule still takes its own destinations on such a port.
    assert.equal(await whoAnswers('127.0.0.9', ports[0]!), 'wide');
  });

  test('a second instance in the same netns is refused with a clear error', async () => {
    await assert.rejects(startBpfredir(ns, ['run', '--config', configPath]), /another bpfredir \(pid \d+\) is running in this network namespace \(it holds \/run\/bpfredir\/netns-\d+\.lock\)/);
  });

  test('SIGTERM detaches everything', async () => {
    assert.equal(await proxy.stop(), 0);
    assert.equal(netnsLinkCount(ns.path), 0);
  });
});
