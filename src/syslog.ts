/**
 * Log lines to the system log (redir's --syslog, with --ident as its tag):
 * RFC 3164 datagrams to /dev/log, facility daemon, the way syslog(3) sends
 * them, so journald, rsyslog and syslog-ng all take them. The socket's path
 * can be moved with BPFREDIR_SYSLOG_SOCKET (tests listen there).
 */
import { MONTHS, two } from './access-log.js';
import type { LogLevel } from './log.js';

const FACILITY_DAEMON = 3;
const SEVERITY: Record<LogLevel, number> = { error: 3, warn: 4, info: 6 };

/** "<30>Dec  3 12:40:00 bpfredir[42]: message": the priority, a local BSD timestamp, the tag. */
export function syslogDatagram(level: LogLevel, ident: string, message: string, at = new Date(), pid = process.pid): Buffer {
  const stamp = `${MONTHS[at.getMonth()]} ${String(at.getDate()).padStart(2, ' ')} ${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())}`;
  return Buffer.from(`<${FACILITY_DAEMON * 8 + SEVERITY[level]}>${stamp} ${ident}[${pid}]: ${message}`);
}

export function syslogWriter(ident: string, send: (path: string, data: Buffer) => boolean, path = process.env.BPFREDIR_SYSLOG_SOCKET ?? '/dev/log') {
  return (line: string, level: LogLevel): void => {
    send(path, syslogDatagram(level, ident, line));
  };
}
