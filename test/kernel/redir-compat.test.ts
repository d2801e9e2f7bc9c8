/**
 * redir's habits on `bpfredir forward`, in a fresh netns: `:PORT` for every
 * address, --bind (the upstream connection's source), --timeout in seconds,
 * --syslog with --ident and --loglevel (datagrams read from a socket the test
 * listens on), and an access log in rinetd's format next to them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startBpfredir } from '../helpers/bpfredir.js';
import { slow } from '../helpers/emulation.js';
import { bpfSkipReason, createNetns, type Netns } from '../helpers/netns.js';
import { runClient, startServer, type TrafficServer } from '../helpers/traffic.js';

const skip = bpfSkipReason();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Prints every datagram the socket at argv[1] receives, one per line.
const SYSLOG_SINK = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("ready", flush=True)
while True:
    print(s.recv(65536).decode(), flush=True)
`;

describe('redir compatibility', { skip }, () => {
  let ns: Netns;
  let dir: string;
  let echo: TrafficServer;

  before(async () => {
    ns = createNetns('redir');
    ns.run('ip', ['addr', 'add', '127.0.0.9/8', 'dev', 'lo']);
    dir = mkdtempSync(join(tmpdir(), 'bpfredir-redir-'));
    echo = await startServer(ns, { mode: 'echo', host: '127.0.0.1', port: 7701 });
  });

  after(async () => {
    await echo?.stop();
    ns?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('forward :PORT :PORT --bind --timeout --syslog --ident --loglevel, and an access log', { timeout: slow(60_000) }, async () => {
    const socketPath = join(dir, 'log.sock');
    const sink = ns.exec('python3', ['-c', SYSLOG_SINK, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    let received = '';
    sink.stdout!.on('data', (chunk: Buffer) => (received += chunk.toString()));
    try {
      for (let i = 0; i < 100 && !received.includes('ready'); i++) await sleep(20);
      const accessLog = join(dir, 'access.log');
      process.env.BPFREDIR_SYSLOG_SOCKET = socketPath; // inherited by the process started below
      const proxy = await startBpfredir(
        ns,
        ['forward', ':7700', ':7701', '--bind', '127.0.0.9', '--timeout', '1', '--syslog', '--ident', 'redir-test', '--loglevel', 'info', '--access-log', accessLog],
        slow(15_000),
      ).finally(() => delete process.env.BPFREDIR_SYSLOG_SOCKET);
      try {
        const client = await runClient(ns, { host: '127.0.0.1', port: 7700, bytes: 4096, timeoutMs: slow(10_000) });
        assert.equal(client.recvSha, client.sentSha, 'through :7700 (every address) to :7701 (this host)');
        assert.match((await echo.nextReport()).remote, /^127\.0\.0\.9:/, '--bind: the upstream connection comes from there');
        // --timeout 1: a silent connection is closed after about a second.
        const idle = await runClient(ns, { host: '127.0.0.1', port: 7700, keepOpen: true, timeoutMs: slow(10_000) });
        assert.equal(idle.error, undefined);
        assert.ok(idle.ms >= 900 && idle.ms < slow(4000), `idle connection closed after ${idle.ms} ms`);
        for (let i = 0; i < 100 && !/"msg":"closed".*"reason":"idle_timeout"/.test(received); i++) await sleep(slow(20));
      } finally {
        await proxy.stop();
      }
      // The helper asks for --log-format json: the datagrams carry JSON records.
      assert.match(received, /^<30>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d redir-test\[\d+\]: \{.*"msg":"connected","rule":"forward"/m, 'info lines, tagged with --ident');
      assert.match(received, /redir-test\[\d+\]: \{.*"msg":"closed".*"reason":"idle_timeout"/);
      assert.doesNotMatch(proxy.logs.map((l) => l.msg).join('\n'), /connected/, 'with --syslog nothing goes to stderr');
      const lines = readFileSync(accessLog, 'utf8').trim().split('\n');
      assert.ok(lines.some((l) => /\t127\.0\.0\.1\t0\.0\.0\.0\t7700\t127\.0\.0\.1\t7701\t4096\t4096\tdone-remote-closed$/.test(l)), lines.join('\n'));
    } finally {
      sink.kill('SIGTERM');
    }
  });
});
