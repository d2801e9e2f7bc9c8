/**
 * IP addresses as the kernel sees them in bind_key.addr: 16 bytes, network
 * order, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d) so one LPM trie serves both.
 */
import { isIPv4, isIPv6 } from 'node:net';

export const IPV4_MAPPED_PREFIX_BITS = 96;

/** A destination prefix in the kernel's address space (IPv4 already mapped). */
export interface Prefix {
  addr: Buffer; // 16 bytes, bits past len are zero
  len: number; // 0..128, in the IPv4-mapped space
  family: 4 | 6;
}

function ipv4Bytes(text: string): number[] {
  return text.split('.').map(Number);
}

/** 16 bytes of a literal IPv4 or IPv6 address; throws on anything else. */
export function addressBytes(text: string): Buffer {
  if (isIPv4(text)) {
    return Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...ipv4Bytes(text)]);
  }
  if (!isIPv6(text) || text.includes('%')) throw new Error(`'${text}' is not an IP address`);
  let groups = text;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    // Embedded IPv4 (::ffff:1.2.3.4): two trailing 16-bit groups.
    tail = ipv4Bytes(text.slice(lastColon + 1));
    groups = text.slice(0, lastColon + 1) + '0:0';
  }
  const [head, rest] = groups.split('::') as [string, string | undefined];
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const left = parse(head);
  const right = rest === undefined ? [] : parse(rest);
  const words = [...left, ...new Array(8 - left.length - right.length).fill(0), ...right];
  const out = Buffer.alloc(16);
  words.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  if (tail.length) out.set(tail, 12);
  return out;
}

/** The wildcard (unspecified) addresses, as 16 bytes. */
export const IPV4_ANY = addressBytes('0.0.0.0');
export const IPV6_ANY = addressBytes('::');

/**
 * Only numbers, like IPv4, but no dotted quad: 1.2.3, 0x7f.1, 017.0.0.1,
 * 2130706433, 1.2.3.256. No host name either (a top-level label is never all
 * digits), and getaddrinfo reads most of them the inet_aton way: 1.2.3 as
 * 1.2.0.3, 017.0.0.1 as 15.0.0.1, silently another host.
 */
export function isMalformedIpv4(text: string): boolean {
  return !isIPv4(text) && text.split('.').every((part) => /^(\d+|0x[0-9a-f]*)$/i.test(part));
}

/** The error for a malformed IPv4 address, wherever an address is read. */
export function malformedIpv4Problem(text: string): string {
  return `'${text}' is not a dotted-quad IPv4 address; write four decimal parts 0-255 without leading zeros, e.g. 10.0.0.1 (short, octal and hex forms mean other addresses)`;
}

/** fe80::/10: an address that means something only with a zone (the interface). */
export function isLinkLocal(addr: Buffer): boolean {
  return addr[0] === 0xfe && (addr[1]! & 0xc0) === 0x80;
}

export function isIpv4Mapped(addr: Buffer): boolean {
  return addr.subarray(0, 10).every((b) => b === 0) && addr[10] === 0xff && addr[11] === 0xff;
}

/** Zero every bit past `len`. Returns a new buffer. */
export function maskAddress(addr: Buffer, len: number): Buffer {
  const out = Buffer.from(addr);
  for (let bit = len; bit < 128; bit++) out[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return out;
}

/** Whether the first `len` bits of a and b agree. */
export function samePrefixBits(a: Buffer, b: Buffer, len: number): boolean {
  return maskAddress(a, len).equals(maskAddress(b, len));
}

/** Text form: dotted quad for IPv4-mapped addresses, compressed IPv6 otherwise. */
export function formatAddress(addr: Buffer): string {
  if (isIpv4Mapped(addr)) return Array.from(addr.subarray(12)).join('.');
  const words = Array.from({ length: 8 }, (_, i) => addr.readUInt16BE(i * 2));
  // Compress the longest run of zero words (RFC 5952).
  let best = { start: -1, len: 0 };
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > best.len && j - i > 1) best = { start: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(':');
  if (best.start < 0) return hex(words);
  return `${hex(words.slice(0, best.start))}::${hex(words.slice(best.start + best.len))}`;
}

/** "a.b.c.d/n" or "x::y/n" as the user would write it (IPv4 lengths unmapped). */
export function formatPrefix(p: Prefix): string {
  const len = p.family === 4 ? p.len - IPV4_MAPPED_PREFIX_BITS : p.len;
  return `${formatAddress(p.addr)}/${len}`;
}

/**
 * Parse "10.0.0.0/8", "::2/128" or a bare address (a host prefix).
 * Returns a reason string on error, including host bits set past the length.
 */
export function parsePrefix(text: string): Prefix | string {
  return parseIpv4Prefix(text) ?? parseAnyPrefix(text);
}

const IPV4_PREFIX = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/;

/**
 * The common case — a canonical IPv4 prefix, often 100k of them — without the
 * intermediate arrays and buffers of the general path (~0.2 s at 100k).
 * Anything unusual (leading zeros, bad octets, host bits set) returns
 * undefined and takes the general path, which also words the errors.
 */
function parseIpv4Prefix(text: string): Prefix | undefined {
  const m = IPV4_PREFIX.exec(text);
  if (!m) return undefined;
  const userLen = m[5] === undefined ? 32 : Number(m[5]);
  if (userLen > 32) return undefined;
  const addr = Buffer.alloc(16);
  addr[10] = 0xff;
  addr[11] = 0xff;
  for (let i = 0; i < 4; i++) {
    const octet = m[i + 1]!;
    if (octet.length > 1 && octet[0] === '0') return undefined;
    const value = Number(octet);
    if (value > 255) return undefined;
    addr[12 + i] = value;
  }
  const hostBits = userLen === 32 ? 0 : addr.readUInt32BE(12) & (0xffffffff >>> userLen);
  if (hostBits !== 0) return undefined;
  return { addr, len: userLen + IPV4_MAPPED_PREFIX_BITS, family: 4 };
}

function parseAnyPrefix(text: string): Prefix | string {
  const [host, lenText, extra] = text.split('/');
  if (extra !== undefined || host === undefined) return `'${text}' is not an address or prefix`;
  const family = isIPv4(host) ? 4 : isIPv6(host) && !host.includes('%') ? 6 : 0;
  if (family === 0) return isMalformedIpv4(host) ? malformedIpv4Problem(host) : `'${host}' is not an IP address`;
  const max = family === 4 ? 32 : 128;
  const userLen = lenText === undefined ? max : /^\d+$/.test(lenText) ? Number(lenText) : NaN;
  if (!(userLen >= 0 && userLen <= max)) return `'${text}' has a bad prefix length (0-${max} for IPv${family})`;
  const addr = addressBytes(host);
  const len = family === 4 ? userLen + IPV4_MAPPED_PREFIX_BITS : userLen;
  const masked = maskAddress(addr, len);
  if (!masked.equals(addr)) {
    const canonical = formatPrefix({ addr: masked, len, family });
    return `'${text}' has bits set past /${userLen}; write ${canonical}`;
  }
  // ::ffff:a.b.c.d/n (n >= 96) is an IPv4 prefix written the IPv6 way.
  const asIpv4 = family === 6 && len >= IPV4_MAPPED_PREFIX_BITS && isIpv4Mapped(addr);
  return { addr, len, family: asIpv4 ? 4 : family };
}
