/**
 * The commands that ask a running bpfredir (status, rules, conns, reload): one request on
 * this network namespace's admin socket, the answer as text or, with --json, as the daemon
 * sent it.
 */
import type { CommandModule } from 'yargs';
import { askDaemon } from '../admin/client.js';
import { adminSocketPath } from '../admin/socket-path.js';
import type { AdminCommand, AdminReplies } from '../admin/types.js';
import { withAdminOptions, type AdminArgs } from './common-options.js';

export interface AdminCommandSpec<C extends AdminCommand> {
  cmd: C;
  describe: string;
  /** How long the daemon may take to answer. */
  timeoutMs: number;
  /** What --json prints. */
  json: (reply: AdminReplies[C]) => unknown;
  text: (reply: AdminReplies[C]) => string;
}

export function adminCommand<C extends AdminCommand>(spec: AdminCommandSpec<C>): CommandModule<object, AdminArgs> {
  return {
    command: spec.cmd,
    describe: spec.describe,
    builder: (yargs) => withAdminOptions(yargs),
    handler: async (args) => {
      const reply = await askDaemon(args['admin-socket'] ?? adminSocketPath(args['run-dir']), spec.cmd, spec.timeoutMs);
      process.stdout.write(`${args.json ? JSON.stringify(spec.json(reply), null, 2) : spec.text(reply)}\n`);
    },
  };
}
