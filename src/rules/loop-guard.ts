/**
 * Which rules' listeners pay for the engine's runtime loop guard
 * (native/loop_guard.h), the last defence behind config validation (loops.ts):
 * those whose target could reach one of bpfredir's own listeners. That is a
 * target port some listen rule listens on (at any address: addresses of this
 * host change under a running daemon) or a port some steering rule takes.
 * Every other listener keeps the cheaper plain connect.
 */
import type { Config, Endpoint } from '../config/types.js';

const PORTS = 65536;

/** Per config, which ports could lead back to us: built once, since configs can hold 100k rules. */
const guardedPorts = new WeakMap<Config, Uint8Array>();

function portsReachingUs(config: Config): Uint8Array {
  // A difference array over the port space: ranges cost O(1) each, however wide.
  const delta = new Int32Array(PORTS + 1);
  const add = (lo: number, hi: number) => {
    delta[lo]!++;
    delta[hi + 1]!--;
  };
  for (const rule of config.rules) {
    if (rule.kind === 'listen') add(rule.listen.port, rule.listen.port);
    else for (const range of rule.ports) add(range.lo, range.hi);
  }
  const ports = new Uint8Array(PORTS);
  let depth = 0;
  for (let port = 0; port < PORTS; port++) ports[port] = (depth += delta[port]!) > 0 ? 1 : 0;
  return ports;
}

/** Whether a rule with this target gets ListenerOptions.loopGuard. */
export function needsLoopGuard(config: Config, target: Endpoint): boolean {
  let ports = guardedPorts.get(config);
  if (!ports) guardedPorts.set(config, (ports = portsReachingUs(config)));
  return ports[target.port] === 1;
}
