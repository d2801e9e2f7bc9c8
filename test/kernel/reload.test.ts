/**
 * Reload under load, through `bpfredir run --config` in a fresh netns, on each
 * way bytes move (recv/send copy, splice(2) relay, sockmap in the kernel): two
 * streams (one steered, one listened) run while rules are added, retargeted,
 * rejected (invalid file) and removed around them, by file change and by
 * SIGHUP. Every streamed byte arrives intact (sha256), and short connections
 * to the rules that do not change are never refused meanwhile.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startBpfredir, type BpfredirProcess, type LogLine } from '../helpers/bpfredir.js';
import { emulated, slow } from '../helpers/emulation.js';
import { bpfSkipReason, createNetns, type Netns } from '../helpers/netns.js';
import { runClient, startServer, type TrafficServer } from '../helpers/traffic.js';

const skip = bpfSkipReason();
const MiB = 1 << 20;
const sha = (text: string) => createHash('sha256').update(text).digest('hex');

const WAYS = [
  { label: 'recv/send copy', flags: ['--datapath', 'userspace'], settings: {} },
  { label: 'splice(2) relay', flags: ['--datapath', 'splice'], settings: { bulk_flows: 'relay' } },
  { label: 'sockmap in the kernel', flags: ['--datapath', 'splice'], settings: { bulk_flows: 'kernel', splice_after: 0 } },
];

describe('reload under load', { skip }, () => {
  let ns: Netns;
  let dir: string;
  const servers: TrafficServer[] = [];
  const named: Record<string, TrafficServer> = {};

  // Upstreams on 127.0.1.1, outside the steered 127.0.0.0/24.
  before(async () => {
    ns = createNetns('reload');
    dir = mkdtempSync(join(tmpdir(), 'bpfredir-reload-'));
    for (const name of ['steady', 'extra', 'new']) {
      named[name] = await startServer(ns, { mode: 'name', name, host: '127.0.1.1' });
      servers.push(named[name]!);
    }
  });

  after(async () => {
    for (const s of servers) await s.stop();
    ns?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function answer(host: string, port: number): Promise<string> {
    const client = await runClient(ns, { host, port, timeoutMs: slow(5000) });
    if (client.error) return `error: ${client.error}`;
    return Object.keys(named).find((name) => client.recvSha === sha(name)) ?? `unknown reply (${client.recvBytes} bytes)`;
  }

  for (const [i, way] of WAYS.entries()) {
    test(`${way.label}: streams survive adds, retargets, a rejected file and removals; unchanged rules never refuse`, { timeout: slow(120_000) }, async () => {
      const port = 7000 + i * 100; // each way its own ports: the previous daemon's sockets may linger
      const sinks = [await startServer(ns, { mode: 'slow', rate: 3 * MiB, host: '127.0.1.1' }), await startServer(ns, { mode: 'slow', rate: 3 * MiB, host: '127.0.1.1' })];
      servers.push(...sinks);
      const up = (s: TrafficServer) => `127.0.1.1:${s.port}`;
      const base = [
        { name: 'stream-steered', destination: '127.0.0.2', ports: port, target: up(sinks[0]!) },
        { name: 'stream-listened', listen: `127.0.0.1:${port + 1}`, target: up(sinks[1]!) },
        { name: 'steady-steered', destination: '127.0.0.3', ports: port + 2, target: up(named.steady!) },
        { name: 'steady-listened', listen: `127.0.0.1:${port + 3}`, target: up(named.steady!) },
      ];
      const extra = [
        { name: 'extra-steered', destination: '127.0.0.4', ports: port + 4, target: up(named.extra!) },
        { name: 'extra-listened', listen: `127.0.0.1:${port + 5}`, target: up(named.extra!) },
      ];
      const retargeted = base.map((r) => (r.name.startsWith('stream') ? { ...r, target: up(named.new!) } : r));
      const file = join(dir, `config-${i}.json`);
      // Written like an editor does (new file, rename over): the watch must see it.
      const write = (value: object | string) => {
        writeFileSync(`${file}.tmp`, typeof value === 'string' ? value : JSON.stringify({ ...way.settings, ...value }));
        renameSync(`${file}.tmp`, file);
      };
      write({ rules: base });
      const proxy: BpfredirProcess = await startBpfredir(ns, ['run', '--config', file, ...way.flags]);
      let reloads = 0;
      const reloaded = async (step: () => void, expect: (l: LogLine) => boolean) => {
        const seen = proxy.logs.filter(expect).length;
        step();
        await proxy.waitForLog(() => proxy.logs.filter(expect).length > seen, slow(10_000));
        reloads++;
      };
      try {
        // Short connections to the unchanged rules, all along.
        let probing = true;
        const refused: string[] = [];
        let probes = 0;
        const prober = (async () => {
          while (probing) {
            for (const [host, p] of [['127.0.0.3', port + 2], ['127.0.0.1', port + 3]] as const) {
              const who = await answer(host, p);
              probes++;
              if (who !== 'steady') refused.push(`${host}:${p} → ${who}`);
            }
          }
        })();
        const bytes = 24 * MiB; // ~8 s at the sinks' 3 MiB/s: the reloads happen mid-stream
        const streams = [runClient(ns, { host: '127.0.0.2', port, bytes, timeoutMs: slow(60_000) }), runClient(ns, { host: '127.0.0.1', port: port + 1, bytes, timeoutMs: slow(60_000) })];

        for (const rule of ['stream-steered', 'stream-listened']) await proxy.waitForLog((l) => l.msg === 'connected' && l.rule === rule);
        const ok = (l: LogLine) => l.msg === 'reloaded';
        await reloaded(() => write({ rules: [...base, ...extra] }), ok);
        assert.equal(await answer('127.0.0.4', port + 4), 'extra');
        assert.equal(await answer('127.0.0.1', port + 5), 'extra');

        await reloaded(() => write({ rules: [...retargeted, ...extra] }), ok);
        assert.equal(await answer('127.0.0.2', port), 'new', 'new connections go to the new target');
        assert.equal(await answer('127.0.0.1', port + 1), 'new');

        await reloaded(() => write('rules: [ { name: broken, listen: "127.0.0.1:1", target: "127.0.0.1:99999" } ]'), (l) => l.msg.startsWith('reload rejected'));
        assert.equal(await answer('127.0.0.4', port + 4), 'extra', 'a rejected config leaves the running rules');

        // The file again, then SIGHUP: the watch reloads the rewrite, SIGHUP once more (same content).
        await reloaded(() => write({ rules: retargeted }), ok);
        await reloaded(() => process.kill(proxy.pid, 'SIGHUP'), ok);
        assert.match(await answer('127.0.0.1', port + 5), /^error/, 'a removed listen rule refuses');
        assert.match(await answer('127.0.0.4', port + 4), /^error/, 'a removed steering rule no longer steers');

        for (const [k, stream] of streams.entries()) {
          const client = await stream;
          const served = await sinks[k]!.nextReport(slow(60_000));
          assert.equal(client.error, undefined, `stream ${k}`);
          assert.equal(served.recvBytes, bytes, `stream ${k}: every byte`);
          assert.equal(served.recvSha, client.sentSha, `stream ${k}: intact`);
        }
        probing = false;
        await prober;
        assert.deepEqual(refused, [], `${refused.length} of ${probes} connections to unchanged rules failed`);
        // Each probe starts a client process: under emulation (10-30x slower) far fewer fit in the streams' time.
        assert.ok(probes > (emulated ? 4 : 10), `only ${probes} probes ran`);
        assert.equal(reloads, 5);
      } finally {
        assert.equal(await proxy.stop(), 0);
      }
    });
  }
});
