/**
 * rinetd 0.73 configuration files (rinetd.conf) read into plain data, so a
 * rinetd setup can be taken over by bpfredir. Pure: the caller passes the
 * text (and /etc/services, if it has one); host names stay strings for the
 * caller to resolve.
 *
 * The syntax follows rinetd 0.73's manual page and its grammar (parse.peg),
 * except where a comment below says otherwise. Every problem in the file is
 * reported at once, each as `file:line: what is wrong; how to fix it`.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { closestMatch } from '../config/suggest.js';
import { BpfredirError } from '../errors.js';
import type { Parsed } from '../config/units.js';
import { isMalformedIpv4, malformedIpv4Problem } from '../rules/ip.js';
import { patternMatches, patternPrefixes, quoted } from './rinetd-patterns.js';
import type { Prefix } from '../rules/ip.js';

export type RinetdProtocol = 'tcp' | 'udp';

export interface RinetdPattern {
  line: number;
  text: string;
  prefixes: Prefix[];
}

export interface RinetdForward {
  line: number;
  bindAddress: string;
  bindPort: number;
  protocol: RinetdProtocol;
  connectAddress: string;
  connectPort: number;
  connectProtocol: RinetdProtocol;
  sourceAddress?: string;
  /** Only given when the rule says so; rinetd's UDP default is RINETD_DEFAULT_UDP_TIMEOUT_SECONDS. */
  timeoutSeconds?: number;
  allow: RinetdPattern[];
  deny: RinetdPattern[];
}

export interface RinetdConfig {
  forwards: RinetdForward[];
  globalAllow: RinetdPattern[];
  globalDeny: RinetdPattern[];
  logFile?: string;
  logCommon: boolean;
  pidLogFile?: string;
  source: string;
}

/** How long rinetd keeps an idle UDP "connection" when no timeout option is given. */
export const RINETD_DEFAULT_UDP_TIMEOUT_SECONDS = 72;

const KEYWORDS = ['allow', 'deny', 'logfile', 'pidlogfile', 'logcommon'] as const;
const OPTIONS = ['src', 'timeout'] as const;
const MAX_TIMEOUT_SECONDS = 2 ** 31 - 1; // rinetd keeps it in a C int
const RULE_FORM = 'bindaddress bindport connectaddress connectport [options], e.g. 0.0.0.0 80 10.1.1.2 80';

/**
 * Services rinetd.conf files commonly name, for systems (containers) whose
 * /etc/services is missing; the caller's /etc/services, when given, wins.
 */
const WELL_KNOWN_SERVICES: ReadonlyArray<readonly [names: string, port: number, protocols: string]> = [
  ['ftp', 21, 'tcp'],
  ['ssh', 22, 'tcp'],
  ['telnet', 23, 'tcp'],
  ['smtp', 25, 'tcp'],
  ['domain', 53, 'tcp udp'],
  ['tftp', 69, 'udp'],
  ['http www', 80, 'tcp'],
  ['pop3 pop-3', 110, 'tcp'],
  ['ntp', 123, 'udp'],
  ['imap2 imap', 143, 'tcp'],
  ['snmp', 161, 'udp'],
  ['ldap', 389, 'tcp udp'],
  ['https', 443, 'tcp udp'],
  ['syslog', 514, 'udp'],
  ['submission', 587, 'tcp'],
  ['rsync', 873, 'tcp'],
  ['imaps', 993, 'tcp'],
  ['pop3s', 995, 'tcp'],
  ['openvpn', 1194, 'tcp udp'],
  ['mysql', 3306, 'tcp'],
  ['ms-wbt-server', 3389, 'tcp'],
  ['postgresql postgres', 5432, 'tcp'],
  ['http-alt webcache', 8080, 'tcp'],
];

const BUILT_IN_SERVICES: ReadonlyMap<string, number> = new Map(
  WELL_KNOWN_SERVICES.flatMap(([names, port, protocols]) =>
    names.split(' ').flatMap((name) => protocols.split(' ').map((proto) => [`${name}/${proto}`, port] as const)),
  ),
);

/**
 * /etc/services text as `name/proto` → port, aliases included. The first
 * entry for a name wins, as with getservbyname; lines that are not
 * `name port/proto [aliases]` are skipped (it is the system's file, not the
 * user's config).
 */
