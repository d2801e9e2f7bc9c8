/**
 * bpfredir reload: the running bpfredir reads its config again and applies the difference
 * (like SIGHUP). A config it refuses leaves the running rules as they were; the refusal
 * prints and exits like `check` on that config.
 */
import { adminCommand } from './admin-command.js';
import { reloadText } from './admin-text.js';

export const reloadCommand = adminCommand({
  cmd: 'reload',
  describe: 'Make the running bpfredir apply its config file again (like SIGHUP)',
  // Validation resolves host names, and applying waits for the kernel maps and listeners.
  timeoutMs: 60_000,
  json: (reply) => ({ changes: reply.changes }),
  text: (reply) => reloadText(reply.changes),
});
