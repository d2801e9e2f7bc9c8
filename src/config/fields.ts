/**
 * Parsers for single config values. Each returns the value or a reason that
 * says what is wrong and how to write it instead.
 */
import { isIP, isIPv6 } from 'node:net';
import { addressBytes, isMalformedIpv4, isLinkLocal, malformedIpv4Problem, parsePrefix, type Prefix } from '../rules/ip.js';
import { ANY_PORT, mergeRanges, type PortRange } from '../rules/ports.js';
import type { Endpoint } from './types.js';
import type { Parsed } from './units.js';
import type { TreeNode } from './yaml-tree.js';

const fail = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });

const HOSTNAME = /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*\.?$/;

function portNumber(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/**
 * Why bpfredir cannot bind or connect to this host as written, if so. The data
 * path reads addresses without a zone (inet_pton, no scope id), so a link-local
 * IPv6 address, which only means something with one, cannot be used.
 */
export function endpointHostProblem(host: string): string | undefined {
  if (isMalformedIpv4(host)) return malformedIpv4Problem(host);
  const noZone = 'which bpfredir does not support; use a global or unique-local IPv6 address';
  if (host.includes('%')) return `'${host}' has a zone (%${host.split('%')[1]}), ${noZone}`;
  if (isIPv6(host) && isLinkLocal(addressBytes(host))) return `'${host}' is link-local and needs a zone (e.g. [${host}%eth0]), ${noZone}`;
  return undefined;
}

/** The way parseEndpoint reads it: "host:port", "[v6]:port". */
export function formatEndpoint({ host, port }: Endpoint): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** "host:port", "[v6]:port"; host may be a name (resolved later). */
export function parseEndpoint(value: unknown): Parsed<Endpoint> {
  const text = String(value ?? '').trim();
  const example = 'write e.g. 127.0.0.1:9000, [::1]:9000 or localhost:9000';
  const bracketed = /^\[([^\]]*)\]:([^:]*)$/.exec(text);
  const plain = /^([^:[\]]*):([^:]*)$/.exec(text);
  const match = bracketed ?? plain;
  if (!match) {
    if (isIPv6(text.replace(/:\d+$/, ''))) return fail(`IPv6 addresses need brackets; write e.g. [::1]:9000`);
    return fail(`'${text}' is not host:port; ${example}`);
  }
  const host = match[1]!;
  const port = portNumber(match[2]!);
  if (bracketed && !isIPv6(host)) return fail(`'${host}' in brackets is not an IPv6 address; ${example}`);
  if (!bracketed && !isIP(host) && !HOSTNAME.test(host)) return fail(`'${host}' is not an IP address or host name; ${example}`);
  const problem = endpointHostProblem(host);
  if (problem) return fail(problem);
  if (port === undefined) return fail(`'${match[2]}' is not a port (1-65535); ${example}`);
  return { ok: true, value: { host, port } };
}

function parsePortItem(value: unknown): Parsed<PortRange> {
  const text = String(value ?? '').trim();
  const howTo = 'write e.g. 8080 or 8080-8090';
  if (text === 'any') return { ok: true, value: { ...ANY_PORT } };
  const range = /^(\S+?)\s*-\s*(\S+)$/.exec(text);
  if (range) {
    const lo = portNumber(range[1]!);
    const hi = portNumber(range[2]!);
    if (lo === undefined) return fail(`'${range[1]}' is not a port (1-65535); ${howTo}`);
    if (hi === undefined) return fail(`'${range[2]}' is not a port (1-65535); ${howTo}`);
    if (lo > hi) return fail(`'${text}' runs backwards; write ${hi}-${lo}`);
    return { ok: true, value: { lo, hi } };
  }
  const port = portNumber(text);
  if (port === undefined) return fail(`'${text}' is not a port (1-65535); ${howTo}`);
  return { ok: true, value: { lo: port, hi: port } };
}

/** A single value or a list of them, each parsed on its own; every bad item is reported. */
function parseEach<T>(node: TreeNode, item: (value: unknown) => Parsed<T>, examples: string): { values: T[]; problems: string[] } {
  const items = node.kind === 'seq' ? node.items : [node];
  const values: T[] = [];
  const problems: string[] = items.length === 0 ? [`empty list; write e.g. ${examples}`] : [];
  for (const node of items) {
    const parsed = node.kind === 'scalar' ? item(node.value) : fail(`a list must hold plain values; write e.g. ${examples}`);
    if (parsed.ok) values.push(parsed.value);
    else problems.push(parsed.reason);
  }
  return { values, problems };
}

/** host:port or a list of them (a rule's targets), in order. */
export function parseTargets(node: TreeNode): { endpoints: Endpoint[]; problems: string[] } {
  const { values, problems } = parseEach(node, parseEndpoint, '127.0.0.1:9000 or [10.0.0.5:80, 10.0.0.6:80]');
  return { endpoints: values, problems };
}

const INTERFACE_NAME = /^[A-Za-z0-9_.:@-]{1,15}$/;

/** eth0 | [eth0, wg0]: network interface names (IFNAMSIZ - 1 characters at most). */
export function parseInterfaces(node: TreeNode): { names: string[]; problems: string[] } {
  const name = (v: unknown): Parsed<string> =>
    typeof v === 'string' && INTERFACE_NAME.test(v) ? { ok: true, value: v } : fail(`'${v}' is not an interface name`);
  const { values, problems } = parseEach(node, name, 'eth0 or [eth0, eth1]');
  return { names: [...new Set(values)], problems };
}

/** 80 | 8080-8090 | any | a list of these. Ranges come back merged. */
export function parsePorts(node: TreeNode): { ranges: PortRange[]; problems: string[] } {
  const { values, problems } = parseEach(node, parsePortItem, '8080, 8080-8090, any or [80, 443]');
  return { ranges: mergeRanges(values), problems };
}

function parsePrefixItem(value: unknown): Parsed<Prefix> {
  const parsed = parsePrefix(String(value ?? ''));
  if (typeof parsed !== 'string') return { ok: true, value: parsed };
  return fail(parsed.includes('write') ? parsed : `${parsed}; write e.g. 10.0.0.0/8, 127.0.0.2 or ::2/128`);
}

/** One prefix or a list (destination:, allow:, deny:); bare addresses are host prefixes; repeats are dropped. */
export function parsePrefixes(node: TreeNode): { prefixes: Prefix[]; problems: string[] } {
  const { values, problems } = parseEach(node, parsePrefixItem, '127.0.0.2/32 or [10.0.0.0/8, "::2/128"]');
  const seen = new Set<string>();
  const prefixes = values.filter((p) => {
    const key = `${p.addr.toString('hex')}/${p.len}`;
    return !seen.has(key) && seen.add(key);
  });
  return { prefixes, problems };
}
