/**
 * Proves the splice runs in the kernel: over 1 GiB the bpfredir process uses far
 * less CPU than the copying relay, and the BPF byte counters equal the bytes
 * transferred. Prints CPU seconds per GiB for both paths (process, kernel
 * workers, whole machine) so the figures are in every test log.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { bpfMapsOf, ruleStats } from '../helpers/bpf-maps.js';
import { startBpfredir } from '../helpers/bpfredir.js';
import { bpfSkipReason, createNetns, type Netns } from '../helpers/netns.js';
import { cpuSeconds, kworkerCpuSeconds, machineCpuSeconds } from '../helpers/proc.js';
import { runClient, startServer, type TrafficServer } from '../helpers/traffic.js';

const GiB = 1 << 30;
const skip = bpfSkipReason();

interface Cost {
  process: number;
  kworkers: number;
  machine: number;
  seconds: number;
}

describe('in-kernel splice', { skip }, () => {
  let ns: Netns;
  let sink: TrafficServer;
  const cost: Partial<Record<'splice' | 'userspace', Cost>> = {};
  // Share of the bytes user space relayed while the budget paused the splice.
  let passedShare: number | undefined;

  before(async () => {
    ns = createNetns('proof');
    sink = await startServer(ns, { mode: 'sink' });
  });

  after(async () => {
    await sink?.stop();
    ns?.destroy();
  });

  for (const datapath of ['splice', 'userspace'] as const) {
    test(`1 GiB through the ${datapath} path`, { timeout: 120_000 }, async (t) => {
      const proxy = await startBpfredir(ns, ['forward', '127.0.0.1:8200', `127.0.0.1:${sink.port}`, '--datapath', datapath]);
      try {
        const before = { process: cpuSeconds(proxy.pid), kworkers: kworkerCpuSeconds(), machine: machineCpuSeconds(), at: performance.now() };
        const client = await runClient(ns, { port: 8200, bytes: GiB, timeoutMs: 100_000 });
        const served = await sink.nextReport(100_000);
        await proxy.waitForLog((l) => l.msg === 'closed');
        const spent: Cost = {
          process: cpuSeconds(proxy.pid) - before.process,
          kworkers: kworkerCpuSeconds() - before.kworkers,
          machine: machineCpuSeconds() - before.machine,
          seconds: (performance.now() - before.at) / 1000,
        };
        cost[datapath] = spent;
        const line =
          `${datapath}: CPU-s per GiB: bpfredir process ${spent.process.toFixed(3)}, kernel workers ${spent.kworkers.toFixed(3)}, ` +
          `whole machine ${spent.machine.toFixed(3)}; ${((GiB * 8) / spent.seconds / 1e9).toFixed(2)} Gbit/s incl. client and sink`;
        t.diagnostic(line);
        console.log(line);
        if (datapath === 'splice') {
          const stats = ruleStats(bpfMapsOf(proxy.pid).get('rule_stats')!, 1);
          passedShare = Number(stats.bytesPassed) / GiB;
          const passed = `splice: ${stats.paused} pauses; ${((Number(stats.bytesPassed) / GiB) * 100).toFixed(1)} % of the bytes relayed in user space while paused`;
          t.diagnostic(passed);
          console.log(passed);
        }

        assert.equal(client.error, undefined);
        assert.equal(served.recvSha, client.sentSha);
        if (datapath === 'splice') {
          const stats = ruleStats(bpfMapsOf(proxy.pid).get('rule_stats')!, 1);
          assert.equal(stats.bytesToUpstream, BigInt(GiB), 'BPF counter = bytes transferred');
          assert.equal(stats.bytesToClient, 0n);
          assert.equal(stats.redirectFailed, 0n);
        }
      } finally {
        assert.equal(await proxy.stop(), 0);
      }
    });
  }

  test('the kernel carries the bytes: the bpfredir process works less than the relay', () => {
    assert.ok(cost.splice && cost.userspace, 'both paths measured');
    assert.ok(passedShare !== undefined && passedShare < 0.5, `user space relayed ${((passedShare ?? 1) * 100).toFixed(1)} % while paused`);
    assert.ok(
      cost.splice.process < cost.userspace.process,
      `splice process ${cost.splice.process.toFixed(3)} s vs relay ${cost.userspace.process.toFixed(3)} s per GiB`,
    );
  });
});
