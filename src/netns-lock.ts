/**
 * One steering bpfredir per network namespace. The lock is an abstract UNIX
 * socket: its name lives in the netns (not in any filesystem), so instances
 * started through different mount namespaces still see each other (each
 * `ip netns exec` mounts a private /sys, hence a private bpffs where pins are
 * invisible to the others), and the kernel releases it when the process dies.
 */
import { createServer, type Server } from 'node:net';
import { BpfredirError, errnoCode } from './errors.js';

export const LOCK_NAME = 'bpfredir/steer';

export interface NetnsLock {
  release(): Promise<void>;
}

export async function lockNetns(name = LOCK_NAME): Promise<NetnsLock> {
  const server: Server = createServer((peer) => peer.destroy());
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: `\0${name}` }, resolve);
    });
  } catch (err) {
    if (errnoCode(err) !== 'EADDRINUSE') throw err;
    throw new BpfredirError(
      'ERR_BPFREDIR_ALREADY_RUNNING',
      `another bpfredir is running in this network namespace (it holds the lock @${name}); stop it first`,
      { cause: err },
    );
  }
  server.unref(); // the lock alone must not keep a process alive
  return { release: () => new Promise((resolve) => server.close(() => resolve())) };
}
