/**
 * Parsers for single config values. Each returns the value or a reason that
 * says what is wrong and how to write it instead.
 */
import { isIP, isIPv6 } from 'node:net';
import { parsePrefix, type Prefix } from '../rules/ip.js';
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

/** 80 | 8080-8090 | any | a list of these. Ranges come back merged. */
export function parsePorts(node: TreeNode): { ranges: PortRange[]; problems: string[] } {
  const items = node.kind === 'seq' ? node.items : [node];
  const problems: string[] = [];
  const ranges: PortRange[] = [];
  if (items.length === 0) problems.push('empty list; write e.g. 8080, 8080-8090, any or [80, 443]');
  for (const item of items) {
    const parsed = item.kind === 'scalar' ? parsePortItem(item.value) : fail('a list of ports must hold plain values like 80 or 8080-8090');
    if (parsed.ok) ranges.push(parsed.value);
    else problems.push(parsed.reason);
  }
  return { ranges: mergeRanges(ranges), problems };
}

/** One prefix or a list; bare addresses are host prefixes. */
export function parseDestinations(node: TreeNode): { prefixes: Prefix[]; problems: string[] } {
  const items = node.kind === 'seq' ? node.items : [node];
  const problems: string[] = [];
  const prefixes: Prefix[] = [];
  if (items.length === 0) problems.push('empty list; write e.g. 127.0.0.2/32 or [10.0.0.0/8, "::2/128"]');
  for (const item of items) {
    const parsed = item.kind === 'scalar' ? parsePrefix(String(item.value ?? '')) : 'a list of prefixes must hold plain values like 10.0.0.0/8';
    if (typeof parsed === 'string') problems.push(parsed.includes('write') ? parsed : `${parsed}; write e.g. 10.0.0.0/8, 127.0.0.2 or ::2/128`);
    else if (!prefixes.some((p) => p.len === parsed.len && p.addr.equals(parsed.addr))) prefixes.push(parsed);
  }
  return { prefixes, problems };
}
