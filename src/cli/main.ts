#!/usr/bin/env node
/** The bpfredir command. The only place that calls process.exit. */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { BpfredirError, errorMessage, type ErrorCode } from '../errors.js';
import { createLogger } from '../log.js';
import { checkCommand } from './check.js';
import { connsCommand } from './conns.js';
import { EXIT, EXIT_CODES_HELP, exitCodeFor } from './exit-codes.js';
import { forwardCommand } from './forward.js';
import { reloadCommand } from './reload.js';
import { rulesCommand } from './rules.js';
import { runCommand } from './run.js';
import { statusCommand } from './status.js';
import { VERSION } from '../version.js';

/** Read from argv itself: the error may be that yargs could not parse the rest. */
function wantsJsonLog(argv: string[]): boolean {
  return argv.some((arg, i) => arg === '--log-format=json' || (arg === '--log-format' && argv[i + 1] === 'json'));
}

/** Each problem on its own line: plain text, or a JSON log line when the user asked for JSON. */
function reportFailure(err: unknown, json: boolean): number {
  const { code, problems }: { code: ErrorCode; problems: readonly string[] } =
    err instanceof BpfredirError ? err : { code: 'ERR_BPFREDIR_RUNTIME', problems: [`bpfredir: ${errorMessage(err)}`] };
  if (json) {
    const logger = createLogger({ format: 'json' });
    for (const problem of problems) logger.error(problem, { code });
  } else {
    process.stderr.write(`${problems.join('\n')}\n`);
  }
  return exitCodeFor(code);
}

async function main(argv: string[]): Promise<number> {
  try {
    await yargs(argv)
      // Options are read by their dashed names only; expanding them made strict mode
      // report an unknown --bogus-flag twice (bogus-flag, bogusFlag) and --no-x as x.
      .parserConfiguration({ 'camel-case-expansion': false, 'boolean-negation': false, 'dot-notation': false })
      .scriptName('bpfredir')
      .usage('$0 <command> [options]\n\neBPF TCP redirector: sk_lookup steering and in-kernel splice.')
      .command(runCommand)
      .command(forwardCommand)
      .command(checkCommand)
      .command(statusCommand)
      .command(rulesCommand)
      .command(connsCommand)
      .command(reloadCommand)
      .demandCommand(1, 'name a command: run, forward, check, status, rules, conns or reload')
      .strict()
      .version(VERSION)
      .help()
      .alias('help', 'h')
      .epilog(EXIT_CODES_HELP)
      .wrap(Math.min(110, process.stdout.columns ?? 110))
      .exitProcess(false)
      .fail((message, err) => {
        if (err) throw err;
        throw new BpfredirError('ERR_BPFREDIR_USAGE', `${message}; see bpfredir --help`);
      })
      .parseAsync();
    return EXIT.ok;
  } catch (err) {
    return reportFailure(err, wantsJsonLog(argv));
  }
}

process.exit(await main(hideBin(process.argv)));
