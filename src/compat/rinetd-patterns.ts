/**
 * rinetd's allow/deny patterns turned into IP prefixes, so an LPM trie in the
 * kernel can give the verdict rinetd's text match would, without strings ever
 * reaching BPF.
 *
 * rinetd (0.73) compares a pattern with the client's address as text (what
 * getnameinfo prints: dotted quad, no leading zeros) as a glob: '?' is
 * exactly one character, '*' any run of characters, dots included. Which
 * addresses a glob matches is worked out octet by octet, so a pattern costs at
 * most 4 × 256 steps per distinct glob state, never 2^32.
 *
 * Choices where rinetd's behaviour does not carry over to prefixes:
 * - A pattern without ':' or hex letters describes IPv4 clients only. rinetd
 *   would also match the text of an IPv6 client against it ('*1' matches
 *   2001:db8::1); bpfredir never does, for any pattern but '*' alone.
 * - IPv4 clients are their dotted quad, as rinetd sees them on an IPv4
 *   listener. (On a dual-stack '::' listener rinetd sees ::ffff:10.1.2.3, so
 *   its '10.*' would not match; that accident is not reproduced.)
 * - A plain CIDR prefix (10.0.0.0/8, 2001:db8::/32) is accepted as an
 *   extension: rinetd's grammar has no '/', so no rinetd file means anything
 *   else by it.
 */
import { isIPv6 } from 'node:net';
import {
  IPV4_ANY,
  IPV4_MAPPED_PREFIX_BITS,
  IPV6_ANY,
  addressBytes,
  formatAddress,
  isIpv4Mapped,
  parsePrefix,
  samePrefixBits,
  type Prefix,
} from '../rules/ip.js';

export const DEFAULT_MAX_PREFIXES = 4096;

const OCTETS = 4;
const OCTET_VALUES = 256;
const LONGEST_IPV4_TEXT = '255.255.255.255'.length;

/**
 * Input text as it may appear inside a one-line message: control characters
 * escaped (a config can hold anything), long text cut short.
 */
