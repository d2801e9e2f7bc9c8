/** Options shared by the commands that start a daemon. */
import type { Argv } from 'yargs';
import type { DatapathChoice } from '../config/types.js';
import { LOG_LEVELS, type LogFormat, type LogLevel } from '../log.js';

export interface ServeArgs {
  datapath?: DatapathChoice;
  'log-format': LogFormat;
  'log-level': LogLevel;
}

export function withServeOptions<T>(yargs: Argv<T>): Argv<T & ServeArgs> {
  return yargs
    .option('datapath', {
      choices: ['auto', 'splice', 'userspace'] as const,
      describe: 'how bytes move: in-kernel splice, user-space relay, or auto (splice when possible)',
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
    }) as Argv<T & ServeArgs>;
}
