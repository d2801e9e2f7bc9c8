/**
 * A steering rule that covers a rule's own target makes a loop: the proxy's
 * upstream connect is a new connection too, sk_lookup steers it back to
 * bpfredir, which connects again, until fds run out. Found with the same
 * precedence the kernel applies (longest prefix, then narrowest port block).
 */
import type { Config, SteerRule } from '../config/types.js';
import { BpfredirError } from '../errors.js';
import { bySpecificity, compileBindings, IPPROTO_TCP, type Binding } from './compile.js';
import { RuleIds } from './ids.js';
import { addressBytes, samePrefixBits } from './ip.js';

function covers(b: Binding, addr: Buffer, port: number): boolean {
  const last = b.port + 2 ** (16 - b.portBits) - 1;
  return b.protocol === IPPROTO_TCP && b.port <= port && port <= last && samePrefixBits(b.prefix.addr, addr, b.prefix.len);
}

/** One line per rule whose target its own config would steer back to bpfredir. */
export function steeringLoops(config: Config): string[] {
  const steerRules = config.rules.filter((r): r is SteerRule => r.kind === 'steer');
  if (steerRules.length === 0) return [];
  const ids = new RuleIds().assign(config.rules.map((r) => r.name));
  const names = new Map([...ids].map(([name, id]) => [id, name]));
  const bindings = [...compileBindings(steerRules, ids).bindings].sort(bySpecificity);
  const problems: string[] = [];
  for (const rule of config.rules) {
    let addr: Buffer;
    try {
      addr = addressBytes(rule.target.host);
    } catch {
      continue; // not resolved yet: nothing to compare
    }
    const winner = bindings.find((b) => covers(b, addr, rule.target.port));
    if (!winner) continue;
    const steerer = names.get(winner.ruleId)!;
    const { host, port } = rule.target;
    const target = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    problems.push(
      `${rule.source}: rule '${rule.name}': target ${target} is steered by rule '${steerer}' back to bpfredir, which would connect to it again in a loop; narrow '${steerer}' (destination or ports) so it leaves the target out`,
    );
  }
  return problems;
}

/** Throws ERR_BPFREDIR_CONFIG listing every loop; applies nothing. */
export function rejectSteeringLoops(config: Config): Config {
  const problems = steeringLoops(config);
  if (problems.length > 0) throw new BpfredirError('ERR_BPFREDIR_CONFIG', problems);
  return config;
}
