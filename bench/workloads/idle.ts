/**
 * Peak RSS of the redirector holding many idle connections. Tools that fork a process per
 * connection (socat, redir) are skipped: 10,000 processes would swamp a shared 2-core machine.
 */
import { join } from 'node:path';
import { Background, runInNetns, sleep, startBackground, treeMemory } from '../proc.js';
import { BENCH_TOOLS } from '../paths.js';
import { SERVICE_PORTS } from '../servers.js';
import { lastLines, waitOutput } from '../ready.js';
import { Metrics, NOFILE, Workload, withForward } from './workload.js';

const FORKING = ['socat', 'redir'];
const MB = 1e6;

async function establishedAtServer(netns: string): Promise<number> {
  const ss = await runInNetns({ netns, argv: ['ss', '-Htn', 'state', 'established', `( sport = :${SERVICE_PORTS.hold} )`] }, 10_000);
  return ss.stdout.split('\n').filter(Boolean).length;
}

export const idle: Workload = {
  name: 'idle-10k',
  once: true,
  appliesTo: (system) => system.kind !== 'direct' && !FORKING.includes(system.name),
  seconds: () => 15,
  run: (ctx) =>
    withForward(ctx, 'hold', undefined, async ({ endpoint, roots }): Promise<Metrics> => {
      const count = ctx.options.idleConnections;
      const before = treeMemory(roots);
      let client: Background | null = null;
      try {
        client = startBackground('idle client', {
          netns: ctx.topology.clientNs,
          argv: [process.execPath, join(BENCH_TOOLS, 'idle-conns.js'), 'hold', endpoint.host, String(endpoint.port), String(count)],
          nofile: NOFILE,
        });
        await waitOutput(client, /"connected"/, 60_000);
        const report = JSON.parse(client.output().trim().split('\n').pop()!) as { connected: number; failed: number; firstError: string };
        // The redirector connects upstream after accepting: wait until the server holds them all.
        let atServer = 0;
        for (let i = 0; i < 100 && atServer < report.connected; i++) {
          atServer = await establishedAtServer(ctx.topology.serverNs);
          if (atServer < report.connected) await sleep(100);
        }
        const held = treeMemory(roots);
        if (report.connected < count) {
          process.stderr.write(`bench: ${ctx.system.name}: only ${report.connected}/${count} idle connections (${report.firstError || lastLines(client.output())})\n`);
        }
        return {
          idleConnections: report.connected,
          idleAtServer: atServer,
          rssMB: held.rss / MB,
          rssBeforeMB: before.rss / MB,
          peakRssMB: held.hwm / MB,
          processes: held.processes,
        };
      } finally {
        await client?.stop();
      }
    }),
};
