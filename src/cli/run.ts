/** bpfredir run: serve a config file. */
import type { CommandModule } from 'yargs';
import { configSource } from '../config/load.js';
import { withServeOptions, type ServeArgs } from './common-options.js';
import { serve } from './serve.js';

interface RunArgs extends ServeArgs {
  config?: string;
  'rinetd-config'?: string;
}

export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run',
  describe: 'Run the redirector with a config file until SIGINT/SIGTERM',
  builder: (yargs) =>
    withServeOptions(yargs)
      .option('config', { type: 'string', describe: 'config file (YAML or JSON); default $BPFREDIR_CONFIG, ./bpfredir.yaml, /etc/bpfredir/config.yaml' })
      .option('rinetd-config', { type: 'string', describe: "a rinetd.conf, read as rinetd 0.73 reads it (docs/MIGRATING.md)" })
      .example('$0 run --config deploy/example.yaml', 'serve the example rules')
      .example('$0 run --rinetd-config /etc/rinetd.conf', 'take over from rinetd, same file'),
  handler: async (args) => {
    const source = configSource(args);
    await serve(await source.load(), args, source);
  },
};
