/**
 * What a rule does to the upstream side besides moving bytes, through real
 * sockets in a fresh netns: the PROXY protocol header (v1 and v2, IPv4, IPv6
 * and an IPv4 client of a dual-stack listener), read by nginx's stream module
 * as an independent parser, on each datapath (copy, splice(2), sockmap) with
 * every byte intact and the header not counted; the source address; SO_MARK
 * and keepalive as ss sees them; and max_connections.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startBpfredir } from '../helpers/bpfredir.js';
import { slow } from '../helpers/emulation.js';
import { httpGet } from '../helpers/http.js';
import { bpfSkipReason, createNetns, type Netns } from '../helpers/netns.js';
import { runClient, startServer, type TrafficServer } from '../helpers/traffic.js';

const skip = bpfSkipReason();
const MiB = 1 << 20;
const NGINX_PORT = 7600;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface NginxSession {
  remote: string;
  ppAddr: string;
  ppPort: number;
  ppServerAddr: string;
  ppServerPort: number;
  received: number;
  sent: number;
}

describe('upstream options', { skip }, () => {
  let ns: Netns;
  let dir: string;
  let echo: TrafficServer;
  let nginx: ChildProcess;
  const log = () => join(dir, 'access.log');

  /** nginx's access log, one session per line, in the order they ended. */
  const sessions = (): NginxSession[] =>
    readFileSync(log(), 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [remote, ppAddr, ppPort, ppServerAddr, ppServerPort, received, sent] = line.split(' ');
        return { remote: remote!, ppAddr: ppAddr!, ppPort: Number(ppPort), ppServerAddr: ppServerAddr!, ppServerPort: Number(ppServerPort), received: Number(received), sent: Number(sent) };
      });

  async function nextSession(count: number): Promise<NginxSession> {
    for (let i = 0; i < 100; i++) {
      const all = (() => {
        try {
          return sessions();
        } catch {
          return [];
        }
      })();
      if (all.length > count) return all[count]!;
      await sleep(slow(50));
    }
    assert.fail(`nginx logged no session #${count + 1}`);
  }

  before(async () => {
    ns = createNetns('upstream');
    ns.run('ip', ['addr', 'add', '127.0.0.9/8', 'dev', 'lo']);
    dir = mkdtempSync(join(tmpdir(), 'bpfredir-upstream-'));
    echo = await startServer(ns, { mode: 'echo', host: '127.0.1.1' });
    writeFileSync(
      join(dir, 'nginx.conf'),
      [
        'load_module /usr/lib/nginx/modules/ngx_stream_module.so;',
        'user root;',
        'worker_processes 1;',
        `pid ${dir}/nginx.pid;`,
        `error_log ${dir}/error.log;`,
        'events {}',
        'stream {',
        '  log_format pp "$remote_addr $proxy_protocol_addr $proxy_protocol_port $proxy_protocol_server_addr $proxy_protocol_server_port $bytes_received $bytes_sent";',
        `  server { listen 127.0.1.1:${NGINX_PORT} proxy_protocol; access_log ${log()} pp; proxy_half_close on; proxy_pass 127.0.1.1:${echo.port}; }`,
        '}',
      ].join('\n'),
    );
    nginx = ns.exec('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
    for (let i = 0; i < 100 && !ns.run('ss', ['-Hltn', `sport = :${NGINX_PORT}`]).trim(); i++) await sleep(50);
  });

  after(async () => {
    if (process.env.BPFREDIR_TEST_KEEP) process.stderr.write(readFileSync(join(dir, 'error.log'), 'utf8'));
    nginx?.kill('SIGTERM');
    await echo?.stop();
    ns?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const cases = [
    { version: 'v1', args: [], bytes: 16 << 10, datapath: 'copy' },
    { version: 'v2', args: ['--datapath', 'userspace'], bytes: 32 * MiB, datapath: 'splice' },
    { version: 'v2', args: ['--splice-after', '0'], bytes: 8 * MiB, datapath: 'sockmap' },
    { version: 'v1', args: ['--splice-after', '0'], bytes: 1 * MiB, datapath: 'sockmap' },
  ];
  cases.forEach(({ version, args, bytes, datapath }, i) => {
    test(`PROXY ${version} on the ${datapath} path: nginx reads the real client, every byte arrives, the header is not counted`, async () => {
      const port = 7610 + i;
      const proxy = await startBpfredir(ns, ['forward', `127.0.0.1:${port}`, `127.0.1.1:${NGINX_PORT}`, '--proxy-protocol', version, ...args]);
      try {
        const client = await runClient(ns, { port, bytes, timeoutMs: slow(60_000) });
        assert.equal(client.error, undefined);
        assert.equal(client.recvSha, client.sentSha, 'every byte back through nginx');
        const session = await nextSession(i);
        const connected = await proxy.waitForLog((l) => l.msg === 'connected');
        assert.equal(`${session.ppAddr}:${session.ppPort}`, connected.client, 'nginx saw the client bpfredir accepted');
        assert.equal(`${session.ppServerAddr}:${session.ppServerPort}`, `127.0.0.1:${port}`, 'and the address it dialled');
        assert.equal(session.received, bytes, 'nginx counts the payload only');
        const closed = await proxy.waitForLog((l) => l.msg === 'closed');
        assert.equal(closed.datapath, datapath);
        assert.equal(closed.bytes_to_upstream, bytes, 'bpfredir does not count the header either');
      } finally {
        await proxy.stop();
      }
    });
  });

  test('PROXY v2 with IPv6, and an IPv4 client of a dual-stack listener sent as IPv4', async () => {
    const proxy = await startBpfredir(ns, ['forward', '[::]:7620', `127.0.1.1:${NGINX_PORT}`, '--proxy-protocol', 'v2']);
    try {
      const before = sessions().length;
      for (const host of ['::1', '127.0.0.1']) {
        const client = await runClient(ns, { host, port: 7620, bytes: 4096, timeoutMs: slow(10_000) });
        assert.equal(client.recvSha, client.sentSha);
      }
      const [v6, v4] = [await nextSession(before), await nextSession(before + 1)];
      assert.deepEqual([v6.ppAddr, v6.ppServerAddr, v6.ppServerPort], ['::1', '::1', 7620]);
      assert.deepEqual([v4.ppAddr, v4.ppServerAddr, v4.ppServerPort], ['127.0.0.1', '127.0.0.1', 7620]);
    } finally {
      await proxy.stop();
    }
  });

  test('source address, SO_MARK and keepalive on the sockets as ss shows them', async () => {
    const slowSink = await startServer(ns, { mode: 'slow', rate: 256 << 10, host: '127.0.1.1' });
    const proxy = await startBpfredir(ns, ['forward', '127.0.0.1:7630', `127.0.1.1:${slowSink.port}`, '--source', '127.0.0.9', '--mark', '0x64', '--keepalive', '30s']);
    try {
      const transfer = runClient(ns, { port: 7630, bytes: 1 * MiB, timeoutMs: slow(30_000) });
      await proxy.waitForLog((l) => l.msg === 'connected');
      const upstream = ns.run('ss', ['-Htnoe', 'state', 'established', `dport = :${slowSink.port}`]);
      assert.match(upstream, /127\.0\.0\.9:\d+/, 'connected from the source address');
      assert.match(upstream, /timer:\(keepalive,/, 'keepalive on the upstream socket');
      assert.match(upstream, /fwmark:0x64/, 'marked');
      const client = ns.run('ss', ['-Htno', 'state', 'established', 'sport = :7630']);
      assert.match(client, /timer:\(keepalive,/, 'keepalive on the client socket');
      assert.equal((await transfer).error, undefined);
      assert.match((await slowSink.nextReport()).remote, /^127\.0\.0\.9:/);
    } finally {
      await proxy.stop();
      await slowSink.stop();
    }
  });

  test('max_connections: one more is reset at once and counted; once one ends, the next gets in', async () => {
    const slowSink = await startServer(ns, { mode: 'slow', rate: 128 << 10, host: '127.0.1.1' });
    const proxy = await startBpfredir(ns, ['forward', '127.0.0.1:7640', `127.0.1.1:${slowSink.port}`, '--max-connections', '2', '--metrics-listen', '127.0.0.1:7641']);
    try {
      const held = [1, 2].map(() => runClient(ns, { port: 7640, bytes: 512 << 10, timeoutMs: slow(30_000) }));
      for (let seen = 0; seen < 2; ) {
        seen = proxy.logs.filter((l) => l.msg === 'connected').length;
        await sleep(20);
      }
      const extra = await runClient(ns, { port: 7640, bytes: 1, timeoutMs: slow(5000) });
      assert.equal(extra.error, 'ECONNRESET');
      assert.ok(extra.ms < slow(1000), `refused in ${extra.ms} ms`);
      for (const report of await Promise.all(held)) assert.equal(report.error, undefined);
      const after = await runClient(ns, { port: 7640, bytes: 1024, timeoutMs: slow(10_000) });
      assert.equal(after.error, undefined);
      const metrics = (await httpGet(ns, 'http://127.0.0.1:7641/metrics')).body;
      assert.match(metrics, /^bpfredir_connections_refused_total\{rule="forward",reason="max_connections"\} 1$/m);
    } finally {
      await proxy.stop();
      await slowSink.stop();
    }
  });
});
