/**
 * Peak RSS of the redirector holding many idle connections. Tools that fork a process per
 * connection (socat, redir) are skipped: 10,000 processes would swamp a shared 2-core machine.
 * A redirector needs two descriptors per connection; where the hard RLIMIT_NOFILE (which only
 * CAP_SYS_RESOURCE can raise) does not allow the requested count, we hold as many as fit and
 * also report RSS extrapolated linearly to the requested count.
 */
import { join } from 'node:path';
import { Background, hardNofileLimit, sleep, startBackground, treeMemory } from '../proc.js';
import { BENCH_TOOLS } from '../paths.js';
import { lastLines, waitOutput } from '../ready.js';
import { Metrics, NOFILE, Workload, withForward } from './workload.js';

const FORKING = ['socat', 'redir'];
const MB = 1e6;

/** The hold server prints "held N" whenever its count changes. */
function heldAtServer(server: Background): number {
  const counts = [...server.output().matchAll(/held (\d+)/g)];
  return counts.length ? Number(counts[counts.length - 1][1]) : 0;
}

export const idle: Workload = {
  name: 'idle-10k',
  repeat: 'once',
  appliesTo: (system) => system.kind !== 'direct' && !FORKING.includes(system.name),
  seconds: () => 8,
  run: (ctx) =>
    withForward(ctx, 'hold', undefined, async ({ endpoint, roots, server }): Promise<Metrics> => {
      const wanted = ctx.options.idleConnections;
      const DESCRIPTORS_IN_USE = 100; // listener, epoll, pipes, libraries …
      const count = Math.min(wanted, Math.floor((hardNofileLimit() - DESCRIPTORS_IN_USE) / 2));
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
        // The redirector connects upstream after accepting: wait until the server holds them all
        // (or the count stops growing for a second; some tools cap their connections).
        let atServer = 0;
        const deadline = performance.now() + 20_000;
        for (let stableSince = performance.now(); atServer < report.connected && performance.now() < deadline; ) {
          await sleep(200);
          const now = heldAtServer(server);
          if (now > atServer) stableSince = performance.now();
          else if (performance.now() - stableSince > 1000) break;
          atServer = now;
        }
        const held = treeMemory(roots);
        if (Math.min(report.connected, atServer) < count) {
          const why = report.firstError || lastLines(client.output());
          process.stderr.write(`bench: ${ctx.system.name}: ${report.connected}/${count} idle connections accepted, ${atServer} reached the server (${why})\n`);
        }
        const endToEnd = Math.min(report.connected, atServer);
        const perConnection = endToEnd > 0 ? (held.rss - before.rss) / endToEnd : NaN;
        return {
          idleConnections: endToEnd,
          acceptedFromClient: report.connected,
          rssAtRequestedMB: (before.rss + perConnection * wanted) / MB,
          rssPerConnectionKB: perConnection / 1000,
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
