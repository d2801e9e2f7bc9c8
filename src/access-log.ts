/**
 * The per-connection access log (`access_log:`, rinetd's `logfile`): one line
 * per connection opened, ended, failed or refused, in rinetd 0.73's own
 * tab-separated format or its common-log-format variant (`logcommon`), so the
 * tools that read rinetd's logs read these. Fields, as rinetd writes them:
 *
 *   rinetd: TIME\tCLIENT\tFROMHOST\tFROMPORT\tTOHOST\tTOPORT\tBYTES_IN\tBYTES_OUT\tRESULT
 *   common: CLIENT - - [TIME ZONE] "GET /rinetd-services/FROMHOST/FROMPORT/TOHOST/TOPORT/RESULT HTTP/1.0" 200 BYTES_OUT - - - BYTES_IN
 *
 * TIME is local time as dd/Mon/yyyy:HH:MM:SS followed by a space; FROM is the
 * rule's listen address and TO its target, as the config wrote them; BYTES_IN
 * came from the client, BYTES_OUT went to it. Lines are buffered and written
 * per batch of engine events; the file is reopened on every reload (logrotate's
 * `postrotate` can send SIGHUP).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { formatEndpoint } from './config/fields.js';
import type { AccessLogFormat, AccessLogSetting, Rule } from './config/types.js';
import { errorMessage } from './errors.js';
import type { Logger } from './log.js';
import type { EngineEvent } from './native/index.js';

export const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
export const two = (n: number) => String(n).padStart(2, '0');

/** rinetd's strftime("%d/%b/%Y:%H:%M:%S ") in local time, and its zone as +hhmm. */
export function rinetdTime(at: Date): { time: string; zone: string } {
  const time = `${two(at.getDate())}/${MONTHS[at.getMonth()]}/${at.getFullYear()}:${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())} `;
  const offset = -at.getTimezoneOffset();
  const abs = Math.abs(offset);
  return { time, zone: `${offset < 0 ? '-' : '+'}${two(Math.floor(abs / 60))}${two(abs % 60)}` };
}

/** "1.2.3.4:80" or "[::1]:80" → the address alone, as rinetd prints a client. */
const addressOf = (hostPort: string | undefined) => (hostPort ?? '?').replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');

/** rinetd's result word for an engine event; undefined for events it does not log. */
export function rinetdResult(event: EngineEvent): string | undefined {
  switch (event.type) {
    case 'connected':
      return 'opened';
    case 'closed':
      // "local" is rinetd's name for the target side.
      return event.closedFirst === 'upstream' ? 'done-local-closed' : 'done-remote-closed';
    case 'connect_failed':
      return 'local-connect-failed -';
    case 'denied':
      return event.reason === 'not_allowed' ? 'not-allowed' : 'denied';
    case 'proxy_header_failed':
      return 'proxy-header-failed';
    default:
      return undefined;
  }
}

export interface RuleEnds {
  fromHost: string;
  fromPort: number;
  toHost: string;
  toPort: number;
}

/** What a log line says about the rule: the listen address (a steering rule's original destination) and the target. */
const portOf = (hostPort: string | undefined) => Number(/:(\d+)$/.exec(hostPort ?? '')?.[1] ?? 0);

export function ruleEnds(rule: Rule, event: EngineEvent): RuleEnds {
  // The target the connection went to (the first before it connected), as the config wrote it;
  // a rule without targets (target: original or socket) went where the event says.
  const index = Math.max(0, rule.targets.findIndex((t) => event.upstream === formatEndpoint(t)));
  const target = rule.targets[index];
  const toHost = target ? (rule.written?.targetHosts[index] ?? target.host) : addressOf(event.upstream ?? event.originalDst);
  const toPort = target ? target.port : portOf(event.upstream ?? event.originalDst);
  if (rule.kind === 'listen') return { fromHost: rule.written?.listenHost ?? rule.listen.host, fromPort: rule.listen.port, toHost, toPort };
  return { fromHost: addressOf(event.originalDst ?? '?:0'), fromPort: portOf(event.originalDst), toHost, toPort };
}

export function formatAccessLine(format: AccessLogFormat, event: EngineEvent, ends: RuleEnds, at: Date): string | undefined {
  const result = rinetdResult(event);
  if (!result) return undefined;
  const { time, zone } = rinetdTime(at);
  const client = addressOf(event.client);
  const bytesIn = event.type === 'closed' ? (event.bytesToUpstream ?? 0) : 0;
  const bytesOut = event.type === 'closed' ? (event.bytesToClient ?? 0) : 0;
  const { fromHost, fromPort, toHost, toPort } = ends;
  if (format === 'common') {
    return `${client} - - [${time}${zone}] "GET /rinetd-services/${fromHost}/${fromPort}/${toHost}/${toPort}/${result} HTTP/1.0" 200 ${bytesOut} - - - ${bytesIn}\n`;
  }
  return `${time}\t${client}\t${fromHost}\t${fromPort}\t${toHost}\t${toPort}\t${bytesIn}\t${bytesOut}\t${result}\n`;
}

export class AccessLog {
  private stream: WriteStream | undefined;
  private setting: AccessLogSetting | undefined;
  /** Rules by id as last seen, for the events of connections that outlive their rule. */
  private readonly rules = new Map<number, Rule>();

  constructor(
    private readonly logger: Logger,
    /** The running rule an id names now, if any. */
    private readonly ruleOf: (ruleId: number) => Rule | undefined,
  ) {}

  /** (Re)open for this setting: a reload, a rotated file, or none to close. */
  open(setting: AccessLogSetting | undefined): void {
    this.stream?.end();
    this.stream = undefined;
    this.setting = setting;
    if (!setting) return;
    const stream = createWriteStream(setting.path, { flags: 'a', mode: 0o640 });
    stream.on('error', (err) => {
      this.logger.error(`access_log ${setting.path}: ${errorMessage(err)}; connections go on unlogged until the next reload`);
      if (this.stream === stream) this.stream = undefined;
    });
    this.stream = stream;
  }

  write(events: readonly EngineEvent[], at = new Date()): void {
    const { stream, setting } = this;
    if (!stream || !setting) return;
    let text = '';
    for (const event of events) {
      const rule = this.ruleOf(event.ruleId) ?? this.rules.get(event.ruleId);
      if (!rule) continue;
      this.rules.set(event.ruleId, rule);
      text += formatAccessLine(setting.format, event, ruleEnds(rule, event), at) ?? '';
    }
    if (text) stream.write(text);
  }

  close(): Promise<void> {
    const stream = this.stream;
    this.stream = undefined;
    return new Promise((resolve) => (stream ? stream.end(resolve) : resolve()));
  }
}
