/** Host names in listen/target are resolved once, at load; the kernel and engine see literals. */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { BpfredirError, errnoCode } from '../errors.js';
import { endpointHostProblem } from './fields.js';
import type { Config, Endpoint, Rule } from './types.js';

export type HostLookup = (host: string) => Promise<string>;

const systemLookup: HostLookup = async (host) => (await dnsLookup(host)).address;

/** Replace every host name with its first address; all failures are reported together. */
export async function resolveHostnames(config: Config, lookup: HostLookup = systemLookup): Promise<Config> {
  const problems: string[] = [];
  const resolve = async (rule: Rule, field: string, endpoint: Endpoint): Promise<Endpoint> => {
    if (isIP(endpoint.host)) return endpoint;
    const where = `${rule.source}: rule '${rule.name}': ${field}`;
    try {
      const host = await lookup(endpoint.host);
      const problem = endpointHostProblem(host);
      if (problem) problems.push(`${where}: '${endpoint.host}' resolves to ${host}: ${problem}`);
      return { host, port: endpoint.port };
    } catch (err) {
      problems.push(`${where}: cannot resolve '${endpoint.host}' (${errnoCode(err) ?? 'lookup failed'}); use an IP address or fix the name`);
      return endpoint;
    }
  };
  const rules = await Promise.all(
    config.rules.map(async (rule): Promise<Rule> => {
      const targets = await Promise.all(rule.targets.map((t) => resolve(rule, 'target', t)));
      if (rule.kind === 'listen') return { ...rule, targets, listen: await resolve(rule, 'listen', rule.listen) };
      return { ...rule, targets };
    }),
  );
  for (const rule of rules) {
    for (const target of rule.targets) {
      const family = isIP(target.host);
      if (rule.sourceAddress && family && isIP(rule.sourceAddress) !== family) {
        problems.push(`${rule.source}: rule '${rule.name}': source: ${rule.sourceAddress} cannot reach target ${target.host} (another address family); use an IPv${family} source`);
      }
    }
  }
  if (problems.length) throw new BpfredirError('ERR_BPFREDIR_CONFIG', problems);
  return { ...config, rules };
}
