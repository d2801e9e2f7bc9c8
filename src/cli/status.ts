/** bpfredir status: what the bpfredir of this network namespace runs and how. Changes nothing. */
import { adminCommand } from './admin-command.js';
import { statusText } from './admin-text.js';

export const statusCommand = adminCommand({
  cmd: 'status',
  describe: 'Show the running bpfredir: datapath and why, rules, connections, reloads',
  timeoutMs: 5000,
  json: (reply) => reply.status,
  text: (reply) => statusText(reply.status),
});
