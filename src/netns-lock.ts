/**
 * One steering bpfredir per network namespace: an flock on
 * <runDir>/netns-<inode>.lock. Only the owner of runDir (root, or the service
 * user) can create files there, so no other user can take the lock first; the
 * kernel drops an flock when its holder dies, so a killed instance never
 * blocks the next start. /run is shared by every mount namespace, so instances
 * started through `ip netns exec` (which mounts a private /sys) see each other.
 *
 * The holder removes the file when it stops. An opener may then hold an fd of
 * the removed file and lock it; so after locking, the path must still name the
 * file that was locked, else the lock is worthless and the opener tries again.
 */
import { closeSync, constants, fstatSync, ftruncateSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { BpfredirError, errnoCode } from './errors.js';
import type { RawBinding } from './native/index.js';
import { checkRunDir, DEFAULT_RUN_DIR, netnsRunFile } from './run-dir.js';

export { DEFAULT_RUN_DIR };

export interface NetnsLock {
  readonly path: string;
  release(): void;
}

/** Whoever holds the lock wrote its pid into the file. */
function holderOf(path: string): string {
  let pid = '';
  try {
    pid = readFileSync(path, 'utf8').trim();
  } catch {
    // released in the meantime: no pid to name
  }
  return /^\d+$/.test(pid) ? ` (pid ${pid})` : '';
}

/** Whether path still names the file open at fd (the holder before us may have removed it). */
function stillNamed(path: string, fd: number): boolean {
  try {
    return statSync(path).ino === fstatSync(fd).ino;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}

/** A locked fd of the file at path, or undefined when a live holder has it. */
function lockFile(native: Pick<RawBinding, 'tryLock'>, path: string): number | undefined {
  for (;;) {
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    if (!native.tryLock(fd)) {
      closeSync(fd);
      return undefined;
    }
    if (stillNamed(path, fd)) return fd;
    closeSync(fd);
  }
}

export function lockNetns(native: Pick<RawBinding, 'tryLock'>, netnsInode: bigint, runDir = DEFAULT_RUN_DIR): NetnsLock {
  checkRunDir(runDir);
  const path = netnsRunFile(runDir, netnsInode, 'lock');
  const fd = lockFile(native, path);
  if (fd === undefined) {
    throw new BpfredirError(
      'ERR_BPFREDIR_ALREADY_RUNNING',
      `another bpfredir${holderOf(path)} is running in this network namespace (it holds ${path}); stop it first`,
    );
  }
  try {
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`, 0);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      unlinkSync(path); // while still holding the lock: see the header
      closeSync(fd);
    },
  };
}