export function readServices(text: string): Map<string, number> {
  const services = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [name, portAndProto, ...aliases] = line.replace(/#[\s\S]*/, '').trim().split(/\s+/);
    const m = /^(\d{1,5})\/([a-z0-9-]+)$/i.exec(portAndProto ?? '');
    if (!name || !m) continue;
    const port = Number(m[1]);
    if (port < 1 || port > 65535) continue;
    const proto = m[2]!.toLowerCase();
    for (const n of [name, ...aliases]) {
      if (!services.has(`${n}/${proto}`)) services.set(`${n}/${proto}`, port);
    }
  }
  return services;
}

/**
 * Whether rinetd would accept this client (an address as text) on this rule:
 * global allows (if any, one must match), global denies (none may), then the
 * rule's own allows and denies the same way. This is rinetd's text glob, the
 * reference the kernel's prefixes are checked against.
 */
export function rinetdAdmits(cfg: RinetdConfig, forward: RinetdForward, client: string): boolean {
  return scopeAdmits(cfg.globalAllow, cfg.globalDeny, client) && scopeAdmits(forward.allow, forward.deny, client);
}

function scopeAdmits(allow: readonly RinetdPattern[], deny: readonly RinetdPattern[], client: string): boolean {
  const matches = (p: RinetdPattern) => patternMatches(p.text, client);
  return (allow.length === 0 || allow.some(matches)) && !deny.some(matches);
}

/** Where the parse is, and what it has found so far. */
interface ParseState {
  config: RinetdConfig;
  problems: string[];
  services: ReadonlyMap<string, number> | undefined;
  /** The rule allow/deny lines attach to; a placeholder after a rule with errors. */
  currentRule: RinetdForward | undefined;
}

export function parseRinetdConfig(text: string, source: string, services?: ReadonlyMap<string, number>): RinetdConfig {
  const state: ParseState = {
    config: { forwards: [], globalAllow: [], globalDeny: [], logCommon: false, source },
    problems: [],
    services,
    currentRule: undefined,
  };
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    const problems = parseLine(raw.replace(/\r$/, ''), line, state);
    for (const problem of problems) state.problems.push(`${source}:${line}: ${problem}`);
  });
  if (state.problems.length > 0) throw new BpfredirError('ERR_BPFREDIR_CONFIG', state.problems);
  return state.config;
}

