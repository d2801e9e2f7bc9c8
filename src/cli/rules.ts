/** bpfredir rules: the rules the running bpfredir applies, with their ids and sockets. Changes nothing. */
import { adminCommand } from './admin-command.js';
import { rulesText } from './admin-text.js';

export const rulesCommand = adminCommand({
  cmd: 'rules',
  describe: 'List the running rules: what each takes, its target, id and socket',
  timeoutMs: 5000,
  json: (reply) => reply.rules,
  text: (reply) => rulesText(reply.rules),
});
