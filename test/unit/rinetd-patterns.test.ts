import { test } from 'node:test';
import assert from 'node:assert/strict';
import { patternMatches, patternPrefixes } from '../../src/compat/rinetd-patterns.js';
import { formatPrefix, type Prefix } from '../../src/rules/ip.js';
import { seededRandom as random } from '../helpers/random.js';

/** The oracle: rinetd's glob as a regular expression over the dotted quad. */
function globRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.?*]/g, (c) => ({ '.': '\\.', '?': '.', '*': '.*' })[c]!);
  return new RegExp(`^${body}$`);
}

function prefixesOf(pattern: string, maxPrefixes?: number): Prefix[] {
  const result = patternPrefixes(pattern, maxPrefixes);
  assert.ok(typeof result !== 'string', `${pattern}: ${String(result)}`);
  return result;
}

/** IPv4 prefixes as sets of network numbers per length, for quick membership. */
function ipv4Membership(prefixes: readonly Prefix[]): (address: number) => boolean {
  const byLength = new Map<number, Set<number>>();
  for (const p of prefixes) {
    if (p.family !== 4) continue;
    const bits = p.len - 96;
    if (!byLength.has(bits)) byLength.set(bits, new Set());
    byLength.get(bits)!.add(p.addr.readUInt32BE(12));
  }
  const lengths = [...byLength];
  return (address) => lengths.some(([bits, networks]) => networks.has(bits === 0 ? 0 : (address & (~0 << (32 - bits))) >>> 0));
}

