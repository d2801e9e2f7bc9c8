/**
 * Bounded memory on the splice path: a fast sender into an upstream that reads
 * at ~1 MB/s for 10 s. Without a budget the kernel would queue everything the
 * sender can push (hundreds of MB); with it, kernel memory stays within the
 * budget plus socket buffers, and every byte still arrives intact once the
 * reader speeds up.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { bpfMapsOf, ruleStats } from '../helpers/bpf-maps.js';
import { startBpfredir, type BpfredirProcess } from '../helpers/bpfredir.js';
import { bpfSkipReason, createNetns, type Netns } from '../helpers/netns.js';
import { memAvailableBytes, tcpByteCounters } from '../helpers/proc.js';
import { runClient, startServer, type TrafficServer } from '../helpers/traffic.js';

const MiB = 1 << 20;
const skip = bpfSkipReason();

describe('backpressure', { skip }, () => {
  let ns: Netns;
  let slow: TrafficServer;
  let proxy: BpfredirProcess;
  const budget = 4 * MiB;
  const sndbuf = 4 * MiB;

  before(async () => {
    ns = createNetns('bp');
    slow = await startServer(ns, { mode: 'slow', rate: MiB, slowMs: 10_000 });
    proxy = await startBpfredir(ns, [
      'forward', '127.0.0.1:8300', `127.0.0.1:${slow.port}`, '--datapath', 'splice',
      '--budget', String(budget), '--sndbuf', String(sndbuf),
      // Every byte on the kernel path: a bulk flow would otherwise stay on the splice(2) relay.
      '--splice-after', '0',
    ]);
  });

  after(async () => {
    await proxy?.stop();
    await slow?.stop();
    ns?.destroy();
  });

  /** Bytes that left the client (acked by the proxy) but did not reach the upstream
   *  server yet: everything the kernel holds between the two, psock queue included. */
  function heldBetween(): number {
    let leftClient = 0;
    let reachedServer = 0;
    for (const [endpoints, counters] of tcpByteCounters(ns)) {
      const [local, peer] = endpoints.split(' ');
      if (peer!.endsWith(':8300')) leftClient = counters.acked;
      if (local!.endsWith(`:${slow.port}`)) reachedServer = counters.received;
    }
    return Math.max(0, leftClient - reachedServer);
  }

  test('a slow reader holds kernel memory within the budget and loses nothing', { timeout: 120_000 }, async (t) => {
    const total = 512 * MiB;
    const memBefore = memAvailableBytes();
    let lowestMem = memBefore;
    let mostHeld = 0;
    let clientDone = false;
    const client = runClient(ns, { port: 8300, bytes: total, timeoutMs: 100_000 }).finally(() => (clientDone = true));
    const sampler = setInterval(() => {
      lowestMem = Math.min(lowestMem, memAvailableBytes());
      mostHeld = Math.max(mostHeld, heldBetween());
    }, 100);

    // While the reader is slow the sender must be held back, not buffered: without
    // a bound the kernel would take all 512 MiB within a second or two.
    await new Promise((r) => setTimeout(r, 9_000));
    clearInterval(sampler);
    assert.equal(clientDone, false, 'the sender was not held back by a 1 MB/s reader');

    const [sent, served] = await Promise.all([client, slow.nextReport(100_000)]);
    const stats = ruleStats(bpfMapsOf(proxy.pid).get('rule_stats')!, 1);
    const line =
      `while the reader was slow the kernel held at most ${(mostHeld / MiB).toFixed(1)} MiB between client and ` +
      `upstream (budget ${budget / MiB} MiB, sndbuf ${sndbuf / MiB} MiB; MemAvailable fell at most ` +
      `${((memBefore - lowestMem) / MiB).toFixed(1)} MiB, machine-wide); paused ${stats.paused} times`;
    t.diagnostic(line);
    console.log(line);

    assert.equal(sent.error, undefined);
    assert.equal(served.recvBytes, total);
    assert.equal(served.recvSha, sent.sentSha, 'every byte arrived intact');
    assert.ok(stats.paused > 0n, 'the budget paused the splice');
    // Budget + the proxy socket's receive buffer (paused bytes) + the upstream
    // socket's send buffer (doubled by the kernel) + the server's receive buffer.
    const rcvbufMax = Number(readFileSync('/proc/sys/net/ipv4/tcp_rmem', 'utf8').trim().split(/\s+/)[2]);
    assert.ok(mostHeld > 0, 'sampled the transfer');
    assert.ok(mostHeld <= budget + rcvbufMax + 2 * sndbuf + rcvbufMax, line);
  });
});
