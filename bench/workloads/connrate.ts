/**
 * New connections per second: wrk against a tiny nginx origin with Connection: close, so every
 * request is a new TCP connection through the redirector. CPU per connection shows where time goes.
 */
import { machineBusySeconds } from '../host.js';
import { runInNetns } from '../proc.js';
import { Metrics, NOFILE, Workload, withForward } from './workload.js';

const CONNECTIONS = 64;

function parseWrk(text: string): { requests: number; perSec: number; errors: number } {
  const perSec = /Requests\/sec:\s+([\d.]+)/.exec(text);
  const total = /(\d+) requests in/.exec(text);
  if (!perSec || !total) throw new Error(`could not parse wrk output: ${text.trim().split('\n').slice(-3).join(' | ')}`);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const errors = (socket ? socket.slice(1).reduce((s, n) => s + Number(n), 0) : 0) + Number(non2xx?.[1] ?? 0);
  return { requests: Number(total[1]), perSec: Number(perSec[1]), errors };
}

export const connrate: Workload = {
  name: 'connrate',
  appliesTo: () => true,
  seconds: (o) => o.seconds + 1,
  run: (ctx) =>
    withForward(ctx, 'http', undefined, async ({ endpoint, cpuSeconds }): Promise<Metrics> => {
      const seconds = ctx.options.seconds;
      const url = `http://${endpoint.host}:${endpoint.port}/`;
      const argv = ['wrk', '-t', '2', '-c', String(CONNECTIONS), '-d', `${seconds}s`, '--timeout', '2s', '-H', 'Connection: close', url];
      const machine0 = machineBusySeconds();
      const proc0 = cpuSeconds();
      const run = await runInNetns({ netns: ctx.topology.clientNs, argv, nofile: NOFILE }, (seconds + 15) * 1000);
      const machineCpu = machineBusySeconds() - machine0;
      const procCpu = cpuSeconds() - proc0;
      if (run.timedOut) throw new Error(`wrk did not finish within ${seconds + 15} s`);
      const wrk = parseWrk(run.stdout + run.stderr);
      return {
        connPerSec: wrk.perSec,
        connErrors: wrk.errors,
        machineCpuUsPerConn: (machineCpu * 1e6) / wrk.requests,
        procCpuUsPerConn: (procCpu * 1e6) / wrk.requests,
      };
    }),
};
