/**
 * Router interception, three namespaces joined by veth pairs:
 *
 *   client 10.77.1.2 fd77:1::2 ─ toR ══ toC ─ router (bpfredir) ─ toS ══ toR ─ server 10.77.2.2 fd77:2::2
 *
 * The client dials the server's address; the router forwards, except what an
 * intercept rule takes (TC mark → policy route → sk_lookup → bpfredir), which
 * bpfredir connects on to the original destination, from its own address or,
 * with transparent source, from the client's. Every byte is checked (sha256
 * both ways, half-close), and what the server sees says which path it took.
 * On a kernel without tcx links (before 6.6) the suite checks the refusal instead:
 * one line saying so, and nothing left on the router.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, startBpfredir, type BpfredirProcess } from '../helpers/bpfredir.js';
import { slow } from '../helpers/emulation.js';
import { bpfSkipReason, createNetns, type Netns } from '../helpers/netns.js';
import { runClient, startServer, type TrafficServer } from '../helpers/traffic.js';

const skip = bpfSkipReason();
const [major = 0, minor = 0] = release().split('.').map(Number);
const tcx = major > 6 || (major === 6 && minor >= 6);
// Each suite is registered only where it applies, so neither kernel reports a skipped one.
const describeWithTcx = tcx ? describe : ((() => undefined) as unknown as typeof describe);
const PORT = 8080;
const OTHER_PORT = 9090;
const SLOW_PORT = 8082;

function veth(a: Netns, aName: string, b: Netns, bName: string): void {
  a.run('ip', ['link', 'add', aName, 'type', 'veth', 'peer', 'name', bName, 'netns', b.name]);
  a.run('ip', ['link', 'set', aName, 'up']);
  b.run('ip', ['link', 'set', bName, 'up']);
}

function address(ns: Netns, dev: string, v4: string, v6: string): void {
  ns.run('ip', ['addr', 'add', `${v4}/24`, 'dev', dev]);
  ns.run('ip', ['-6', 'addr', 'add', `${v6}/64`, 'dev', dev, 'nodad']);
}

/** Resolves once something in ns listens on TCP port. */
async function waitForListener(ns: Netns, port: number): Promise<void> {
  const deadline = Date.now() + slow(10_000);
  while (!ns.run('ss', ['-Hltn', `sport = :${port}`]).trim()) {
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const hostOf = (endpoint: string) => endpoint.replace(/^\[?(::ffff:)?/, '').replace(/\]?:\d+$/, '');
const portOf = (endpoint: string) => Number(/:(\d+)$/.exec(endpoint)![1]);

describeWithTcx('router interception', { skip }, () => {
  let client: Netns;
  let router: Netns;
  let server: Netns;
  let dir: string;
  let proxy: BpfredirProcess | undefined;
  const servers: TrafficServer[] = [];
  let echo: TrafficServer;
  let other: TrafficServer;

  const writeConfig = (rule: Record<string, unknown> = {}, top: Record<string, unknown> = {}) => {
    const config = {
      ...top,
      interception: { return_interfaces: ['toS'] },
      rules: [{ name: 'web', intercept: ['10.77.2.0/24', 'fd77:2::/64'], ports: PORT, interfaces: ['toC'], target: 'original', ...rule }],
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  };
  const start = async () => (proxy = await startBpfredir(router, ['run', '--config', join(dir, 'config.json')]));
  const reload = async () => {
    const before = proxy!.logs.filter((l) => l.msg === 'reloaded').length;
    process.kill(proxy!.pid, 'SIGHUP');
    await proxy!.waitForLog(() => proxy!.logs.filter((l) => l.msg === 'reloaded').length > before, slow(10_000));
  };
  /** One connection from the client with 256 KiB each way; returns what the server saw. */
  const exchange = async (host: string, port = PORT, target = echo) => {
    const report = await runClient(client, { host, port, bytes: 256 * 1024, timeoutMs: slow(10_000) });
    assert.equal(report.error, undefined);
    assert.equal(report.recvSha, report.sentSha, 'every byte back intact');
    const seen = await target.nextReport(slow(10_000));
    assert.equal(seen.recvSha, report.sentSha, 'every byte reached the server intact');
    return seen;
  };
  /** What bpfredir added to the router: policy rules, our table's routes, TC links. */
  const leftovers = () => {
    const rules = router.run('ip', ['rule']) + router.run('ip', ['-6', 'rule']);
    const routes = router.run('ip', ['route', 'show', 'table', '4250']) + router.run('ip', ['-6', 'route', 'show', 'table', '4250']);
    // tcx links (bpftool 7.1 shows them as "type 11", not under `net`): any whose program is ours.
    const programs = new Map((JSON.parse(router.run('bpftool', ['-j', 'prog', 'show'])) as { id: number; name?: string }[]).map((p) => [p.id, p.name]));
    const links = JSON.parse(router.run('bpftool', ['-j', 'link', 'show'])) as { prog_id: number }[];
    return { rules: rules.includes('4250'), routes: routes.trim() !== '', tc: links.some((l) => programs.get(l.prog_id) === 'intercept') };
  };

  before(async () => {
    client = createNetns('icl');
    router = createNetns('irt');
    server = createNetns('isv');
    veth(client, 'toR', router, 'toC');
    veth(router, 'toS', server, 'toR');
    address(client, 'toR', '10.77.1.2', 'fd77:1::2');
    address(router, 'toC', '10.77.1.1', 'fd77:1::1');
    address(router, 'toS', '10.77.2.1', 'fd77:2::1');
    address(server, 'toR', '10.77.2.2', 'fd77:2::2');
    for (const [ns, gw4, gw6] of [[client, '10.77.1.1', 'fd77:1::1'], [server, '10.77.2.1', 'fd77:2::1']] as const) {
      ns.run('ip', ['route', 'add', 'default', 'via', gw4]);
      ns.run('ip', ['-6', 'route', 'add', 'default', 'via', gw6]);
    }
    router.run('sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    echo = await startServer(server, { mode: 'echo', host: '::', port: PORT });
    other = await startServer(server, { mode: 'echo', host: '::', port: OTHER_PORT });
    servers.push(echo, other, await startServer(router, { mode: 'name', name: 'router-own', host: '10.77.1.1', port: PORT }));
    dir = mkdtempSync(join(tmpdir(), 'bpfredir-intercept-'));
    writeConfig();
    await start();
  });

  after(async () => {
    await proxy?.stop();
    for (const s of servers) await s.stop();
    for (const ns of [client, router, server]) ns?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('an intercepted IPv4 connection reaches its original destination from the router', async () => {
    const seen = await exchange('10.77.2.2');
    assert.equal(hostOf(seen.remote), '10.77.2.1', 'the server sees the router: bpfredir connected');
    assert.equal(hostOf(seen.local), '10.77.2.2');
    const connected = await proxy!.waitForLog((l) => l.msg === 'connected' && String(l.dst).startsWith('10.77.2.2'), slow(5000));
    assert.equal(connected.rule, 'web');
  });

  test('status names what bpfredir changed on the router', async () => {
    const status = await runCli(router, ['status']);
    assert.equal(status.status, 0, status.stderr);
    assert.match(status.stdout, /interception\s+TC ingress on toS \(replies\), toC; ip rule 4250: fwmark 0x40000000\/0x40000000 lookup 4250/);
    const rules = await runCli(router, ['rules']);
    assert.match(rules.stdout, /10\.77\.2\.0\/24,fd77:2::\/64 ports 8080 in toC/);
  });

  test('IPv6 the same', async () => {
    const seen = await exchange('fd77:2::2');
    assert.equal(hostOf(seen.remote), 'fd77:2::1');
  });

  test('unmatched traffic is forwarded untouched; the router keeps its own service on the port', async () => {
    const seen = await exchange('10.77.2.2', OTHER_PORT, other);
    assert.equal(hostOf(seen.remote), '10.77.1.2', 'another port: plain forwarding, the client itself');
    const own = await runClient(client, { host: '10.77.1.1', port: PORT, timeoutMs: slow(5000) });
    assert.equal(own.error, undefined);
    assert.equal(own.recvBytes, 'router-own'.length, "the router's own listener answered");
  });

  test('sources: other clients pass untouched', async () => {
    writeConfig({ sources: ['192.0.2.0/24'] });
    await reload();
    const seen = await exchange('10.77.2.2');
    assert.equal(hostOf(seen.remote), '10.77.1.2');
    writeConfig();
    await reload();
  });

  test("transparent source: the server sees the client's address, and with address_and_port its port", async () => {
    writeConfig({ transparent_source: 'address' });
    await reload();
    const seen = await exchange('10.77.2.2');
    assert.equal(hostOf(seen.remote), '10.77.1.2');
    const v6 = await exchange('fd77:2::2');
    assert.equal(hostOf(v6.remote), 'fd77:1::2');

    writeConfig({ transparent_source: 'address_and_port' });
    await reload();
    const count = proxy!.logs.length;
    const same = await exchange('10.77.2.2');
    const line = await proxy!.waitForLog((l) => proxy!.logs.indexOf(l) >= count && l.msg === 'connected', slow(5000));
    assert.equal(hostOf(same.remote), '10.77.1.2');
    assert.equal(portOf(same.remote), portOf(String(line.client)), "the client's own port");
    writeConfig();
    await reload();
  });

  test('transparent source with no route back: the connect times out with a line saying why', async () => {
    writeConfig({ transparent_source: 'address', connect_timeout: '1s' });
    await reload();
    server.run('ip', ['route', 'del', 'default']);
    try {
      const count = proxy!.logs.length;
      const report = await runClient(client, { host: '10.77.2.2', port: PORT, bytes: 1024, timeoutMs: slow(10_000) });
      assert.equal(report.recvBytes, 0, 'nothing came back: the client was reset');
      const line = await proxy!.waitForLog((l) => proxy!.logs.indexOf(l) >= count && l.msg === 'connect_failed', slow(5000));
      assert.match(String(line.hint), /no reply to 10\.77\.1\.2: with transparent_source the target's replies must be routed back through this machine/);
    } finally {
      server.run('ip', ['route', 'add', 'default', 'via', '10.77.2.1']);
    }
    writeConfig();
    await reload();
  });

  test("target: socket — HAProxy's own listener takes the connections and finds the original destination", async () => {
    const cfg = join(dir, 'haproxy.cfg');
    writeFileSync(
      cfg,
      [
        'defaults',
        '  mode tcp',
        '  timeout connect 5s',
        '  timeout client 30s',
        '  timeout server 30s',
        'frontend intercepted',
        // Dual-stack: a socket takes only connections of its own family.
        '  bind :::3128 v4v6',
        '  default_backend original',
        'backend original',
        // 0.0.0.0:0: the address and port the client connected to, which is getsockname()
        '  server original 0.0.0.0:0',
        '',
      ].join('\n'),
    );
    const haproxy = router.exec('haproxy', ['-db', '-f', cfg], { stdio: 'ignore' });
    try {
      await waitForListener(router, 3128);
      writeConfig({ target: 'socket [::]:3128' });
      await reload();
      assert.ok(proxy!.logs.some((l) => /steering to haproxy's socket on \[::\]:3128/.test(l.msg)));
      const seen = await exchange('10.77.2.2');
      assert.equal(hostOf(seen.remote), '10.77.2.1', 'HAProxy connected on to the original destination');
      const v6 = await exchange('fd77:2::2');
      assert.equal(hostOf(v6.local), 'fd77:2::2');
    } finally {
      haproxy.kill('SIGKILL');
    }
  });

  test('target: socket — a server that knows nothing of bpfredir sees the original destination with getsockname()', async () => {
    const plain = await startServer(router, { mode: 'echo', host: '127.0.0.1', port: 3129 });
    servers.push(plain);
    writeConfig({ target: 'socket 127.0.0.1:3129' });
    await reload();
    const report = await runClient(client, { host: '10.77.2.2', port: PORT, bytes: 64 * 1024, timeoutMs: slow(10_000) });
    assert.equal(report.recvSha, report.sentSha);
    const seen = await plain.nextReport(slow(10_000));
    assert.equal(seen.local, '10.77.2.2:8080');
    assert.equal(hostOf(seen.remote), '10.77.1.2', "the client's own connection, not a proxied one");
    writeConfig();
    await reload();
  });

  test('SYN cookies: the handshake completes through the interception', async () => {
    router.run('sysctl', ['-qw', 'net.ipv4.tcp_syncookies=2']);
    try {
      const seen = await exchange('10.77.2.2');
      assert.equal(hostOf(seen.remote), '10.77.2.1');
    } finally {
      router.run('sysctl', ['-qw', 'net.ipv4.tcp_syncookies=1']);
    }
  });

  test('stop, SIGKILL and restart, and a reload without intercept rules (once its open connection ended) leave nothing behind', async () => {
    assert.deepEqual(leftovers(), { rules: true, routes: true, tc: true });
    await proxy!.stop();
    proxy = undefined;
    assert.deepEqual(leftovers(), { rules: false, routes: false, tc: false }, 'clean after stop');
    assert.equal(hostOf((await exchange('10.77.2.2')).remote), '10.77.1.2', 'forwarded as before');

    await start();
    await proxy!.stop('SIGKILL');
    proxy = undefined;
    assert.equal(leftovers().tc, false, 'the tcx link went with the process');
    assert.equal(hostOf((await exchange('10.77.2.2')).remote), '10.77.1.2', 'a stale rule alone changes nothing');
    await start();
    assert.ok(proxy!.logs.some((l) => /left by an earlier run/.test(l.msg)), 'the restart removed the stale rule');
    assert.equal(hostOf((await exchange('10.77.2.2')).remote), '10.77.2.1', 'intercepted again');

    // A connection open while the last intercept rule goes keeps flowing; then everything goes.
    writeConfig({ ports: [PORT, SLOW_PORT] });
    await reload();
    const slowServer = await startServer(server, { mode: 'slow', host: '::', port: SLOW_PORT, rate: 512 * 1024 });
    servers.push(slowServer);
    const slowClient = runClient(client, { host: '10.77.2.2', port: SLOW_PORT, bytes: 2 * 1024 * 1024, timeoutMs: slow(30_000) });
    await new Promise((r) => setTimeout(r, slow(1000)));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ rules: [{ name: 'plain', listen: '127.0.0.1:7000', target: '127.0.0.1:7001' }] }));
    await reload();
    assert.deepEqual(leftovers(), { rules: true, routes: true, tc: true }, 'kept while an intercepted connection is open');
    const done = await slowClient;
    assert.equal(done.error, undefined);
    const slowSeen = await slowServer.nextReport(slow(10_000));
    assert.equal(slowSeen.recvSha, done.sentSha, 'the open connection finished intact after the reload');
    assert.equal(hostOf(slowSeen.remote), '10.77.2.1', 'it was the intercepted one');
    const deadline = Date.now() + slow(5000);
    while (leftovers().rules && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(leftovers(), { rules: false, routes: false, tc: false }, 'clean once it ended');
    assert.equal(hostOf((await exchange('10.77.2.2')).remote), '10.77.1.2');
  });

  test('the one-liner: forward --intercept toC 10.77.2.0/24:PORT original --transparent-source', async () => {
    await proxy?.stop();
    proxy = await startBpfredir(router, ['forward', '--intercept', 'toC', `10.77.2.0/24:${PORT}`, 'original', '--transparent-source', '--return-interface', 'toS']);
    const seen = await exchange('10.77.2.2');
    assert.equal(hostOf(seen.remote), '10.77.1.2', "intercepted, and connected from the client's address");
    assert.ok(proxy.logs.some((l) => l.msg === 'connected' && l.rule === 'forward'), 'through bpfredir');
    await proxy.stop();
    proxy = undefined;
    assert.deepEqual(leftovers(), { rules: false, routes: false, tc: false });
  });
});

if (!tcx) {
  describe('router interception on a kernel without tcx links', { skip }, () => {
    test('an intercept rule is refused at start with one line, and nothing is left behind', async () => {
      const router = createNetns('irt-old');
      const dir = mkdtempSync(join(tmpdir(), 'bpfredir-intercept-'));
      try {
        router.run('ip', ['link', 'add', 'toC', 'type', 'dummy']);
        router.run('ip', ['link', 'set', 'toC', 'up']);
        const config = { rules: [{ name: 'web', intercept: '0.0.0.0/0', ports: PORT, interfaces: ['toC'], target: 'original' }] };
        writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
        const run = await runCli(router, ['run', '--config', join(dir, 'config.json')]);
        assert.equal(run.status, 3, run.stderr);
        assert.match(run.stderr, /interception: cannot attach the TC program to toC: this kernel has no tcx links \(Linux >= 6\.6 needed\)/);
        assert.doesNotMatch(router.run('ip', ['rule']) + router.run('ip', ['-6', 'rule']), /4250/);
        assert.equal(router.run('ip', ['route', 'show', 'table', '4250']).trim(), '');
      } finally {
        router.destroy();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
