/** bpfredir check: validate a config and show what it compiles to. Changes nothing. */
import type { CommandModule } from 'yargs';
import { configSource } from '../config/load.js';
import { readTcpListeners } from '../config/proc-listeners.js';
import { RuleIds } from '../rules/ids.js';
import { checkReport } from './check-report.js';

interface CheckArgs {
  config?: string;
  'rinetd-config'?: string;
}

export const checkCommand: CommandModule<object, CheckArgs> = {
  command: 'check',
  describe: 'Validate a config, print the bindings it compiles to, warn about ports it takes from listeners',
  builder: (yargs) =>
    yargs
      .option('config', { type: 'string', describe: 'config file (YAML or JSON); default $BPFREDIR_CONFIG, ./bpfredir.yaml, /etc/bpfredir/config.yaml' })
      .option('rinetd-config', { type: 'string', describe: 'a rinetd.conf, read as rinetd 0.73 reads it' })
      .example('$0 check --config deploy/example.yaml', '')
      .example('$0 check --rinetd-config /etc/rinetd.conf', 'what bpfredir makes of a rinetd setup'),
  handler: async (args) => {
    const config = await configSource(args).load();
    const ids = new RuleIds().assign(config.rules.map((r) => r.name));
    const report = checkReport(config, ids, readTcpListeners());
    process.stdout.write(`${report.lines.join('\n')}\n`);
    for (const warning of report.warnings) process.stderr.write(`${warning}\n`);
    process.stdout.write(`config OK${report.warnings.length ? ` (${report.warnings.length} warning${report.warnings.length === 1 ? '' : 's'})` : ''}\n`);
  },
};
