/** Process exit codes, documented in --help. */
import type { ErrorCode } from '../errors.js';

export const EXIT = {
  ok: 0,
  runtime: 1,
  usage: 2,
  privileges: 3,
  notRunning: 4,
} as const;

export const EXIT_CODES_HELP = [
  'Exit codes:',
  '  0  ok (also after SIGINT/SIGTERM and a clean stop)',
  '  1  runtime failure (port in use, another bpfredir in this netns, ...)',
  '  2  usage or config error',
  '  3  missing privileges or kernel feature',
  '  4  status, rules, conns, reload: no bpfredir is running in this network namespace',
].join('\n');

export function exitCodeFor(code: ErrorCode | undefined): number {
  switch (code) {
    case 'ERR_BPFREDIR_CONFIG':
    case 'ERR_BPFREDIR_USAGE':
      return EXIT.usage;
    case 'ERR_BPFREDIR_PRIVILEGES':
    case 'ERR_BPFREDIR_KERNEL':
      return EXIT.privileges;
    case 'ERR_BPFREDIR_NOT_RUNNING':
      return EXIT.notRunning;
    default:
      return EXIT.runtime;
  }
}