export function quoted(text: string, maxLength = 60): string {
  const short = text.length > maxLength ? `${text.slice(0, maxLength)}…` : text;
  const visible = short.replace(/[\x00-\x1f\x7f\u2028\u2029]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return `'${visible}'`;
}

/**
 * The fewest prefixes holding exactly the addresses the pattern matches, in
 * address order; or a one-line reason it has no exact prefix form.
 */
export function patternPrefixes(pattern: string, maxPrefixes = DEFAULT_MAX_PREFIXES): Prefix[] | string {
  if (pattern === '') return 'an empty pattern matches nothing; write an address, a glob such as 10.0.0.* or a prefix such as 10.0.0.0/8';
  const stray = /[^0-9a-fA-F.:?*/]/.exec(pattern)?.[0];
  if (stray === '[' || stray === ']') {
    return `pattern ${quoted(pattern)} has brackets, but rinetd compares the client address without them; write ${quoted(pattern.replace(/[[\]]/g, ''))}`;
  }
  if (stray !== undefined) {
    return `pattern ${quoted(pattern)} has ${quoted(stray)}, which never appears in a client address; use digits, '.', '?' and '*' (IPv6: hex digits and ':'), or a CIDR prefix`;
  }
  if (pattern.includes('/')) return cidrPrefixes(pattern);
  const glob = collapseStars(pattern);
  if (glob === '*') return everyAddress();
  if (/[:a-fA-F]/.test(glob)) return exactIpv6Prefixes(pattern);
  return ipv4GlobPrefixes(pattern, glob, maxPrefixes);
}

/**
 * Whether rinetd would let the pattern match this client address text: the
 * glob for rinetd's own patterns, containment for the CIDR extension.
 */
export function patternMatches(pattern: string, client: string): boolean {
  if (pattern.includes('/')) return cidrContains(pattern, client);
  const glob = collapseStars(pattern);
  return step(glob, closure(glob, [0]), client).includes(glob.length);
}

/** '**' matches what '*' matches; one star per run keeps the state sets small. */
function collapseStars(pattern: string): string {
  return pattern.replace(/\*+/g, '*');
}

function cidrPrefixes(pattern: string): Prefix[] | string {
  if (/[?*]/.test(pattern)) return `pattern ${quoted(pattern)} mixes a wildcard with a prefix length; write either 10.0.0.* or 10.0.0.0/24`;
  const prefix = parsePrefix(pattern);
  return typeof prefix === 'string' ? `pattern ${prefix}` : [prefix];
}

function cidrContains(pattern: string, client: string): boolean {
  const prefix = parsePrefix(pattern);
  if (typeof prefix === 'string') return false;
  try {
    return samePrefixBits(addressBytes(client), prefix.addr, prefix.len);
  } catch {
    return false; // not an IP address: rinetd only ever matches addresses
  }
}

/**
 * '*' matches every client of both families. Both prefixes are listed even
 * though ::/0 covers the IPv4-mapped range, so a consumer that keeps only one
 * family (an IPv4-only listener) still finds its part; in one LPM trie the
 * overlap is harmless because both entries give the same verdict.
 */
function everyAddress(): Prefix[] {
  return [
    { addr: Buffer.from(IPV4_ANY), len: IPV4_MAPPED_PREFIX_BITS, family: 4 },
    { addr: Buffer.from(IPV6_ANY), len: 0, family: 6 },
  ];
}

/**
 * IPv6 text has many spellings of one address (zero compression, case), so a
 * glob over it does not line up with address bits; only exact addresses, as
 * getnameinfo would print them, have an exact prefix form.
 */
function exactIpv6Prefixes(pattern: string): Prefix[] | string {
  if (/[?*]/.test(pattern)) {
    return `pattern ${quoted(pattern)} is an IPv6 wildcard, which has no exact prefix form; write a CIDR prefix instead, e.g. 2001:db8::/32`;
  }
  if (!isIPv6(pattern)) return `pattern ${quoted(pattern)} is neither an IPv4 pattern nor an IPv6 address; IPv4 patterns use digits, '.', '?' and '*'`;
  const addr = addressBytes(pattern);
  if (isIpv4Mapped(addr)) {
    // rinetd sees this text only on a dual-stack listener; IPv4 clients are matched by their dotted quad here.
    return `pattern ${quoted(pattern)} is an IPv4 client as a dual-stack listener writes it; write ${formatAddress(addr)}`;
  }
  const text = clientText(addr);
  if (pattern !== text) return `pattern ${quoted(pattern)} never matches: rinetd compares the client's address as text, which reads ${text}; write that`;
  return [{ addr, len: 128, family: 6 }];
}

/** An IPv6 address as glibc's getnameinfo prints it: RFC 5952, but ::a.b.c.d for IPv4-compatible ones. */
function clientText(addr: Buffer): string {
  // Not for :: or ::1, whose last 32 bits would not read as a dotted quad.
  const compatible = addr.subarray(0, 12).every((b) => b === 0) && (addr[12] !== 0 || addr[13] !== 0);
  return compatible ? `::${Array.from(addr.subarray(12)).join('.')}` : formatAddress(addr);
}

// --- The IPv4 glob walk ---------------------------------------------------

/** Glob positions still alive after some text, ascending: an NFA state set. */
type States = readonly number[];

/** Add the positions a '*' can skip to without consuming anything. */
function closure(glob: string, positions: States): number[] {
  const reached: number[] = [];
  for (let p of positions) {
    if (reached[reached.length - 1] !== p) reached.push(p);
    while (glob[p] === '*') reached.push(++p);
  }
  return reached;
}

/** One character further. Positions only move forward, so the result stays sorted. */
function stepOne(glob: string, states: States, ch: string): number[] {
  const next: number[] = [];
  for (const p of states) {
    const want = glob[p];
    const to = want === '*' ? p : want === '?' || want === ch ? p + 1 : -1;
    if (to >= 0 && next[next.length - 1] !== to) next.push(to);
  }
  return closure(glob, next);
}

function step(glob: string, states: States, text: string): States {
  let current = states;
  for (let i = 0; i < text.length && current.length > 0; i++) current = stepOne(glob, current, text[i]!);
  return current;
}

/** The characters of a dotted quad, as indexes into a transition row. */
const DOTTED_QUAD_CHARS = '0123456789.';

/**
 * The glob's NFA made deterministic as far as the walk needs it: each
 * distinct state set gets a small id, and each (id, character) move is
 * computed once, so reading an octet is a few array lookups.
 */
class GlobDfa {
  private readonly sets: States[] = [];
  private readonly ids = new Map<string, number>();
  private readonly moves: number[][] = [];
  readonly start: number;
  private readonly dead: number;

  constructor(private readonly glob: string) {
    this.start = this.intern(closure(glob, [0]));
    this.dead = this.intern([]);
  }

  /** The state after `text`; a dead state stays dead, so reading stops there. */
  read(id: number, text: string): number {
    for (let i = 0; i < text.length && id !== this.dead; i++) {
      const row = this.moves[id]!;
      const c = DOTTED_QUAD_CHARS.indexOf(text[i]!);
      id = row[c] ?? (row[c] = this.intern(stepOne(this.glob, this.sets[id]!, text[i]!)));
    }
    return id;
  }

  accepts(id: number): boolean {
    return this.sets[id]!.includes(this.glob.length);
  }

  isDead(id: number): boolean {
    return id === this.dead;
  }

  private intern(states: States): number {
    const key = states.join(',');
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.sets.length;
      this.ids.set(key, id);
      this.sets.push(states);
      this.moves.push([]);
    }
    return id;
  }
}

