#!/usr/bin/env node
/** The bpfredir command. The only place that calls process.exit. */
import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { BpfredirError, errorMessage } from '../errors.js';
import { checkCommand } from './check.js';
import { EXIT, EXIT_CODES_HELP, exitCodeFor } from './exit-codes.js';
import { forwardCommand } from './forward.js';
import { runCommand } from './run.js';

const packageJson = new URL('../../../package.json', import.meta.url);
const { version } = JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string };

async function main(argv: string[]): Promise<number> {
  try {
    await yargs(argv)
      .scriptName('bpfredir')
      .usage('$0 <command> [options]\n\neBPF TCP redirector: sk_lookup steering and in-kernel splice.')
      .command(runCommand)
      .command(forwardCommand)
      .command(checkCommand)
      .demandCommand(1, 'name a command: run, forward or check')
      .strict()
      .version(version)
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
    if (err instanceof BpfredirError) {
      process.stderr.write(`${err.message}\n`);
      return exitCodeFor(err.code);
    }
    process.stderr.write(`bpfredir: ${errorMessage(err)}\n`);
    return EXIT.runtime;
  }
}

process.exit(await main(hideBin(process.argv)));
