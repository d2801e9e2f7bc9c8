/**
 * Proves the splice runs in the kernel: over 1 GiB the bpfredir process uses far
 * less CPU than the user-space relay, and the BPF byte counters equal the bytes
 * transferred. Prints CPU seconds per GiB (process, kernel workers, whole
 * machine) for each run so the figures are in every test log:
 *   - splice with no budget: the kernel data path alone (the proof);
 *   - the user-space relay (splice(2) through pipes);
 *   - splice with the default budget: how much the pauses moved to user space.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RuleStats } from '../../src/abi.js';
import { bpfMapsOf, ruleStats } from '../helpers/bpf-maps.js';
import { startBpfredir } from '../helpers/bpfredir.js';
import { emulated } from '../helpers/emulation.js';
import { bpfSkipReason, createNetns, type Netns } from '../helpers/netns.js';
import { cpuSeconds, kworkerCpuSeconds, machineCpuSeconds } from '../helpers/proc.js';
import { runClient, startServer, type TrafficServer } from '../helpers/traffic.js';

const GiB = 1 << 30;
const skip = bpfSkipReason();

interface Run {
  process: number;
  kworkers: number;
  machine: number;
  seconds: number;
  stats?: RuleStats;
}

describe('in-kernel splice', { skip }, () => {
  let ns: Netns;
  let sink: TrafficServer;
  let port = 8200;

  before(async () => {
    ns = createNetns('proof');
    sink = await startServer(ns, { mode: 'sink' });
  });

  after(async () => {
    await sink?.stop();
    ns?.destroy();
  });

  /** 1 GiB from a client through `bpfredir forward ...flags` into the sink. */
  async function transfer(label: string, flags: string[], log: (line: string) => void): Promise<Run> {
    const listen = `127.0.0.1:${++port}`;
    const proxy = await startBpfredir(ns, ['forward', listen, `127.0.0.1:${sink.port}`, ...flags]);
    try {
      const before = { process: cpuSeconds(proxy.pid), kworkers: kworkerCpuSeconds(), machine: machineCpuSeconds(), at: performance.now() };
      const client = await runClient(ns, { port, bytes: GiB, timeoutMs: 100_000 });
      const served = await sink.nextReport(100_000);
      await proxy.waitForLog((l) => l.msg === 'closed');
      const run: Run = {
        process: cpuSeconds(proxy.pid) - before.process,
        kworkers: kworkerCpuSeconds() - before.kworkers,
        machine: machineCpuSeconds() - before.machine,
        seconds: (performance.now() - before.at) / 1000,
      };
      assert.equal(client.error, undefined);
      assert.equal(served.recvSha, client.sentSha, 'every byte arrived intact');
      if (flags.includes('splice')) run.stats = ruleStats(bpfMapsOf(proxy.pid).get('rule_stats')!, 1);
      const passed = run.stats ? `; ${run.stats.paused} pauses, ${((Number(run.stats.bytesPassed) / GiB) * 100).toFixed(1)} % relayed in user space while paused` : '';
      log(
        `${label}: CPU-s per GiB: bpfredir process ${run.process.toFixed(3)}, kernel workers ${run.kworkers.toFixed(3)}, ` +
          `whole machine ${run.machine.toFixed(3)}; ${((GiB * 8) / run.seconds / 1e9).toFixed(2)} Gbit/s incl. client and sink${passed}`,
      );
      return run;
    } finally {
      assert.equal(await proxy.stop(), 0);
    }
  }

  const report = (t: { diagnostic(s: string): void }) => (line: string) => {
    t.diagnostic(line);
    console.log(line);
  };

  test('the bytes go through the kernel, not the bpfredir process', { timeout: 300_000 }, async (t) => {
    // --splice-after 0: every byte, from the first, on the kernel path.
    const kernel = await transfer('splice, no budget', ['--datapath', 'splice', '--budget', '0', '--splice-after', '0'], report(t));
    const relay = await transfer('user-space relay', ['--datapath', 'userspace'], report(t));

    assert.equal(kernel.stats!.bytesToUpstream, BigInt(GiB), 'BPF counter = bytes transferred');
    assert.equal(kernel.stats!.bytesToClient, 0n);
    assert.equal(kernel.stats!.redirectFailed, 0n);
    assert.equal(kernel.stats!.bytesPassed, 0n);
    const cpu = `splice process ${kernel.process.toFixed(3)} s vs relay ${relay.process.toFixed(3)} s per GiB`;
    // Emulated, a transfer lasts minutes and the process's timers outweigh the bytes it does not
    // touch: the counters above are the proof there, the CPU ratio is only reported.
    if (emulated) t.diagnostic(`${cpu} (emulated CPU: ratio not asserted)`);
    else assert.ok(kernel.process < 0.25 * relay.process, cpu);
  });

  test('with a budget every byte still arrives and is counted', { timeout: 120_000 }, async (t) => {
    const budgeted = await transfer('splice, 16 MiB budget', ['--datapath', 'splice', '--budget', '16MiB', '--splice-after', '0'], report(t));
    const { bytesToUpstream, bytesPassed } = budgeted.stats!;
    assert.equal(bytesToUpstream, BigInt(GiB), 'BPF counter = bytes transferred, paused or not');
    assert.ok(bytesPassed < bytesToUpstream);
  });
});
