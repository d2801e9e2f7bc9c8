/** Options shared by the commands that start a daemon. */
import type { Argv } from 'yargs';
import type { DatapathChoice } from '../config/types.js';
import type { LogFormat } from '../log.js';

export interface ServeArgs {
  datapath?: DatapathChoice;
  'log-format': LogFormat;
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
    }) as Argv<T & ServeArgs>;
}
