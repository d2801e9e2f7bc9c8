/** One line per event on stderr, as text (for people) or JSON (for collectors). */

export type LogFormat = 'text' | 'json';
export type LogLevel = 'info' | 'warn' | 'error';
export type LogFields = Record<string, string | number | bigint | boolean | undefined>;

export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export const LOG_LEVELS: readonly LogLevel[] = ['info', 'warn', 'error'];

export interface LoggerOptions {
  format: LogFormat;
  /** Lines below this level are dropped (e.g. 'warn' silences per-connection lines). */
  level?: LogLevel;
  write?: (line: string, level: LogLevel) => void;
  now?: () => Date;
  /** Text lines start with the time and the level (default); off where the sink adds both (syslog). */
  stamp?: boolean;
}

function textValue(value: string | number | bigint | boolean): string {
  const text = String(value);
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text);
}

export function createLogger({
  format,
  level: minimum = 'info',
  write = (line) => process.stderr.write(`${line}\n`),
  now = () => new Date(),
  stamp = true,
}: LoggerOptions): Logger {
  const log = (level: LogLevel, message: string, fields: LogFields = {}) => {
    if (LOG_LEVELS.indexOf(level) < LOG_LEVELS.indexOf(minimum)) return;
    const defined = Object.entries(fields).filter((e): e is [string, string | number | bigint | boolean] => e[1] !== undefined);
    if (format === 'json') {
      const record = { time: now().toISOString(), level, msg: message, ...Object.fromEntries(defined) };
      write(JSON.stringify(record, (_key, v) => (typeof v === 'bigint' ? v.toString() : v)), level);
      return;
    }
    const extra = defined.map(([k, v]) => ` ${k}=${textValue(v)}`).join('');
    write(stamp ? `${now().toISOString()} ${level} ${message}${extra}` : `${message}${extra}`, level);
  };
  return {
    info: (m, f) => log('info', m, f),
    warn: (m, f) => log('warn', m, f),
    error: (m, f) => log('error', m, f),
  };
}

/** For tests and library use: drops everything. */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