const dotted = (a: number) => [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join('.');
const fromOctets = (o: readonly number[]) => ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0;

/**
 * Addresses near the interesting ones: every value of each octet in turn
 * around fixed and random bases, plus random addresses.
 */
function sampleAddresses(): number[] {
  const next = random(20240601);
  const byte = () => Math.floor(next() * 256);
  const bases = [
    [192, 168, 1, 1],
    [192, 168, 2, 15],
    [10, 0, 0, 1],
    [11, 0, 0, 1],
    [127, 0, 0, 1],
    [121, 2, 3, 4],
    [1, 2, 3, 4],
    [2, 5, 7, 9],
    [205, 1, 2, 3],
    [0, 0, 0, 0],
    [255, 255, 255, 255],
    ...Array.from({ length: 8 }, () => [byte(), byte(), byte(), byte()]),
  ];
  const samples: number[] = [];
  for (const base of bases) {
    for (let position = 0; position < 4; position++) {
      for (let value = 0; value < 256; value++) samples.push(fromOctets(base.map((o, i) => (i === position ? value : o))));
    }
  }
  for (let i = 0; i < 20000; i++) samples.push(Math.floor(next() * 2 ** 32));
  return samples;
}

const SAMPLES = sampleAddresses();

const CONVERTIBLE = [
  '192.168.1.*',
  '10.*',
  '192.168.2.1?',
  '1?.0.0.1',
  '1*1.2.3.4',
  '*.*.*.*',
  '127.0.0.1',
  '*',
  '2?5.*',
  '10.0.0.*1',
  '1*',
  '1.2.3.4*',
  '?.?.?.?',
  '1.2.*.3',
  '1**?.*',
];

test('prefixes hold exactly the addresses whose text matches the glob', () => {
  for (const pattern of CONVERTIBLE) {
    const oracle = globRegExp(pattern);
    const inside = ipv4Membership(prefixesOf(pattern));
    for (const address of SAMPLES) {
      const text = dotted(address);
      const expected = oracle.test(text);
      assert.equal(inside(address), expected, `${pattern} vs ${text}`);
      assert.equal(patternMatches(pattern, text), expected, `glob ${pattern} vs ${text}`);
    }
  }
});

test('the prefix list is the smallest one: sorted, disjoint, no two halves of one block', () => {
  for (const pattern of CONVERTIBLE) {
    const v4 = prefixesOf(pattern).filter((p) => p.family === 4);
    const ranges = v4.map((p) => {
      const start = p.addr.readUInt32BE(12);
      const size = 2 ** (128 - p.len);
      assert.equal(start % size, 0, `${pattern}: ${formatPrefix(p)} is aligned`);
      return { start, size };
    });
    for (let i = 1; i < ranges.length; i++) {
      const [a, b] = [ranges[i - 1]!, ranges[i]!];
      assert.ok(a.start + a.size <= b.start, `${pattern}: sorted and disjoint`);
      const siblings = a.size === b.size && a.start + a.size === b.start && a.start % (2 * a.size) === 0;
      assert.ok(!siblings, `${pattern}: ${dotted(a.start)} and ${dotted(b.start)} would merge`);
    }
  }
});

test('examples read as CIDR', () => {
  const cidrs = (pattern: string) => prefixesOf(pattern).map(formatPrefix);
  assert.deepEqual(cidrs('192.168.1.*'), ['192.168.1.0/24']);
  assert.deepEqual(cidrs('10.*'), ['10.0.0.0/8']);
  assert.deepEqual(cidrs('192.168.2.1?'), ['192.168.2.10/31', '192.168.2.12/30', '192.168.2.16/30']);
  assert.deepEqual(cidrs('127.0.0.1'), ['127.0.0.1/32']);
  assert.deepEqual(cidrs('*.*.*.*'), ['0.0.0.0/0']);
  // '?' matches a dot too: 2?5.* also covers 2.5.x.y.
  assert.deepEqual(cidrs('2?5.*'), ['2.5.0.0/16', '205.0.0.0/8', '215.0.0.0/8', '225.0.0.0/8', '235.0.0.0/8', '245.0.0.0/8', '255.0.0.0/8']);
  assert.equal(cidrs('1?.0.0.1').length, 10);
});

test("'*' alone is every IPv4 and every IPv6 client", () => {
  const all = prefixesOf('*');
  assert.deepEqual(
    all.map((p) => [formatPrefix(p), p.len, p.family]),
    [
      ['0.0.0.0/0', 96, 4],
      ['::/0', 0, 6],
    ],
  );
  assert.deepEqual(prefixesOf('***').map(formatPrefix), ['0.0.0.0/0', '::/0']);
});

test('IPv4 patterns give IPv4 prefixes only, though rinetd would match IPv6 text too', () => {
  assert.ok(prefixesOf('1*').every((p) => p.family === 4));
  assert.equal(patternMatches('*1', '2001:db8::1'), true, "rinetd's glob, the reference model");
});

test('too many prefixes: the reason says how many and what to write instead', () => {
  assert.equal(
    patternPrefixes('*.1'),
    "pattern '*.1' matches 16777216 separate address blocks, more than the 4096 prefixes allowed; write the ranges you mean as CIDR prefixes instead (e.g. 10.0.0.0/8)",
  );
  assert.match(patternPrefixes('*1') as string, /^pattern '\*1' matches 436207616 separate address blocks/);
  assert.match(patternPrefixes('1?.0.0.1', 9) as string, /matches 10 separate address blocks, more than the 9 prefixes allowed/);
  assert.equal(prefixesOf('1?.0.0.1', 10).length, 10);
  assert.equal(prefixesOf('1.2.*3', 10000).length, 256 * 26);
});

test('patterns no address can match give no prefixes', () => {
  for (const pattern of ['999.*', '010.0.0.1', '1.2.3.4.5', '1.2.3', '1234567890123456*']) assert.deepEqual(patternPrefixes(pattern), [], pattern);
});

test('IPv6: exact addresses as the client text reads, no wildcards', () => {
  assert.deepEqual(
    prefixesOf('2001:db8::1').map((p) => [formatPrefix(p), p.family]),
    [['2001:db8::1/128', 6]],
  );
  assert.deepEqual(prefixesOf('::1').map(formatPrefix), ['::1/128']);
  assert.equal(patternPrefixes('::ffff:10.1.2.3'), "pattern '::ffff:10.1.2.3' is an IPv4 client as a dual-stack listener writes it; write 10.1.2.3");
  assert.deepEqual(prefixesOf('::1.2.3.4').map(formatPrefix), ['::102:304/128'], 'IPv4-compatible, as glibc prints it');
  assert.match(patternPrefixes('::102:304') as string, /which reads ::1\.2\.3\.4; write that/);
  assert.equal(
    patternPrefixes('2001:DB8::1'),
    "pattern '2001:DB8::1' never matches: rinetd compares the client's address as text, which reads 2001:db8::1; write that",
  );
  assert.match(patternPrefixes('2001:0db8::1') as string, /which reads 2001:db8::1/);
  assert.equal(
    patternPrefixes('fe80:*'),
    "pattern 'fe80:*' is an IPv6 wildcard, which has no exact prefix form; write a CIDR prefix instead, e.g. 2001:db8::/32",
  );
  assert.match(patternPrefixes('2001:618:*:e43f') as string, /IPv6 wildcard/);
  assert.match(patternPrefixes('abc') as string, /neither an IPv4 pattern nor an IPv6 address/);
});

test('CIDR prefixes are accepted as an extension', () => {
  assert.deepEqual(prefixesOf('10.0.0.0/8').map((p) => [formatPrefix(p), p.len]), [['10.0.0.0/8', 104]]);
  assert.deepEqual(prefixesOf('2001:db8::/32').map(formatPrefix), ['2001:db8::/32']);
  assert.equal(patternPrefixes('10.0.0.1/8'), "pattern '10.0.0.1/8' has bits set past /8; write 10.0.0.0/8");
  assert.match(patternPrefixes('10.*/8') as string, /mixes a wildcard with a prefix length/);
  assert.equal(patternMatches('10.0.0.0/8', '10.200.0.1'), true);
  assert.equal(patternMatches('10.0.0.0/8', '11.0.0.1'), false);
  assert.equal(patternMatches('10.0.0.0/8', 'not-an-address'), false);
});

test('characters no client address has are named', () => {
  assert.equal(
    patternPrefixes('10.0.0.x'),
    "pattern '10.0.0.x' has 'x', which never appears in a client address; use digits, '.', '?' and '*' (IPv6: hex digits and ':'), or a CIDR prefix",
  );
  assert.match(patternPrefixes('host.example') as string, /has 'h'/);
  assert.match(patternPrefixes('10.0.0.\x07') as string, /has '\\x07'/);
  assert.equal(patternPrefixes('[::1]'), "pattern '[::1]' has brackets, but rinetd compares the client address without them; write '::1'");
  assert.match(patternPrefixes('') as string, /empty pattern/);
});

test('conversion is quick even for patterns that spread over every octet', () => {
  const started = performance.now();
  for (const pattern of ['*.1', '*1', '*?*?*?*', '?*.*?.*?.?*', '*1*2*3*4*5*', '1*2*3*4*5*6*7*8*']) patternPrefixes(pattern);
  assert.ok(performance.now() - started < 1000, 'no blow-up in the number of glob states');
});
