/** bpfredir run: serve a config file. */
import type { CommandModule } from 'yargs';
import { findConfig, loadConfigFile } from '../config/load.js';
import { withServeOptions, type ServeArgs } from './common-options.js';
import { serve } from './serve.js';

interface RunArgs extends ServeArgs {
  config?: string;
}

export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run',
  describe: 'Run the redirector with a config file until SIGINT/SIGTERM',
  builder: (yargs) =>
    withServeOptions(yargs)
      .option('config', { type: 'string', describe: 'config file (YAML or JSON); default $BPFREDIR_CONFIG, ./bpfredir.yaml, /etc/bpfredir/config.yaml' })
      .example('$0 run --config deploy/example.yaml', 'serve the example rules'),
  handler: async (args) => {
    const file = findConfig(args.config);
    await serve(await loadConfigFile(file), args, file);
  },
};