/** An aligned block inside the octets still to come: `bits` leading bits of `base` are fixed. */
interface Block {
  base: number;
  bits: number;
}

/**
 * For one octet position and the glob state before it: the octet values
 * after which every remaining address matches ('full'), and those after
 * which only some do, with the state to continue from.
 */
interface OctetNode {
  full: number[];
  partial: Array<{ value: number; state: number }>;
}

/** Octet texts, with the dot that follows the first three. */
const OCTET_TEXTS = Array.from({ length: OCTETS }, (_, octet) =>
  Array.from({ length: OCTET_VALUES }, (_, value) => (octet < OCTETS - 1 ? `${value}.` : String(value))),
);

class Ipv4GlobWalk {
  private readonly dfa: GlobDfa;
  private readonly nodes = new Map<number, OctetNode>();
  private readonly counts = new Map<number, number>();

  constructor(glob: string) {
    this.dfa = new GlobDfa(glob);
  }

  get start(): number {
    return this.dfa.start;
  }

  /** How many prefixes the addresses matched from here need. */
  count(octet: number, state: number): number {
    const key = state * OCTETS + octet;
    let found = this.counts.get(key);
    if (found === undefined) {
      const { full, partial } = this.node(octet, state);
      found = alignedRuns(full).length;
      for (const branch of partial) found += this.count(octet + 1, branch.state);
      this.counts.set(key, found);
    }
    return found;
  }

  blocks(octet: number, state: number): Block[] {
    const { full, partial } = this.node(octet, state);
    const width = 8 * (OCTETS - 1 - octet); // bits in the octets after this one
    const blocks = alignedRuns(full).map((run) => ({ base: run.start * 2 ** width, bits: 8 - run.hostBits }));
    for (const { value, state: next } of partial) {
      for (const inner of this.blocks(octet + 1, next)) blocks.push({ base: value * 2 ** width + inner.base, bits: 8 + inner.bits });
    }
    return blocks.sort((a, b) => a.base - b.base);
  }

  private node(octet: number, state: number): OctetNode {
    const key = state * OCTETS + octet;
    let found = this.nodes.get(key);
    if (!found) this.nodes.set(key, (found = this.build(octet, state)));
    return found;
  }

  private build(octet: number, state: number): OctetNode {
    const last = octet === OCTETS - 1;
    const node: OctetNode = { full: [], partial: [] };
    for (let value = 0; value < OCTET_VALUES; value++) {
      const next = this.dfa.read(state, OCTET_TEXTS[octet]![value]!);
      if (last) {
        if (this.dfa.accepts(next)) node.full.push(value);
        continue;
      }
      if (this.dfa.isDead(next)) continue;
      const child = this.node(octet + 1, next);
      if (child.full.length === OCTET_VALUES) node.full.push(value);
      else if (child.full.length > 0 || child.partial.length > 0) node.partial.push({ value, state: next });
    }
    return node;
  }
}

/** A sorted set of octet values as the fewest aligned power-of-two runs. */
function alignedRuns(values: readonly number[]): Array<{ start: number; hostBits: number }> {
  const present = new Array<boolean>(OCTET_VALUES + 1).fill(false);
  for (const v of values) present[v] = true;
  const runLength = new Array<number>(OCTET_VALUES + 1).fill(0);
  for (let v = OCTET_VALUES - 1; v >= 0; v--) runLength[v] = present[v] ? runLength[v + 1]! + 1 : 0;
  const runs: Array<{ start: number; hostBits: number }> = [];
  for (let v = 0; v < OCTET_VALUES; ) {
    if (!present[v]) {
      v++;
      continue;
    }
    let hostBits = 0;
    while (hostBits < 8 && v % 2 ** (hostBits + 1) === 0 && runLength[v]! >= 2 ** (hostBits + 1)) hostBits++;
    runs.push({ start: v, hostBits });
    v += 2 ** hostBits;
  }
  return runs;
}

function ipv4GlobPrefixes(pattern: string, glob: string, maxPrefixes: number): Prefix[] | string {
  // Every character but '*' consumes one character of the text: a longer glob
  // matches nothing, and this bound keeps the walk's state sets few.
  if (glob.replace(/\*/g, '').length > LONGEST_IPV4_TEXT) return [];
  const walk = new Ipv4GlobWalk(glob);
  const needed = walk.count(0, walk.start);
  if (needed > maxPrefixes) {
    return `pattern ${quoted(pattern)} matches ${needed} separate address blocks, more than the ${maxPrefixes} prefixes allowed; write the ranges you mean as CIDR prefixes instead (e.g. 10.0.0.0/8)`;
  }
  return walk.blocks(0, walk.start).map(({ base, bits }) => {
    const addr = Buffer.from(IPV4_ANY);
    addr.writeUInt32BE(base, 12);
    return { addr, len: IPV4_MAPPED_PREFIX_BITS + bits, family: 4 as const };
  });
}
