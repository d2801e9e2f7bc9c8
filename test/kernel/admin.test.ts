/**
 * The admin socket through the real CLI in a fresh netns: `status`, `rules`, `conns` and
 * `reload` ask the running bpfredir while a stream goes through a steering rule; the socket
 * is mode 0600 in a 0700 run directory; a refused reload exits like `check`; with nothing
 * running every command says so and exits 4; a second `forward` in the namespace runs
 * without a socket of its own, and `forward` has nothing to reload.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, startBpfredir } from '../helpers/bpfredir.js';
import { slow, slowdown } from '../helpers/emulation.js';
import { bpfSkipReason, createNetns, type Netns } from '../helpers/netns.js';
import { runClient, startServer, type TrafficServer } from '../helpers/traffic.js';

const skip = bpfSkipReason();
const MiB = 1 << 20;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('admin socket', { skip }, () => {
  let ns: Netns;
  let dir: string;
  let runDir: string;
  let sink: TrafficServer;
  let named: TrafficServer;

  before(async () => {
    ns = createNetns('admin');
    dir = mkdtempSync(join(tmpdir(), 'bpfredir-admin-'));
    runDir = join(dir, 'run');
    // Slower under emulation, where every CLI call takes seconds: the stream must outlast them.
    sink = await startServer(ns, { mode: 'slow', rate: Math.floor((2 * MiB) / slowdown), host: '127.0.1.1' });
    named = await startServer(ns, { mode: 'name', name: 'named', host: '127.0.1.1' });
  });

  after(async () => {
    await sink?.stop();
    await named?.stop();
    ns?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // The CLI's JSON, checked field by field.
  const json = async (args: string[]): Promise<any> => {
    const result = await runCli(ns, [...args, '--json', '--run-dir', runDir]);
    assert.equal(result.status, 0, `${args.join(' ')}: ${result.stderr}`);
    return JSON.parse(result.stdout);
  };

  test('status, rules, conns and reload answer from the running daemon', { timeout: slow(60_000) }, async () => {
    const file = join(dir, 'config.json');
    const write = (value: object | string) => {
      writeFileSync(`${file}.tmp`, typeof value === 'string' ? value : JSON.stringify(value));
      renameSync(`${file}.tmp`, file);
    };
    const rules = [
      { name: 'stream', destination: '127.0.0.2', ports: 7400, target: `127.0.1.1:${sink.port}` },
      { name: 'named', listen: '127.0.0.1:7401', target: `127.0.1.1:${named.port}` },
    ];
    write({ rules });
    const proxy = await startBpfredir(ns, ['run', '--config', file, '--run-dir', runDir]);
    try {
      const socket = statSync(join(runDir, `netns-${statSync(ns.path).ino}.sock`));
      assert.ok(socket.isSocket());
      assert.equal(socket.mode & 0o777, 0o600);
      assert.equal(statSync(runDir).mode & 0o777, 0o700);

      const bytes = 8 * MiB; // ~4 s into the 2 MiB/s sink (40 s under a 10x emulation)
      const stream = runClient(ns, { host: '127.0.0.2', port: 7400, bytes, timeoutMs: slow(60_000) });
      await proxy.waitForLog((l) => l.msg === 'connected' && l.rule === 'stream');
      await sleep(500);

      // The stream's connection is open (on whichever path it is now) until the sink has read 8 MiB.
      let status = await json(['status']);
      const open = (s: { connections: Record<string, number> }) => Object.values(s.connections).reduce((a, b) => a + b, 0);
      for (let i = 0; i < 20 && open(status) !== 1; i++) {
        await sleep(250);
        status = await json(['status']);
      }
      assert.equal(open(status), 1, JSON.stringify(status));
      assert.equal(status.pid, proxy.pid);
      assert.equal(status.rules, 2);
      assert.deepEqual(status.features, { sk_lookup: true, sockmap_verdict: true });
      assert.equal(status.lastReload, null);

      const listed = (await json(['rules'])) as { name: string; kind: string; address: string }[];
      assert.deepEqual(listed.map((r) => [r.name, r.kind]), [['stream', 'steer'], ['named', 'listen']]);
      assert.equal(listed[1]!.address, '127.0.0.1:7401');

      const conns = (await json(['conns'])) as { rule: string; originalDestination: string; upstream: string; datapath: string; bytesToUpstream: number }[];
      assert.equal(conns.length, 1);
      assert.equal(conns[0]!.rule, 'stream');
      assert.equal(conns[0]!.originalDestination, '127.0.0.2:7400', 'the destination the client dialled');
      assert.equal(conns[0]!.upstream, `127.0.1.1:${sink.port}`);
      assert.ok(['copy', 'splice', 'sockmap'].includes(conns[0]!.datapath), conns[0]!.datapath);
      assert.ok(conns[0]!.bytesToUpstream > 0);
      const text = await runCli(ns, ['conns', '--run-dir', runDir]);
      assert.match(text.stdout, /^RULE +CLIENT +DESTINATION +UPSTREAM +DATAPATH +TO UPSTREAM +TO CLIENT +AGE\nstream +127\.0\.0\.1:\d+ +127\.0\.0\.2:7400 /);

      // A reload that adds a rule; then one the validation refuses: exit 2, the check's line.
      write({ rules: [...rules, { name: 'extra', listen: '127.0.0.1:7402', target: `127.0.1.1:${named.port}` }] });
      const added = await runCli(ns, ['reload', '--run-dir', runDir]);
      assert.equal(added.status, 0, added.stderr);
      // The file watch may have applied the rewrite first (it does under emulation): then this reload finds nothing new.
      assert.match(added.stdout, /rule 'extra' added|^reloaded: no changes$/m);
      assert.ok(((await json(['rules'])) as { name: string }[]).some((r) => r.name === 'extra'), 'the added rule runs');
      write('rules: [ { name: broken, listen: "127.0.0.1:1", target: "127.0.0.1:99999" } ]');
      const refused = await runCli(ns, ['reload', '--run-dir', runDir]);
      assert.equal(refused.status, 2);
      assert.match(refused.stderr, /rule 'broken': target: '99999' is not a port/);
      const after = await json(['status']);
      assert.equal(after.lastReload.ok, false);
      assert.equal(after.rules, 3, 'the refused config changed nothing');

      const client = await stream;
      const served = await sink.nextReport(slow(30_000));
      assert.equal(served.recvBytes, bytes);
      assert.equal(served.recvSha, client.sentSha);
    } finally {
      assert.equal(await proxy.stop(), 0);
    }
    for (const cmd of ['status', 'rules', 'conns', 'reload']) {
      const none = await runCli(ns, [cmd, '--run-dir', runDir]);
      assert.equal(none.status, 4, cmd);
      assert.match(none.stderr, /no bpfredir is running in this network namespace \(no admin socket at .*\); start one with bpfredir run/);
    }
  });

  test('forward has nothing to reload; a second forward in the netns runs without a socket', { timeout: slow(30_000) }, async () => {
    const first = await startBpfredir(ns, ['forward', '127.0.0.1:7410', `127.0.1.1:${named.port}`, '--run-dir', runDir]);
    const second = await startBpfredir(ns, ['forward', '127.0.0.1:7411', `127.0.1.1:${named.port}`, '--run-dir', runDir]);
    try {
      await second.waitForLog((l) => /^admin socket .* is another bpfredir's; this one runs without one \(pass --admin-socket PATH for one\)$/.test(l.msg));
      assert.equal((await json(['status'])).pid, first.pid);
      const reload = await runCli(ns, ['reload', '--run-dir', runDir]);
      assert.equal(reload.status, 2);
      assert.match(reload.stderr, /runs `forward`, which has no config file to reload/);
      const own = join(dir, 'second.sock');
      const third = await startBpfredir(ns, ['forward', '127.0.0.1:7412', `127.0.1.1:${named.port}`, '--admin-socket', own]);
      const rules = await runCli(ns, ['rules', '--json', '--admin-socket', own]);
      assert.equal(rules.status, 0, rules.stderr);
      assert.equal(JSON.parse(rules.stdout)[0].listen, '127.0.0.1:7412');
      assert.equal(await third.stop(), 0);
    } finally {
      assert.equal(await second.stop(), 0);
      assert.equal(await first.stop(), 0);
    }
  });
});
