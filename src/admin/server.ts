/**
 * The daemon's admin socket: a unix stream socket, mode 0600, in the run directory (checked
 * like the lock's: nobody but its owner may write there, else they could put a socket of
 * their own where the CLI looks). Each request line gets one answer line, in order
 * (./protocol.ts); the answers come from an AdminSource.
 *
 * A socket file left by a killed daemon is removed only when nothing answers on it; a live
 * one means another bpfredir serves this path. close() removes the file if it is still ours.
 */
import { chmodSync, lstatSync, rmSync, type Stats } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { BpfredirError, errnoCode, errorMessage, isBpfredirError } from '../errors.js';
import type { Logger } from '../log.js';
import { checkRunDir } from '../run-dir.js';
import { encodeLine, MAX_REQUEST_BYTES, parseRequest, readLines } from './protocol.js';
import type { AdminCommand, AdminResponse, AdminSource } from './types.js';

export interface AdminServer {
  readonly path: string;
  /** Stop answering, drop open admin connections, remove the socket file. Idempotent. */
  close(): Promise<void>;
}

const HANDLERS: { [C in AdminCommand]: (source: AdminSource) => Promise<AdminResponse<C>> } = {
  status: async (source) => ({ ok: true, status: source.status() }),
  rules: async (source) => ({ ok: true, rules: source.rules() }),
  conns: async (source) => ({ ok: true, conns: await source.conns() }),
  // A refused config is an answer like any other: the daemon has logged it and kept its rules.
  reload: async (source) => {
    const { ok, error, code, changes } = await source.reload();
    return ok ? { ok, changes: changes ?? [] } : { ok, error: error ?? 'reload failed', ...(code && { code }) };
  },
};

async function answer(line: string, source: AdminSource, logger: Logger): Promise<AdminResponse> {
  const request = parseRequest(line);
  if ('ok' in request) return request;
  try {
    return await HANDLERS[request.cmd](source);
  } catch (err) {
    logger.warn(`admin ${request.cmd} failed`, { error: errorMessage(err) });
    return { ok: false, error: errorMessage(err), ...(isBpfredirError(err) && { code: err.code }) };
  }
}

function serve(socket: Socket, source: AdminSource, logger: Logger): void {
  let queue = Promise.resolve();
  readLines(socket, MAX_REQUEST_BYTES, (line) => {
    queue = queue.then(async () => {
      const response = await answer(line, source, logger);
      if (socket.writable) socket.write(encodeLine(response));
    });
  });
  socket.on('error', () => {
    // A client that leaves before its answer (or sends garbage) concerns only itself.
  });
}

/** Whether a process accepts connections on the socket at path. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', (err) => {
      const code = errnoCode(err);
      if (code === 'ECONNREFUSED' || code === 'ENOENT') resolve(false);
      else if (code === 'EAGAIN') resolve(true); // alive, its backlog is full
      else reject(err);
    });
  });
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

async function removeStaleSocket(path: string): Promise<void> {
  const st = statOrUndefined(path);
  if (!st) return;
  if (!st.isSocket()) throw new BpfredirError('ERR_BPFREDIR_RUNTIME', `${path} is in the way of the admin socket and is not a socket; remove it`);
  if (await answers(path)) {
    throw new BpfredirError('ERR_BPFREDIR_ALREADY_RUNNING', `another bpfredir answers on ${path} in this network namespace; stop it first`);
  }
  rmSync(path, { force: true });
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (err: Error) =>
      reject(
        errnoCode(err) === 'EADDRINUSE'
          ? new BpfredirError('ERR_BPFREDIR_ALREADY_RUNNING', `another bpfredir took ${path} at the same moment; stop it first`, { cause: err })
          : new BpfredirError('ERR_BPFREDIR_RUNTIME', `cannot listen on ${path}: ${errorMessage(err)}`, { cause: err }),
      );
    server.once('error', fail);
    server.listen(path, () => {
      server.off('error', fail);
      resolve();
    });
  });
}

export async function startAdminServer(path: string, source: AdminSource, logger: Logger): Promise<AdminServer> {
  checkRunDir(dirname(path));
  await removeStaleSocket(path);
  const connections = new Set<Socket>();
  const server = createServer((socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
    serve(socket, source, logger);
  });
  await listen(server, path);
  server.on('error', (err) => logger.warn('admin socket failed', { path, error: errorMessage(err) }));
  // Created with the umask's mode; the run directory already keeps other users out.
  chmodSync(path, 0o600);
  const inode = lstatSync(path).ino;

  let closed: Promise<void> | undefined;
  return {
    path,
    close() {
      closed ??= new Promise((resolve) => {
        if (statOrUndefined(path)?.ino === inode) rmSync(path, { force: true });
        server.close(() => resolve());
        for (const socket of connections) socket.destroy();
      });
      return closed;
    },
  };
}
