/**
 * The addresses a connection from this host to this host can go to, for the
 * loop check: a wildcard listen rule (0.0.0.0, [::]) takes every one of them.
 */
import { networkInterfaces } from 'node:os';
import { parsePrefix, type Prefix } from '../rules/ip.js';

/** Local on every Linux host, whatever the interfaces list: the loopback routes. */
const ALWAYS_LOCAL = ['127.0.0.0/8', '::1'];

export function localPrefixes(interfaces = networkInterfaces()): Prefix[] {
  const addresses = Object.values(interfaces).flatMap((list) => (list ?? []).map((i) => i.address));
  return [...ALWAYS_LOCAL, ...addresses].map(parsePrefix).filter((p): p is Prefix => typeof p !== 'string');
}
