/**
 * accept_proxy: a load balancer in another namespace connects over a veth and
 * starts each connection with a PROXY header. Trusted peers' headers are
 * honoured (v1 and v2, IPv4 and IPv6, split across segments, LOCAL), with every
 * byte after the header intact and none of the header's counted; the header's
 * client is the one logged, judged by the allow list, and used as the
 * transparent source. An untrusted peer is refused by sk_lookup, a broken or
 * missing header gets a reset, on listen and steering rules alike.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startBpfredir, type BpfredirProcess, type LogLine } from '../helpers/bpfredir.js';
import { slow } from '../helpers/emulation.js';
import { httpGet } from '../helpers/http.js';
import { addLocalRoute, bpfSkipReason, createNetns, linkNetns, type Netns } from '../helpers/netns.js';
import { runClient, startServer, type ClientReport, type TrafficServer } from '../helpers/traffic.js';

const skip = bpfSkipReason();
const ip = (args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });

const PROXY4 = '10.98.5.1';
const PROXY6 = 'fd00:98:5::1';
const [LB4, UNTRUSTED4] = ['10.98.5.2', '10.98.5.3'];
const LB6 = 'fd00:98:5::2';
const STEERED = '10.98.6.7'; // routed to the proxy's namespace, where nothing listens on it
const METRICS_PORT = 9481;

// What the load balancer says about the connections it hands on.
const CLIENT4 = { host: '192.0.2.77', port: 4242 };
const DIALLED4 = { host: '203.0.113.5', port: 443 };

function v1(client: { host: string; port: number }, dialled: { host: string; port: number }): Buffer {
  const family = client.host.includes(':') ? 'TCP6' : 'TCP4';
  return Buffer.from(`PROXY ${family} ${client.host} ${dialled.host} ${client.port} ${dialled.port}\r\n`);
}

const SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** A v2 PROXY header for TCP over IPv6 (with a TLV to skip), or a LOCAL one. */
function v2(client?: { addr: Buffer; port: number }, dialled?: { addr: Buffer; port: number }): Buffer {
  if (!client || !dialled) return Buffer.concat([SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(client.port, 0);
  ports.writeUInt16BE(dialled.port, 2);
  const tlv = Buffer.from([0x04, 0x00, 0x03, 0x61, 0x62, 0x63]); // PP2_TYPE_NOOP, 3 bytes
  const body = Buffer.concat([client.addr, dialled.addr, ports, tlv]);
  const length = Buffer.alloc(2);
  length.writeUInt16BE(body.length);
  return Buffer.concat([SIGNATURE, Buffer.from([0x21, 0x21]), length, body]);
}

const ipv6 = (hex: string) => Buffer.from(hex.replace(/:/g, ''), 'hex');

describe('accept_proxy: PROXY headers from trusted load balancers', { skip }, () => {
  let ns: Netns;
  let outside: Netns;
  let dir: string;
  let proxy: BpfredirProcess;
  let echo: TrafficServer;
  let names: TrafficServer; // answers with its own name: the report says where the connection came from

  const send = (opts: { from: string; host: string; port: number; preamble?: Buffer; preambleSplit?: number; bytes?: number }): Promise<ClientReport> =>
    runClient(outside, { host: opts.host, port: opts.port, bytes: opts.bytes ?? 256 << 10, localAddress: opts.from, timeoutMs: slow(10_000), ...(opts.preamble && { preamble: opts.preamble }), ...(opts.preambleSplit && { preambleSplit: opts.preambleSplit }) });

  async function intact(opts: Parameters<typeof send>[0]): Promise<void> {
    const client = await send(opts);
    assert.equal(client.error, undefined, `${opts.from} → ${opts.host}:${opts.port}`);
    assert.equal(client.recvBytes, client.bytes);
    assert.equal(client.recvSha, client.sentSha, 'every byte after the header back, in order');
  }

  async function reset(opts: Parameters<typeof send>[0], within = slow(1000)): Promise<ClientReport> {
    const client = await send({ bytes: 0, ...opts });
    assert.ok(client.error === 'ECONNRESET' || client.error === 'EPIPE', `expected a reset, got ${client.error ?? 'a clean end'}`);
    assert.ok(client.ms < within, `reset at once, not after ${client.ms} ms`);
    return client;
  }

  const logged = (match: (l: LogLine) => boolean) => proxy.waitForLog(match, slow(5000));

  before(async () => {
    ns = createNetns('pxa');
    outside = createNetns('pxa-lb');
    linkNetns(ns, outside, PROXY4, LB4);
    ip(['-n', outside.name, 'addr', 'add', `${UNTRUSTED4}/24`, 'dev', 'veth0']);
    ip(['-n', ns.name, 'addr', 'add', `${PROXY6}/64`, 'dev', 'veth0', 'nodad']);
    ip(['-n', outside.name, 'addr', 'add', `${LB6}/64`, 'dev', 'veth0', 'nodad']);
    ip(['-n', outside.name, 'route', 'add', '10.98.6.0/24', 'via', PROXY4]);
    addLocalRoute(ns, '10.98.6.0/24');
    // The header's clients are routed locally here, so a server's replies to a transparent source come back
    // to us without any interception (bpfredir warns about exactly that at start).
    addLocalRoute(ns, '192.0.2.0/24');
    echo = await startServer(ns, { mode: 'echo', host: '127.0.0.1' });
    names = await startServer(ns, { mode: 'name', host: '127.0.0.1', name: 'upstream' });
    dir = mkdtempSync(join(tmpdir(), 'bpfredir-pxa-'));
    const configPath = join(dir, 'pxa.json');
    const trusted = [`${LB4}/32`, LB6];
    const timeouts = { connect_timeout: `${slow(1000)}ms` };
    writeFileSync(
      configPath,
      JSON.stringify({
        metrics: `127.0.0.1:${METRICS_PORT}`,
        rules: [
          { name: 'lb', listen: '[::]:7101', target: `127.0.0.1:${echo.port}`, accept_proxy: trusted, ...timeouts },
          { name: 'lb-allow', listen: `${PROXY4}:7102`, target: `127.0.0.1:${echo.port}`, accept_proxy: trusted, allow: '192.0.2.0/24', ...timeouts },
          { name: 'lb-transparent', listen: `${PROXY4}:7103`, target: `127.0.0.1:${names.port}`, accept_proxy: trusted, transparent_source: 'address_and_port', ...timeouts },
          { name: 'lb-steer', destination: '10.98.6.0/24', ports: 80, target: `127.0.0.1:${echo.port}`, accept_proxy: trusted, ...timeouts },
        ],
      }),
    );
    proxy = await startBpfredir(ns, ['run', '--config', configPath]);
  });

  after(async () => {
    await proxy?.stop();
    await echo?.stop();
    await names?.stop();
    ns?.destroy();
    outside?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('v1 over IPv4: the header names the client and what it dialled; the bytes after it arrive intact, uncounted', async () => {
    await intact({ from: LB4, host: PROXY4, port: 7101, preamble: v1(CLIENT4, DIALLED4) });
    const closed = await logged((l) => l.msg === 'closed' && l.rule === 'lb');
    assert.equal(closed.client, `${CLIENT4.host}:${CLIENT4.port}`);
    assert.equal(closed.dst, `${DIALLED4.host}:${DIALLED4.port}`);
    assert.equal(closed.bytes_to_upstream, 256 << 10, 'the header is not counted');
    assert.equal(closed.bytes_to_client, 256 << 10);
  });

  test('v2 over IPv6 with a TLV, split across two segments: honoured', async () => {
    const client = { addr: ipv6('2001:0db8:0000:0000:0000:0000:0000:0077'), port: 5353 };
    const dialled = { addr: ipv6('2001:0db8:0000:0000:0000:0000:0000:0443'), port: 8443 };
    await intact({ from: LB6, host: PROXY6, port: 7101, preamble: v2(client, dialled), preambleSplit: 10 });
    const closed = await logged((l) => l.msg === 'closed' && l.rule === 'lb' && String(l.client).startsWith('[2001:db8::77]'));
    assert.equal(closed.client, '[2001:db8::77]:5353');
    assert.equal(closed.dst, '[2001:db8::443]:8443');
  });

  test('v2 LOCAL (the balancer\'s own health check): the connection\'s own addresses stand', async () => {
    await intact({ from: LB4, host: PROXY4, port: 7101, preamble: v2(), bytes: 1000 });
    const closed = await logged((l) => l.msg === 'closed' && l.rule === 'lb' && String(l.client).startsWith(`${LB4}:`));
    assert.equal(closed.dst, `${PROXY4}:7101`);
  });

  test('an untrusted peer is refused by sk_lookup before accept, whatever it sends', async () => {
    const client = await send({ from: UNTRUSTED4, host: PROXY4, port: 7101, preamble: v1(CLIENT4, DIALLED4) });
    assert.equal(client.error, 'ECONNREFUSED');
    const line = await logged((l) => l.msg === 'denied' && l.rule === 'lb');
    assert.match(String(line.client), new RegExp(`^${UNTRUSTED4.replace(/\./g, '\\.')}:\\d+$`));
    assert.equal(line.reason, 'not_trusted');
  });

  test('no header, a broken header, or none in time: reset, logged, counted', async () => {
    await reset({ from: LB4, host: PROXY4, port: 7101, preamble: Buffer.from('GET / HTTP/1.1\r\n\r\n') });
    const invalid = await logged((l) => l.msg === 'proxy_header_failed' && l.reason === 'invalid');
    assert.match(String(invalid.message), /does not start with a PROXY protocol header/);
    await reset({ from: LB4, host: PROXY4, port: 7101, preamble: Buffer.from('PROXY TCP4 192.0.2.1 nonsense 1 2\r\n') });
    await logged((l) => l.msg === 'proxy_header_failed' && /is not 'PROXY TCP4 SRC DST/.test(String(l.message)));
    // A client that sends nothing: reset once connect_timeout has passed.
    const silent = await runClient(outside, { host: PROXY4, port: 7101, bytes: 0, keepOpen: true, localAddress: LB4, timeoutMs: slow(10_000) });
    assert.equal(silent.error, 'ECONNRESET');
    assert.ok(silent.ms >= slow(1000) - 50, `reset after connect_timeout, not after ${silent.ms} ms`);
    await logged((l) => l.msg === 'proxy_header_failed' && l.reason === 'timeout');
    const metrics = await httpGet(ns, `http://127.0.0.1:${METRICS_PORT}/metrics`);
    assert.match(metrics.body, /bpfredir_connections_refused_total\{rule="lb",reason="proxy_header"\} 3\b/);
  });

  test("the header's client is what the allow list judges", async () => {
    await intact({ from: LB4, host: PROXY4, port: 7102, preamble: v1(CLIENT4, DIALLED4) });
    await reset({ from: LB4, host: PROXY4, port: 7102, preamble: v1({ host: '198.51.100.9', port: 999 }, DIALLED4) });
    const line = await logged((l) => l.msg === 'denied' && l.rule === 'lb-allow');
    assert.equal(line.client, '198.51.100.9:999');
    assert.equal(line.reason, 'not_allowed');
    const metrics = await httpGet(ns, `http://127.0.0.1:${METRICS_PORT}/metrics`);
    assert.match(metrics.body, /bpfredir_connections_refused_total\{rule="lb-allow",reason="denied"\} 1\b/);
  });

  test("transparent source: the target sees the header's client address and port", async () => {
    const client = await send({ from: LB4, host: PROXY4, port: 7103, preamble: v1(CLIENT4, DIALLED4), bytes: 0 });
    assert.equal(client.error, undefined);
    const report = await names.nextReport(slow(5000));
    assert.equal(report.remote, `${CLIENT4.host}:${CLIENT4.port}`);
  });

  test('a steering rule: a trusted header is honoured, an untrusted peer refused', async () => {
    await intact({ from: LB4, host: STEERED, port: 80, preamble: v1(CLIENT4, { host: STEERED, port: 80 }) });
    const closed = await logged((l) => l.msg === 'closed' && l.rule === 'lb-steer');
    assert.equal(closed.client, `${CLIENT4.host}:${CLIENT4.port}`);
    const refused = await send({ from: UNTRUSTED4, host: STEERED, port: 80, preamble: v1(CLIENT4, DIALLED4) });
    assert.equal(refused.error, 'ECONNREFUSED');
  });
});