/** One line's problems (without the file:line prefix). */
function parseLine(raw: string, line: number, state: ParseState): string[] {
  // Fields are separated by spaces and tabs only, as in rinetd.
  const body = raw.replace(/#[\s\S]*/, '').replace(/^[ \t]+|[ \t]+$/g, '');
  if (body === '') return [];
  const words = body.split(/[ \t]+/);
  // A keyword always starts its own kind of line; rinetd would first try a
  // rule from a host named 'deny', which no real file means.
  const keyword = words[0]!;
  switch (keyword) {
    case 'allow':
    case 'deny':
      return parseAccessLine(keyword, words.slice(1), line, state);
    case 'logfile':
    case 'pidlogfile':
      return parsePathLine(keyword, raw, state.config);
    case 'logcommon':
      if (words.length > 1) return [`logcommon takes no value; remove ${quoted(words.slice(1).join(' '))}`];
      state.config.logCommon = true;
      return [];
  }
  const unknown = unknownKeywordProblem(words);
  if (unknown) return [unknown];
  const { forward, problems } = parseForwardLine(body, line, state.services);
  // A broken rule still owns the allow/deny lines after it (they are checked, then dropped).
  state.currentRule = forward ?? emptyForward(line);
  if (forward) state.config.forwards.push(forward);
  return problems;
}

/**
 * A line that cannot be a forwarding rule: too short to be one and either
 * close to a keyword or a bare word (a rule starts with an address and a port).
 */
function unknownKeywordProblem(words: readonly string[]): string | undefined {
  const first = words[0]!;
  const looksLikeRule = words.length >= 4 || /^\d+(\/|$)/.test(words[1] ?? '');
  if (looksLikeRule) return undefined;
  const suggestion = closestMatch(first, KEYWORDS);
  if (suggestion) return `unknown keyword ${quoted(first)}; did you mean '${suggestion}'?`;
  if (!/^[A-Za-z_-]+$/.test(first)) return undefined;
  return `unknown keyword ${quoted(first)}; a line is one of ${KEYWORDS.join(', ')} or a forwarding rule: ${RULE_FORM}`;
}

function emptyForward(line: number): RinetdForward {
  return { line, bindAddress: '', bindPort: 0, protocol: 'tcp', connectAddress: '', connectPort: 0, connectProtocol: 'tcp', allow: [], deny: [] };
}

// --- allow / deny ---------------------------------------------------------

/**
 * Before the first forwarding rule a pattern is global, after it the most
 * recent rule's. Every line counts: rinetd 0.73 loses the first pattern of
 * the first rule when there are no global ones (a bookkeeping bug fixed
 * after that release).
 */
function parseAccessLine(keyword: 'allow' | 'deny', args: readonly string[], line: number, state: ParseState): string[] {
  if (args.length !== 1) {
    const what = args.length === 0 ? 'needs a pattern' : `takes one pattern, not ${args.length}`;
    return [`${keyword} ${what}; write e.g. ${keyword} 192.168.1.* (rinetd does not accept host names here)`];
  }
  const text = args[0]!;
  const prefixes = patternPrefixes(text);
  if (typeof prefixes === 'string') return [`${keyword} ${prefixes}`];
  if (prefixes.length === 0) {
    return [`${keyword} pattern ${quoted(text)} matches no address; client addresses are written with parts 0-255 and no leading zeros`];
  }
  const pattern: RinetdPattern = { line, text, prefixes };
  const rule = state.currentRule;
  if (keyword === 'allow') (rule ? rule.allow : state.config.globalAllow).push(pattern);
  else (rule ? rule.deny : state.config.globalDeny).push(pattern);
  return [];
}

// --- logfile / pidlogfile ---------------------------------------------------

/**
 * The path is read from the raw line: as in rinetd, '#' inside an unquoted
 * path is part of it, and a path with spaces is written in double quotes.
 */
function parsePathLine(keyword: 'logfile' | 'pidlogfile', raw: string, config: RinetdConfig): string[] {
  const rest = raw.replace(/^[ \t]+/, '').slice(keyword.length);
  const path = /^[ \t]/.test(rest) ? readPath(rest.replace(/^[ \t]+/, '')) : undefined;
  const example = `${keyword} ${keyword === 'logfile' ? '/var/log/rinetd.log' : '/run/rinetd.pid'}`;
  if (path === undefined) return [`${keyword} needs a path; write e.g. ${example}`];
  if (!path.ok) return [`${keyword} ${path.reason}`];
  const field = keyword === 'logfile' ? 'logFile' : 'pidLogFile';
  // rinetd would keep the last one silently; two are more likely a mistake.
  if (config[field] !== undefined) return [`${keyword} is given twice (first as ${quoted(config[field])}); keep one`];
  config[field] = path.value;
  return [];
}

/** The path at the start of `text`: undefined when there is none. */
function readPath(text: string): Parsed<string> | undefined {
  if (text === '' || text.startsWith('#')) return undefined;
  let path: string;
  let after: string;
  if (text.startsWith('"')) {
    const close = text.indexOf('"', 1);
    if (close < 0) return { ok: false, reason: `path ${quoted(text)} has no closing '"'; end the quoted path with '"'` };
    if (close === 1) return { ok: false, reason: 'path "" is empty; write the path between the quotes' };
    path = text.slice(1, close);
    after = text.slice(close + 1);
  } else {
    path = /^[^ \t]+/.exec(text)![0];
    after = text.slice(path.length);
  }
  const extra = after.replace(/^[ \t]+/, '');
  if (extra !== '' && !extra.startsWith('#')) {
    return { ok: false, reason: `path ${quoted(path)} is followed by ${quoted(extra)}; put a path with spaces in double quotes` };
  }
  return { ok: true, value: path };
}

// --- forwarding rules -------------------------------------------------------

interface PortSpec {
  port: number;
  protocol: RinetdProtocol;
}

interface RuleOptions {
  sourceAddress?: string;
  timeoutSeconds?: number;
}

const FIELD_NAMES = ['bind address', 'bind port', 'connect address', 'connect port'] as const;

function parseForwardLine(
  body: string,
  line: number,
  services: ReadonlyMap<string, number> | undefined,
): { forward?: RinetdForward; problems: string[] } {
  const { fields, optionsText } = splitRuleFields(body);
  const problems: string[] = [];
  const [bindText, bindPortText, connectText, connectPortText, ...extra] = fields;
  if (fields.length < 4) problems.push(`forwarding rule has no ${FIELD_NAMES[fields.length]}; write ${RULE_FORM}`);
  if (extra.length > 0) {
    problems.push(`unexpected ${quoted(extra.join(' '))} after the connect port; options go in brackets, e.g. [src=10.1.1.2,timeout=3600]`);
  }
  // Each field is checked even when another is wrong, so one run lists every problem.
  const take = <T>(text: string | undefined, parse: (text: string) => Parsed<T>): T | undefined => {
    if (text === undefined) return undefined;
    const result = parse(text);
    if (result.ok) return result.value;
    problems.push(result.reason);
    return undefined;
  };
  const bindAddress = take(bindText, (t) => parseAddress(t, 'bind address'));
  const bind = take(bindPortText, (t) => parsePort(t, 'bind port', services));
  const connectAddress = take(connectText, (t) => parseAddress(t, 'connect address'));
  const connect = take(connectPortText, (t) => parsePort(t, 'connect port', services));
  const options = optionsText === undefined ? {} : parseOptions(optionsText, problems);
  if (problems.length > 0 || !bindAddress || !bind || !connectAddress || !connect) return { problems };
  const forward: RinetdForward = {
    line,
    bindAddress,
    bindPort: bind.port,
    protocol: bind.protocol,
    connectAddress,
    connectPort: connect.port,
    connectProtocol: connect.protocol,
    ...options,
    allow: [],
    deny: [],
  };
  return { forward, problems };
}

/**
 * The rule's fields and the bracketed options after them. '[' starts an
 * address only when it looks like one ([::1]); a group with '=' or one after
 * the fourth field is the options.
 */
function splitRuleFields(body: string): { fields: string[]; optionsText?: string } {
  const fields: string[] = [];
  let pos = 0;
  for (;;) {
    while (body[pos] === ' ' || body[pos] === '\t') pos++;
    if (pos >= body.length) return { fields };
    if (body[pos] === '[') {
      const close = body.indexOf(']', pos);
      const group = body.slice(pos, close < 0 ? undefined : close + 1);
      if (fields.length >= 4 || group.includes('=')) return { fields, optionsText: body.slice(pos) };
    }
    const token = /\[[^\]\s]*\]?|[^ \t[]+/y;
    token.lastIndex = pos;
    const text = token.exec(body)![0];
    fields.push(text);
    pos += text.length;
  }
}

/** What rinetd's grammar takes as a host name: dotted labels, the last one starting with a letter. */
const HOST_NAME = /^(?:[A-Za-z0-9_][A-Za-z0-9_-]*\.)*[A-Za-z_][A-Za-z0-9_-]*\.?$/;
const MAX_HOST_NAME_LENGTH = 253;

/** An IPv4 or IPv6 literal (brackets removed) or a host name, kept as written. */
function parseAddress(text: string, what: string): Parsed<string> {
  const fail = (reason: string): Parsed<string> => ({ ok: false, reason: `${what} ${reason}` });
  const ipv6 = text.startsWith('[') ? text.slice(1, text.endsWith(']') ? -1 : undefined) : text;
  if (text.startsWith('[') || text.includes(':')) {
    if (text.startsWith('[') && !text.endsWith(']')) return fail(`${quoted(text)} has no closing ']'; write e.g. [::1]`);
    if (ipv6.includes('%')) return fail(`${quoted(text)} has a zone, which rinetd's syntax has no place for; use an address that needs none`);
    if (isIPv6(ipv6)) return { ok: true, value: ipv6 };
    return fail(`${quoted(text)} is not an IPv6 address; write e.g. ::1, :: or [2001:db8::1]`);
  }
  // rinetd's grammar takes a lone 0 for an IPv4 address; getaddrinfo reads it as 0.0.0.0.
  if (text === '0') return { ok: true, value: '0.0.0.0' };
  if (isIPv4(text)) return { ok: true, value: text };
  if (isMalformedIpv4(text)) return fail(malformedIpv4Problem(text));
  if (HOST_NAME.test(text) && text.length <= MAX_HOST_NAME_LENGTH) return { ok: true, value: text };
  return fail(`${quoted(text)} is not an IP address or host name; write e.g. 0.0.0.0, ::, 10.1.1.2 or gateway.example`);
}

/** rinetd's grammar for a service name: a letter or '_', then letters, digits, '_' and '-'. */
const SERVICE_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/**
 * `80`, `80/udp`, `http` or `http/tcp`. Without a suffix a port is TCP, the
 * connect port too even when the bind port is /udp: that is rinetd's
 * documented default (its manual forwards 8000/udp to TCP port 80).
 */
function parsePort(text: string, what: string, services: ReadonlyMap<string, number> | undefined): Parsed<PortSpec> {
  const fail = (reason: string): Parsed<PortSpec> => ({ ok: false, reason });
  const slash = text.indexOf('/');
  const name = slash < 0 ? text : text.slice(0, slash);
  const suffix = slash < 0 ? 'tcp' : text.slice(slash + 1);
  if (suffix !== 'tcp' && suffix !== 'udp') return fail(`${what} ${quoted(text)} has protocol ${quoted(suffix)}; write /tcp or /udp (lower case)`);
  const protocol: RinetdProtocol = suffix;
  if (name === '') return fail(`${what} ${quoted(text)} has no port before '/${protocol}'; write e.g. 53/${protocol}`);
  if (/^\d+$/.test(name)) {
    const port = Number(name);
    if (port < 1 || port > 65535) return fail(`${what} ${quoted(name)} is out of range; use 1-65535`);
    return { ok: true, value: { port, protocol } };
  }
  if (!SERVICE_NAME.test(name)) return fail(`${what} ${quoted(text)} is neither a port number nor a service name; write e.g. 80 or http`);
  const key = `${name}/${protocol}`;
  const port = services?.get(key) ?? BUILT_IN_SERVICES.get(key);
  if (port !== undefined) return { ok: true, value: { port, protocol } };
  const known = [...new Set([...(services?.keys() ?? []), ...BUILT_IN_SERVICES.keys()])]
    .filter((k) => k.endsWith(`/${protocol}`))
    .map((k) => k.slice(0, -protocol.length - 1));
  const suggestion = closestMatch(name, known);
  const hint = suggestion ? ` (did you mean '${suggestion}'?)` : '';
  return fail(`${what} ${quoted(name)} is not a known ${protocol} service${hint}; write the port number, or add the service to /etc/services`);
}

/**
 * `[src=ADDR, timeout=SECONDS]`: spaces are allowed around '[', ',', '=' and
 * ']'. rinetd keeps the last of a repeated option silently; here it is an error.
 */
function parseOptions(text: string, problems: string[]): RuleOptions {
  const options: RuleOptions = {};
  const form = 'write options as [src=ADDRESS,timeout=SECONDS]';
  const option = /[ \t]*([^=,[\] \t]*)[ \t]*=[ \t]*(\[[^\]]*\]|[^,[\] \t]*)[ \t]*([,\]])/y;
  const seen = new Set<string>();
  option.lastIndex = 1; // past the '['
  for (;;) {
    const m = option.exec(text);
    if (!m || m[1] === '') {
      problems.push(`options ${quoted(text)} are malformed; ${form}`);
      return options;
    }
    const [, key, value, end] = m as unknown as [string, string, string, string];
    if (seen.has(key)) problems.push(`option ${quoted(key)} is given twice; keep one`);
    seen.add(key);
    applyOption(key, value, options, problems);
    if (end === ']') break;
  }
  const rest = text.slice(option.lastIndex).replace(/^[ \t]+/, '');
  if (rest !== '') problems.push(`unexpected ${quoted(rest)} after the options; ${form}`);
  return options;
}

function applyOption(key: string, value: string, options: RuleOptions, problems: string[]): void {
  if (key === 'timeout') {
    const seconds = /^\d+$/.test(value) ? Number(value) : NaN;
    // rinetd would take 0 as "use the default"; an explicit 0 is more likely a mistake.
    if (seconds >= 1 && seconds <= MAX_TIMEOUT_SECONDS) options.timeoutSeconds = seconds;
    else problems.push(`option timeout=${quoted(value)} is not a whole number of seconds from 1 to ${MAX_TIMEOUT_SECONDS}; write e.g. timeout=3600`);
  } else if (key === 'src') {
    const address = parseAddress(value, 'option src');
    if (address.ok) options.sourceAddress = address.value;
    else problems.push(address.reason);
  } else {
    const suggestion = closestMatch(key, OPTIONS);
    const hint = suggestion ? `did you mean '${suggestion}'? ` : '';
    problems.push(`unknown option ${quoted(key)}; ${hint}rinetd's options are ${OPTIONS.join(' and ')}`);
  }
}
