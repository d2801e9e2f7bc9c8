/** Options shared by the commands that start a daemon, and by those that ask one. */
import type { Argv } from 'yargs';
import type { DatapathChoice } from '../config/types.js';
import { DEFAULT_RUN_DIR } from '../netns-lock.js';
import { LOG_LEVELS, type LogFormat, type LogLevel } from '../log.js';

export interface ServeArgs {
  'admin-socket'?: string;
  'metrics-listen'?: string;
  datapath?: DatapathChoice;
  drain: string;
  'run-dir': string;
  'log-format': LogFormat;
  'log-level': LogLevel;
  /** redir's spelling of the level; wins over log-level when given. */
  loglevel?: RedirLogLevel;
  syslog: boolean;
  ident: string;
}

/** redir's --loglevel words. */
export const REDIR_LOG_LEVELS = ['none', 'err', 'notice', 'info', 'debug'] as const;
export type RedirLogLevel = (typeof REDIR_LOG_LEVELS)[number];

/** bpfredir has three levels: err and none keep errors only (errors are always reported), notice keeps warnings. */
export function effectiveLogLevel(args: Pick<ServeArgs, 'log-level' | 'loglevel'>): LogLevel {
  const fromRedir: Record<RedirLogLevel, LogLevel> = { none: 'error', err: 'error', notice: 'warn', info: 'info', debug: 'info' };
  return args.loglevel ? fromRedir[args.loglevel] : args['log-level'];
}

const RUN_DIR_OPTION = {
  type: 'string',
  default: DEFAULT_RUN_DIR,
  describe: 'directory of the per-netns lock and admin socket (mode 0700, root or this user only)',
} as const;

const ADMIN_SOCKET_OPTION = {
  type: 'string',
  describe: 'unix socket of status, rules, conns and reload (default <run-dir>/netns-<inode>.sock, one per network namespace)',
} as const;

export function withServeOptions<T>(yargs: Argv<T>): Argv<T & ServeArgs> {
  return yargs
    .option('datapath', {
      choices: ['auto', 'splice', 'userspace'] as const,
      describe: 'how bytes move: in-kernel splice, user-space relay, or auto (splice when possible)',
    })
    .option('drain', {
      type: 'string',
      default: '10s',
      describe: 'on SIGTERM/SIGINT, let open connections finish this long, then reset the rest (a second signal skips the wait)',
    })
    .option('run-dir', RUN_DIR_OPTION)
    .option('admin-socket', ADMIN_SOCKET_OPTION)
    .option('metrics-listen', {
      type: 'string',
      describe: 'serve /metrics (Prometheus), /healthz and /readyz on ADDR:PORT, e.g. 127.0.0.1:9477 (overrides the config\'s metrics:)',
    })
    .option('log-format', {
      choices: ['text', 'json'] as const,
      default: 'text' as const,
      describe: 'one line per event on stderr',
    })
    .option('log-level', {
      choices: LOG_LEVELS,
      default: 'info' as LogLevel,
      describe: 'info: a line per connection event; warn: problems only',
    })
    .option('loglevel', { alias: 'l', choices: REDIR_LOG_LEVELS, describe: "redir's levels: none and err keep errors, notice warnings, info and debug everything" })
    .option('syslog', { alias: 's', type: 'boolean', default: false, describe: 'log to the system log (/dev/log, facility daemon) instead of stderr' })
    .option('ident', { alias: 'I', type: 'string', default: 'bpfredir', describe: 'tag of the lines in the system log' })
    .option('foreground', { alias: 'n', type: 'boolean', hidden: true, describe: "redir's -n: bpfredir always runs in the foreground" }) as Argv<T & ServeArgs>;
}

export interface AdminArgs {
  'run-dir': string;
  'admin-socket'?: string;
  json: boolean;
}

export function withAdminOptions<T>(yargs: Argv<T>): Argv<T & AdminArgs> {
  return yargs.option('run-dir', RUN_DIR_OPTION).option('admin-socket', ADMIN_SOCKET_OPTION).option('json', {
    type: 'boolean',
    default: false,
    describe: 'print the answer as JSON',
  }) as Argv<T & AdminArgs>;
}
