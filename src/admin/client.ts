/**
 * Asks the bpfredir of this network namespace one question over its admin socket. A missing
 * or dead socket means no bpfredir runs here (ERR_BPFREDIR_NOT_RUNNING); a refusal by the
 * daemon keeps the daemon's code, so a refused reload exits like a failed `check`.
 */
import { createConnection } from 'node:net';
import { BpfredirError, errnoCode, errorMessage } from '../errors.js';
import { encodeLine, parseResponse, readLines } from './protocol.js';
import type { AdminCommand, AdminReplies } from './types.js';

function unreachable(err: unknown, path: string): BpfredirError {
  const code = errnoCode(err);
  const notRunning = (why: string) =>
    new BpfredirError('ERR_BPFREDIR_NOT_RUNNING', `no bpfredir is running in this network namespace (${why}); start one with bpfredir run`, { cause: err });
  if (code === 'ENOENT') return notRunning(`no admin socket at ${path}`);
  if (code === 'ECONNREFUSED') return notRunning(`nothing answers on ${path}`);
  if (code === 'EACCES' || code === 'EPERM') {
    return new BpfredirError('ERR_BPFREDIR_PRIVILEGES', `cannot open ${path} (${code}): only the user bpfredir runs as (root) may; run this as that user`, { cause: err });
  }
  return new BpfredirError('ERR_BPFREDIR_RUNTIME', `cannot reach bpfredir at ${path}: ${errorMessage(err)}`, { cause: err });
}

export function askDaemon<C extends AdminCommand>(path: string, cmd: C, timeoutMs: number): Promise<AdminReplies[C]> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    const finish = (outcome: () => void) => {
      socket.destroy();
      outcome();
    };
    const fail = (err: BpfredirError) => finish(() => reject(err));
    socket.setTimeout(timeoutMs, () => fail(new BpfredirError('ERR_BPFREDIR_RUNTIME', `bpfredir did not answer '${cmd}' on ${path} within ${timeoutMs / 1000}s`)));
    let connected = false;
    socket.once('connect', () => {
      connected = true;
      socket.write(encodeLine({ cmd }));
    });
    socket.once('error', (err) => fail(connected ? new BpfredirError('ERR_BPFREDIR_RUNTIME', `${path}: ${errorMessage(err)}`, { cause: err }) : unreachable(err, path)));
    socket.once('close', () => fail(new BpfredirError('ERR_BPFREDIR_RUNTIME', `bpfredir closed ${path} without answering '${cmd}'`)));
    readLines(socket, Number.POSITIVE_INFINITY, (line) => {
      let response;
      try {
        response = parseResponse<C>(line);
      } catch (err) {
        return fail(new BpfredirError('ERR_BPFREDIR_RUNTIME', `${path}: ${errorMessage(err)}`, { cause: err }));
      }
      if (response.ok) finish(() => resolve(response));
      else fail(new BpfredirError(response.code ?? 'ERR_BPFREDIR_RUNTIME', response.error.split('\n')));
    });
  });
}
