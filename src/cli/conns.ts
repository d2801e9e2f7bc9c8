/** bpfredir conns: the connections open now. Changes nothing. */
import { adminCommand } from './admin-command.js';
import { connsText } from './admin-text.js';

export const connsCommand = adminCommand({
  cmd: 'conns',
  describe: 'List open connections: addresses, datapath, bytes each way, age',
  timeoutMs: 5000,
  json: (reply) => reply.conns,
  text: (reply) => connsText(reply.conns),
});
